//! The REST API under `/api/v1`: decommission requests for scripts and other systems (a CMDB
//! sync, a ticketing tool). Callers authenticate with HTTP Basic (a bind to the directory as the
//! user; roles from their groups) or `Authorization: Bearer <token>` (the policy's `[api]`
//! tokens, kept as SHA-256). The same roles as in Slack decide which commands they may run.
//! Errors are JSON: `{"error": "<sentence>"}`. The OpenAPI document is `/api/v1/openapi.json`.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

mod auth;
mod error;
mod handlers;
mod openapi;
mod views;

pub use auth::ApiAuth;
pub use error::{ApiError, ErrorBody};
pub use openapi::{openapi, ApiDoc};
pub use views::{CancelResult, CreateDecommission, DecommissionPage, DecommissionSummary, DecommissionView, StepView, VmView};

use crate::Gateway;
use handlers::{cancel, create, list, openapi_json, show};

fn routes() -> Vec<(Method, &'static str, MethodRouter<Arc<Gateway>>)> {
    vec![
        (Method::POST, "/api/v1/decommissions", post(create)),
        (Method::GET, "/api/v1/decommissions", get(list)),
        (Method::GET, "/api/v1/decommissions/{id}", get(show)),
        (Method::POST, "/api/v1/decommissions/{id}/cancel", post(cancel)),
        (Method::GET, "/api/v1/openapi.json", get(openapi_json)),
    ]
}

/// Every (method, path) the API router serves, for checking the OpenAPI document against it.
pub fn served_routes() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|(m, p, _)| (m, p)).collect()
}

pub(crate) fn router() -> Router<Arc<Gateway>> {
    routes().into_iter().fold(Router::new(), |r, (_, path, handler)| r.route(path, handler))
}
