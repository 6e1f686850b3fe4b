//! Who may post events: VEBA's webhook processor sends a bearer token or basic auth. Secrets
//! come from env or files (`IAAS_EVENTS_TOKEN`, `IAAS_EVENTS_USER` + `IAAS_EVENTS_PASSWORD`)
//! and are compared in constant time. With neither configured every request is refused.

use axum::http::{header::AUTHORIZATION, HeaderMap};
use base64::Engine;
use iaas_config::{ConfigError, Secret};
use subtle::ConstantTimeEq;

#[derive(Clone, Default)]
pub struct EventAuth {
    token: Option<Secret>,
    basic: Option<(String, Secret)>,
}

impl std::fmt::Debug for EventAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventAuth")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("basic_user", &self.basic.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl EventAuth {
    pub fn from_env() -> Result<EventAuth, ConfigError> {
        let token = iaas_config::secret("IAAS_EVENTS_TOKEN")?;
        let user = iaas_config::var("IAAS_EVENTS_USER");
        let password = iaas_config::secret("IAAS_EVENTS_PASSWORD")?;
        let basic = match (user, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "IAAS_EVENTS_USER",
                    "is set without IAAS_EVENTS_PASSWORD, or the other way round",
                    "Set both for basic auth, or neither and use IAAS_EVENTS_TOKEN.",
                ))
            }
        };
        Ok(EventAuth { token, basic })
    }

    pub fn token(token: &str) -> EventAuth {
        EventAuth { token: Some(Secret::new(token)), basic: None }
    }

    pub fn basic(user: &str, password: &str) -> EventAuth {
        EventAuth { token: None, basic: Some((user.to_string(), Secret::new(password))) }
    }

    pub fn is_configured(&self) -> bool {
        self.token.is_some() || self.basic.is_some()
    }

    /// Whether the request carries the configured token or user and password.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, credentials)) = value.trim().split_once(' ') else {
            return false;
        };
        let credentials = credentials.trim();
        match (scheme.to_ascii_lowercase().as_str(), &self.token, &self.basic) {
            ("bearer", Some(token), _) => same(credentials.as_bytes(), token.expose().as_bytes()),
            ("basic", _, Some((user, password))) => {
                let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
                    return false;
                };
                let expected = format!("{user}:{}", password.expose());
                same(&decoded, expected.as_bytes())
            }
            _ => false,
        }
    }
}

/// Constant time for equal lengths; a length difference only reveals the length.
fn same(given: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty() && bool::from(given.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn bearer_and_basic_as_veba_sends_them() {
        let token = EventAuth::token("s3cret");
        assert!(token.allows(&with("Bearer s3cret")));
        assert!(!token.allows(&with("Bearer s3cre")));
        assert!(!token.allows(&with("Basic czNjcmV0")));
        assert!(!token.allows(&HeaderMap::new()));
        let basic = EventAuth::basic("veba", "pw");
        // base64("veba:pw")
        assert!(basic.allows(&with("Basic dmViYTpwdw==")));
        assert!(!basic.allows(&with("Basic dmViYTpwdg==")));
        assert!(!basic.allows(&with("Basic !!!")));
        assert!(!basic.allows(&with("Bearer pw")));
        assert!(!EventAuth::default().allows(&with("Bearer ")), "nothing configured, nothing allowed");
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
