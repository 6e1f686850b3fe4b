//! What the REST API and the web console do on a person's behalf, each rule written once:
//! hand a command to its function and learn its verdict, start a decommission request, cancel
//! one (the requester or an admin). Errors are a status and a sentence ([`ApiError`]); the API
//! answers them as JSON, the console as a page.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use iaas_access::Identity;
use iaas_invocation::{Caller, Command, Invocation, InvocationId, RequestId, SlackChannel, SlackUser, UserId, VmName};
use iaas_store::{CancelOutcome, DecommissionDetail, InvocationRecord, Outcome, Store};

use crate::api::ApiError;
use crate::dispatch::HandOver;
use crate::Gateway;

/// At most this many VMs in one request.
pub const MAX_VMS: usize = 50;
/// How long a caller waits for the function to record its request or give its verdict.
const VERDICT_WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

pub(crate) fn store(gw: &Gateway) -> Result<&Store, ApiError> {
    gw.audit.as_ref().map(crate::audit::AuditLog::store).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This server has no database (DATABASE_URL), so requests cannot be read or made here.",
        )
    })
}

/// Whether `who` may run `command` (a command-table name), as in Slack.
pub(crate) fn may_run(gw: &Gateway, who: &Identity, command: &str) -> Result<(), ApiError> {
    if let Some(access) = &gw.access {
        if let iaas_access::Decision::Deny(sentence) = access.may_run(who, command) {
            tracing::info!(caller = %who.slack_user, command, "refused: the caller's roles do not allow it");
            return Err(ApiError::new(StatusCode::FORBIDDEN, sentence));
        }
    }
    Ok(())
}

/// An admin sees and cancels everyone's requests (a role whose scope is every VM; everyone
/// when the policy defines no roles).
pub(crate) fn is_admin(gw: &Gateway, who: &Identity) -> bool {
    gw.access.as_ref().is_none_or(|a| a.may_touch(who, None, None).is_allowed())
}

/// The ids a person's requests and leases may carry: their Slack id (or the e-mail address an
/// API or console caller acts under) and their e-mail address.
pub(crate) fn ids(who: &Identity) -> Vec<UserId> {
    let mut ids = vec![who.slack_user.clone()];
    ids.extend(who.email.as_deref().filter(|m| *m != who.slack_user).map(UserId::from));
    ids
}

/// Signs and dispatches `command` for `who`; `Ok` is the invocation's id.
pub(crate) async fn send(gw: &Gateway, command: Command, who: &Identity) -> Result<InvocationId, ApiError> {
    let function = command.function();
    let inv = Invocation {
        id: InvocationId::generate(),
        command,
        user: SlackUser { id: who.slack_user.clone(), name: who.slack_user.to_string(), team_id: String::new() },
        channel: SlackChannel::default(),
        response_url: None,
        issued_at: (gw.clock)(),
        caller: Caller { email: who.email.clone(), dn: who.dn.clone(), roles: who.roles.iter().cloned().collect() },
        traceparent: iaas_runtime::otel::traceparent(),
    };
    let body =
        serde_json::to_vec(&inv).map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "The invocation could not be encoded."))?;
    let signed = iaas_invocation::sign(gw.shared_secret.expose().as_bytes(), inv.issued_at, body);
    match crate::dispatch::hand_over(gw.dispatcher.as_ref(), function, signed).await {
        Ok(()) => {
            tracing::info!(id = %inv.id, caller = %inv.user.id, %function, command = %inv.command.describe(), "accepted on a person's behalf");
            Ok(inv.id)
        }
        Err(HandOver::Failed(e)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The request could not be handed to {function} ({e}); nothing was done."),
        )),
        Err(HandOver::TimedOut) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{function} did not accept the request in time; it may or may not run."),
        )),
    }
}

/// The function's recorded verdict on invocation `id`, waited for; a refusal is an error
/// (403 when access was denied, else 422).
pub(crate) async fn verdict(gw: &Gateway, id: &InvocationId) -> Result<Outcome, ApiError> {
    let store = store(gw)?;
    wait_for("The function did not answer in time; it may still do it.", || async move {
        recorded_outcome(store, id).await?.map(settled).transpose()
    })
    .await
}

/// The outcome recorded for invocation `id`, if it has one yet.
async fn recorded_outcome(store: &Store, id: &InvocationId) -> Result<Option<Outcome>, ApiError> {
    match store.invocation(id).await {
        Ok(Some(InvocationRecord { outcome, .. })) => Ok(outcome),
        Ok(None) => Ok(None),
        Err(_) => Err(ApiError::store_down()),
    }
}

/// Asks `probe` every [`POLL`] until it has an answer or an error; a 504 saying `late` when it
/// has none after [`VERDICT_WAIT`].
async fn wait_for<T, F>(late: impl Into<String>, mut probe: impl FnMut() -> F) -> Result<T, ApiError>
where
    F: Future<Output = Result<Option<T>, ApiError>>,
{
    let deadline = tokio::time::Instant::now() + VERDICT_WAIT;
    loop {
        if let Some(answer) = probe().await? {
            return Ok(answer);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, late));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn settled(outcome: Outcome) -> Result<Outcome, ApiError> {
    if outcome.ok {
        return Ok(outcome);
    }
    let status = if outcome.denied { StatusCode::FORBIDDEN } else { StatusCode::UNPROCESSABLE_ENTITY };
    Err(ApiError::new(status, outcome.text))
}

/// A person whose roles allow `decommission`, checked once: [`start_decommission`] takes one,
/// so no caller can skip the check, and the API can make it before it reads the body.
pub(crate) struct Decommissioner<'a>(&'a Identity);

impl<'a> Decommissioner<'a> {
    pub(crate) fn check(gw: &Gateway, who: &'a Identity) -> Result<Decommissioner<'a>, ApiError> {
        may_run(gw, who, "decommission")?;
        Ok(Decommissioner(who))
    }
}

/// Records a decommission request for `who` and starts it at once (the caller's confirmation
/// came before); `Ok` once the function recorded it, with its plan.
pub(crate) async fn start_decommission(
    gw: &Gateway,
    Decommissioner(who): Decommissioner<'_>,
    vms: Vec<String>,
    ticket: Option<String>,
    reason: Option<String>,
) -> Result<DecommissionDetail, ApiError> {
    let vms: Vec<VmName> = vms.iter().map(|v| VmName::from(v.trim())).collect();
    if vms.is_empty() || vms.iter().any(|v| v.is_empty()) {
        return Err(ApiError::bad_request("Name at least one VM, and no empty names."));
    }
    if vms.len() > MAX_VMS {
        return Err(ApiError::bad_request(format!("At most {MAX_VMS} VMs per request.")));
    }
    let store = store(gw)?;
    let id = RequestId::generate();
    let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let command = Command::DecommissionStart { id: id.clone(), vms, ticket: clean(ticket), reason: clean(reason) };
    let inv_id = send(gw, command, who).await?;
    // The request recorded (its plan), or the function's verdict: a refusal ends its
    // invocation with an outcome, recorded under the id we sent.
    // Borrowed, so each probe (an `async move` block) takes references, not the ids.
    let (id, inv_id) = (&id, &inv_id);
    let late = format!("iaas-decommission did not record request {id} in time; it may still run. Look for request {id} later.");
    wait_for(late, || async move {
        if let Some(d) = store.decommission(id).await.map_err(|_| ApiError::store_down())? {
            return Ok(Some(d));
        }
        if let Some(outcome) = recorded_outcome(store, inv_id).await? {
            settled(outcome)?;
        }
        Ok(None)
    })
    .await
}

/// Request `id`, for someone allowed to see it: its requester or an admin.
pub(crate) async fn decommission_for(gw: &Gateway, who: &Identity, id: &RequestId) -> Result<DecommissionDetail, ApiError> {
    let detail = store(gw)?.decommission(id).await.map_err(|_| ApiError::store_down())?;
    let detail = detail.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("There is no decommission request `{id}`.")))?;
    if !ids(who).contains(&detail.request.requester) && !is_admin(gw, who) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("Decommission request `{id}` is {}'s; only they and admins see it.", detail.request.requester),
        ));
    }
    Ok(detail)
}

/// Cancels request `id` for `who` (its requester or an admin): at once if it has not started,
/// else before its next step (nothing is rolled back).
pub(crate) async fn cancel_decommission(gw: &Gateway, who: &Identity, id: &RequestId) -> Result<CancelOutcome, ApiError> {
    may_run(gw, who, "decommission cancel")?;
    let store = store(gw)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("There is no decommission request `{id}`."));
    let detail = store.decommission(id).await.map_err(|_| ApiError::store_down())?.ok_or_else(not_found)?;
    if !ids(who).contains(&detail.request.requester) && !is_admin(gw, who) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Only {}, who asked for it, or an admin can cancel decommission request `{id}`; nothing was changed.",
                detail.request.requester
            ),
        ));
    }
    match store.cancel_decommission(id).await.map_err(|_| ApiError::store_down())? {
        CancelOutcome::Finished(state) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Decommission request `{id}` has already ended ({state}); there is nothing to cancel."),
        )),
        CancelOutcome::Unknown => Err(not_found()),
        outcome => Ok(outcome),
    }
}
