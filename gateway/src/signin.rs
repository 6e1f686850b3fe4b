//! Brute force on the REST API's sign-in: failed sign-ins are counted per source address, per
//! login and per (login, address); past a few, that key is refused with 429 and `Retry-After`
//! for a back-off that doubles with each further failure. The refusal comes before the password
//! is checked, so a guesser in back-off never reaches the directory (and cannot lock a user out
//! of AD). A right password from another address still works: the per-login limit is looser.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use iaas_store::AuditEntry;

use crate::Gateway;

/// Failures forgiven before a back-off starts, per kind of key.
const FREE_PER_SOURCE: u32 = 10;
const FREE_PER_LOGIN_AND_SOURCE: u32 = 5;
const FREE_PER_LOGIN: u32 = 20;
/// The first back-off; each further failure doubles it, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Keys kept before the forgotten ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Source(IpAddr),
    Login(String),
    LoginAndSource(String, IpAddr),
}

impl Key {
    fn free(&self) -> u32 {
        match self {
            Key::Source(_) => FREE_PER_SOURCE,
            Key::Login(_) => FREE_PER_LOGIN,
            Key::LoginAndSource(..) => FREE_PER_LOGIN_AND_SOURCE,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// The failure counts of this process. (Per replica: a guesser spread over replicas gets at
/// most one back-off schedule per replica.)
#[derive(Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<Key, Failures>>,
    /// Proxies whose `X-Forwarded-For` last hop is the caller (`IAAS_TRUSTED_PROXIES`).
    trusted_proxies: Vec<IpAddr>,
}

impl SignInLimiter {
    pub fn new(trusted_proxies: Vec<IpAddr>) -> SignInLimiter {
        SignInLimiter { failures: Mutex::default(), trusted_proxies }
    }

    /// From `IAAS_TRUSTED_PROXIES` (comma-separated IP addresses); a bad entry is logged and
    /// ignored, so it is never trusted.
    pub fn from_env() -> SignInLimiter {
        let proxies = iaas_config::var("IAAS_TRUSTED_PROXIES").unwrap_or_default();
        let trusted = proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|s| match s.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    tracing::error!(entry = s, "IAAS_TRUSTED_PROXIES: not an IP address; ignored");
                    None
                }
            })
            .collect();
        SignInLimiter::new(trusted)
    }

    /// The caller's address: the peer, or the last `X-Forwarded-For` hop when the peer is a
    /// trusted proxy (the hop the proxy itself added; earlier hops are the client's to forge).
    pub fn source(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let forwarded = || {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
        };
        match peer {
            Some(peer) if self.trusted_proxies.contains(&peer) => forwarded().or(Some(peer)),
            other => other,
        }
    }

    fn keys(source: Option<IpAddr>, login: Option<&str>) -> Vec<Key> {
        let login = login.map(str::to_lowercase);
        let mut keys = Vec::new();
        if let Some(ip) = source {
            keys.push(Key::Source(ip));
        }
        if let Some(login) = login {
            if let Some(ip) = source {
                keys.push(Key::LoginAndSource(login.clone(), ip));
            }
            keys.push(Key::Login(login));
        }
        keys
    }

    /// How long the caller must wait before trying again, if it must.
    pub fn wait(&self, source: Option<IpAddr>, login: Option<&str>, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(source, login)
            .iter()
            .filter_map(|k| failures.get(k).and_then(|f| f.blocked_until))
            .filter(|until| *until > now)
            .max()
            .map(|until| until - now)
    }

    /// Counts a failed sign-in against each key; past its free failures a key is blocked.
    pub fn failed(&self, source: Option<IpAddr>, login: Option<&str>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        for key in Self::keys(source, login) {
            let free = key.free();
            let f = failures.entry(key).or_insert(Failures { count: 0, last: now, blocked_until: None });
            if now.duration_since(f.last) >= FORGET_AFTER {
                *f = Failures { count: 0, last: now, blocked_until: None };
            }
            f.count += 1;
            f.last = now;
            if f.count >= free {
                let doublings = (f.count - free).min(20);
                f.blocked_until = Some(now + FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF));
            }
        }
    }

    /// A sign-in that worked clears its login's counts (not its address's: one valid account
    /// must not reset a guesser's budget for the others).
    pub fn succeeded(&self, source: Option<IpAddr>, login: Option<&str>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in Self::keys(source, login) {
            if !matches!(key, Key::Source(_)) {
                failures.remove(&key);
            }
        }
    }
}

/// The Basic login of a request, if it carries one.
fn basic_login(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded.split_once(':').map(|(login, _)| login.to_string())
}

/// The REST API's sign-in guard: refuses callers in back-off (429, `Retry-After`) before their
/// credentials are checked, and counts the 401s the API answers.
pub async fn guard(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let Some(auth) = gw.api.clone() else { return next.run(request).await };
    let limiter = &auth.limiter;
    let peer = match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => Some(addr.ip()),
        None => iaas_runtime::lambda_source_ip(request.extensions()),
    };
    let source = limiter.source(peer, request.headers());
    let login = basic_login(request.headers());
    let credentials = request.headers().contains_key(header::AUTHORIZATION);
    if let Some(wait) = limiter.wait(source, login.as_deref(), Instant::now()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        audit(&gw, source, login.as_deref(), format!("too many failed sign-ins; refused for {secs} s before checking credentials")).await;
        let sentence = format!("Too many failed sign-ins. Try again in {secs} seconds.");
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(crate::api::ErrorBody { error: sentence })).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    let response = next.run(request).await;
    match response.status() {
        StatusCode::UNAUTHORIZED if credentials => {
            limiter.failed(source, login.as_deref(), Instant::now());
            audit(&gw, source, login.as_deref(), "failed sign-in".into()).await;
        }
        // The directory unreachable says nothing about the password.
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::UNAUTHORIZED => {}
        _ if credentials => limiter.succeeded(source, login.as_deref()),
        _ => {}
    }
    response
}

async fn audit(gw: &Gateway, source: Option<IpAddr>, login: Option<&str>, reason: String) {
    let Some(log) = &gw.audit else { return };
    let from = source.map(|ip| ip.to_string()).unwrap_or_else(|| "an unknown address".into());
    log.record(AuditEntry {
        at_ms: (gw.clock)() * 1000,
        request_id: uuid::Uuid::now_v7().to_string(),
        actor: login.map(|l| format!("api:{l}")).unwrap_or_else(|| "api:bearer".into()),
        command: "api sign-in".into(),
        vm: None,
        stage: "gateway".into(),
        decision: "denied".into(),
        reason: format!("{reason} (from {from})"),
        duration_ms: None,
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn back_off_starts_after_the_free_failures_and_doubles() {
        let l = SignInLimiter::default();
        let t = Instant::now();
        for _ in 0..FREE_PER_LOGIN_AND_SOURCE - 1 {
            l.failed(Some(A), Some("bob"), t);
        }
        assert_eq!(l.wait(Some(A), Some("bob"), t), None);
        l.failed(Some(A), Some("bob"), t);
        assert_eq!(l.wait(Some(A), Some("bob"), t), Some(FIRST_BACKOFF));
        l.failed(Some(A), Some("bob"), t);
        assert_eq!(l.wait(Some(A), Some("Bob"), t), Some(FIRST_BACKOFF * 2), "logins are case-insensitive");
        // Another address may still sign in as bob; bob's address may try another login.
        assert_eq!(l.wait(Some(B), Some("bob"), t), None);
        assert_eq!(l.wait(Some(A), Some("ann"), t), None);
        assert_eq!(l.wait(Some(A), Some("bob"), t + FIRST_BACKOFF * 2), None, "the back-off ends");
    }

    #[test]
    fn an_address_guessing_tokens_is_held_back_and_a_success_does_not_reset_it() {
        let l = SignInLimiter::default();
        let t = Instant::now();
        for _ in 0..FREE_PER_SOURCE {
            l.failed(Some(A), None, t);
        }
        assert!(l.wait(Some(A), None, t).is_some());
        l.succeeded(Some(A), Some("ann"));
        assert!(l.wait(Some(A), Some("ann"), t).is_some());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, 10.0.0.2"));
        assert_eq!(SignInLimiter::default().source(Some(A), &headers), Some(A));
        assert_eq!(SignInLimiter::new(vec![A]).source(Some(A), &headers), Some(B));
        assert_eq!(SignInLimiter::new(vec![A]).source(Some(B), &headers), Some(B));
    }
}
