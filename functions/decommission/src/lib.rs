//! `iaas-decommission`: `/iaas decommission <vm> …` retires several VMs in one request. The first
//! message only shows each VM's facts and the steps of its OS family's plan, with Confirm /
//! Cancel buttons bound to the requester and the request; the press runs the plan (see
//! [`runner`]), updating one message as steps advance, then answers with the summary.
//! `cancel`, `list` and `status` read and steer the recorded requests.

pub mod progress;
pub mod report;
pub mod runner;
pub mod steps;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use iaas_access::Decision;
use iaas_config::OnFailure;
use iaas_function::confirm::{self, Ask};
use iaas_function::{authorize_vm, find_vm, identity, Context, Reply};
use iaas_invocation::{Command, Confirmable, Invocation};
use iaas_slack::{Message, UserText, WebApi};
use iaas_store::{CancelOutcome, DecommissionFilter, DecommissionState, NewDecommission, NewDecommissionVm, RequestId};
use iaas_vsphere::{VmName, VmRef};

pub use iaas_function::retire::{os_family, VmFacts};

pub const NAME: &str = "iaas-decommission";

/// Rows `/iaas decommission list` shows.
const LIST_ROWS: u32 = 20;

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, |ctx, inv| {
        let slack = ctx.slack.clone();
        handle(ctx, inv, slack)
    })
}

/// The scheduled resume, a function of its own (`iaas-decommission-resume`): a schedule
/// (cron-connector, EventBridge) posts to `/` and requests whose worker died run to their end.
/// Resuming is idempotent and takes only what was confirmed already; the call must still be
/// signed with the shared secret.
pub const RESUME_NAME: &str = "iaas-decommission-resume";

pub fn resume_router(ctx: Arc<Context>) -> Router {
    // A schedule has no user: only the shared-secret signature says the trigger is ours.
    iaas_function::scheduled(Router::new().route("/", post(scheduled)), &ctx.shared_secret).merge(ctx.probes()).with_state(ctx)
}

async fn scheduled(State(ctx): State<Arc<Context>>) -> (StatusCode, Json<serde_json::Value>) {
    let slack = ctx.slack.clone();
    match runner::resume(ctx, slack).await {
        Ok(n) => (StatusCode::OK, Json(serde_json::json!({"resumed": n}))),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"error": e.to_string()}))),
    }
}

async fn handle(ctx: Arc<Context>, inv: Invocation, slack: WebApi) -> Reply {
    match &inv.command {
        Command::Decommission { vms, ticket, reason } => ask(&ctx, &inv, vms, ticket.clone(), reason.clone()).await,
        Command::Confirm { of: Confirmable::Decommission, token, confirmed } => pressed(ctx.clone(), &inv, slack, token, *confirmed).await,
        Command::DecommissionCancel { id } => cancel(&ctx, &inv, id).await,
        Command::DecommissionList { mine, state, vm, since } => {
            // The gateway checks the state too; an invocation from elsewhere gets the same sentence.
            let state = match state.as_deref().map(|s| s.to_lowercase().parse::<DecommissionState>()).transpose() {
                Ok(state) => state,
                Err(unknown) => return Reply::error(format!("{unknown} Nothing was listed.")),
            };
            let filter = DecommissionFilter {
                requester: mine.then(|| inv.user.id.clone()),
                state,
                vm_name: vm.clone(),
                since_ms: since.map(|s| s.saturating_mul(1000)),
                ..Default::default()
            };
            list(&ctx, &filter).await
        }
        Command::DecommissionStatus { id } => status(&ctx, id).await,
        Command::DecommissionStart { id, vms, ticket, reason } => {
            start_now(ctx.clone(), &inv, slack, id, vms, ticket.clone(), reason.clone()).await
        }
        _ => Reply::error("iaas-decommission received a command it does not run."),
    }
}

fn store_down() -> Reply {
    Reply::error("The bot's database is unreachable, so nothing was changed. Please try again later.")
}

/// Records the request (facts and each VM's plan) under `id`; `Ok` has one line per VM.
async fn record(
    ctx: &Context,
    inv: &Invocation,
    id: &RequestId,
    names: &[VmName],
    ticket: &Option<String>,
    reason: &Option<String>,
) -> Result<(NewDecommission, Vec<String>), Reply> {
    let mut vms: Vec<NewDecommissionVm> = Vec::new();
    let mut lines = Vec::new();
    for name in names {
        let vm = find_vm(ctx, name).await?;
        if vms.iter().any(|v| v.vm_moref == vm.moref) {
            continue;
        }
        let details = match ctx.vcenter.vm_details(&vm).await {
            Ok(d) => d,
            Err(e) => return Err(e.into()),
        };
        authorize_vm(ctx, inv, &details)?;
        let f = VmFacts::from_details(&details, ticket.clone(), reason.clone());
        let planned = match iaas_function::retire::plan(&ctx.policy, &f) {
            Ok(p) => p,
            Err(why) => return Err(Reply::error(format!("{why}; nothing was changed. Tell IT."))),
        };
        for s in &planned.steps {
            let settings: serde_json::Value = serde_json::from_str(&s.config_json).unwrap_or_default();
            if let Err(why) = steps::build(s.kind, &settings) {
                return Err(Reply::error(format!(
                    "{why}, but IT's {} plan uses it (step {}); nothing was changed. Tell IT.",
                    f.os_family, s.name
                )));
            }
        }
        let steps = &planned.steps;
        let plan_text: Vec<String> = steps
            .iter()
            .map(|s| match s.on_failure {
                OnFailure::Warn => format!("{} (warn)", s.name),
                OnFailure::Stop => s.name.clone(),
            })
            .collect();
        let protected = iaas_function::protected(&ctx.policy, &details)
            .map(|why| format!("\n   ⚠️ protected ({why}): its delete step will fail"))
            .unwrap_or_default();
        lines.push(format!(
            "• *{}* — {} ({}) · IP {} · {} · owner {}\n   Steps: {}{protected}",
            f.name,
            f.guest_os.as_deref().unwrap_or("unknown OS"),
            f.os_family,
            f.ip.as_deref().unwrap_or("none"),
            f.power_state,
            f.owner.as_deref().map(|o| format!("<@{o}>")).unwrap_or_else(|| "unknown".into()),
            plan_text.join(" → "),
        ));
        vms.push(planned);
    }
    let request = NewDecommission {
        id: id.clone(),
        requester: inv.user.id.clone(),
        ticket: ticket.clone().unwrap_or_default(),
        reason: reason.clone().unwrap_or_default(),
        channel: inv.channel.id.clone(),
        response_url: inv.response_url.clone().unwrap_or_default(),
        vms,
    };
    if let Err(e) = ctx.store.create_decommission(&request).await {
        tracing::error!(error = %e, "could not record a decommission request");
        return Err(store_down());
    }
    Ok((request, lines))
}

async fn ask(ctx: &Context, inv: &Invocation, names: &[VmName], ticket: Option<String>, reason: Option<String>) -> Reply {
    let id = RequestId::generate();
    let (request, lines) = match record(ctx, inv, &id, names, &ticket, &reason).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let count = request.vms.len();
    let mut text = format!("Decommission {count} VM{}? This cannot be undone. Request `{id}`", if count == 1 { "" } else { "s" });
    if let Some(t) = &ticket {
        text.push_str(&format!(" · ticket {}", UserText(t)));
    }
    if let Some(r) = &reason {
        text.push_str(&format!(" · {}", UserText(r)));
    }
    text.push('\n');
    text.push_str(&lines.join("\n"));
    // One request covers several VMs, so the press is bound to the request.
    let subject = VmRef::new(format!("decommission:{id}"), format!("decommission {id}"));
    confirm::ask(
        ctx,
        inv,
        Ask {
            of: Confirmable::Decommission,
            vm: &subject,
            args: serde_json::json!({"request": id}),
            text,
            confirm_label: format!("Decommission {count} VM{}", if count == 1 { "" } else { "s" }),
            dialog: format!(
                "{} will be shut down and {}, with the other steps of IT's plan.",
                request.vms.iter().map(|v| v.vm_name.as_str()).collect::<Vec<_>>().join(", "),
                match (ctx.policy.decommission.delete_mode, &ctx.policy.decommission.decommissioned_folder) {
                    (iaas_config::DeleteMode::MoveAndUnregister, Some(folder)) =>
                        format!("moved to folder {folder} and unregistered (files kept)"),
                    _ => "deleted".to_string(),
                }
            ),
        },
    )
    .await
}

async fn pressed(ctx: Arc<Context>, inv: &Invocation, slack: WebApi, token: &str, confirmed: bool) -> Reply {
    let confirmation = match confirm::take(&ctx, inv, token, confirmed).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let args: serde_json::Value = serde_json::from_str(&confirmation.args_json).unwrap_or_default();
    let Some(id) = args["request"].as_str().map(RequestId::from) else {
        return Reply::error("That confirmation names no decommission request; nothing was changed. Run the command again.");
    };
    if !confirmed {
        return match ctx.store.cancel_decommission(&id).await {
            Ok(_) => Reply::changed(Message::new(format!("Decommission request `{id}` cancelled; nothing was changed."))),
            Err(_) => store_down(),
        };
    }
    run_confirmed(ctx, inv, slack, id).await
}

/// The REST API's start: record the request under the gateway's id, then run it exactly as a
/// Confirm press does.
async fn start_now(
    ctx: Arc<Context>,
    inv: &Invocation,
    slack: WebApi,
    id: &RequestId,
    names: &[VmName],
    ticket: Option<String>,
    reason: Option<String>,
) -> Reply {
    if let Err(reply) = record(&ctx, inv, id, names, &ticket, &reason).await {
        return reply;
    }
    run_confirmed(ctx, inv, slack, id.clone()).await
}

/// What a Confirm press does: start, claim and run the request.
async fn run_confirmed(ctx: Arc<Context>, inv: &Invocation, slack: WebApi, id: RequestId) -> Reply {
    match ctx.store.start_decommission(&id).await {
        Ok(true) => {}
        Ok(false) => return Reply::error(format!("Decommission request `{id}` was cancelled before you confirmed; nothing was changed.")),
        Err(_) => return store_down(),
    }
    match runner::claim(&ctx, &id).await {
        Ok(true) => {}
        Ok(false) => {
            return Reply::changed(Message::new(format!(
                "Decommission request `{id}` is already being run by another worker; see `/iaas decommission status {id}`."
            )))
        }
        Err(_) => return store_down(),
    }
    let progress = match ctx.store.decommission(&id).await {
        Ok(Some(detail)) => progress::open(&ctx, &slack, &detail, &inv.channel.id, inv.response_url.clone()).await,
        Ok(None) => None,
        Err(_) => return store_down(),
    };
    match runner::run(ctx.clone(), slack, &id, progress).await {
        Ok(detail) => Reply::changed(Message::new(report::summary_text(&detail))),
        Err(e) => {
            tracing::error!(error = %e, request = %id, "decommission stopped; the resume sweep takes it up");
            Reply::error(format!("Decommission request `{id}` stopped because the bot's database failed; it is resumed automatically. See `/iaas decommission status {id}`."))
        }
    }
}

async fn cancel(ctx: &Context, inv: &Invocation, id: &RequestId) -> Reply {
    let detail = match ctx.store.decommission(id).await {
        Ok(Some(d)) => d,
        Ok(None) => return Reply::error(format!("There is no decommission request `{id}`. `/iaas decommission list --mine` shows yours.")),
        Err(_) => return store_down(),
    };
    // The requester may cancel; so may whoever may change any VM (admins).
    let admin = ctx.access.as_ref().is_none_or(|a| matches!(a.may_touch(&identity(inv), None, None), Decision::Allow));
    if detail.request.requester != inv.user.id && !admin {
        return Reply::denied(format!(
            "Only <@{}>, who asked for it, or an admin can cancel decommission request `{id}`; nothing was changed.",
            detail.request.requester
        ));
    }
    match ctx.store.cancel_decommission(id).await {
        Ok(CancelOutcome::Cancelled) => Reply::changed(Message::new(format!("Decommission request `{id}` cancelled before it started; nothing was changed."))),
        Ok(CancelOutcome::Requested) => Reply::changed(Message::new(format!(
            "Cancelling decommission request `{id}`: it stops before its next step and nothing is rolled back. `/iaas decommission status {id}` shows which steps ran."
        ))),
        Ok(CancelOutcome::Finished(state)) => Reply::error(format!("Decommission request `{id}` has already ended ({state}); there is nothing to cancel.")),
        Ok(CancelOutcome::Unknown) => Reply::error(format!("There is no decommission request `{id}`.")),
        Err(_) => store_down(),
    }
}

async fn list(ctx: &Context, filter: &DecommissionFilter) -> Reply {
    let rows = match ctx.store.decommissions(filter, LIST_ROWS + 1, 0).await {
        Ok(rows) => rows,
        Err(_) => return store_down(),
    };
    if rows.is_empty() {
        return Reply::query(Message::new("No decommission requests match."));
    }
    let mut lines: Vec<String> = rows.iter().take(LIST_ROWS as usize).map(report::list_row).collect();
    if rows.len() > LIST_ROWS as usize {
        lines.push(format!("Only the newest {LIST_ROWS} are shown; narrow with --state, --vm or --since."));
    }
    Reply::query(Message::new(format!("*Decommission requests*\n{}", lines.join("\n"))))
}

async fn status(ctx: &Context, id: &RequestId) -> Reply {
    match ctx.store.decommission(id).await {
        Ok(Some(d)) => Reply::query(Message::new(report::detail_text(&d))),
        Ok(None) => Reply::error(format!("There is no decommission request `{id}`. `/iaas decommission list` shows the requests.")),
        Err(_) => store_down(),
    }
}
