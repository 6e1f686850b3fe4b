//! The web console under `/console`: IT staff sign in with their directory account and see and
//! make decommission requests (live progress, cancel, history search), leases (extend) and the
//! audit trail. Server-rendered HTML (maud) with a little JavaScript served by the binary; the
//! same roles and rules as Slack and the REST API (`crate::requests`), a session per sign-in
//! kept in the store.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use iaas_config::{ConfigError, Policy};
use iaas_vsphere::Vcenter;

use crate::Gateway;

mod html;
mod pages;
mod session;

/// The console's settings, read once at start-up.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// Where people open it, e.g. `https://iaas.example.com` (`IAAS_CONSOLE_URL`); links in Slack
    /// point there.
    pub url: String,
    /// Cookies marked `Secure`: always, except on a plain-http loopback URL (a laptop).
    pub secure_cookies: bool,
    /// A session ends after this long without a request (`IAAS_CONSOLE_IDLE_MINUTES`, 30)…
    pub idle: Duration,
    /// …and this long after sign-in, however busy (`IAAS_CONSOLE_SESSION_HOURS`, 8).
    pub absolute: Duration,
}

impl ConsoleSettings {
    /// The console at `url` (`iaas_config::console_url`, or `iaas serve`'s own address), with
    /// its session time-outs from the environment.
    pub fn new(url: String) -> Result<ConsoleSettings, ConfigError> {
        let bad = |why: &str| ConfigError::new("IAAS_CONSOLE_URL", format!("{url:?} {why}"), "Use e.g. https://iaas.example.com.");
        let parsed = reqwest::Url::parse(&url).map_err(|_| bad("is not a URL"))?;
        let host = parsed.host_str().ok_or_else(|| bad("has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
        // Sign-in cookies over plain http off loopback would cross the network in clear.
        let secure_cookies = parsed.scheme() == "https" || !loopback;
        let minutes = |name: &str, default: u64, unit: u64| -> Result<Duration, ConfigError> {
            let n = iaas_config::parse_var::<u64>(name, "a whole number greater than 0")?.unwrap_or(default);
            if n == 0 {
                return Err(ConfigError::new(name, "is 0", "Use a whole number greater than 0."));
            }
            Ok(Duration::from_secs(n * unit))
        };
        Ok(ConsoleSettings {
            url,
            secure_cookies,
            idle: minutes("IAAS_CONSOLE_IDLE_MINUTES", 30, 60)?,
            absolute: minutes("IAAS_CONSOLE_SESSION_HOURS", 8, 3600)?,
        })
    }
}

/// What the console's handlers share.
pub struct Console {
    pub gw: Arc<Gateway>,
    pub settings: ConsoleSettings,
    /// For the VM search and the plan shown before confirming; without it people type names
    /// and see the plan on the request's page.
    pub vcenter: Option<Arc<dyn Vcenter>>,
    pub policy: Arc<Policy>,
}

/// The console's routes, under `/console`.
pub fn router(console: Console) -> Router {
    let state = Arc::new(console);
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/requests") }))
        .route("/console/signin", get(session::signin_page).post(session::signin))
        .route("/console/signout", post(session::signout))
        .route("/console/requests", get(pages::requests).post(pages::create))
        .route("/console/requests/{id}", get(pages::request))
        .route("/console/requests/{id}/events", get(pages::request_events))
        .route("/console/requests/{id}/cancel", post(pages::cancel))
        .route("/console/new", get(pages::new_request))
        .route("/console/new/review", post(pages::review))
        .route("/console/vms", get(pages::vm_search))
        .route("/console/leases", get(pages::leases))
        .route("/console/leases/extend", post(pages::extend))
        .route("/console/audit", get(pages::audit))
        .route("/console/assets/console.css", get(|| asset("text/css; charset=utf-8", include_str!("assets/console.css"))))
        .route("/console/assets/console.js", get(|| asset("text/javascript; charset=utf-8", include_str!("assets/console.js"))))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// Every console answer: only its own scripts and styles, never framed, no MIME sniffing, no
/// referrer to other sites, and pages not cached (they show people's requests).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
