//! At most once per key: claim → run → settle. The one pipeline under every function that
//! acts on a delivery: Slack functions (key: the invocation id) and event functions (key: the
//! function and the event's source and id). Delivery is at-least-once on every platform, so a
//! redelivery gets the first delivery's recorded outcome instead of acting again.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iaas_store::{AuditEntry, Begin, NewInvocation, Outcome, Store, StoreError};
use serde_json::json;

/// How one delivery went.
#[derive(Debug)]
pub enum Once<T> {
    /// This delivery held the claim and ran the work.
    Ran(T),
    /// An earlier delivery finished; its recorded outcome.
    Duplicate(Outcome),
    /// An earlier delivery holds an unexpired claim.
    InProgress,
    /// The store could not be asked, so nothing ran (acting without the claim could act twice).
    StoreDown(StoreError),
}

/// What a run leaves behind.
pub enum Settle {
    /// The outcome, which later deliveries of the same key are answered with.
    Record(Outcome),
    /// Nothing: the claim is given back, so a retry of the delivery runs the work again.
    Release,
}

/// Claims `claim.id`, runs `work` only on a fresh claim, and settles the claim as the work says.
/// While the work runs its claim is renewed every third of `lease`, so a claim that lapses
/// belongs to a worker that died: another delivery may then take it over.
pub async fn once<T>(store: &Store, claim: &NewInvocation, lease: Duration, work: impl Future<Output = (T, Settle)>) -> Once<T> {
    match store.begin_invocation(claim, lease).await {
        Ok(Begin::Fresh) => {}
        Ok(Begin::Done(outcome)) => {
            tracing::info!("duplicate delivery; answering with the recorded outcome");
            return Once::Duplicate(outcome);
        }
        Ok(Begin::InProgress { .. }) => {
            tracing::info!("duplicate delivery while the first is still running; ignored");
            return Once::InProgress;
        }
        Err(e) => {
            tracing::error!(error = %e, "store unavailable; nothing run");
            return Once::StoreDown(e);
        }
    }
    let mut work = std::pin::pin!(work);
    let mut heartbeat = tokio::time::interval(lease / 3);
    heartbeat.tick().await;
    let (value, settle) = loop {
        tokio::select! {
            done = &mut work => break done,
            _ = heartbeat.tick() => {
                if let Err(e) = store.renew_invocation(&claim.id).await {
                    tracing::warn!(error = %e, "could not renew the claim; it may be taken over if this goes on");
                }
            }
        }
    };
    let settled = match &settle {
        Settle::Record(outcome) => store.finish_invocation(&claim.id, outcome).await,
        Settle::Release => store.release_invocation(&claim.id).await,
    };
    if let Err(e) = settled {
        tracing::error!(error = %e, "could not settle the claim; it lapses after its lease");
    }
    Once::Ran(value)
}

/// The HTTP answer for a delivery that did not run: `duplicate` with the recorded outcome (200),
/// `in_progress` (202) or `None` when it ran or the store was down (the caller answers those).
pub fn not_run_response<T>(key: &str, once: &Once<T>) -> Option<Response> {
    match once {
        Once::Duplicate(outcome) => {
            Some(Json(json!({"id": key, "status": "duplicate", "ok": outcome.ok, "text": outcome.text})).into_response())
        }
        Once::InProgress => Some((StatusCode::ACCEPTED, Json(json!({"id": key, "status": "in_progress"}))).into_response()),
        Once::Ran(_) | Once::StoreDown(_) => None,
    }
}

/// The HTTP answer for a delivery that ran to an outcome.
pub fn done_response(key: &str, status: &str, outcome: &Outcome) -> Response {
    Json(json!({"id": key, "status": status, "ok": outcome.ok, "text": outcome.text})).into_response()
}

/// Appends to the audit trail; a failure is logged, never turned into a user-visible error
/// (the work is done by then).
/// The audit entry for what happened to an invocation at `stage` (a function's name, `slack`).
pub fn invocation_entry(
    inv: &iaas_invocation::Invocation,
    stage: &str,
    decision: &str,
    reason: String,
    duration_ms: Option<i64>,
) -> AuditEntry {
    AuditEntry {
        at_ms: chrono::Utc::now().timestamp_millis(),
        request_id: inv.id.to_string(),
        actor: inv.user.id.to_string(),
        command: inv.command.describe(),
        vm: inv.command.target_vm().map(|vm| vm.to_string()),
        stage: stage.to_string(),
        decision: decision.to_string(),
        reason,
        duration_ms,
    }
}

pub async fn audit(store: &Store, entry: &AuditEntry) {
    if let Err(e) = store.audit(entry).await {
        tracing::error!(error = %e, "could not append to the audit trail");
    }
}
