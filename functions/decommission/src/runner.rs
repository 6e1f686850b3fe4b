//! Runs a confirmed request: each VM's steps in order, up to `workers` VMs at a time, every
//! state, message and timing recorded as it happens. The caller holds the request's claim; a
//! heartbeat renews it and watches for a cancel, which stops each VM before its next step and
//! interrupts a step that is waiting. Nothing is rolled back. A request whose worker died is
//! picked up by [`resume`] once the claim lapses, from each VM's first step not yet finished.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use iaas_config::OnFailure;
use iaas_function::{lock, Context};
use iaas_slack::{Message, WebApi};
use iaas_store::{
    DecommissionDetail, DecommissionState, DecommissionStep, DecommissionStepState, DecommissionVmState, RequestId, StoreError,
};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::progress::{self, Progress, MAX_RESPONSE_URL_POSTS};
use crate::report;
use crate::steps::{self, StepContext, StepError, StepOutcome};
use crate::VmFacts;

/// Progress is shown at most this often (chat.update is rate limited, a response_url takes five).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// This process's name in claims and VM locks.
pub fn worker_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("decommission-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_ms(ctx: &Context) -> i64 {
    i64::try_from(ctx.policy.decommission.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}

/// Claims a running request for this worker; false when another holds it.
pub async fn claim(ctx: &Context, id: &RequestId) -> Result<bool, StoreError> {
    let now = now_ms();
    ctx.store.claim_decommission(id, worker_id(), now, now.saturating_add(lease_ms(ctx))).await
}

/// Runs the claimed request to its end (or until the claim is lost) and returns its record.
/// `progress` is the message updated in place as steps advance; a progress message of its own
/// (not a response_url) also gets the summary at the end.
pub async fn run(ctx: Arc<Context>, slack: WebApi, id: &RequestId, progress: Option<Progress>) -> Result<DecommissionDetail, StoreError> {
    let Some(detail) = ctx.store.decommission(id).await? else {
        return Err(StoreError::Query { doing: "running a decommission request", reason: format!("request {id} does not exist") });
    };
    let cancel = CancellationToken::new();
    // A request cancelled before this worker took it (a resume after a cancel) runs nothing.
    if detail.request.cancel_requested {
        cancel.cancel();
    }
    let lost = CancellationToken::new();
    let stop_heartbeat = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat(ctx.clone(), id.clone(), cancel.clone(), lost.clone(), stop_heartbeat.clone()));
    let (changed, watcher) = watch::channel(());
    let work_done = CancellationToken::new();
    let poster =
        progress.clone().map(|to| tokio::spawn(post_progress(ctx.clone(), slack.clone(), id.clone(), to, watcher, work_done.clone())));

    let sc = StepContext { ctx: ctx.clone(), slack: slack.clone(), request: detail.request.clone() };
    let workers = Arc::new(Semaphore::new(ctx.policy.decommission.workers.max(1)));
    let changed = Arc::new(changed);
    let mut vms = tokio::task::JoinSet::new();
    for vm in detail.vms.iter().filter(|v| v.state.is_unfinished()) {
        let facts: VmFacts = serde_json::from_str(&vm.facts_json).unwrap_or_else(|_| VmFacts {
            name: vm.vm_name.clone(),
            moref: vm.vm_moref.clone(),
            os_family: vm.os_family.clone(),
            ..Default::default()
        });
        let plan: Vec<DecommissionStep> = detail.steps_of(vm.vm_index).cloned().collect();
        let (sc, cancel, changed, index) = (sc.clone(), cancel.clone(), changed.clone(), vm.vm_index);
        // Permits are taken here, in request order, so VMs start in the order they were asked.
        let Ok(permit) = workers.clone().acquire_owned().await else { break };
        vms.spawn(async move {
            let _permit = permit;
            run_vm(&sc, index, &facts, &plan, &cancel, &changed).await;
        });
    }
    while vms.join_next().await.is_some() {}
    stop_heartbeat.cancel();
    let _ = heartbeat.await;

    if !lost.is_cancelled() {
        let after = ctx.store.decommission(id).await?.unwrap_or(detail);
        let state = if after.vms.iter().all(|v| v.state == DecommissionVmState::Done) {
            DecommissionState::Done
        } else if after.request.cancel_requested {
            DecommissionState::Cancelled
        } else {
            DecommissionState::Failed
        };
        ctx.store.finish_decommission(id, state).await?;
    }
    drop(changed);
    // The summary replaces any progress still waiting for its turn: do not wait for it.
    work_done.cancel();
    if let Some(poster) = poster {
        let _ = poster.await;
    }
    if let (Some(to @ Progress::Message(_)), Some(after)) = (&progress, ctx.store.decommission(id).await?) {
        progress::show(&ctx, &slack, to, &after).await;
    }
    ctx.store
        .decommission(id)
        .await?
        .ok_or(StoreError::Query { doing: "reading a decommission request", reason: format!("request {id} vanished") })
}

/// One VM's plan, from its first step not yet finished.
async fn run_vm(
    sc: &StepContext,
    vm_index: i64,
    vm: &VmFacts,
    plan: &[DecommissionStep],
    cancel: &CancellationToken,
    changed: &watch::Sender<()>,
) {
    let store = &sc.ctx.store;
    let id = &sc.request.id;
    // One change per VM: a delete or resize in flight waits for us, and we for it. The request
    // is the holder, so a resumed request takes its own lock back.
    let lease = lease_ms(&sc.ctx).saturating_mul(10);
    // The VM's steps, in order, run while the lock is held.
    let steps = async {
        record(id, store.set_decommission_vm_state(id, vm_index, DecommissionVmState::Running).await);
        let mut vm_state = DecommissionVmState::Done;
        for step in plan {
            if step.state.is_settled() {
                continue;
            }
            if cancel.is_cancelled() {
                vm_state = DecommissionVmState::Cancelled;
                break;
            }
            let settings: serde_json::Value = serde_json::from_str(&step.config_json).unwrap_or_default();
            record(id, store.start_decommission_step(id, vm_index, step.step_index, now_ms()).await);
            changed.send_replace(());
            let result = match steps::build(step.kind, &settings) {
                Ok(s) => s.run(sc, vm, cancel).await,
                Err(why) => Err(StepError::Failed(format!("{why}; tell IT."))),
            };
            let (state, message) = match result {
                Ok(StepOutcome::Done(m)) => (DecommissionStepState::Done, m),
                Ok(StepOutcome::AlreadyDone(m)) => (DecommissionStepState::Done, m),
                Ok(StepOutcome::Skipped(m)) => (DecommissionStepState::Skipped, m),
                Err(StepError::Cancelled) => {
                    (DecommissionStepState::Failed, "Interrupted by a cancel; vCenter may still finish what it was asked.".to_string())
                }
                Err(StepError::Failed(m)) => match step.on_failure {
                    OnFailure::Warn => (DecommissionStepState::Warning, m),
                    OnFailure::Stop => (DecommissionStepState::Failed, m),
                },
            };
            tracing::info!(request = %id, vm = %vm.name, step = %step.name, state = %state, "decommission step finished");
            metrics::counter!("iaas_decommission_steps_total", "kind" => step.kind.as_str(), "state" => state.as_str()).increment(1);
            record(id, store.finish_decommission_step(id, vm_index, step.step_index, state, &message, now_ms()).await);
            changed.send_replace(());
            if state == DecommissionStepState::Failed {
                vm_state = if cancel.is_cancelled() { DecommissionVmState::Cancelled } else { DecommissionVmState::Failed };
                break;
            }
        }
        record(id, store.set_decommission_vm_state(id, vm_index, vm_state).await);
    };
    match lock::with_lock_for(store, lock::Lockable::Vm(&vm.name), id, "decommission", &sc.request.requester, lease, steps).await {
        Ok(Ok(())) => {}
        Ok(Err(held)) => {
            let message = format!("{} has a change in flight (`{}` by <@{}>); none of its steps ran.", vm.name, held.command, held.actor);
            if let Some(first) = plan.iter().find(|s| s.state == DecommissionStepState::Pending) {
                record(
                    id,
                    store.finish_decommission_step(id, vm_index, first.step_index, DecommissionStepState::Failed, &message, now_ms()).await,
                );
            }
            record(id, store.set_decommission_vm_state(id, vm_index, DecommissionVmState::Failed).await);
        }
        Err(e) => tracing::error!(error = %e, "could not lock the VM; the request is resumed later"),
    }
}

fn record(id: &RequestId, r: Result<(), StoreError>) {
    if let Err(e) = r {
        tracing::error!(error = %e, request = %id, "could not record decommission progress");
    }
}

/// Renews the claim and watches for a cancel until told to stop. A lost claim (another
/// worker took the request after a stall) cancels too, so two workers never run one request.
async fn heartbeat(ctx: Arc<Context>, id: RequestId, cancel: CancellationToken, lost: CancellationToken, stop: CancellationToken) {
    let poll = Duration::from_millis(ctx.policy.decommission.cancel_poll_ms);
    let renew_every = Duration::from_millis(u64::try_from(lease_ms(&ctx) / 3).unwrap_or(1000).max(1));
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        if !cancel.is_cancelled() && ctx.store.decommission_cancel_requested(&id).await.unwrap_or(false) {
            tracing::info!(request = %id, "decommission cancelled; stopping before the next step");
            cancel.cancel();
        }
        if last_renewal.elapsed() >= renew_every {
            last_renewal = tokio::time::Instant::now();
            match claim(&ctx, &id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(request = %id, "lost the claim on a decommission request; another worker goes on");
                    lost.cancel();
                    cancel.cancel();
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "could not renew a decommission claim; retrying"),
            }
        }
    }
}

/// Shows progress as steps advance, spaced out, and on a response_url only a few times.
async fn post_progress(
    ctx: Arc<Context>,
    slack: WebApi,
    id: RequestId,
    to: Progress,
    mut changes: watch::Receiver<()>,
    work_done: CancellationToken,
) {
    let mut posts = 0;
    while changes.changed().await.is_ok() {
        if matches!(to, Progress::ResponseUrl(_)) && posts >= MAX_RESPONSE_URL_POSTS {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(PROGRESS_EVERY) => {}
            _ = work_done.cancelled() => return,
        }
        changes.mark_unchanged();
        let Ok(Some(detail)) = ctx.store.decommission(&id).await else { continue };
        if detail.request.state != DecommissionState::Running {
            continue;
        }
        if progress::show(&ctx, &slack, &to, &detail).await {
            posts += 1;
        }
    }
}

/// Resumes every running request whose worker is gone, and runs them to their end (a
/// scheduled Lambda must not answer before its work is done); each reports to its progress
/// message, or else to the response_url it was confirmed from. Returns how many were taken up.
pub async fn resume(ctx: Arc<Context>, slack: WebApi) -> Result<usize, StoreError> {
    let mut running = tokio::task::JoinSet::new();
    loop {
        let now = now_ms();
        let Some(id) = ctx.store.claim_unfinished_decommission(worker_id(), now, now.saturating_add(lease_ms(&ctx))).await? else {
            break;
        };
        tracing::info!(request = %id, "resuming a decommission request whose worker stopped");
        running.spawn(resume_one(ctx.clone(), slack.clone(), id));
    }
    let taken = running.len();
    while running.join_next().await.is_some() {}
    Ok(taken)
}

async fn resume_one(ctx: Arc<Context>, slack: WebApi, id: RequestId) {
    let stored = match ctx.store.decommission(&id).await {
        Ok(Some(detail)) => progress::stored(&detail),
        _ => None,
    };
    let has_message = stored.is_some();
    match run(ctx.clone(), slack, &id, stored).await {
        // Its own progress message got the summary; else the response_url it came from.
        Ok(_) if has_message => {}
        Ok(detail) if !detail.request.response_url.is_empty() => {
            let message = Message::new(report::summary_text(&detail)).replace_original(false);
            if let Err(e) = ctx.responder.post(&detail.request.response_url, &message).await {
                tracing::warn!(error = %e, "could not report a resumed decommission");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, request = %id, "a resumed decommission stopped; the next sweep retries"),
    }
}
