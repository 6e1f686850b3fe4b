//! The sweep: reminders before expiry (each once per term, as a DM with an Extend button), then
//! on expiry the policy's action — power off, and delete after the grace period — but only when
//! the owner had the minimum notice. A reminder that cannot be delivered holds the lease and
//! alerts the admins' channel. Each lease is claimed, so concurrent sweeps never act twice.

use chrono::{DateTime, Duration, Utc};
use iaas_config::LeaseAction;
use iaas_function::Context;
use iaas_invocation::EXTEND_ACTION;
use iaas_slack::{Message, WebApi};
use iaas_store::{Lease, LeaseState, StoreError};
use iaas_vsphere::{PowerOp, PowerState, VcError, VmRef};
use serde_json::json;

use crate::lease::date;

/// Leases looked at per sweep (soonest first); the next sweep takes the rest.
const BATCH: u32 = 1000;
/// A claim outlives any one lease's work (a power-off, a delete).
const CLAIM: Duration = Duration::minutes(15);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub examined: u32,
    pub reminded: u32,
    pub powered_off: u32,
    pub deleted: u32,
    pub held: u32,
    pub closed: u32,
}

impl std::fmt::Display for SweepReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} leases due: {} reminded, {} powered off, {} deleted, {} held, {} closed",
            self.examined, self.reminded, self.powered_off, self.deleted, self.held, self.closed
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
        let outcome = one(ctx, slack, &lease, now, &mut report).await;
        ctx.store.release_lease(&lease.vm_moref, &holder).await?;
        outcome?;
    }
    tracing::info!(%report, as_of = %now, "sweep done");
    Ok(report)
}

async fn one(ctx: &Context, slack: &WebApi, lease: &Lease, now: DateTime<Utc>, report: &mut SweepReport) -> Result<(), StoreError> {
    let policy = &ctx.policy.lease;
    let now_ms = now.timestamp_millis();
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
            match power_off(ctx, &vm).await {
                Ok(()) => {
                    ctx.store.set_lease_state(&lease.vm_moref, LeaseState::PoweredOff, "expired", now_ms).await?;
                    report.powered_off += 1;
                    let then = match policy.action {
                        LeaseAction::PowerOff => format!(
                            "It will be deleted on {} unless you extend its lease.",
                            date((now + Duration::days(i64::from(policy.grace_days))).timestamp_millis())
                        ),
                        LeaseAction::PowerOffOnly => "It stays powered off until you extend its lease.".to_string(),
                    };
                    notify(
                        ctx,
                        slack,
                        lease,
                        &format!(
                            "*{}* reached the end of its lease on {} and was powered off. {then}",
                            lease.vm_name,
                            date(lease.expires_at_ms)
                        ),
                        true,
                    )
                    .await;
                }
                Err(VcError::NotFound { .. }) => close(ctx, lease, now_ms, report).await?,
                Err(e) => tracing::warn!(vm = %lease.vm_name, error = %e, "could not power off an expired VM; next sweep retries"),
            }
            Ok(())
        }
        LeaseState::PoweredOff if policy.action == LeaseAction::PowerOff => {
            let off_since = lease.powered_off_at_ms.unwrap_or(lease.expires_at_ms);
            if now_ms < off_since + Duration::days(i64::from(policy.grace_days)).num_milliseconds() {
                return Ok(());
            }
            let result = match power_off(ctx, &vm).await {
                Ok(()) => ctx.vcenter.destroy(&vm).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    ctx.store.set_lease_state(&lease.vm_moref, LeaseState::Deleted, "expired and grace period over", now_ms).await?;
                    ctx.store.mark_vm_deleted(&lease.vm_moref).await?;
                    report.deleted += 1;
                    notify(
                        ctx,
                        slack,
                        lease,
                        &format!(
                            "*{}* was deleted: its lease ended on {} and the {}-day grace period is over.",
                            lease.vm_name,
                            date(lease.expires_at_ms),
                            policy.grace_days
                        ),
                        false,
                    )
                    .await;
                }
                Err(VcError::NotFound { .. }) => close(ctx, lease, now_ms, report).await?,
                Err(e) => tracing::warn!(vm = %lease.vm_name, error = %e, "could not delete an expired VM; next sweep retries"),
            }
            Ok(())
        }
        _ => Ok(()),
    }
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

async fn power_off(ctx: &Context, vm: &VmRef) -> Result<(), VcError> {
    if ctx.vcenter.vm_details(vm).await?.summary.power_state == PowerState::PoweredOff {
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
