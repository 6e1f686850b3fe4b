//! The sweep: reminders before expiry (each once per term, as a DM with an Extend button), then
//! on expiry the policy's action — power off, and after the grace period delete or hand the VM
//! to a decommission request — but only when the owner had the minimum notice. A reminder that
//! cannot be delivered, or a protected VM, holds the lease and alerts the admins' channel. A
//! lease whose owner is in an excluded directory group is excluded. Each lease is claimed, so
//! concurrent sweeps never act twice, and each power-off or delete holds the VM's change lock
//! (a VM busy with another change is left for the next sweep). A delete records the VM's quota
//! share with the lease first and gives it back with the change to deleted, in one transaction,
//! so a sweep that dies midway is finished by the next and the share is given back once.
//!
//! Deciding and acting are apart: `plan` reads the store, vCenter and the directory and returns
//! an `Action` without changing anything; `execute` carries it out. A real sweep plans and
//! executes each lease (planning again under the VM's lock before a power-off or delete); a dry
//! run (`dry_run`) only plans, so it shows exactly what a sweep would do.

use chrono::{DateTime, Duration, Utc};
use iaas_config::LeaseAction;
use iaas_function::lock::with_vm_lock;
use iaas_function::provision::owner_excluded;
use iaas_function::retire::{self, VmFacts};
use iaas_function::Context;
use iaas_invocation::EXTEND_ACTION;
use iaas_slack::{Message, WebApi};
use iaas_store::{Lease, LeaseState, NewDecommission, NewDecommissionVm, RequestId, StoreError, Usage};
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

impl SweepReport {
    /// Adds a finished sweep's counts to `iaas_lease_sweep_leases_total{action}`.
    fn record(&self) {
        metrics::counter!("iaas_lease_sweeps_total").increment(1);
        for (action, n) in [
            ("reminded", self.reminded),
            ("powered_off", self.powered_off),
            ("deleted", self.deleted),
            ("decommissioned", self.decommissioned),
            ("held", self.held),
            ("closed", self.closed),
            ("excluded", self.excluded),
            ("deferred", self.deferred),
            ("busy", self.busy),
        ] {
            metrics::counter!("iaas_lease_sweep_leases_total", "action" => action).increment(u64::from(n));
        }
    }
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

/// What the sweep does with one lease, decided without changing anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing is due (reminders sent, inside the notice or grace period, off under `power_off_only`).
    Nothing,
    /// The owner is in an excluded group: the lease ends, on the VM too.
    Exclude { group: String },
    /// The directory could not tell the owner's groups: left for the next sweep.
    Defer { why: String },
    /// vCenter could not tell about the VM: left for the next sweep.
    Retry { why: String },
    /// A DM with an Extend button, standing for these reminders (days before expiry).
    Remind { days: Vec<i64> },
    /// The lease is held and the admins are told.
    Hold { reason: String, alert: String },
    /// The VM no longer exists.
    Close,
    /// Expired after the minimum notice: power the VM off (it may already be off).
    PowerOff { powered_on: bool },
    /// After the grace period: delete the VM. `current` is None when it is already gone;
    /// `share` is its quota share, recorded with the lease first (None when already recorded).
    Delete { current: Option<Box<VmDetails>>, share: Option<Usage> },
    /// After the grace period: a decommission request of IT's plan for the VM's OS family.
    Decommission { planned: Box<NewDecommissionVm>, reason: String },
}

impl Action {
    /// Power-offs and deletes change the VM, so they run holding its change lock.
    fn needs_vm_lock(&self) -> bool {
        matches!(self, Action::PowerOff { .. } | Action::Delete { .. })
    }

    /// Counts the action in `report` as if it succeeded (the dry run's summary).
    fn count(&self, report: &mut SweepReport) {
        match self {
            Action::Nothing | Action::Retry { .. } => {}
            Action::Exclude { .. } => report.excluded += 1,
            Action::Defer { .. } => report.deferred += 1,
            Action::Remind { .. } => report.reminded += 1,
            Action::Hold { .. } => report.held += 1,
            Action::Close => report.closed += 1,
            Action::PowerOff { .. } => report.powered_off += 1,
            Action::Delete { .. } => report.deleted += 1,
            Action::Decommission { .. } => report.decommissioned += 1,
        }
    }
}

/// What a sweep would do, in words (the dry run's lines).
impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Nothing => write!(f, "nothing due"),
            Action::Exclude { group } => write!(f, "end the lease: the owner is in the excluded group {group}"),
            Action::Defer { why } => write!(f, "leave for the next sweep: the directory could not tell the owner's groups ({why})"),
            Action::Retry { why } => write!(f, "leave for the next sweep: {why}"),
            Action::Remind { days } => {
                let days: Vec<String> = days.iter().map(|d| format!("{d}")).collect();
                write!(f, "remind the owner by DM (the reminder {} day(s) before expiry)", days.join(", "))
            }
            Action::Hold { reason, .. } => write!(f, "hold the lease and alert the admins: {reason}"),
            Action::Close => write!(f, "close the lease: the VM no longer exists"),
            Action::PowerOff { powered_on: true } => write!(f, "power the VM off and tell the owner"),
            Action::PowerOff { powered_on: false } => write!(f, "record the VM as powered off (it already is) and tell the owner"),
            Action::Delete { current: Some(_), .. } => write!(f, "delete the VM, give its quota share back and tell the owner"),
            Action::Delete { current: None, .. } => write!(f, "settle the delete of a VM already gone and tell the owner"),
            Action::Decommission { planned, .. } => {
                let steps: Vec<&str> = planned.steps.iter().map(|s| s.name.as_str()).collect();
                write!(f, "hand the VM to a decommission request ({}: {})", planned.os_family, steps.join(", "))
            }
        }
    }
}

/// One lease and what a sweep would do with it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub lease: Lease,
    pub action: Action,
}

/// What a sweep as of `now` would do, lease by lease, with the summary it would report.
/// Reads only: no claim, no lock, no message, no record, no vCenter change.
pub async fn dry_run(ctx: &Context, now: DateTime<Utc>) -> Result<(Vec<Planned>, SweepReport), StoreError> {
    let mut report = SweepReport::default();
    let mut planned = Vec::new();
    for lease in due(ctx, now).await? {
        report.examined += 1;
        let action = plan(ctx, &lease, now).await?;
        action.count(&mut report);
        planned.push(Planned { lease, action });
    }
    Ok((planned, report))
}

/// Leases the sweep looks at as of `now`: the earliest reminder's horizon.
async fn due(ctx: &Context, now: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
    let earliest = ctx.policy.lease.reminder_days.iter().copied().max().unwrap_or(0);
    let horizon = now + Duration::days(i64::from(earliest));
    ctx.store.leases_due(horizon.timestamp_millis(), now.timestamp_millis(), BATCH).await
}

/// One sweep as of `now` (the clock is a parameter so operators and tests can rehearse).
pub async fn sweep(ctx: &Context, slack: &WebApi, now: DateTime<Utc>) -> Result<SweepReport, StoreError> {
    let holder = uuid::Uuid::new_v4().to_string();
    let mut report = SweepReport::default();
    for lease in due(ctx, now).await? {
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
    report.record();
    Ok(report)
}

/// Plans one lease and executes the plan; a power-off or delete is planned again holding the
/// VM's lock, so it acts on what vCenter and the store say once no other change is in flight.
async fn one(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    holder: &str,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let action = plan(ctx, lease, now).await?;
    if !action.needs_vm_lock() {
        return execute(ctx, slack, lease, action, now, report).await;
    }
    let work = async {
        let action = plan(ctx, lease, now).await?;
        execute(ctx, slack, lease, action, now, report).await
    };
    match with_vm_lock(&ctx.store, &lease.vm_name, holder, "lease sweep", DECOMMISSION_REQUESTER, work).await? {
        Ok(done) => done,
        Err(held) => {
            tracing::info!(vm = %lease.vm_name, change = %held.command, by = %held.actor, "the VM has a change in flight; the next sweep tries again");
            report.busy += 1;
            Ok(())
        }
    }
}

/// What the sweep should do with `lease` as of `now`. Reads the store, vCenter and the
/// directory; changes nothing.
pub async fn plan(ctx: &Context, lease: &Lease, now: DateTime<Utc>) -> Result<Action, StoreError> {
    let policy = &ctx.policy.lease;
    let now_ms = now.timestamp_millis();
    // Group membership changes, so it is asked again before anything is sent or done.
    match owner_excluded(ctx, &lease.owner_user).await {
        Ok(Some(group)) => return Ok(Action::Exclude { group }),
        Ok(None) => {}
        Err(e) => return Ok(Action::Defer { why: e.to_string() }),
    }
    let vm = lease.vm();
    match lease.state {
        LeaseState::Active if lease.expires_at_ms > now_ms => reminder(ctx, lease, now).await,
        LeaseState::Active => {
            // Expired: act only after the owner had the minimum notice; else remind now and wait.
            let first = ctx.store.first_reminder(&lease.vm_moref, lease.expires_at_ms).await?;
            let notice = Duration::hours(i64::from(policy.min_notice_hours)).num_milliseconds();
            if first.is_none_or(|f| f > now_ms - notice) {
                return reminder(ctx, lease, now).await;
            }
            Ok(match unprotected(ctx, lease, &vm).await {
                Ok(d) => Action::PowerOff { powered_on: d.summary.power_state != PowerState::PoweredOff },
                Err(action) => action,
            })
        }
        LeaseState::PoweredOff if policy.action != LeaseAction::PowerOffOnly => {
            let off_since = lease.powered_off_at_ms.unwrap_or(lease.expires_at_ms);
            if now_ms < off_since + Duration::days(i64::from(policy.grace_days)).num_milliseconds() {
                return Ok(Action::Nothing);
            }
            let details = match unprotected(ctx, lease, &vm).await {
                Ok(d) => d,
                Err(action) => return Ok(action),
            };
            if policy.action == LeaseAction::Decommission {
                return Ok(decommission(ctx, lease, &details));
            }
            let share = Usage { vms: 1, cpus: i64::from(details.summary.cpus), memory_mb: details.summary.memory_mb as i64 };
            Ok(Action::Delete { current: Some(Box::new(details)), share: Some(share) })
        }
        // A sweep died while deleting the VM: finish it (the quota share is recorded with the lease).
        LeaseState::Deleting => Ok(match ctx.vcenter.vm_details(&vm).await {
            Ok(d) => Action::Delete { current: Some(Box::new(d)), share: None },
            Err(VcError::NotFound { .. }) => Action::Delete { current: None, share: None },
            Err(e) => Action::Retry { why: format!("could not read the VM being deleted ({e})") },
        }),
        // Powered off under `power_off_only`: it stays off until the owner extends the lease.
        LeaseState::PoweredOff => Ok(Action::Nothing),
        // Not due for the sweep (`leases_due` returns only swept states).
        LeaseState::Deleted | LeaseState::Held | LeaseState::Excluded | LeaseState::Closed | LeaseState::Decommissioning => {
            Ok(Action::Nothing)
        }
    }
}

/// The VM's details when the sweep may act on it; otherwise what to do instead: a VM that is
/// gone closes its lease; a protected one (IT's protection policy) holds it and alerts the
/// admins — the sweep never powers off or deletes what IT protected; vCenter unreachable
/// waits for the next sweep.
async fn unprotected(ctx: &Context, lease: &Lease, vm: &VmRef) -> Result<VmDetails, Action> {
    let details = match ctx.vcenter.vm_details(vm).await {
        Ok(d) => d,
        Err(VcError::NotFound { .. }) => return Err(Action::Close),
        Err(e) => return Err(Action::Retry { why: format!("could not read the expired VM ({e})") }),
    };
    let Some(why) = iaas_function::protected(&ctx.policy, &details) else { return Ok(details) };
    let reason = format!("the VM is protected ({why})");
    let alert = format!(
        "The lease of *{}* expired, but {reason}, so nothing was done and the lease is held. Remove the lease or the protection with `/iaas expire`.",
        lease.vm_name
    );
    Err(Action::Hold { reason, alert })
}

/// The decommission request of IT's plan for the VM's OS family, or a hold when there is none.
fn decommission(ctx: &Context, lease: &Lease, details: &VmDetails) -> Action {
    let reason =
        format!("its lease ended on {} and the {}-day grace period is over", date(lease.expires_at_ms), ctx.policy.lease.grace_days);
    let facts = VmFacts::from_details(details, None, Some(reason.clone()));
    match retire::plan(&ctx.policy, &facts) {
        Ok(planned) => Action::Decommission { planned: Box::new(planned), reason },
        Err(why) => {
            let reason = format!("it cannot be decommissioned: {why}");
            let alert = format!("The lease of *{}* is held: {reason}.", lease.vm_name);
            Action::Hold { reason, alert }
        }
    }
}

/// The most urgent reminder whose time has come, once per term; earlier ones that were missed
/// go with it, so the owner is not pinged twice in one sweep.
async fn reminder(ctx: &Context, lease: &Lease, now: DateTime<Utc>) -> Result<Action, StoreError> {
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
    Ok(match (due.is_empty(), lease.owner_user.is_empty()) {
        (true, _) => Action::Nothing,
        (false, true) => {
            let (reason, alert) = undeliverable(lease, "the VM has no owner");
            Action::Hold { reason, alert }
        }
        (false, false) => Action::Remind { days: due },
    })
}

/// Never act on a lease whose owner could not be told: hold it and tell the admins (the
/// reason and the alert).
fn undeliverable(lease: &Lease, why: &str) -> (String, String) {
    let reason = format!("the reminder could not be delivered ({why})");
    let owner = if lease.owner_user.is_empty() { "unknown".to_string() } else { format!("<@{}>", lease.owner_user) };
    let alert = format!(
        "The lease of *{}* (owner {owner}) is held: {reason}. Fix the owner or extend/remove the lease with `/iaas expire`.",
        lease.vm_name
    );
    (reason, alert)
}

/// Carries out a planned action and counts what was done.
async fn execute(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    action: Action,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let now_ms = now.timestamp_millis();
    let vm = lease.vm();
    match action {
        Action::Nothing => Ok(()),
        Action::Exclude { group } => exclude(ctx, slack, lease, &group, now_ms, report).await,
        Action::Defer { why } => {
            tracing::warn!(vm = %lease.vm_name, error = %why, "could not check the owner's groups; the lease waits for the next sweep");
            report.deferred += 1;
            Ok(())
        }
        Action::Retry { why } => {
            tracing::warn!(vm = %lease.vm_name, %why, "the next sweep retries");
            Ok(())
        }
        Action::Remind { days } => remind(ctx, slack, lease, &days, now, report).await,
        Action::Hold { reason, alert } => hold(ctx, slack, lease, &reason, &alert, now_ms, report).await,
        Action::Close => close(ctx, lease, now_ms, report).await,
        Action::PowerOff { powered_on } => power_off_expired(ctx, slack, lease, &vm, powered_on, now, report).await,
        Action::Delete { current, share } => delete(ctx, slack, lease, &vm, current.as_deref(), share, now_ms, report).await,
        Action::Decommission { planned, reason } => hand_to_decommission(ctx, slack, lease, *planned, reason, now_ms, report).await,
    }
}

/// Expired after the minimum notice: power the VM off and tell the owner what comes next.
async fn power_off_expired(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    vm: &VmRef,
    powered_on: bool,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let policy = &ctx.policy.lease;
    let now_ms = now.timestamp_millis();
    let result = if powered_on { ctx.vcenter.power(vm, PowerOp::Off).await } else { Ok(()) };
    match result {
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
/// VM's quota share (`share`, as read when planned), the VM is destroyed, then the lease becomes
/// deleted and the share is given back in one transaction. A lease already deleting (a sweep died
/// midway) only needs what is left; a VM already gone only the last step.
#[allow(clippy::too_many_arguments)]
async fn delete(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    vm: &VmRef,
    current: Option<&VmDetails>,
    share: Option<Usage>,
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    if let Some(share) = share {
        if !ctx.store.begin_lease_delete(&lease.vm_moref, share, now_ms).await? {
            return Ok(()); // changed meanwhile (extended, removed)
        }
    }
    if let Some(d) = current {
        let result = match power_off(ctx, vm, d).await {
            Ok(()) => ctx.vcenter.destroy(vm).await,
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

/// Hands the VM to a decommission request of IT's plan for its OS family; the request and
/// the lease's new state are recorded together, and the decommission function's resume sweep
/// runs it (`/iaas decommission status <id>` shows its steps).
async fn hand_to_decommission(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    planned: NewDecommissionVm,
    reason: String,
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let id = RequestId::generate();
    // The request's Slack notices go to the owner, or to the admins when it has none.
    let channel =
        if lease.owner_user.is_empty() { ctx.policy.lease.alert_channel.clone().unwrap_or_default() } else { lease.owner_user.to_string() };
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
    let vm = lease.vm();
    if let Err(e) = ctx.vcenter.set_attribute(&vm, ATTR_EXPIRES, "").await {
        tracing::warn!(vm = %lease.vm_name, error = %e, "could not clear the expiry attribute of an excluded VM");
    }
    notify(ctx, slack, lease, &format!("*{}* no longer expires: {reason}.", lease.vm_name), false).await;
    Ok(())
}

/// Sends the reminder DM and records the reminders it stands for; one that cannot be
/// delivered holds the lease instead.
async fn remind(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    days: &[i64],
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    let now_ms = now.timestamp_millis();
    let when = if lease.expires_at_ms > now_ms {
        format!("expires on {}", date(lease.expires_at_ms))
    } else {
        format!("expired on {}", date(lease.expires_at_ms))
    };
    let text = format!("Your VM *{}* {when}. Extend it if you still need it; otherwise it will be powered off.", lease.vm_name);
    let message = Message::new(&text).with_block(extend_button(&lease.vm_name));
    match slack.post_message(&lease.owner_user, &message).await {
        Ok(_) => {
            for d in days {
                ctx.store.record_reminder(&lease.vm_moref, lease.expires_at_ms, *d, now_ms).await?;
            }
            report.reminded += 1;
            Ok(())
        }
        Err(e) => {
            let (reason, alert) = undeliverable(lease, &e.to_string());
            hold(ctx, slack, lease, &reason, &alert, now_ms, report).await
        }
    }
}

async fn hold(
    ctx: &Context,
    slack: &WebApi,
    lease: &Lease,
    reason: &str,
    text: &str,
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    ctx.store.set_lease_state(&lease.vm_moref, LeaseState::Held, reason, now_ms).await?;
    report.held += 1;
    alert(ctx, slack, text).await;
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
