//! Signing in and out, and the session every other page needs. The cookie holds a random
//! token (the store keeps its SHA-256); each session has a CSRF token that every form carries.
//! Sign-in attempts share the REST API's limits per address and login, checked before the
//! directory is asked; the directory refuses disabled, expired and locked-out accounts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use iaas_access::Identity;
use iaas_store::{AuditEntry, ConsoleSession};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{html, Console};

const SESSION_COOKIE: &str = "iaas_console";
/// The sign-in form's own CSRF token (double submit: cookie and field), before any session.
const SIGNIN_COOKIE: &str = "iaas_console_signin";
/// How long a session's identity is trusted when the policy has no roles (no access cache).
const DEFAULT_RECHECK: std::time::Duration = std::time::Duration::from_secs(300);

/// A signed-in person: who, and their session's CSRF token.
pub struct Signed {
    pub who: Identity,
    pub csrf: String,
    token_sha256: String,
}

impl Signed {
    /// The ids their requests and leases carry: the e-mail they signed in with (and, for the
    /// same person in Slack, the Slack user id once known).
    pub fn ids(&self) -> Vec<iaas_access::UserId> {
        crate::requests::ids(&self.who)
    }

    /// Whether a form came from this session's pages.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        if sent.len() == self.csrf.len() && bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            return Ok(());
        }
        Err(html::refusal(
            StatusCode::FORBIDDEN,
            "This form did not come from your console session (its security token is missing or stale), so nothing was changed. Reload the page and try again.",
        ))
    }
}

fn random_token() -> String {
    // Two v4 UUIDs: 244 bits from the operating system's random source.
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(console: &Console, name: &str, value: &str, max_age_secs: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if console.settings.secure_cookies {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age_secs {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Where to go after signing in: only a console page, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\') && !n.contains("://") => n.to_string(),
        _ => "/console/requests".to_string(),
    }
}

fn now_ms(console: &Console) -> i64 {
    (console.gw.clock)() * 1000
}

impl FromRequestParts<Arc<Console>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Signed, Response> {
        let to_signin = || {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/console/requests");
            // A page asked for goes back there after sign-in; a fragment or a form does not.
            let next = if parts.method == axum::http::Method::GET && !next.ends_with("/events") && !next.starts_with("/console/vms") {
                next
            } else {
                "/console/requests"
            };
            Redirect::to(&format!("/console/signin?next={}", urlencode(next))).into_response()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(to_signin()) };
        let store = crate::requests::store(&console.gw).map_err(html::api_refusal)?;
        let hash = sha256_hex(&token);
        let idle_ms = console.settings.idle.as_millis() as i64;
        let session = store.console_session(&hash, now_ms(console), idle_ms).await.map_err(|_| {
            html::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The bot's database is unreachable, so your session cannot be checked; try again later.",
            )
        })?;
        let Some(session) = session else { return Err(to_signin()) };
        let mut who: Identity = serde_json::from_str(&session.identity_json).map_err(|_| to_signin())?;
        // Like every cached identity, a session's is trusted for the identity TTL only: then the
        // directory is asked again (a disabled account or a lost group ends or narrows it).
        let ttl_ms = console.gw.access.as_ref().map_or(DEFAULT_RECHECK, |a| a.identity_ttl()).as_millis() as i64;
        if now_ms(console) - session.checked_at_ms >= ttl_ms {
            let Some(auth) = &console.gw.api else { return Err(to_signin()) };
            who = match auth.recheck(&who).await {
                Ok(now) => now,
                Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
                    let _ = store.end_console_session(&hash).await;
                    return Err(html::refusal(StatusCode::UNAUTHORIZED, e.sentence()));
                }
                Err(e) => return Err(html::api_refusal(e)),
            };
            let json = serde_json::to_string(&who).unwrap_or_default();
            if store.recheck_console_session(&hash, &json, now_ms(console)).await.is_err() {
                return Err(html::refusal(StatusCode::SERVICE_UNAVAILABLE, "The bot's database is unreachable; try again later."));
            }
        }
        Ok(Signed { who, csrf: session.csrf, token_sha256: hash })
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e[1..].to_string()).unwrap_or_default()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The sign-in form, with a fresh CSRF token in a cookie and in the form.
pub async fn signin_page(State(console): State<Arc<Console>>, Query(q): Query<NextQuery>) -> Response {
    signin_form(&console, StatusCode::OK, q.next.as_deref(), None, "")
}

fn signin_form(console: &Console, status: StatusCode, next: Option<&str>, error: Option<&str>, login: &str) -> Response {
    let token = random_token();
    let note = match &console.gw.api {
        Some(api) if api.has_directory() => None,
        _ => Some("This server has no directory (LDAP_URL), so nobody can sign in to the console."),
    };
    let page = html::signin(&safe_next(next), &token, error.or(note), login);
    let mut response = (status, page).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(console, SIGNIN_COOKIE, &token, Some(3600)));
    response
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// Checks the password with a bind to the directory as the user; on success a session starts.
pub async fn signin(
    State(console): State<Arc<Console>>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return html::refusal(
            StatusCode::FORBIDDEN,
            "This sign-in form did not come from this console (its security token is missing or stale). Open the sign-in page again.",
        );
    }
    let Some(auth) = console.gw.api.clone() else {
        return signin_form(&console, StatusCode::SERVICE_UNAVAILABLE, form.next.as_deref(), Some("Sign-in is not configured here."), "");
    };
    let login = form.login.trim().to_string();
    let peer = match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => Some(addr.ip()),
        None => iaas_runtime::lambda_source_ip(&extensions),
    };
    let source = auth.limiter.source(peer, &headers);
    if let Some(wait) = auth.limiter.wait(source, Some(&login), Instant::now()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        metrics::counter!("iaas_console_signins_total", "outcome" => "limited").increment(1);
        audit(&console, &login, "denied", format!("too many failed sign-ins; refused for {secs} s before checking the password")).await;
        let sentence = format!("Too many failed sign-ins. Try again in {secs} seconds.");
        let mut response = signin_form(&console, StatusCode::TOO_MANY_REQUESTS, form.next.as_deref(), Some(&sentence), &login);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    if login.is_empty() || form.password.is_empty() {
        return signin_form(&console, StatusCode::UNAUTHORIZED, form.next.as_deref(), Some("Enter your login and password."), &login);
    }
    let mut who = match auth.by_password(&login, &form.password).await {
        Ok(who) => who,
        Err(e) => {
            if e.status() == StatusCode::UNAUTHORIZED {
                metrics::counter!("iaas_console_signins_total", "outcome" => "refused").increment(1);
                auth.limiter.failed(source, Some(&login), Instant::now());
                audit(&console, &login, "denied", "failed sign-in".into()).await;
            }
            return signin_form(&console, e.status(), form.next.as_deref(), Some(e.sentence()), &login);
        }
    };
    auth.limiter.succeeded(source, Some(&login));
    // The same person as in Slack, when Slack knows their address: their requests and leases
    // carry their Slack id. Without it they act under their e-mail address.
    if let (Some(access), Some(mail)) = (&console.gw.access, who.email.clone()) {
        match access.slack_user_by_email(&mail).await {
            Ok(Some(id)) => who.slack_user = id.into(),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not find the console user in Slack; they act under their e-mail address"),
        }
    }
    let Ok(store) = crate::requests::store(&console.gw) else {
        return html::refusal(StatusCode::SERVICE_UNAVAILABLE, "This server has no database, so it keeps no sessions.");
    };
    let token = random_token();
    let now = now_ms(&console);
    let session = ConsoleSession {
        token_sha256: sha256_hex(&token),
        login: who.email.clone().unwrap_or_else(|| who.slack_user.to_string()),
        identity_json: serde_json::to_string(&who).unwrap_or_default(),
        csrf: random_token(),
        created_at_ms: now,
        last_seen_ms: now,
        checked_at_ms: now,
        expires_at_ms: now + console.settings.absolute.as_millis() as i64,
    };
    if store.create_console_session(&session, console.settings.idle.as_millis() as i64).await.is_err() {
        return html::refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The bot's database is unreachable, so you cannot sign in now; try again later.",
        );
    }
    metrics::counter!("iaas_console_signins_total", "outcome" => "ok").increment(1);
    audit(&console, &login, "allowed", format!("signed in to the console as {}", who.slack_user)).await;
    let mut response = Redirect::to(&safe_next(form.next.as_deref())).into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(&console, SESSION_COOKIE, &token, Some(console.settings.absolute.as_secs())));
    h.append(header::SET_COOKIE, set_cookie(&console, SIGNIN_COOKIE, "", Some(0)));
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Ends the session here and in the store.
pub async fn signout(State(console): State<Arc<Console>>, signed: Signed, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    if let Ok(store) = crate::requests::store(&console.gw) {
        if store.end_console_session(&signed.token_sha256).await.is_err() {
            return html::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The bot's database is unreachable, so the session could not be ended; try again.",
            );
        }
    }
    let mut response = Redirect::to("/console/signin").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&console, SESSION_COOKIE, "", Some(0)));
    response
}

async fn audit(console: &Console, login: &str, decision: &str, reason: String) {
    let Some(log) = &console.gw.audit else { return };
    log.record(AuditEntry {
        at_ms: now_ms(console),
        request_id: uuid::Uuid::now_v7().to_string(),
        actor: format!("console:{login}"),
        command: "console sign-in".into(),
        vm: None,
        stage: "gateway".into(),
        decision: decision.into(),
        reason,
        duration_ms: None,
    })
    .await;
}
