//! The handlers: thin, each checks its command, reads or dispatches, and answers a view.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use iaas_store::{CancelOutcome, DecommissionFilter, DecommissionState, RequestId, UserId};
use serde::Deserialize;
use utoipa::OpenApi;

use super::auth::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::openapi::ApiDoc;
use super::views::*;
use crate::{requests, Gateway, BODY_LIMIT};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// Records a decommission request and starts it at once: this POST is the confirmation.
#[utoipa::path(post, path = "/api/v1/decommissions", tag = "decommissions", request_body = CreateDecommission,
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 202, description = "Recorded and started; `vm_plans` is the plan", body = DecommissionView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "The caller's roles do not allow it", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "The function refused (unknown VM, not yours, …); nothing was changed", body = ErrorBody),
        (status = 503, description = "Database, directory or dispatch unavailable", body = ErrorBody),
    ))]
pub(super) async fn create(State(gw): State<Arc<Gateway>>, caller: ApiCaller, body: Body) -> Result<Response, ApiError> {
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("The body is larger than {BODY_LIMIT} bytes.")));
    };
    let who = requests::Decommissioner::check(&gw, &caller.who)?;
    let req: CreateDecommission =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("The body is not a decommission request: {e}.")))?;
    let d = requests::start_decommission(&gw, who, req.vms, req.ticket, req.reason).await?;
    let location = format!("/api/v1/decommissions/{}", d.request.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view(&d))).into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// The requester (Slack user id, `api:<token>` or e-mail).
    pub requester: Option<String>,
    #[param(schema_with = request_state_schema)]
    pub state: Option<DecommissionState>,
    /// Requests that include this VM.
    pub vm: Option<String>,
    /// Created at or after: Unix seconds or RFC 3339.
    pub since: Option<String>,
    /// Rows per page (default 50, at most 500).
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Lists requests, newest first, with filters and pagination.
#[utoipa::path(get, path = "/api/v1/decommissions", tag = "decommissions", params(ListParams),
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = DecommissionPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
    ))]
pub(super) async fn list(State(gw): State<Arc<Gateway>>, caller: ApiCaller, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    caller.may_run(&gw, "decommission list")?;
    let params: ListParams = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|e| {
        // An unknown state's sentence (it lists the valid ones) ends with its own period.
        ApiError::bad_request(format!("Bad query: {}.", e.to_string().trim_end_matches('.')))
    })?;
    let since_ms = match params.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(match s.parse::<i64>() {
            Ok(secs) => secs.saturating_mul(1000),
            Err(_) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| ApiError::bad_request("`since` must be Unix seconds or an RFC 3339 time."))?
                .timestamp_millis(),
        }),
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("`limit` must be between 1 and {MAX_LIMIT}.")));
    }
    let offset = params.offset.unwrap_or(0);
    let filter = DecommissionFilter {
        requester: params.requester.map(UserId::from),
        state: params.state,
        vm_name: params.vm,
        since_ms,
        ..Default::default()
    };
    let rows = requests::store(&gw)?.decommissions(&filter, limit + 1, offset).await.map_err(|_| ApiError::store_down())?;
    let more = rows.len() > limit as usize;
    let items = rows.iter().take(limit as usize).map(summary).collect();
    Ok(Json(DecommissionPage { items, limit, offset, next_offset: more.then_some(offset + limit) }).into_response())
}

/// One request with each VM's steps.
#[utoipa::path(get, path = "/api/v1/decommissions/{id}", tag = "decommissions", params(("id" = String, Path, description = "Request id")),
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The request", body = DecommissionView),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    ))]
pub(super) async fn show(State(gw): State<Arc<Gateway>>, caller: ApiCaller, Path(id): Path<RequestId>) -> Result<Response, ApiError> {
    caller.may_run(&gw, "decommission status")?;
    match requests::store(&gw)?.decommission(&id).await {
        Ok(Some(d)) => Ok(Json(view(&d)).into_response()),
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("There is no decommission request `{id}`."))),
        Err(_) => Err(ApiError::store_down()),
    }
}

/// Cancels a request (the requester or an admin): at once if it has not started, else before
/// its next step (nothing is rolled back).
#[utoipa::path(post, path = "/api/v1/decommissions/{id}/cancel", tag = "decommissions", params(("id" = String, Path, description = "Request id")),
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled before it started", body = CancelResult),
        (status = 202, description = "Running; it stops before its next step", body = CancelResult),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Neither the requester nor an admin", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "It has already ended", body = ErrorBody),
    ))]
pub(super) async fn cancel(State(gw): State<Arc<Gateway>>, caller: ApiCaller, Path(id): Path<RequestId>) -> Result<Response, ApiError> {
    let (status, outcome) = match requests::cancel_decommission(&gw, &caller.who, &id).await? {
        CancelOutcome::Cancelled => (StatusCode::OK, "cancelled"),
        _ => (StatusCode::ACCEPTED, "cancel_requested"),
    };
    Ok((status, Json(CancelResult { id: id.to_string(), outcome: outcome.into() })).into_response())
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI document")))]
pub(super) async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}
