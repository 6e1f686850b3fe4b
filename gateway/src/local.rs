//! In-process dispatch for the all-in-one `iaas serve`: each function's router, called on a
//! spawned task. A spawned task dies with its process, so every hand-over is recorded in the
//! store before the ack and forgotten once the function has run it; after a crash, [`recover`]
//! runs what never started and tells the user about what was cut short (with OpenFaaS and
//! Lambda the platform's queue redelivers instead).
//!
//! [`recover`]: LocalDispatch::recover

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::Router;
use iaas_config::Secret;
use iaas_invocation::{Invocation, InvocationId, SignedBody, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use iaas_slack::{Message, Responder};
use iaas_store::{AuditEntry, ClaimState, Outcome, Store};
use tower::ServiceExt;

use crate::dispatch::{Dispatch, DispatchError};

pub struct LocalDispatch {
    functions: HashMap<&'static str, Router>,
    /// Where hand-overs are kept until they have run; `None` keeps them in memory only.
    store: Option<Store>,
}

impl LocalDispatch {
    /// Hand-overs live only in this process (a crash loses those not yet run).
    pub fn new(functions: HashMap<&'static str, Router>) -> Self {
        LocalDispatch { functions, store: None }
    }

    /// Hand-overs are recorded in `store` before the ack, so a crash loses none.
    pub fn durable(functions: HashMap<&'static str, Router>, store: Store) -> Self {
        LocalDispatch { functions, store: Some(store) }
    }

    fn router(&self, function: &str) -> Result<Router, DispatchError> {
        self.functions.get(function).cloned().ok_or_else(|| DispatchError(format!("{function} is not deployed in this process")))
    }

    /// Runs the invocation on a task of its own; the record is forgotten once the function has
    /// answered (whatever it answered: a refusal would be refused again).
    fn spawn(&self, router: Router, function: &str, id: InvocationId, signed: SignedBody) -> Result<(), DispatchError> {
        let request = http::Request::post("/")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, signed.timestamp.to_string())
            .header(SIGNATURE_HEADER, &signed.signature)
            .body(Body::from(signed.body))
            .map_err(|e| DispatchError(e.to_string()))?;
        let (name, store) = (function.to_string(), self.store.clone());
        tokio::spawn(async move {
            let Ok(resp) = router.oneshot(request).await;
            if !resp.status().is_success() {
                tracing::error!(function = %name, status = %resp.status(), "local function refused the invocation");
            }
            if let Some(store) = store {
                if let Err(e) = store.forget_dispatch(&id).await {
                    tracing::warn!(error = %e, %id, "could not forget a finished hand-over; recovery will find it done");
                }
            }
        });
        Ok(())
    }

    /// Takes up hand-overs that a previous process (or this one, before a crash) accepted and
    /// did not finish, once they are older than `lease`: runs those no function ever claimed
    /// (signed again, now), and ends those whose claim lapsed unrenewed — their worker died
    /// mid-run — with a sentence to the user that the change may or may not have happened,
    /// releasing the VM locks they held. Returns how many it took up.
    pub async fn recover(&self, secret: &Secret, responder: &Responder, lease: Duration) -> Result<usize, iaas_store::StoreError> {
        let Some(store) = &self.store else { return Ok(0) };
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut taken = 0;
        for pending in store.pending_dispatches(now_ms.saturating_sub(lease_ms)).await? {
            let Ok(inv) = serde_json::from_str::<Invocation>(&pending.body) else {
                tracing::error!(id = %pending.id, "a pending hand-over cannot be read; dropped");
                store.forget_dispatch(&pending.id).await?;
                continue;
            };
            match store.claim_state(&pending.id).await? {
                ClaimState::Done => store.forget_dispatch(&pending.id).await?,
                ClaimState::Running { claimed_at_ms } if claimed_at_ms >= now_ms.saturating_sub(lease_ms) => {}
                ClaimState::Running { .. } => {
                    if cut_short(store, responder, &pending.function, &inv, lease).await? {
                        taken += 1;
                    }
                    store.forget_dispatch(&pending.id).await?;
                }
                ClaimState::Unclaimed => {
                    tracing::info!(id = %inv.id, function = %pending.function, command = %inv.command.describe(), "running a hand-over that never started");
                    let now = chrono::Utc::now().timestamp();
                    let signed = iaas_invocation::sign(secret.expose().as_bytes(), now, pending.body.into_bytes());
                    let spawned =
                        self.router(&pending.function).and_then(|router| self.spawn(router, &pending.function, inv.id.clone(), signed));
                    if let Err(e) = spawned {
                        tracing::error!(error = %e, "a recovered hand-over cannot run here; dropped");
                        store.forget_dispatch(&inv.id).await?;
                    }
                    taken += 1;
                }
            }
        }
        Ok(taken)
    }
}

/// Ends an invocation whose worker died mid-run: records and audits the outcome, releases its
/// VM locks, and tells the user. `false` when another process ended it first.
async fn cut_short(
    store: &Store,
    responder: &Responder,
    function: &str,
    inv: &Invocation,
    lease: Duration,
) -> Result<bool, iaas_store::StoreError> {
    let what = inv.command.describe();
    let check = match inv.command.target_vm() {
        Some(vm) => format!("Check with `/iaas vm info {vm}` before you try again."),
        None => "Check before you try again.".to_string(),
    };
    let text =
        format!("iaas stopped while it was running `{what}` (request {}), so it may or may not have taken effect. {check}", inv.short_id());
    let outcome = Outcome::new(false, text.clone());
    if !store.abandon_invocation(&inv.id, &outcome, lease).await? {
        return Ok(false);
    }
    tracing::warn!(id = %inv.id, %function, command = %what, "an invocation was cut short by a restart; told the user");
    let entry = AuditEntry {
        at_ms: chrono::Utc::now().timestamp_millis(),
        request_id: inv.id.to_string(),
        actor: inv.user.id.to_string(),
        command: what.clone(),
        vm: inv.command.target_vm().map(ToString::to_string),
        stage: function.to_string(),
        decision: "failed".into(),
        reason: text.clone(),
        duration_ms: None,
    };
    if let Err(e) = store.audit(&entry).await {
        tracing::error!(error = %e, "could not append to the audit trail");
    }
    if let Some(url) = &inv.response_url {
        let message = Message::ephemeral(format!("⚠️ {text}")).with_context(&format!(
            "`{what}` · request {} · asked by <@{}>",
            inv.short_id(),
            inv.user.id
        ));
        if let Err(e) = responder.post(url, &message).await {
            tracing::error!(error = %e, "could not tell the user about the cut-short invocation");
        }
    }
    Ok(true)
}

/// Just the id of an invocation's JSON, read without parsing the rest.
#[derive(serde::Deserialize)]
struct IdOnly {
    id: InvocationId,
}

#[async_trait]
impl Dispatch for LocalDispatch {
    async fn dispatch(&self, function: &str, signed: SignedBody) -> Result<(), DispatchError> {
        let router = self.router(function)?;
        let id = serde_json::from_slice::<IdOnly>(&signed.body).map(|i| i.id).unwrap_or_default();
        if let Some(store) = &self.store {
            let body = std::str::from_utf8(&signed.body).map_err(|e| DispatchError(e.to_string()))?;
            store.record_dispatch(&id, function, body).await.map_err(|e| {
                tracing::error!(error = %e, "could not record a hand-over");
                DispatchError("the bot's database is unreachable".into())
            })?;
        }
        self.spawn(router, function, id, signed)
    }

    fn describe(&self) -> String {
        "local (in-process)".into()
    }
}
