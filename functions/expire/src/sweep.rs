//! The sweep: reminders before expiry (each once per term, as a DM with an Extend button), then
//! on expiry the policy's action — power off, and after the grace period delete or hand the VM
//! to a decommission request — but only when the owner had the minimum notice. A reminder that
//! cannot be delivered, or a protected VM, holds the lease and alerts the admins' channel. A
//! lease whose owner is in an excluded directory group is excluded. Each lease is claimed, so
//! concurrent sweeps never act twice, and each power-off or delete holds the VM's change lock
//! (a VM busy with another change is left for the next sweep). A delete records the VM's quota
//! share with the lease first and gives it back with the change to deleted, in one transaction,
//! so a sweep that dies midway is finished by the next and the share is given back once.

use chrono::{DateTime, Duration, Utc};
use iaas_config::LeaseAction;
use iaas_function::lock::with_vm_lock;
use iaas_function::provision::owner_excluded;
use iaas_function::retire::{self, VmFacts};
use iaas_function::Context;
use iaas_invocation::EXTEND_ACTION;
use iaas_slack::{Message, WebApi};
use iaas_store::{Lease, LeaseState, NewDecommission, StoreError, Usage};
use iaas_vsphere::{PowerOp, PowerState, VcError, VmDetails, VmRef, ATTR_EXPIRES};
use serde_json::json;

use crate::lease::date;

/// Leases looked at per sweep (soonest first); the next sweep takes the rest.
const BATCH: u32 = 1000;
/// A claim outlives any one lease's work (a power-off, a delete).
const CLAIM: Duration = Duration::minutes(15);
/// The requester of the decommission requests the sweep makes.
pub const DECOMMISSION_REQUESTER: &str = "iaas-expire";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub examined: u32,
    pub reminded: u32,
    pub powered_off: u32,
    pub deleted: u32,
    /// Handed to a decommission request.
    pub decommissioned: u32,
    pub held: u32,
    pub closed: u32,
    /// Excluded because the owner is in an excluded group.
    pub excluded: u32,
    /// Left for the next sweep: the directory could not tell the owner's groups.
    pub deferred: u32,
    /// Left for the next sweep: another change holds the VM's lock.
    pub busy: u32,
}

impl std::fmt::Display for SweepReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} leases due: {} reminded, {} powered off, {} deleted, {} decommissioned, {} held, {} closed, {} excluded, {} deferred, {} busy",
            self.examined,
            self.reminded,
            self.powered_off,
            self.deleted,
            self.decommissioned,
            self.held,
            self.closed,
            self.excluded,
            self.deferred,
            self.busy
        )
    }
}

/// One sweep as of `now` (the clock is a parameter so operators and tests can rehearse).
pub async fn sweep(ctx: &Context, slack: &WebApi, now: DateTime<Utc>) -> Result<SweepReport, StoreError> {
    let policy = &ctx.policy.lease;
    let earliest = policy.reminder_days.iter().copied().max().unwrap_or(0);
    let horizon = now + Duration::days(i64::from(earliest));
    let holder = uuid::Uuid::new_v4().to_string();
    let mut report = SweepReport::default();
    for lease in ctx.store.leases_due(horizon.timestamp_millis(), now.timestamp_millis(), BATCH).await? {
        if !ctx.store.claim_lease(&lease.vm_moref, &holder, now.timestamp_millis(), (now + CLAIM).timestamp_millis()).await? {
            continue; // another sweep has it
        }
        report.examined += 1;
        let outcome = one(ctx, slack, &lease, &holder, now, &mut report).await;
        ctx.store.release_lease(&lease.vm_moref, &holder).await?;
        outcome?;
    }
    if report.deferred > 0 {
        alert(
            ctx,
            slack,
            &format!(
                "{} lease(s) were left alone: the directory could not say whether their owners are in an excluded group. The next sweep tries again.",
                report.deferred
            ),
        )
        .await;
    }
    tracing::info!(%report, as_of = %now, "sweep done");
    Ok(report)
}

async fn one(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    holder: &str,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let policy = &ctx.policy.lease;
    let now_ms = now.timestamp_millis();
    // Group membership changes, so it is asked again before anything is sent or done.
    match owner_excluded(ctx, &lease.owner_user).await {
        Ok(Some(group)) => return exclude(ctx, slack, lease, &group, now_ms, report).await,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(vm = %lease.vm_name, error = %e, "could not check the owner's groups; the lease waits for the next sweep");
            report.deferred += 1;
            return Ok(());
        }
    }
    let vm = VmRef { moref: lease.vm_moref.clone(), name: lease.vm_name.clone() };
    match lease.state {
        LeaseState::Active if lease.expires_at_ms > now_ms => remind(ctx, slack, lease, now, report).await,
        LeaseState::Active => {
            // Expired: act only after the owner had the minimum notice; else remind now and wait.
            let first = ctx.store.first_reminder(&lease.vm_moref, lease.expires_at_ms).await?;
            let notice = Duration::hours(i64::from(policy.min_notice_hours)).num_milliseconds();
            if first.is_none_or(|f| f > now_ms - notice) {
                return remind(ctx, slack, lease, now, report).await;
            }
            if !locked(ctx, lease, holder, power_off_expired(ctx, slack, lease, vm, now, report)).await? {
                report.busy += 1;
            }
            Ok(())
        }
        LeaseState::PoweredOff if policy.action != LeaseAction::PowerOffOnly => {
            let off_since = lease.powered_off_at_ms.unwrap_or(lease.expires_at_ms);
            if now_ms < off_since + Duration::days(i64::from(policy.grace_days)).num_milliseconds() {
                return Ok(());
            }
            if policy.action == LeaseAction::Decommission {
                // The decommission runner takes the VM's lock itself when it runs the request.
                let Some(details) = unprotected(ctx, slack, lease, &vm, now_ms, report).await? else {
                    return Ok(());
                };
                return hand_to_decommission(ctx, slack, lease, &details, now_ms, report).await;
            }
            if !locked(ctx, lease, holder, delete(ctx, slack, lease, vm, now, report)).await? {
                report.busy += 1;
            }
            Ok(())
        }
        // A sweep died while deleting the VM: finish it (the quota share is recorded with the lease).
        LeaseState::Deleting => {
            if !locked(ctx, lease, holder, delete(ctx, slack, lease, vm, now, report)).await? {
                report.busy += 1;
            }
            Ok(())
        }
        // Powered off under `power_off_only`: it stays off until the owner extends the lease.
        LeaseState::PoweredOff => Ok(()),
        // Not due for the sweep (`leases_due` returns only swept states).
        LeaseState::Deleted | LeaseState::Held | LeaseState::Excluded | LeaseState::Closed | LeaseState::Decommissioning => Ok(()),
    }
}

/// Runs `work` holding the VM's change lock. False when another change (a resize, a delete, a
/// decommission) holds it: `work` did not run, and the next sweep tries again.
async fn locked(
    ctx: &Context,
    lease: &Lease,
    holder: &str,
    work: impl std::future::Future<Output = Result<(), StoreError>>,
) -> Result<bool, StoreError> {
    match with_vm_lock(&ctx.store, &lease.vm_name, holder, "lease sweep", DECOMMISSION_REQUESTER, work).await? {
        Ok(done) => done.map(|()| true),
        Err(held) => {
            tracing::info!(vm = %lease.vm_name, change = %held.command, by = %held.actor, "the VM has a change in flight; the next sweep tries again");
            Ok(false)
        }
    }
}

/// Expired after the minimum notice: power the VM off and tell the owner what comes next.
async fn power_off_expired(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    vm: VmRef,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let policy = &ctx.policy.lease;
    let now_ms = now.timestamp_millis();
    let Some(details) = unprotected(ctx, slack, lease, &vm, now_ms, report).await? else {
        return Ok(());
    };
    match power_off(ctx, &vm, &details).await {
        Ok(()) => {
            ctx.store.set_lease_state(&lease.vm_moref, LeaseState::PoweredOff, "expired", now_ms).await?;
            report.powered_off += 1;
            let after_grace = date((now + Duration::days(i64::from(policy.grace_days))).timestamp_millis());
            let then = match policy.action {
                LeaseAction::PowerOff => format!("It will be deleted on {after_grace} unless you extend its lease."),
                LeaseAction::Decommission => {
                    format!("It will be decommissioned (deleted, with its DNS records and other traces) on {after_grace} unless you extend its lease.")
                }
                LeaseAction::PowerOffOnly => "It stays powered off until you extend its lease.".to_string(),
            };
            notify(
                ctx,
                slack,
                lease,
                &format!("*{}* reached the end of its lease on {} and was powered off. {then}", lease.vm_name, date(lease.expires_at_ms)),
                true,
            )
            .await;
        }
        Err(VcError::NotFound { .. }) => close(ctx, lease, now_ms, report).await?,
        Err(e) => tracing::warn!(vm = %lease.vm_name, error = %e, "could not power off an expired VM; next sweep retries"),
    }
    Ok(())
}

/// Deletes the VM after the grace period, holding its lock: the lease becomes deleting with the
/// VM's quota share (as read now), the VM is destroyed, then the lease becomes deleted and the
/// share is given back in one transaction. A lease already deleting (a sweep died midway) only
/// needs what is left; a VM already gone only the last step.
async fn delete(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    vm: VmRef,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let now_ms = now.timestamp_millis();
    let current = match lease.state {
        LeaseState::Deleting => match ctx.vcenter.vm_details(&vm).await {
            Ok(d) => Some(d),
            Err(VcError::NotFound { .. }) => None,
            Err(e) => {
                tracing::warn!(vm = %lease.vm_name, error = %e, "could not read a VM being deleted; next sweep retries");
                return Ok(());
            }
        },
        // Gone → closed, protected → held, unreadable → next sweep.
        LeaseState::PoweredOff => match unprotected(ctx, slack, lease, &vm, now_ms, report).await? {
            Some(d) => {
                let share = Usage { vms: 1, cpus: i64::from(d.summary.cpus), memory_mb: d.summary.memory_mb as i64 };
                if !ctx.store.begin_lease_delete(&lease.vm_moref, share, now_ms).await? {
                    return Ok(()); // changed meanwhile (extended, removed)
                }
                Some(d)
            }
            None => return Ok(()),
        },
        LeaseState::Active
        | LeaseState::Deleted
        | LeaseState::Held
        | LeaseState::Excluded
        | LeaseState::Closed
        | LeaseState::Decommissioning => return Ok(()),
    };
    if let Some(d) = &current {
        let result = match power_off(ctx, &vm, d).await {
            Ok(()) => ctx.vcenter.destroy(&vm).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) | Err(VcError::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(vm = %lease.vm_name, error = %e, "could not delete an expired VM; next sweep retries");
                return Ok(());
            }
        }
    }
    if !ctx.store.finish_lease_delete(&lease.vm_moref, "expired and grace period over", now_ms).await? {
        return Ok(());
    }
    report.deleted += 1;
    notify(
        ctx,
        slack,
        lease,
        &format!(
            "*{}* was deleted: its lease ended on {} and the {}-day grace period is over.",
            lease.vm_name,
            date(lease.expires_at_ms),
            ctx.policy.lease.grace_days
        ),
        false,
    )
    .await;
    Ok(())
}

/// The VM's details when the sweep may act on it. A VM that is gone closes its lease; a
/// protected one (IT's protection policy) holds it and alerts the admins — the sweep never
/// powers off or deletes what IT protected; vCenter unreachable waits for the next sweep.
async fn unprotected(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    vm: &VmRef,
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<Option<VmDetails>, StoreError> {
    let details = match ctx.vcenter.vm_details(vm).await {
        Ok(d) => d,
        Err(VcError::NotFound { .. }) => {
            close(ctx, lease, now_ms, report).await?;
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(vm = %lease.vm_name, error = %e, "could not read an expired VM; next sweep retries");
            return Ok(None);
        }
    };
    let Some(why) = iaas_function::protected(&ctx.policy, &details) else { return Ok(Some(details)) };
    let reason = format!("the VM is protected ({why})");
    ctx.store.set_lease_state(&lease.vm_moref, LeaseState::Held, &reason, now_ms).await?;
    report.held += 1;
    alert(
        ctx,
        slack,
        &format!("The lease of *{}* expired, but {reason}, so nothing was done and the lease is held. Remove the lease or the protection with `/iaas expire`.", lease.vm_name),
    )
    .await;
    Ok(None)
}

/// Hands the VM to a decommission request of IT's plan for its OS family; the request and
/// the lease's new state are recorded together, and the decommission function's resume sweep
/// runs it (`/iaas decommission status <id>` shows its steps).
async fn hand_to_decommission(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    details: &VmDetails,
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let reason =
        format!("its lease ended on {} and the {}-day grace period is over", date(lease.expires_at_ms), ctx.policy.lease.grace_days);
    let facts = VmFacts::from_details(details, None, Some(reason.clone()));
    let planned = match retire::plan(&ctx.policy, &facts) {
        Ok(p) => p,
        Err(why) => {
            let held = format!("it cannot be decommissioned: {why}");
            ctx.store.set_lease_state(&lease.vm_moref, LeaseState::Held, &held, now_ms).await?;
            report.held += 1;
            alert(ctx, slack, &format!("The lease of *{}* is held: {held}.", lease.vm_name)).await;
            return Ok(());
        }
    };
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    // The request's Slack notices go to the owner, or to the admins when it has none.
    let channel =
        if lease.owner_user.is_empty() { ctx.policy.lease.alert_channel.clone().unwrap_or_default() } else { lease.owner_user.clone() };
    let request = NewDecommission {
        id: id.clone(),
        requester: DECOMMISSION_REQUESTER.into(),
        ticket: String::new(),
        reason: reason.clone(),
        channel,
        response_url: String::new(),
        vms: vec![planned],
    };
    if !ctx.store.hand_lease_to_decommission(&request, &lease.vm_moref, now_ms).await? {
        return Ok(()); // changed meanwhile (extended, removed): nothing to hand over
    }
    report.decommissioned += 1;
    notify(
        ctx,
        slack,
        lease,
        &format!(
            "*{}* is being decommissioned: {reason}. Request `{id}`; `/iaas decommission status {id}` shows its steps.",
            lease.vm_name
        ),
        false,
    )
    .await;
    Ok(())
}

/// The owner is in an excluded group: the lease ends here, on the VM too.
async fn exclude(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    group: &str,
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let reason = format!("its owner is in the group {group}, which IT excludes from leases");
    ctx.store.set_lease_state(&lease.vm_moref, LeaseState::Excluded, &reason, now_ms).await?;
    report.excluded += 1;
    let vm = VmRef { moref: lease.vm_moref.clone(), name: lease.vm_name.clone() };
    if let Err(e) = ctx.vcenter.set_attribute(&vm, ATTR_EXPIRES, "").await {
        tracing::warn!(vm = %lease.vm_name, error = %e, "could not clear the expiry attribute of an excluded VM");
    }
    notify(ctx, slack, lease, &format!("*{}* no longer expires: {reason}.", lease.vm_name), false).await;
    Ok(())
}

/// Sends the most urgent reminder whose time has come, once per term; earlier ones that were
/// missed are recorded with it, so the owner is not pinged twice in one sweep.
async fn remind(ctx: &Context, slack: &WebApi, lease: &Lease, now: DateTime<Utc>, report: &mut SweepReport) -> Result<(), StoreError> {
    let now_ms = now.timestamp_millis();
    let mut due: Vec<i64> = Vec::new();
    for d in &ctx.policy.lease.reminder_days {
        let d = i64::from(*d);
        if now_ms >= lease.expires_at_ms - Duration::days(d).num_milliseconds()
            && !ctx.store.reminder_sent(&lease.vm_moref, lease.expires_at_ms, d).await?
        {
            due.push(d);
        }
    }
    // Past expiry with no reminder at all: a reminder "0 days before" starts the notice period.
    if due.is_empty() && now_ms >= lease.expires_at_ms && ctx.store.first_reminder(&lease.vm_moref, lease.expires_at_ms).await?.is_none() {
        due.push(0);
    }
    if due.is_empty() {
        return Ok(());
    }
    let when = if lease.expires_at_ms > now_ms {
        format!("expires on {}", date(lease.expires_at_ms))
    } else {
        format!("expired on {}", date(lease.expires_at_ms))
    };
    let text = format!("Your VM *{}* {when}. Extend it if you still need it; otherwise it will be powered off.", lease.vm_name);
    let message = Message::new(&text).with_block(extend_button(&lease.vm_name));
    let delivered = match lease.owner_user.is_empty() {
        true => Err("the VM has no owner".to_string()),
        false => slack.post_message(&lease.owner_user, &message).await.map(|_| ()).map_err(|e| e.to_string()),
    };
    match delivered {
        Ok(()) => {
            for d in due {
                ctx.store.record_reminder(&lease.vm_moref, lease.expires_at_ms, d, now_ms).await?;
            }
            report.reminded += 1;
        }
        Err(why) => {
            // Never act on a lease whose owner could not be told: hold it and tell the admins.
            let reason = format!("the reminder could not be delivered ({why})");
            ctx.store.set_lease_state(&lease.vm_moref, LeaseState::Held, &reason, now_ms).await?;
            report.held += 1;
            alert(
                ctx,
                slack,
                &format!(
                    "The lease of *{}* (owner {}) is held: {reason}. Fix the owner or extend/remove the lease with `/iaas expire`.",
                    lease.vm_name,
                    if lease.owner_user.is_empty() { "unknown".to_string() } else { format!("<@{}>", lease.owner_user) }
                ),
            )
            .await;
        }
    }
    Ok(())
}

async fn power_off(ctx: &Context, vm: &VmRef, details: &VmDetails) -> Result<(), VcError> {
    if details.summary.power_state == PowerState::PoweredOff {
        return Ok(());
    }
    ctx.vcenter.power(vm, PowerOp::Off).await
}

async fn close(ctx: &Context, lease: &Lease, now_ms: i64, report: &mut SweepReport) -> Result<(), StoreError> {
    ctx.store.set_lease_state(&lease.vm_moref, LeaseState::Closed, "the VM no longer exists", now_ms).await?;
    report.closed += 1;
    Ok(())
}

/// A notice to the owner; when it cannot be delivered the admins hear of it.
async fn notify(ctx: &Context, slack: &WebApi, lease: &Lease, text: &str, with_extend: bool) {
    let mut message = Message::new(text);
    if with_extend {
        message = message.with_block(extend_button(&lease.vm_name));
    }
    if let Err(e) = slack.post_message(&lease.owner_user, &message).await {
        alert(ctx, slack, &format!("{text} (The owner could not be told: {e}.)")).await;
    }
}

async fn alert(ctx: &Context, slack: &WebApi, text: &str) {
    match &ctx.policy.lease.alert_channel {
        Some(channel) => {
            if let Err(e) = slack.post_message(channel, &Message::new(format!(":warning: {text}"))).await {
                tracing::error!(error = %e, %text, "could not alert the admins' channel");
            }
        }
        None => tracing::error!(%text, "lease alert (set lease.alert_channel to have it posted in Slack)"),
    }
}

/// The Extend button: its press comes back through the gateway as `/iaas expire extend <vm>`.
fn extend_button(vm: &str) -> serde_json::Value {
    json!({
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": format!("Extend {vm}")}, "action_id": EXTEND_ACTION, "value": vm}]
    })
}
