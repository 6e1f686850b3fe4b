//! `iaas-expire`: VM leases. `/iaas expire show|list|extend|set|remove` and the Extend button on
//! reminders; the sweep runs from a schedule (`iaas-expire-sweep`), `iaas expire sweep`, or the
//! all-in-one's timer; `iaas-expire-events` gives leases to VMs made in vCenter.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{Duration, Utc};
use iaas_function::{authorize_vm, Context, Reply};
use iaas_invocation::{Command, Invocation};
use iaas_slack::Message;
use iaas_store::{LeaseFilter, LeaseState};
use iaas_vsphere::ATTR_EXPIRES;

pub mod events;
pub mod lease;
pub mod sweep;

pub use sweep::{dry_run, sweep, Action, Planned, SweepReport};

pub const NAME: &str = "iaas-expire";

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, handle)
}

/// The sweep's own deployable (`iaas-expire-sweep`): a schedule (OpenFaaS cron-connector,
/// an EventBridge rule) posts to `/` and a sweep runs at the current time. It needs no
/// signature: a sweep is idempotent, and the clock override is only for the CLI.
pub const SWEEP_NAME: &str = "iaas-expire-sweep";

pub fn sweep_router(ctx: Arc<Context>) -> Router {
    // A schedule has no user: only the shared-secret signature says the trigger is ours.
    iaas_function::scheduled(Router::new().route("/", post(scheduled)), &ctx.shared_secret).merge(ctx.probes()).with_state(ctx)
}

async fn scheduled(State(ctx): State<Arc<Context>>) -> (StatusCode, Json<serde_json::Value>) {
    match sweep(&ctx, &ctx.slack, Utc::now()).await {
        Ok(report) => (StatusCode::OK, Json(serde_json::json!({"ok": true, "report": report.to_string()}))),
        Err(e) => {
            tracing::error!(error = %e, "sweep failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"ok": false, "error": e.to_string()})))
        }
    }
}

async fn handle(ctx: Arc<Context>, inv: Invocation) -> Reply {
    match inv.command.clone() {
        Command::ExpireShow { vm } => match lease::find(&ctx.store, ctx.vcenter.as_ref(), &vm).await {
            Ok(l) => Reply::query(Message::new(lease::describe(&ctx.policy, &l))),
            Err(why) => Reply::error(why),
        },
        Command::ExpireList { mine, days } => list(&ctx, &inv, mine, days).await,
        Command::ExpireExtend { vm } => extend(&ctx, &inv, &vm).await,
        Command::ExpireSet { vm, date } => set(&ctx, &inv, &vm, &date).await,
        Command::ExpireRemove { vm } => remove(&ctx, &inv, &vm).await,
        _ => Reply::error("iaas-expire received a command it does not run."),
    }
}

async fn list(ctx: &Context, inv: &Invocation, mine: bool, days: Option<u32>) -> Reply {
    const ROWS: u32 = 50;
    let filter = LeaseFilter {
        owner: mine.then(|| inv.user.id.clone()),
        expiring_before_ms: days.map(|d| (Utc::now() + Duration::days(i64::from(d))).timestamp_millis()),
        include_finished: false,
    };
    match ctx.store.leases(&filter, ROWS).await {
        Ok(leases) if leases.is_empty() => Reply::query(Message::new("No leases match.")),
        Ok(leases) => {
            let rows: Vec<String> = leases.iter().map(|l| format!("• {}", lease::describe(&ctx.policy, l))).collect();
            Reply::query(Message::new(format!(
                "{} lease{}, soonest first:\n{}",
                leases.len(),
                if leases.len() == 1 { "" } else { "s" },
                rows.join("\n")
            )))
        }
        Err(e) => Reply::error(lease::db(e)),
    }
}

async fn extend(ctx: &Context, inv: &Invocation, vm: &str) -> Reply {
    let l = match lease::find(&ctx.store, ctx.vcenter.as_ref(), vm).await {
        Ok(l) => l,
        Err(why) => return Reply::error(why),
    };
    if matches!(l.state, LeaseState::Deleted | LeaseState::Closed | LeaseState::Excluded | LeaseState::Decommissioning) {
        return Reply::error(lease::describe(&ctx.policy, &l));
    }
    // Only the owner (or a role with wider scope) extends.
    let vm_ref = l.vm();
    match ctx.vcenter.vm_details(&vm_ref).await {
        Ok(d) => {
            if let Err(reply) = authorize_vm(ctx, inv, &d) {
                return reply;
            }
        }
        Err(e) => return e.into(),
    }
    let new = match lease::extended_expiry(&ctx.policy, &l, Utc::now()) {
        Ok(new) => new,
        Err(why) => return Reply::error(why),
    };
    let cap = lease::date(lease::cap_ms(&ctx.policy, &l));
    match lease::set_expiry(&ctx.store, ctx.vcenter.as_ref(), &l, new).await {
        Ok(()) => {
            Reply::changed(Message::new(format!("*{}* now expires on {} (it can be extended up to {cap}).", l.vm_name, lease::date(new))))
        }
        Err(why) => Reply::error(why),
    }
}

async fn set(ctx: &Context, inv: &Invocation, vm: &str, date: &str) -> Reply {
    let l = match lease::find(&ctx.store, ctx.vcenter.as_ref(), vm).await {
        Ok(l) => l,
        Err(why) => return Reply::error(why),
    };
    let at = match lease::parse_date(date) {
        Ok(at) => at,
        Err(why) => return Reply::error(why),
    };
    match lease::set_expiry(&ctx.store, ctx.vcenter.as_ref(), &l, at).await {
        Ok(()) => Reply::changed(Message::new(format!("*{}* now expires on {} (set by <@{}>).", l.vm_name, lease::date(at), inv.user.id))),
        Err(why) => Reply::error(why),
    }
}

async fn remove(ctx: &Context, inv: &Invocation, vm: &str) -> Reply {
    let l = match lease::find(&ctx.store, ctx.vcenter.as_ref(), vm).await {
        Ok(l) => l,
        Err(why) => return Reply::error(why),
    };
    let reason = format!("removed by {}", inv.user.id);
    if let Err(e) = ctx.store.set_lease_state(&l.vm_moref, LeaseState::Excluded, &reason, Utc::now().timestamp_millis()).await {
        return Reply::error(lease::db(e));
    }
    let vm_ref = l.vm();
    if let Err(e) = ctx.vcenter.set_attribute(&vm_ref, ATTR_EXPIRES, "").await {
        return Reply::error(format!("The lease was removed, but the VM's {ATTR_EXPIRES} attribute could not be cleared ({e})."));
    }
    Reply::changed(Message::new(format!("*{}* no longer expires.", l.vm_name)))
}
