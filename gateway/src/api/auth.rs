//! Who is calling: HTTP Basic (a bind to the directory as the user; roles from their groups) or
//! `Authorization: Bearer <token>` (the policy's `[api]` tokens, kept as SHA-256). The caller is
//! an extractor; each handler then asks whether its command is allowed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine;
use iaas_access::Identity;
use iaas_config::Policy;
use iaas_directory::{Directory, DirectoryError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use super::error::ApiError;
use crate::Gateway;

/// How API callers are authenticated: the policy's tokens and the directory.
pub struct ApiAuth {
    tokens: Vec<(String, [u8; 32], Vec<String>)>,
    directory: Option<Directory>,
    /// Role name → its group DNs as the policy spells them.
    role_groups: Vec<(String, Vec<String>)>,
    /// Server-spelled, lower-cased group DN → roles; resolved on first Basic login.
    group_roles: OnceCell<HashMap<String, BTreeSet<String>>>,
    /// Failed sign-ins and their back-offs, checked before any credential (`signin::guard`).
    pub limiter: crate::signin::SignInLimiter,
}

impl ApiAuth {
    /// From the policy's `[api]` tokens and `[roles.*].groups`. A token whose `sha256` is not 64
    /// hex digits is skipped with an error in the log.
    pub fn new(policy: &Policy, directory: Option<Directory>) -> ApiAuth {
        let mut tokens = Vec::new();
        for t in &policy.api.tokens {
            let mut digest = [0u8; 32];
            match hex::decode_to_slice(t.sha256.trim(), &mut digest) {
                Ok(()) => tokens.push((t.name.clone(), digest, t.roles.clone())),
                Err(_) => tracing::error!(token = %t.name, "[api].tokens: sha256 is not 64 hex digits; the token is ignored"),
            }
        }
        let role_groups = policy
            .roles
            .iter()
            .map(|(name, role)| {
                let groups = role
                    .get("groups")
                    .and_then(|g| g.as_array())
                    .map(|a| a.iter().filter_map(|v| v.as_str()).map(|s| s.trim().to_string()).collect())
                    .unwrap_or_default();
                (name.clone(), groups)
            })
            .collect();
        ApiAuth { tokens, directory, role_groups, group_roles: OnceCell::new(), limiter: crate::signin::SignInLimiter::from_env() }
    }

    /// With the directory from the `LDAP_*` settings, read at start-up: a bad one stops it.
    pub fn from_policy(policy: &Policy) -> Result<ApiAuth, iaas_config::ConfigError> {
        Ok(ApiAuth::new(policy, iaas_access::directory_from_env()?))
    }

    /// Whether passwords can be checked (a directory is configured).
    pub fn has_directory(&self) -> bool {
        self.directory.is_some()
    }

    fn by_token(&self, token: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every token is compared, in constant time, so timing tells nothing.
        let mut found = None;
        for (name, want, roles) in &self.tokens {
            if bool::from(want.ct_eq(&digest)) && found.is_none() {
                found = Some(Identity {
                    slack_user: format!("api:{name}").into(),
                    email: None,
                    dn: None,
                    roles: roles.iter().cloned().collect(),
                    groups: Default::default(),
                });
            }
        }
        found
    }

    pub(crate) async fn by_password(&self, login: &str, password: &str) -> Result<Identity, ApiError> {
        let Some(dir) = &self.directory else {
            return Err(ApiError::unauthorized("This server checks no passwords (no directory); use a bearer token."));
        };
        // Every refusal reads alike, so a guesser learns nothing about the account.
        let user = dir.authenticate(login, password).await.map_err(|e| match e {
            refused if refused.is_refusal() => ApiError::unauthorized("The login or password is wrong."),
            other => {
                tracing::warn!(error = %other, "the directory could not check a password");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The directory could not be reached to check the password; try again later.")
            }
        })?;
        self.identity(dir, user).await
    }

    /// `who` as the directory sees them now: still a usable account (not disabled, expired or
    /// locked out), with the roles their groups give today. For sessions that outlive the
    /// identity TTL (the web console).
    pub(crate) async fn recheck(&self, who: &Identity) -> Result<Identity, ApiError> {
        let (Some(dir), Some(mail)) = (&self.directory, &who.email) else {
            return Err(ApiError::unauthorized("Your sign-in can no longer be checked; sign in again."));
        };
        let user = dir.find_user_by_mail(mail).await.map_err(|e| match e {
            refused if refused.is_refusal() => {
                ApiError::unauthorized("Your directory account can no longer be used here; your session has ended.")
            }
            other => {
                tracing::warn!(error = %other, "the directory could not check a signed-in account");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The directory could not be reached to check your account; try again later.")
            }
        })?;
        let mut now = self.identity(dir, user).await?;
        now.slack_user = who.slack_user.clone();
        Ok(now)
    }

    /// The identity of a directory account: its roles from its groups.
    async fn identity(&self, dir: &Directory, user: iaas_directory::DirectoryUser) -> Result<Identity, ApiError> {
        let unavailable = |e: DirectoryError| {
            tracing::warn!(error = %e, "the directory could not list groups");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The directory could not be reached to check your roles; try again later.")
        };
        let map = self
            .group_roles
            .get_or_try_init(|| async {
                let mut map: HashMap<String, BTreeSet<String>> = HashMap::new();
                for (role, groups) in &self.role_groups {
                    for dn in groups {
                        let spelled = dir.resolve_group(dn).await?;
                        map.entry(spelled.to_lowercase()).or_default().insert(role.clone());
                    }
                }
                Ok::<_, DirectoryError>(map)
            })
            .await
            .map_err(unavailable)?;
        let groups = dir.groups_of(&user).await.map_err(unavailable)?;
        let mut roles = BTreeSet::new();
        for g in &groups {
            if let Some(rs) = map.get(&g.to_lowercase()) {
                roles.extend(rs.iter().cloned());
            }
        }
        Ok(Identity { slack_user: user.mail.as_str().into(), email: Some(user.mail), dn: Some(user.dn), roles, groups: Default::default() })
    }
}

/// An authenticated API caller. Extracting it answers 401 for missing or wrong credentials;
/// [`ApiCaller::may_run`] then answers 403 for a command their roles do not allow.
pub(crate) struct ApiCaller {
    pub who: Identity,
}

impl ApiCaller {
    /// Whether the caller may run `command` (a command-table name), as in Slack.
    pub fn may_run(&self, gw: &Gateway, command: &str) -> Result<(), ApiError> {
        crate::requests::may_run(gw, &self.who, command)
    }
}

impl FromRequestParts<Arc<Gateway>> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<ApiCaller, ApiError> {
        let Some(auth) = &gw.api else { return Err(ApiError::unauthorized("The REST API is not configured on this server.")) };
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
        let Some(value) = value else {
            return Err(ApiError::unauthorized("Authenticate with HTTP Basic (your directory login) or a bearer token."));
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let who = if scheme.eq_ignore_ascii_case("bearer") {
            auth.by_token(rest.trim()).ok_or_else(|| ApiError::unauthorized("The bearer token is not valid."))?
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok().and_then(|b| String::from_utf8(b).ok());
            let Some((login, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(ApiError::unauthorized("The Basic credentials are malformed."));
            };
            auth.by_password(login, password).await?
        } else {
            return Err(ApiError::unauthorized("Use HTTP Basic or a bearer token."));
        };
        Ok(ApiCaller { who })
    }
}
