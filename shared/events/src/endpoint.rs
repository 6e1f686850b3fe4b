//! The HTTP face of an event function: `POST /` with a CloudEvent, `GET /_/health`.
//!
//! Answers are chosen for VEBA's retries: 2xx for everything a retry would not change
//! (handled, ignored, duplicate, refused by vCenter), 503 only when a retry can help (the
//! store or vCenter unreachable) — and then the event's claim is given back so the retry runs.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use iaas_config::ConfigError;
use iaas_function::once::{audit, not_run_response, once, Once, Settle};
use iaas_function::Context;
use iaas_slack::{Message, WebApi};
use iaas_store::{AuditEntry, NewInvocation, UserId};
use iaas_vsphere::VcError;
use serde_json::json;
use tracing::Instrument;

use crate::{EventAuth, VcEvent};

/// Who the audit trail names as the actor of alarm-driven changes.
const ACTOR: &str = "veba";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// Something changed in vCenter (or a change was scheduled).
    Acted,
    /// The event was for this function, and it deliberately did nothing (at a limit, cooling
    /// down, nowhere to go): people should know.
    Skipped,
    /// Not for this function (another alarm, a status it does not act on, an unknown VM).
    Ignored,
    /// It tried and vCenter refused; a retry would get the same answer.
    Failed,
    /// It could not try (vCenter unreachable); a redelivery should run it again.
    Retry,
}

/// What the handler did, as a sentence, and which VM it was about.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub text: String,
    pub vm: Option<String>,
}

impl Outcome {
    fn new(kind: OutcomeKind, text: impl Into<String>) -> Self {
        Outcome { kind, text: text.into(), vm: None }
    }
    pub fn acted(text: impl Into<String>) -> Self {
        Self::new(OutcomeKind::Acted, text)
    }
    pub fn skipped(text: impl Into<String>) -> Self {
        Self::new(OutcomeKind::Skipped, text)
    }
    pub fn ignored(text: impl Into<String>) -> Self {
        Self::new(OutcomeKind::Ignored, text)
    }
    pub fn failed(text: impl Into<String>) -> Self {
        Self::new(OutcomeKind::Failed, text)
    }
    pub fn retry(text: impl Into<String>) -> Self {
        Self::new(OutcomeKind::Retry, text)
    }
    pub fn on(mut self, vm: &str) -> Self {
        self.vm = Some(vm.to_string());
        self
    }
}

impl From<VcError> for Outcome {
    fn from(e: VcError) -> Self {
        tracing::warn!(error = ?e, "vCenter call failed");
        match e {
            // Nothing was sent: a redelivery may act. After a time-out, or with the task still
            // running, it may have acted already, so a retry could act twice.
            VcError::Unreachable { .. } => Outcome::retry(e.to_string()),
            e => Outcome::failed(e.to_string()),
        }
    }
}

/// Where notices go: `chat.postMessage` to one channel as the bot.
#[derive(Clone, Debug)]
pub struct Notifier {
    slack: WebApi,
    channel: String,
}

impl Notifier {
    pub fn new(api_url: Option<&str>, bot_token: &str, channel: &str) -> Self {
        Notifier { slack: WebApi::new(api_url, Some(bot_token.to_string())), channel: channel.to_string() }
    }

    async fn post(&self, message: &Message) {
        if let Err(e) = self.slack.post_message(&self.channel, message).await {
            tracing::error!(error = %e, channel = %self.channel, "could not notify Slack");
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct EventSettings {
    pub auth: EventAuth,
    pub notifier: Option<Notifier>,
}

impl EventSettings {
    /// `IAAS_EVENTS_TOKEN` (or `IAAS_EVENTS_USER`/`_PASSWORD`), and `SLACK_NOTIFY_CHANNEL` with
    /// `SLACK_BOT_TOKEN` (and `SLACK_API_URL`) for notices.
    pub fn from_env() -> Result<EventSettings, ConfigError> {
        let auth = EventAuth::from_env()?;
        if !auth.is_configured() {
            tracing::warn!("neither IAAS_EVENTS_TOKEN nor IAAS_EVENTS_USER/IAAS_EVENTS_PASSWORD is set: every event is refused");
        }
        let notifier = match (iaas_config::var("SLACK_NOTIFY_CHANNEL"), iaas_config::secret("SLACK_BOT_TOKEN")?) {
            (Some(channel), Some(token)) => Some(Notifier::new(iaas_config::var("SLACK_API_URL").as_deref(), token.expose(), &channel)),
            (Some(_), None) => {
                tracing::warn!("SLACK_NOTIFY_CHANNEL is set but SLACK_BOT_TOKEN is not: alarm actions are not posted to Slack");
                None
            }
            (None, _) => None,
        };
        Ok(EventSettings { auth, notifier })
    }
}

/// The router for one event function, with settings from the environment. A configuration
/// error is logged and leaves the function refusing every event (fail closed).
pub fn router<H, Fut>(name: &'static str, ctx: Arc<Context>, handler: H) -> Router
where
    H: Fn(Arc<Context>, VcEvent) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let settings = EventSettings::from_env().unwrap_or_else(|e| {
        tracing::error!(function = name, error = %e, "event settings are wrong; every event is refused");
        EventSettings::default()
    });
    router_with(name, ctx, settings, handler)
}

pub fn router_with<H, Fut>(name: &'static str, ctx: Arc<Context>, settings: EventSettings, handler: H) -> Router
where
    H: Fn(Arc<Context>, VcEvent) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let settings = Arc::new(settings);
    let receive = move |State(ctx): State<Arc<Context>>, headers: HeaderMap, body: Bytes| {
        let handler = handler.clone();
        let settings = settings.clone();
        async move { Box::pin(handle(name, ctx, &settings, headers, body, handler)).await }
    };
    Router::new().route("/", post(receive)).merge(ctx.probes()).with_state(ctx)
}

async fn handle<H, Fut>(
    name: &'static str,
    ctx: Arc<Context>,
    settings: &EventSettings,
    headers: HeaderMap,
    body: Bytes,
    handler: H,
) -> Response
where
    H: Fn(Arc<Context>, VcEvent) -> Fut,
    Fut: Future<Output = Outcome>,
{
    if !settings.auth.allows(&headers) {
        tracing::warn!(function = name, "refused an event without the right token");
        return (StatusCode::UNAUTHORIZED, "missing or wrong credentials\n").into_response();
    }
    let event = match VcEvent::parse(&headers, &body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(function = name, error = %e, "refused a malformed event");
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    let span = tracing::info_span!("event", function = name, id = %event.id, class = %event.class);
    run_once(name, ctx, settings, event, handler).instrument(span).await
}

async fn run_once<H, Fut>(name: &'static str, ctx: Arc<Context>, settings: &EventSettings, event: VcEvent, handler: H) -> Response
where
    H: Fn(Arc<Context>, VcEvent) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let key = event.claim_key(name);
    let claim = NewInvocation {
        id: key.clone(),
        function: name.to_string(),
        command: event.describe(),
        args_json: event.data.to_string(),
        slack_user: UserId::default(),
        channel: settings.notifier.as_ref().map(|n| n.channel.clone()).unwrap_or_default(),
        issued_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    let work = async {
        let started = std::time::Instant::now();
        let outcome = Box::pin(handler(ctx.clone(), event.clone())).await;
        let elapsed_ms = started.elapsed().as_millis() as i64;
        // A retry can help: give the claim back so VEBA's redelivery runs it.
        let settle = match outcome.kind {
            OutcomeKind::Retry => Settle::Release,
            kind => Settle::Record(iaas_store::Outcome::new(kind != OutcomeKind::Failed, outcome.text.clone())),
        };
        ((outcome, elapsed_ms), settle)
    };
    let (outcome, elapsed_ms) = match once(&ctx.store, &claim, ctx.claim_lease, work).await {
        Once::Ran(ran) => ran,
        Once::StoreDown(_) => return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable; retry later\n").into_response(),
        not_run => return not_run_response(&key, &not_run).unwrap_or_else(|| StatusCode::OK.into_response()),
    };
    let kind = match outcome.kind {
        OutcomeKind::Acted => "acted",
        OutcomeKind::Skipped => "skipped",
        OutcomeKind::Ignored => "ignored",
        OutcomeKind::Failed => "failed",
        OutcomeKind::Retry => "retry",
    };
    metrics::histogram!("iaas_function_duration_seconds", "function" => name, "outcome" => kind).record(elapsed_ms as f64 / 1000.0);
    if outcome.kind == OutcomeKind::Retry {
        tracing::warn!(text = %outcome.text, "could not handle the event now; asking for a retry");
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", outcome.text)).into_response();
    }
    let ok = outcome.kind != OutcomeKind::Failed;
    if outcome.kind == OutcomeKind::Ignored {
        tracing::info!(reason = %outcome.text, "event ignored");
        return Json(json!({"id": key, "status": "ignored", "ok": true, "text": outcome.text})).into_response();
    }
    tracing::info!(kind = ?outcome.kind, elapsed_ms, text = %outcome.text, "event handled");

    let entry = AuditEntry {
        at_ms: chrono::Utc::now().timestamp_millis(),
        request_id: key.to_string(),
        actor: ACTOR.to_string(),
        command: event.describe(),
        vm: outcome.vm.clone(),
        stage: name.to_string(),
        // The audit trail knows allowed/denied/done/failed; a deliberate skip is a denial.
        decision: match outcome.kind {
            OutcomeKind::Acted => "done",
            OutcomeKind::Skipped => "denied",
            OutcomeKind::Failed | OutcomeKind::Ignored | OutcomeKind::Retry => "failed",
        }
        .to_string(),
        reason: outcome.text.chars().take(500).collect(),
        duration_ms: Some(elapsed_ms),
    };
    audit(&ctx.store, &entry).await;
    if let Some(notifier) = &settings.notifier {
        let icon = match outcome.kind {
            OutcomeKind::Acted => "✅",
            OutcomeKind::Skipped => "ℹ️",
            OutcomeKind::Failed | OutcomeKind::Ignored | OutcomeKind::Retry => "⚠️",
        };
        let message =
            Message::new(format!("{icon} {}", outcome.text)).with_context(&format!("{name} · {} · event {}", event.describe(), event.id));
        notifier.post(&message).await;
    }
    Json(json!({"id": key, "status": "done", "ok": ok, "text": outcome.text})).into_response()
}
