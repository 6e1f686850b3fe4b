//! The guard of the scheduled endpoints (`iaas-expire-sweep`, `iaas-decommission-resume`): a
//! schedule carries no user, so the only proof it is ours is the shared-secret signature over
//! the body (`iaas trigger` signs an empty one). On Lambda these functions have no function URL:
//! EventBridge invokes them through IAM, so there is nothing to sign and nothing else can reach
//! them.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use iaas_config::Secret;
use iaas_invocation::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// A schedule's body is empty; anything larger is not a schedule.
const BODY_LIMIT: usize = 4 * 1024;

/// The routes of `router` so far behind the shared-secret signature (401 otherwise, and the
/// handler does not run); add `/_/health` after. Unguarded on Lambda, where only IAM can invoke.
pub fn scheduled<S: Clone + Send + Sync + 'static>(router: Router<S>, secret: &Secret) -> Router<S> {
    if iaas_runtime::on_lambda() {
        return router;
    }
    router.route_layer(middleware::from_fn_with_state(secret.clone(), require_signature))
}

async fn require_signature(State(secret): State<Secret>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "a scheduled trigger has an empty body\n").into_response();
    };
    let header = |h: &str| parts.headers.get(h).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = iaas_invocation::verify(secret.expose().as_bytes(), header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &bytes, now) {
        tracing::warn!(error = %e, path = %parts.uri.path(), "refused an unsigned scheduled trigger");
        return (StatusCode::UNAUTHORIZED, "This endpoint runs on a schedule and needs the shared-secret signature; use `iaas trigger`.\n")
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
