//! `POST /slack/commands` and `POST /slack/interactions`, both behind [`verify_slack`], and the
//! path every ingress shares once a request's origin is established ([`run_command`],
//! [`run_interaction`]; Socket Mode calls them from `crate::socket`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iaas_invocation::{Caller, Command, Invocation, InvocationId, SlackChannel, SlackUser, UserId};
use iaas_slack::{Interaction, Message, SlashCommand, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use iaas_store::AuditEntry;

use crate::dispatch::HandOver;
use crate::{Gateway, BODY_LIMIT};
use iaas_invocation::commands::{self, Parsed};

/// Set on acks whose work was dispatched.
pub const REQUEST_ID_HEADER: &str = "x-iaas-request-id";

/// Reads the raw body (413 above the limit), answers Slack's `ssl_check` with an empty 200, and
/// lets only correctly signed, fresh requests through (401 with a short body otherwise).
pub async fn verify_slack(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    };
    // Slack's certificate check carries no command; answering it reveals and does nothing. A
    // scan of the raw bytes: the form is decoded once, by the handler, after verification.
    if SlashCommand::is_ssl_check(&bytes) {
        return StatusCode::OK.into_response();
    }
    let header = |h: &str| parts.headers.get(h).and_then(|v| v.to_str().ok());
    if let Err(e) =
        iaas_slack::verify(gw.signing_secret.expose().as_bytes(), header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &bytes, (gw.clock)())
    {
        tracing::warn!(error = %e, path = %parts.uri.path(), "refused a request not signed by Slack");
        return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response();
    }
    if let Some(refusal) = refuse_replay(&gw, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &bytes).await {
        return refusal;
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// A verified request seen before inside the window is refused (409) and audited, and nothing
/// is dispatched; when the store cannot say, nothing is dispatched either (503).
async fn refuse_replay(gw: &Gateway, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> Option<Response> {
    // Both were checked by `verify`.
    let (Some(timestamp), Some(signature)) = (timestamp.and_then(|t| t.trim().parse::<i64>().ok()), signature) else {
        return Some((StatusCode::UNAUTHORIZED, "missing Slack signature\n").into_response());
    };
    match gw.replays.first_sight(signature, timestamp, (gw.clock)()).await {
        Ok(true) => None,
        Ok(false) => {
            let actor = match (SlashCommand::parse(body), Interaction::from_form(body)) {
                (Some(slash), _) => slash.user_id,
                (None, Ok(Interaction::BlockActions(press))) => press.user.id.0,
                _ => "slack".into(),
            };
            tracing::warn!(%actor, timestamp, "refused a replayed Slack request");
            let reason = format!("the same signed request (timestamp {timestamp}) was already received; not run again");
            audit_repeat(gw, actor, "replayed request", reason).await;
            Some((StatusCode::CONFLICT, "This request was already received and is not run again. Send the command anew.\n").into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "could not check a Slack request for replay");
            Some((StatusCode::SERVICE_UNAVAILABLE, Json(Message::ephemeral(STORE_DOWN))).into_response())
        }
    }
}

/// What Slack is answered with, decided once for both ingresses: HTTP sends it as the response
/// ([`IntoResponse`]), Socket Mode as the `payload` of the envelope's ack ([`Ack::payload`]).
pub enum Ack {
    /// A bare acknowledgement (a press: the function answers by replacing the message).
    Empty,
    /// Help or usage shown to the user; nothing was asked to run.
    Told(Vec<u8>),
    /// Nothing will run (bad usage, access denied, not handed over): an ephemeral sentence.
    Refused(Vec<u8>),
    /// Handed over: "Accepted …" with the request id.
    Accepted { body: Vec<u8>, request_id: InvocationId },
    /// Not a request Slack sends; HTTP answers 400, Socket Mode acks bare.
    Malformed(&'static str),
}

impl Ack {
    fn told(sentence: String) -> Ack {
        Ack::Told(message_json(&Message::ephemeral(sentence)))
    }

    pub(crate) fn refused(sentence: String) -> Ack {
        Ack::Refused(message_json(&Message::ephemeral(sentence)))
    }

    /// The ack's payload for Socket Mode: the same JSON the HTTP ack's body carries.
    pub fn payload(&self) -> Option<&[u8]> {
        match self {
            Ack::Told(body) | Ack::Refused(body) | Ack::Accepted { body, .. } => Some(body),
            Ack::Empty | Ack::Malformed(_) => None,
        }
    }
}

fn message_json(message: &Message) -> Vec<u8> {
    // A `Message` is strings and JSON values: serializing it cannot fail.
    serde_json::to_vec(message).unwrap_or_default()
}

impl IntoResponse for Ack {
    fn into_response(self) -> Response {
        let json = |body: Vec<u8>| {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        };
        match self {
            Ack::Empty => StatusCode::OK.into_response(),
            Ack::Told(body) => json(body),
            Ack::Refused(body) => {
                // Marks the ack as a failure for `iaas slash`'s exit status; Slack ignores the header.
                let mut response = json(body);
                response.headers_mut().insert(iaas_slack::OUTCOME_HEADER, HeaderValue::from_static("failed"));
                response
            }
            Ack::Accepted { body, request_id } => {
                let mut response = json(body);
                // The id header tells `iaas slash` (and logs) that work was handed over; Slack ignores it.
                if let Ok(id) = HeaderValue::try_from(request_id.into_string()) {
                    response.headers_mut().insert(REQUEST_ID_HEADER, id);
                }
                response
            }
            Ack::Malformed(what) => (StatusCode::BAD_REQUEST, format!("{what}\n")).into_response(),
        }
    }
}

/// `POST /slack/commands`, after [`verify_slack`]: the form, then the path both ingresses share.
pub async fn command(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    // The only decoding of the form: `verify_slack` looked at the raw bytes only.
    match SlashCommand::parse(&body) {
        Some(slash) => run_command(&gw, slash).await.into_response(),
        None => Ack::Malformed("malformed slash command body").into_response(),
    }
}

/// `POST /slack/interactions`, after [`verify_slack`]: the form's payload, then the shared path.
pub async fn interaction(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    match Interaction::from_form(&body) {
        Ok(interaction) => run_interaction(&gw, interaction).await.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "refused a malformed interaction payload");
            Ack::Malformed("malformed interaction payload").into_response()
        }
    }
}

/// A slash command from either ingress, once its origin is established (signature or Socket
/// Mode): parse → access check → audit → signed dispatch.
pub(crate) async fn run_command(gw: &Gateway, slash: SlashCommand) -> Ack {
    if is_plain_help(&slash.text) {
        return Ack::Told(plain_help_json().to_vec());
    }
    let command = match commands::parse(&slash.text) {
        Parsed::Help(text) => return Ack::told(text),
        Parsed::Invalid(text) => return Ack::refused(text),
        Parsed::Run(command) => command,
    };
    let SlashCommand { user_id, user_name, team_id, channel_id, channel_name, response_url, .. } = slash;
    let user = SlackUser { id: user_id.into(), name: user_name, team_id };
    let channel = SlackChannel { id: channel_id, name: channel_name };
    let what = command.describe();
    let caller = match check_access(gw, &user.id, &command).await {
        Ok(caller) => caller,
        Err(sentence) => return Ack::refused(sentence),
    };
    if command == Command::Doctor {
        return doctor(gw, &user.id, &command, response_url).await;
    }
    match hand_over(gw, command, &what, user, channel, caller, response_url).await {
        Ok(id) => accepted(&what, id),
        Err(sentence) => Ack::refused(sentence),
    }
}

/// `/iaas doctor`, once access allowed it: the gateway runs the checks itself (they take
/// longer than Slack's 3 s for the ack) and posts them to the response_url, ephemeral. Lambda
/// freezes a function once it has answered, so there the gateway says where to run them.
async fn doctor(gw: &Gateway, user: &UserId, command: &Command, response_url: String) -> Ack {
    if iaas_runtime::on_lambda() {
        return Ack::told(
            "On AWS Lambda the gateway cannot go on checking after it has answered Slack; run `iaas doctor` with the gateway's and the functions' settings instead.".into(),
        );
    }
    if !gw.responder.allows(&response_url) {
        return Ack::refused(
            "This request has no Slack response address, so the checks' answer could not be delivered; nothing was run.".into(),
        );
    }
    let id = InvocationId::generate();
    audit(gw, &id, user, command, "allowed", "answered by the gateway".into()).await;
    let (responder, options) = (gw.responder.clone(), gw.doctor.clone());
    let context = format!("request {}", iaas_invocation::short_id(&id));
    tracing::info!(%id, %user, "doctor: checking");
    tokio::spawn(async move {
        let checks = iaas_doctor::run(&options).await;
        let message = Message::ephemeral(iaas_doctor::slack_text(&checks)).with_context(&context);
        if let Err(e) = responder.post(&response_url, &message).await {
            tracing::error!(error = %e, "could not deliver the doctor's answer");
        }
    });
    // Acked like a handed-over command (its request id in the header), so `iaas slash` waits for the answer.
    accepted(&command.describe(), id)
}

/// `/iaas` or `/iaas help`: the answer `commands::parse` gives them (`Parsed::Help` of the whole
/// command list), recognised without tokenizing.
fn is_plain_help(text: &str) -> bool {
    let text = text.trim_matches(' ');
    text.is_empty() || text.eq_ignore_ascii_case("help")
}

/// The help answer's JSON, built once per process: it never changes, and building it (the whole
/// command list, neutralized, then serialized) was most of the cost of an answer at the edge
/// (callgrind, bench/README.md).
fn plain_help_json() -> &'static [u8] {
    static HELP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    HELP.get_or_init(|| message_json(&Message::ephemeral(commands::help(&[]))))
}

/// The ack of a handed-over command: `Message::ephemeral("Accepted …").with_context("request …")`,
/// serialized directly (see `iaas_slack::message::ephemeral_with_context_json`).
fn accepted(what: &str, id: InvocationId) -> Ack {
    let text = format!("Accepted `{}`. I'll answer here when it's done.", iaas_slack::UserText(what));
    let context = format!("request {}", iaas_invocation::short_id(&id));
    Ack::Accepted { body: iaas_slack::message::ephemeral_with_context_json(&text, &context), request_id: id }
}

/// A button press from either ingress. Slack wants a quick ack; the function answers by
/// replacing the message.
pub(crate) async fn run_interaction(gw: &Gateway, interaction: Interaction) -> Ack {
    let payload = match interaction {
        Interaction::BlockActions(payload) => payload,
        Interaction::Other => {
            tracing::info!("ignored an interaction that is not a button press");
            return Ack::Empty;
        }
    };
    let Some(command) = payload.pressed().find_map(|(action_id, value)| Command::from_action(action_id, value)) else {
        tracing::info!("ignored a press with no action of ours");
        return Ack::Empty;
    };
    let user =
        SlackUser { id: payload.user.id.0.as_str().into(), name: payload.user_name().to_string(), team_id: payload.team_id().to_string() };
    let channel = SlackChannel { id: payload.channel_id().to_string(), name: payload.channel_name().to_string() };
    let response_url = payload.response_url.unwrap_or_default();
    let what = command.describe();
    let handed_over = match check_access(gw, &user.id, &command).await {
        Ok(caller) => hand_over(gw, command, &what, user, channel, caller, response_url.clone()).await,
        Err(sentence) => Err(sentence),
    };
    if let Err(sentence) = handed_over {
        // The press's ack is not shown to the user; tell them through the response_url.
        if gw.responder.allows(&response_url) {
            let (responder, url) = (gw.responder.clone(), response_url);
            tokio::spawn(async move {
                let message = Message::ephemeral(sentence).replace_original(false);
                if let Err(e) = responder.post(&url, &message).await {
                    tracing::error!(error = %e, "could not tell the user their press was not handed over");
                }
            });
        }
    }
    Ack::Empty
}

/// The access check before the ack (when the policy has roles). A denial is audited and
/// answered with a sentence; nothing is dispatched.
async fn check_access(gw: &Gateway, user: &UserId, command: &Command) -> Result<Caller, String> {
    let Some(access) = &gw.access else { return Ok(Caller::default()) };
    let decision = crate::access::authorize(access, user, command).await;
    if let Err(reason) = &decision {
        tracing::info!(%user, command = %command.describe(), %reason, "denied");
        audit(gw, &InvocationId::generate(), user, command, "denied", reason.clone()).await;
    }
    decision
}

/// Audits a request refused because it was seen before (a replay over HTTP, a redelivered
/// Socket Mode envelope): nothing was dispatched.
pub(crate) async fn audit_repeat(gw: &Gateway, actor: String, what: &str, reason: String) {
    let Some(log) = &gw.audit else { return };
    log.record(AuditEntry {
        at_ms: (gw.clock)() * 1000,
        request_id: InvocationId::generate().to_string(),
        actor,
        command: what.into(),
        vm: None,
        stage: "gateway".into(),
        decision: "denied".into(),
        reason,
        duration_ms: None,
    })
    .await;
}

/// The sentence for a request that could not be checked for repetition: nothing was run.
pub(crate) const STORE_DOWN: &str =
    "The bot's database is unreachable, so nothing was run. Please try again in a few minutes; if it persists, tell IT.";

/// Appends a gateway decision to the audit trail, when one is configured. Queued for the
/// audit writer (see `crate::audit` for why, and what keeps it durable), not written here.
async fn audit(gw: &Gateway, request_id: &InvocationId, user: &UserId, command: &Command, decision: &str, reason: String) {
    let Some(log) = &gw.audit else { return };
    let entry = AuditEntry {
        at_ms: (gw.clock)() * 1000,
        request_id: request_id.to_string(),
        actor: user.to_string(),
        command: command.describe(),
        vm: command.target_vm().map(ToString::to_string),
        stage: "gateway".into(),
        decision: decision.into(),
        reason,
        duration_ms: None,
    };
    log.record(entry).await;
}

/// Builds, signs and dispatches an invocation. `Ok` carries its id; `Err` is the sentence
/// to show the user (nothing was done, or it is unknown whether it will run).
async fn hand_over(
    gw: &Gateway,
    command: Command,
    what: &str,
    user: SlackUser,
    channel: SlackChannel,
    caller: Caller,
    response_url: String,
) -> Result<InvocationId, String> {
    if !gw.responder.allows(&response_url) {
        tracing::warn!(host = %iaas_slack::host_of(&response_url), "refused a request whose response_url is not Slack's");
        return Err("This request has no Slack response address, so its answer could not be delivered; nothing was done.".into());
    }
    let inv = Invocation {
        id: InvocationId::generate(),
        command,
        user,
        channel,
        response_url: Some(response_url),
        issued_at: (gw.clock)(),
        caller,
        traceparent: iaas_runtime::otel::traceparent(),
    };
    let function = inv.command.function();
    let body = serde_json::to_vec(&inv).map_err(|e| {
        tracing::error!(error = %e, "could not encode the invocation");
        format!("`{what}` could not be sent to {function}; nothing was done. Please tell IT.")
    })?;
    let signed = iaas_invocation::sign(gw.shared_secret.expose().as_bytes(), inv.issued_at, body);
    let short = inv.short_id();
    match crate::dispatch::hand_over(gw.dispatcher.as_ref(), function, signed).await {
        Ok(()) => {
            tracing::info!(id = %inv.id, user = %inv.user.id, %function, command = %what, "accepted");
            audit(gw, &inv.id, &inv.user.id, &inv.command, "allowed", format!("handed to {function}")).await;
            Ok(inv.id)
        }
        Err(HandOver::Failed(e)) => {
            tracing::error!(id = %inv.id, %function, error = %e, "dispatch failed");
            Err(format!("`{what}` could not be handed to {function} ({e}); nothing was done. Please try again, and tell IT if it keeps failing. (request {short})"))
        }
        Err(HandOver::TimedOut) => {
            tracing::error!(id = %inv.id, %function, "dispatch timed out");
            Err(format!("{function} did not accept `{what}` in time; it may or may not run. Check with `/iaas vm info` before retrying. (request {short})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached help is exactly what the parser's answer would be.
    #[test]
    fn plain_help_is_the_parsers_help() {
        for text in ["", "help", "  HELP ", "Help"] {
            assert!(is_plain_help(text), "{text:?}");
            let Parsed::Help(parsed) = commands::parse(text) else { panic!("{text:?} is not help") };
            assert_eq!(plain_help_json(), message_json(&Message::ephemeral(parsed)).as_slice());
        }
        for text in ["help power", "helpx", "power status x"] {
            assert!(!is_plain_help(text), "{text:?}");
        }
    }
}
