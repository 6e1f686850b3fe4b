//! The Slack-facing edge: verify the request came from Slack, parse `/iaas` text with the
//! command table, acknowledge at once (the HTTP answer *is* the ack), and hand a signed
//! invocation to the function that does the work.

use std::sync::Arc;

use axum::middleware;
use axum::routing::post;
use axum::Router;
use iaas_config::Secret;
use iaas_slack::Responder;

pub mod access;
pub mod api;
pub mod audit;
pub mod console;
pub mod dispatch;
mod local;
pub mod replay;
mod requests;
mod settings;
mod signin;
mod slack;
pub mod socket;

pub use dispatch::{Dispatch, DispatchTarget, LambdaDispatch, OpenFaasDispatch};
pub use local::LocalDispatch;
pub use settings::{GatewaySettings, SettingsError};
pub use slack::REQUEST_ID_HEADER;
pub use socket::{SocketSettings, SocketStatus};

/// Slack's bodies are a few KB; anything far larger is not Slack.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Unix seconds; injectable so Slack's published test vector can be checked.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp())
}

pub struct Gateway {
    pub signing_secret: Secret,
    pub shared_secret: Secret,
    pub dispatcher: Arc<dyn Dispatch>,
    /// Decides which response_urls a function may post to; checked before dispatch too.
    pub responder: Responder,
    pub clock: Clock,
    /// Who may do what; `None` when the policy defines no roles (demo mode).
    pub access: Option<iaas_access::Access>,
    /// Where decisions before the ack are audited (through a writer task, see [`audit`]), and
    /// the store the REST API reads; functions audit outcomes.
    pub audit: Option<audit::AuditLog>,
    /// How REST API callers authenticate; `None` turns the API's authentication off (every
    /// call but the OpenAPI document is refused).
    pub api: Option<Arc<api::ApiAuth>>,
    /// Signed Slack requests already seen: each acts at most once.
    pub replays: replay::Replays,
    /// Socket Mode connections open (when `SLACK_APP_TOKEN` turned it on), for `/_/ready`.
    pub socket: socket::SocketStatus,
    /// What `/iaas doctor` checks from here: everything with local dispatch (`iaas serve`),
    /// the gateway's own peers otherwise.
    pub doctor: iaas_doctor::Options,
}

impl Gateway {
    /// Writes the audit entries still queued; call it once the server stopped taking requests
    /// (after graceful shutdown) and before the process exits.
    pub async fn flush_audit(&self) {
        if let Some(log) = &self.audit {
            log.flush().await;
        }
    }
}

/// The gateway's routes with `/_/ready` checking its store (the audit trail), when it has one.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut readiness = iaas_runtime::Readiness::new();
    if let Some(log) = &gateway.audit {
        let store = log.store().clone();
        readiness = readiness.check("store", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        });
    }
    router_with(gateway, readiness)
}

/// The gateway's routes with these readiness checks (`iaas serve` adds vCenter's).
pub fn router_with(gateway: Arc<Gateway>, readiness: iaas_runtime::Readiness) -> Router {
    // Not ready while Socket Mode is on and no connection to Slack is open: Slack cannot reach
    // this gateway then (HTTP requests would still be served).
    let socket = gateway.socket.clone();
    let readiness = readiness.check("slack_socket", move || {
        let ready = socket.ready();
        async move { ready.then_some(()).ok_or_else(|| "no Socket Mode connection to Slack is open".to_string()) }
    });
    let slack_routes = Router::new()
        .route("/slack/commands", post(slack::command))
        .route("/slack/interactions", post(slack::interaction))
        .route_layer(middleware::from_fn_with_state(gateway.clone(), slack::verify_slack));
    Router::new()
        .merge(slack_routes)
        .merge(api::router().route_layer(middleware::from_fn_with_state(gateway.clone(), signin::guard)))
        .merge(iaas_runtime::probes(readiness))
        .with_state(gateway)
}
