//! The HTTP face of every function: `POST /` with a signed invocation, `GET /_/health`.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use iaas_invocation::{Command, Invocation, VmName, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use iaas_slack::{Answer, Message, UserText};
use iaas_store::{NewInvocation, Outcome};
use tracing::Instrument;

use crate::once::{once, Once, Settle};
use crate::{Context, Reply, ReplyKind};

/// The router for one function. `name` is its deployable name (`iaas-power`): invocations for
/// another function's command are refused, so a misrouted dispatch cannot act.
pub fn router<H, Fut>(name: &'static str, ctx: Arc<Context>, handler: H) -> Router
where
    H: Fn(Arc<Context>, Invocation) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let invoke = move |State(ctx): State<Arc<Context>>, headers: HeaderMap, body: Bytes| {
        let handler = handler.clone();
        // Boxed: a handler's future can be large, and unboxed it is copied through every frame
        // of the request's stack (debug builds overflowed a worker's 2 MiB with a resize).
        async move { Box::pin(handle(name, ctx, headers, body, handler)).await }
    };
    Router::new().route("/", post(invoke)).merge(ctx.probes()).with_state(ctx)
}

async fn handle<H, Fut>(name: &'static str, ctx: Arc<Context>, headers: HeaderMap, body: Bytes, handler: H) -> Response
where
    H: Fn(Arc<Context>, Invocation) -> Fut,
    Fut: Future<Output = Reply>,
{
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(e) =
        iaas_invocation::verify(ctx.shared_secret.expose().as_bytes(), header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &body, now)
    {
        tracing::warn!(function = name, error = %e, "refused an unsigned or badly signed invocation");
        return (StatusCode::UNAUTHORIZED, "invalid invocation signature\n").into_response();
    }
    let inv: Invocation = match serde_json::from_slice(&body) {
        Ok(inv) => inv,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed invocation: {e}\n")).into_response(),
    };
    if inv.command.function() != name {
        return (StatusCode::BAD_REQUEST, format!("{name} does not run `{}`\n", inv.command.describe())).into_response();
    }
    // `request` is what the user saw ("request 1a2b3c4d"), so a log line is found from a Slack message.
    let span = tracing::info_span!("invocation", function = name, id = %inv.id, request = inv.short_id(), user = %inv.user.id);
    // The gateway's trace goes on here, when traces are exported.
    iaas_runtime::otel::continue_trace(&span, inv.traceparent.as_deref());
    run_once(name, ctx, inv, handler).instrument(span).await
}

async fn run_once<H, Fut>(name: &'static str, ctx: Arc<Context>, inv: Invocation, handler: H) -> Response
where
    H: Fn(Arc<Context>, Invocation) -> Fut,
    Fut: Future<Output = Reply>,
{
    let work = async {
        let started = std::time::Instant::now();
        let denied = crate::scope::authorize_command(&ctx, &inv).err();
        let handled = || Box::pin(handler(ctx.clone(), inv.clone()));
        let reply = match (denied, inv.command.target_vm()) {
            (Some(sentence), _) => Reply::denied(sentence),
            (None, Some(vm)) => locked(&ctx, &inv, vm, follow_through(&ctx, &inv, handled())).await,
            (None, None) => follow_through(&ctx, &inv, handled()).await,
        };
        let outcome = Outcome { ok: reply.ok(), text: reply.message.text.clone(), denied: reply.kind == ReplyKind::Denied };
        let elapsed_ms = started.elapsed().as_millis() as i64;
        tracing::info!(ok = outcome.ok, elapsed_ms, "invocation finished");
        ((reply, outcome.clone(), elapsed_ms), Settle::Record(outcome))
    };
    let (reply, outcome, elapsed_ms) = match once(&ctx.store, &new_invocation(name, &inv), ctx.claim_lease, work).await {
        Once::Ran(ran) => ran,
        Once::StoreDown(_) => {
            // Without the record we cannot promise to act once, so we did not act at all.
            answer(&ctx, &inv, Reply::error("The bot's database is unreachable, so nothing was changed. Please try again in a few minutes; if it persists, tell IT.")).await;
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
        }
        not_run => return crate::once::not_run_response(&inv.id, &not_run).unwrap_or_else(|| StatusCode::OK.into_response()),
    };
    let decision = match (reply.kind, outcome.ok) {
        (ReplyKind::Denied, _) => "denied",
        (_, true) => "done",
        (_, false) => "failed",
    };
    metrics::counter!("iaas_commands_total", "command" => inv.command.name(), "outcome" => decision).increment(1);
    metrics::histogram!("iaas_function_duration_seconds", "function" => name, "outcome" => decision).record(elapsed_ms as f64 / 1000.0);
    let entry = crate::once::invocation_entry(&inv, name, decision, outcome.text.chars().take(500).collect(), Some(elapsed_ms));
    crate::once::audit(&ctx.store, &entry).await;
    answer(&ctx, &inv, reply).await;
    crate::once::done_response(&inv.id, "done", &outcome)
}

/// How long the kit keeps waiting for a vCenter task that outlived the function's own wait.
const FOLLOW_UP_LIMIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Runs the handler; when its reply names a task still running in vCenter, posts that reply at
/// once, keeps waiting (still holding the claim and any VM lock), and returns the real result.
async fn follow_through(ctx: &Context, inv: &Invocation, work: impl Future<Output = Reply>) -> Reply {
    let mut reply = work.await;
    let Some(task) = reply.follow_up.take() else { return reply };
    answer(ctx, inv, reply).await;
    let what = UserText(&inv.command.describe()).to_string();
    match ctx.vcenter.wait_task(&task, FOLLOW_UP_LIMIT).await {
        Ok(iaas_vsphere::TaskStatus::Succeeded { .. }) => Reply::changed(Message::new(format!("✅ `{what}` finished in vCenter."))),
        Ok(iaas_vsphere::TaskStatus::Failed(e)) => Reply::error(format!("`{what}` failed in vCenter: {}", crate::reply::vc_sentence(&e))),
        Ok(iaas_vsphere::TaskStatus::Running { .. }) => Reply::error(format!(
            "`{what}` is still running in vCenter after {} minutes (task {}); ask IT to look at it.",
            FOLLOW_UP_LIMIT.as_secs() / 60,
            task.moref
        )),
        Err(e) => Reply::error(format!("I lost track of `{what}` in vCenter (task {}): {}", task.moref, crate::reply::vc_sentence(&e))),
    }
}

/// Runs `work` holding the VM's change lock, or refuses with a sentence naming the change in
/// flight. The lock lapses after a while, so a crashed worker cannot block a VM for good.
pub async fn locked(ctx: &Context, inv: &Invocation, vm: &VmName, work: impl Future<Output = Reply>) -> Reply {
    match crate::lock::with_vm_lock(&ctx.store, vm, &inv.id, &inv.command.describe(), &inv.user.id, work).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(held)) => Reply::error(format!(
            "{vm} has a change in flight (`{}` by <@{}>, request {}); nothing was done. Try again when it has finished.",
            held.command,
            held.actor,
            iaas_invocation::short_id(&held.holder)
        )),
        Err(e) => {
            tracing::error!(error = %e, "could not lock the VM");
            Reply::error("The bot's database is unreachable, so it cannot make sure nobody else is changing this VM; nothing was done. Please try again later.")
        }
    }
}

/// Posts the reply to the invocation's response_url, if it has one.
pub(crate) async fn answer(ctx: &Context, inv: &Invocation, reply: Reply) {
    let answer = if reply.ok() { Answer::Succeeded } else { Answer::Failed };
    let mut message = reply.into_message(&ctx.policy);
    if matches!(inv.command, Command::Confirm { .. }) {
        // A press answers in place of the message that had the buttons.
        message.replace_original.get_or_insert(true);
    }
    post_message(ctx, inv, message, answer).await;
}

/// An interim message while a long operation runs (Slack allows five per response_url, so
/// callers post a few at most).
pub async fn progress(ctx: &Context, inv: &Invocation, text: &str) {
    post_message(ctx, inv, Message::ephemeral(format!("⏳ {text}")), Answer::Interim).await;
}

async fn post_message(ctx: &Context, inv: &Invocation, message: Message, answer: Answer) {
    let Some(url) = inv.response_url.as_deref() else { return };
    let verb = if matches!(inv.command, Command::Confirm { .. }) { "pressed" } else { "asked" };
    let message = message.with_context(&format!(
        "`{}` · request {} · {verb} by <@{}>",
        UserText(&inv.command.describe()),
        inv.short_id(),
        inv.user.id
    ));
    if let Err(e) = ctx.responder.post_outcome(url, &message, Some(answer)).await {
        crate::reply::undelivered(ctx, inv, &e).await;
    }
}

fn new_invocation(function: &str, inv: &Invocation) -> NewInvocation {
    let args = serde_json::to_value(&inv.command).map(|v| v["args"].to_string()).unwrap_or_default();
    NewInvocation {
        id: inv.id.clone(),
        function: function.to_string(),
        command: inv.command.describe(),
        args_json: args,
        slack_user: inv.user.id.clone(),
        channel: inv.channel.id.clone(),
        issued_at_ms: inv.issued_at * 1000,
    }
}
