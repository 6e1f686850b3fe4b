//! The REST API under `/api/v1`: decommission requests for scripts and other systems (a CMDB
//! sync, a ticketing tool). Callers authenticate with HTTP Basic (a bind to the directory as the
//! user; roles from their groups) or `Authorization: Bearer <token>` (the policy's `[api]`
//! tokens, kept as SHA-256). The same roles as in Slack decide which commands they may run.
//! Errors are JSON: `{"error": "<sentence>"}`. The OpenAPI document is `/api/v1/openapi.json`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use base64::Engine;
use iaas_access::{Decision, Identity};
use iaas_config::Policy;
use iaas_config::{OnFailure, StepKind};
use iaas_directory::{Directory, DirectoryError};
use iaas_invocation::{Caller, Command, Invocation, SlackChannel, SlackUser};
use iaas_store::{
    AuditFilter, CancelOutcome, DecommissionDetail, DecommissionFilter, DecommissionState, DecommissionStepState, DecommissionVmState,
    Store,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;
use utoipa::{OpenApi, ToSchema};

use crate::dispatch::DISPATCH_TIMEOUT;
use crate::{Gateway, BODY_LIMIT};

/// At most this many VMs in one request.
const MAX_VMS: usize = 50;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// How long `POST` waits for the function to record the request (and its plan).
const RECORD_WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Authentication

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

    /// From `IAAS_CONFIG` and the `LDAP_*` settings; trouble is logged and leaves that way of
    /// authenticating off.
    pub fn from_env() -> ApiAuth {
        let policy = match iaas_config::load_policy() {
            Ok((p, _)) => p,
            Err(e) => {
                tracing::error!(error = %e, "the REST API has no tokens: the policy could not be read");
                Policy::default()
            }
        };
        let directory = iaas_access::directory_from_env().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the REST API cannot check passwords: no directory");
            None
        });
        ApiAuth::new(&policy, directory)
    }

    fn by_token(&self, token: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every token is compared, in constant time, so timing tells nothing.
        let mut found = None;
        for (name, want, roles) in &self.tokens {
            if bool::from(want.ct_eq(&digest)) && found.is_none() {
                found = Some(Identity {
                    slack_user: format!("api:{name}"),
                    email: None,
                    dn: None,
                    roles: roles.iter().cloned().collect(),
                    groups: Default::default(),
                });
            }
        }
        found
    }

    async fn by_password(&self, login: &str, password: &str) -> Result<Identity, ApiError> {
        let Some(dir) = &self.directory else {
            return Err(ApiError::unauthorized("This server checks no passwords (no directory); use a bearer token."));
        };
        let user = dir.authenticate(login, password).await.map_err(|e| match e {
            DirectoryError::BadCredentials | DirectoryError::Disabled { .. } | DirectoryError::Ambiguous { .. } => {
                ApiError::unauthorized("The login or password is wrong.")
            }
            other => {
                tracing::warn!(error = %other, "the directory could not check a password");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The directory could not be reached to check the password; try again later.")
            }
        })?;
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
        Ok(Identity { slack_user: user.mail.clone(), email: Some(user.mail), dn: Some(user.dn), roles, groups: Default::default() })
    }
}

/// Who called, once authenticated and allowed the command.
struct ApiCaller {
    who: Identity,
}

impl ApiCaller {
    fn caller(&self) -> Caller {
        Caller { email: self.who.email.clone(), dn: self.who.dn.clone(), roles: self.who.roles.iter().cloned().collect() }
    }
}

/// Authenticates the request and checks that the caller may run `command` (a command-table name).
async fn authorize(gw: &Gateway, headers: &HeaderMap, command: &str) -> Result<ApiCaller, ApiError> {
    let Some(auth) = &gw.api else { return Err(ApiError::unauthorized("The REST API is not configured on this server.")) };
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
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
    if let Some(access) = &gw.access {
        if let Decision::Deny(sentence) = access.may_run(&who, command) {
            tracing::info!(caller = %who.slack_user, command, "API call denied");
            return Err(ApiError::new(StatusCode::FORBIDDEN, sentence));
        }
    }
    Ok(ApiCaller { who })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Every error answer: `{"error": "<sentence>"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

struct ApiError {
    status: StatusCode,
    sentence: String,
}

impl ApiError {
    fn new(status: StatusCode, sentence: impl Into<String>) -> ApiError {
        ApiError { status, sentence: sentence.into() }
    }
    fn unauthorized(sentence: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, sentence)
    }
    fn bad_request(sentence: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, sentence)
    }
    fn store_down() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The bot's database is unreachable; try again later.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.sentence })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"iaas\""));
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Types

/// `POST /api/v1/decommissions`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDecommission {
    /// The VMs' names (at least one).
    pub vms: Vec<String>,
    #[serde(default)]
    pub ticket: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A request as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecommissionSummary {
    pub id: String,
    /// Slack user id, `api:<token name>` or the directory e-mail of an API caller.
    pub requester: String,
    pub ticket: String,
    pub reason: String,
    #[schema(schema_with = request_state_schema)]
    pub state: DecommissionState,
    pub cancel_requested: bool,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub vms: Vec<String>,
}

/// One step of one VM's plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub index: i64,
    #[schema(schema_with = step_kind_schema)]
    pub kind: StepKind,
    pub name: String,
    #[schema(schema_with = on_failure_schema)]
    pub on_failure: OnFailure,
    #[schema(schema_with = step_state_schema)]
    pub state: DecommissionStepState,
    pub message: String,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub attempts: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VmView {
    pub name: String,
    pub moref: String,
    pub os_family: String,
    #[schema(schema_with = vm_state_schema)]
    pub state: DecommissionVmState,
    pub steps: Vec<StepView>,
}

/// A request with each VM's steps (its plan and their progress).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecommissionView {
    #[serde(flatten)]
    pub request: DecommissionSummary,
    pub vm_plans: Vec<VmView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecommissionPage {
    pub items: Vec<DecommissionSummary>,
    pub limit: u32,
    pub offset: u32,
    /// The `offset` of the next page, when there is one.
    pub next_offset: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelResult {
    pub id: String,
    /// `cancelled` (it had not started) or `cancel_requested` (it stops before its next step).
    pub outcome: String,
}

/// A string that is one of `names`: the document lists exactly the values the enums declare.
fn text_enum_schema(names: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).enum_values(Some(names.iter().copied())).build()
}

fn request_state_schema() -> utoipa::openapi::Object {
    text_enum_schema(DecommissionState::NAMES)
}

fn vm_state_schema() -> utoipa::openapi::Object {
    text_enum_schema(DecommissionVmState::NAMES)
}

fn step_state_schema() -> utoipa::openapi::Object {
    text_enum_schema(DecommissionStepState::NAMES)
}

fn step_kind_schema() -> utoipa::openapi::Object {
    text_enum_schema(StepKind::NAMES)
}

fn on_failure_schema() -> utoipa::openapi::Object {
    text_enum_schema(OnFailure::NAMES)
}

fn summary(d: &iaas_store::Decommission) -> DecommissionSummary {
    DecommissionSummary {
        id: d.id.clone(),
        requester: d.requester.clone(),
        ticket: d.ticket.clone(),
        reason: d.reason.clone(),
        state: d.state,
        cancel_requested: d.cancel_requested,
        created_at_ms: d.created_at_ms,
        updated_at_ms: d.updated_at_ms,
        finished_at_ms: d.finished_at_ms,
        vms: d.vm_names.clone(),
    }
}

fn view(d: &DecommissionDetail) -> DecommissionView {
    DecommissionView {
        request: summary(&d.request),
        vm_plans: d
            .vms
            .iter()
            .map(|v| VmView {
                name: v.vm_name.clone(),
                moref: v.vm_moref.clone(),
                os_family: v.os_family.clone(),
                state: v.state,
                steps: d
                    .steps_of(v.vm_index)
                    .map(|s| StepView {
                        index: s.step_index,
                        kind: s.kind,
                        name: s.name.clone(),
                        on_failure: s.on_failure,
                        state: s.state,
                        message: s.message.clone(),
                        started_at_ms: s.started_at_ms,
                        finished_at_ms: s.finished_at_ms,
                        attempts: s.attempts,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn store(gw: &Gateway) -> Result<&Store, ApiError> {
    gw.audit.as_ref().map(crate::audit::AuditLog::store).ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "This server has no database (DATABASE_URL), so the REST API is unavailable.")
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers

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
async fn create(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("The body is larger than {BODY_LIMIT} bytes.")));
    };
    let caller = authorize(&gw, &headers, "decommission").await?;
    let req: CreateDecommission =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("The body is not a decommission request: {e}.")))?;
    let vms: Vec<String> = req.vms.iter().map(|v| v.trim().to_string()).collect();
    if vms.is_empty() || vms.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("`vms` must name at least one VM, and no name may be empty."));
    }
    if vms.len() > MAX_VMS {
        return Err(ApiError::bad_request(format!("At most {MAX_VMS} VMs per request.")));
    }
    let store = store(&gw)?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let command = Command::DecommissionStart { id: id.clone(), vms, ticket: clean(req.ticket), reason: clean(req.reason) };
    let started_ms = chrono::Utc::now().timestamp_millis();
    let inv_id = send(&gw, command, &caller).await?;
    // Wait for the function to record the request (its plan), or to refuse it.
    let deadline = tokio::time::Instant::now() + RECORD_WAIT;
    loop {
        match store.decommission(&id).await {
            Ok(Some(d)) => {
                return Ok(
                    (StatusCode::ACCEPTED, [(header::LOCATION, format!("/api/v1/decommissions/{id}"))], Json(view(&d))).into_response()
                )
            }
            Ok(None) => {}
            Err(_) => return Err(ApiError::store_down()),
        }
        let filter = AuditFilter { actor: Some(caller.who.slack_user.clone()), vm: None, since_ms: Some(started_ms - 1000) };
        if let Ok(entries) = store.audit_entries(&filter, 200).await {
            if let Some(e) = entries.iter().find(|e| e.request_id == inv_id && e.stage == "iaas-decommission" && e.decision != "done") {
                let status = if e.decision == "denied" { StatusCode::FORBIDDEN } else { StatusCode::UNPROCESSABLE_ENTITY };
                return Err(ApiError::new(status, e.reason.clone()));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "iaas-decommission did not record request {id} in time; it may still run. GET /api/v1/decommissions/{id} shows it."
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs and dispatches an invocation for an API caller; `Ok` is its id.
async fn send(gw: &Gateway, command: Command, caller: &ApiCaller) -> Result<String, ApiError> {
    let function = command.function();
    let inv = Invocation {
        id: uuid::Uuid::now_v7().to_string(),
        command,
        user: SlackUser { id: caller.who.slack_user.clone(), name: caller.who.slack_user.clone(), team_id: String::new() },
        channel: SlackChannel::default(),
        response_url: None,
        issued_at: (gw.clock)(),
        caller: caller.caller(),
    };
    let body =
        serde_json::to_vec(&inv).map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "The invocation could not be encoded."))?;
    let signed = iaas_invocation::sign(gw.shared_secret.expose().as_bytes(), inv.issued_at, body);
    match tokio::time::timeout(DISPATCH_TIMEOUT, gw.dispatcher.dispatch(function, signed)).await {
        Ok(Ok(())) => {
            tracing::info!(id = %inv.id, caller = %inv.user.id, %function, command = %inv.command.describe(), "API call accepted");
            Ok(inv.id)
        }
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The request could not be handed to {function} ({e}); nothing was done."),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{function} did not accept the request in time; it may or may not run."),
        )),
    }
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
async fn list(State(gw): State<Arc<Gateway>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    authorize(&gw, &headers, "decommission list").await?;
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
    let filter = DecommissionFilter { requester: params.requester, state: params.state, vm_name: params.vm, since_ms };
    let rows = store(&gw)?.decommissions(&filter, limit + 1, offset).await.map_err(|_| ApiError::store_down())?;
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
async fn show(State(gw): State<Arc<Gateway>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, ApiError> {
    authorize(&gw, &headers, "decommission status").await?;
    match store(&gw)?.decommission(&id).await {
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
async fn cancel(State(gw): State<Arc<Gateway>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, ApiError> {
    let caller = authorize(&gw, &headers, "decommission cancel").await?;
    let store = store(&gw)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("There is no decommission request `{id}`."));
    let detail = store.decommission(&id).await.map_err(|_| ApiError::store_down())?.ok_or_else(not_found)?;
    let admin = gw.access.as_ref().is_none_or(|a| a.may_touch(&caller.who, None, None).is_allowed());
    if detail.request.requester != caller.who.slack_user && !admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Only {}, who asked for it, or an admin can cancel decommission request `{id}`; nothing was changed.",
                detail.request.requester
            ),
        ));
    }
    let result =
        |status: StatusCode, outcome: &str| (status, Json(CancelResult { id: id.clone(), outcome: outcome.into() })).into_response();
    match store.cancel_decommission(&id).await.map_err(|_| ApiError::store_down())? {
        CancelOutcome::Cancelled => Ok(result(StatusCode::OK, "cancelled")),
        CancelOutcome::Requested => Ok(result(StatusCode::ACCEPTED, "cancel_requested")),
        CancelOutcome::Finished(state) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Decommission request `{id}` has already ended ({state}); there is nothing to cancel."),
        )),
        CancelOutcome::Unknown => Err(not_found()),
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI document")))]
async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

// ---------------------------------------------------------------------------------------------
// OpenAPI and the router

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "iaas", description = "Decommission requests for vSphere VMs."),
    paths(create, list, show, cancel, openapi_json),
    components(schemas(CreateDecommission, DecommissionSummary, DecommissionView, VmView, StepView, DecommissionPage, CancelResult, ErrorBody)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The OpenAPI document of the REST API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

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
