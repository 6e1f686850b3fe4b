//! `POST /slack/commands` and `POST /slack/interactions`, both behind [`verify_slack`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iaas_invocation::{Caller, Command, Invocation, SlackChannel, SlackUser};
use iaas_slack::{Interaction, Message, SlashCommand, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use iaas_store::AuditEntry;

use crate::dispatch::DISPATCH_TIMEOUT;
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
            if let Some(log) = &gw.audit {
                log.record(AuditEntry {
                    at_ms: (gw.clock)() * 1000,
                    request_id: uuid::Uuid::now_v7().to_string(),
                    actor,
                    command: "replayed request".into(),
                    vm: None,
                    stage: "gateway".into(),
                    decision: "denied".into(),
                    reason: format!("the same signed request (timestamp {timestamp}) was already received; not run again"),
                    duration_ms: None,
                })
                .await;
            }
            Some((StatusCode::CONFLICT, "This request was already received and is not run again. Send the command anew.\n").into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "could not check a Slack request for replay");
            let sentence =
                "The bot's database is unreachable, so nothing was run. Please try again in a few minutes; if it persists, tell IT.";
            Some((StatusCode::SERVICE_UNAVAILABLE, Json(Message::ephemeral(sentence))).into_response())
        }
    }
}

pub async fn command(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    // The only decoding of the form: `verify_slack` looked at the raw bytes only.
    let Some(slash) = SlashCommand::parse(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed slash command body\n").into_response();
    };
    let command = match commands::parse(&slash.text) {
        Parsed::Help(text) => return Json(Message::ephemeral(text)).into_response(),
        Parsed::Invalid(text) => return refused(text),
        Parsed::Run(command) => command,
    };
    let SlashCommand { user_id, user_name, team_id, channel_id, channel_name, response_url, .. } = slash;
    let user = SlackUser { id: user_id, name: user_name, team_id };
    let channel = SlackChannel { id: channel_id, name: channel_name };
    let what = command.describe();
    let caller = match check_access(&gw, &user.id, &command).await {
        Ok(caller) => caller,
        Err(sentence) => return refused(sentence),
    };
    match hand_over(&gw, command, &what, user, channel, caller, response_url).await {
        Ok(id) => accepted(&what, id),
        Err(sentence) => refused(sentence),
    }
}

/// An ack that says nothing will run (bad usage, access denied, not handed over), marked as a
/// failure for `iaas slash`'s exit status; Slack ignores the header.
fn refused(sentence: String) -> Response {
    let mut response = Json(Message::ephemeral(sentence)).into_response();
    response.headers_mut().insert(iaas_slack::OUTCOME_HEADER, axum::http::HeaderValue::from_static("failed"));
    response
}

/// The ack of a handed-over command: `Message::ephemeral("Accepted …").with_context("request …")`,
/// serialized directly (see `iaas_slack::message::ephemeral_with_context_json`).
fn accepted(what: &str, id: String) -> Response {
    let text = format!("Accepted `{}`. I'll answer here when it's done.", iaas_slack::UserText(what));
    let context = format!("request {}", iaas_invocation::short_id(&id));
    let mut response = Response::new(Body::from(iaas_slack::message::ephemeral_with_context_json(&text, &context)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // The id header tells `iaas slash` (and logs) that work was handed over; Slack ignores it.
    if let Ok(id) = HeaderValue::try_from(id) {
        headers.insert(REQUEST_ID_HEADER, id);
    }
    response
}

/// A button press. Slack wants a quick 200; the function answers by replacing the message.
pub async fn interaction(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    let payload = match Interaction::from_form(&body) {
        Ok(Interaction::BlockActions(payload)) => payload,
        Ok(Interaction::Other) => {
            tracing::info!("ignored an interaction that is not a button press");
            return StatusCode::OK.into_response();
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused a malformed interaction payload");
            return (StatusCode::BAD_REQUEST, "malformed interaction payload\n").into_response();
        }
    };
    let Some(command) = payload.pressed().find_map(|(action_id, value)| Command::from_action(action_id, value)) else {
        tracing::info!("ignored a press with no action of ours");
        return StatusCode::OK.into_response();
    };
    let user = SlackUser { id: payload.user.id.0.clone(), name: payload.user_name().to_string(), team_id: payload.team_id().to_string() };
    let channel = SlackChannel { id: payload.channel_id().to_string(), name: payload.channel_name().to_string() };
    let response_url = payload.response_url.unwrap_or_default();
    let what = command.describe();
    let handed_over = match check_access(&gw, &user.id, &command).await {
        Ok(caller) => hand_over(&gw, command, &what, user, channel, caller, response_url.clone()).await,
        Err(sentence) => Err(sentence),
    };
    if let Err(sentence) = handed_over {
        // The press's HTTP answer is not shown to the user; tell them through the response_url.
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
    StatusCode::OK.into_response()
}

/// The access check before the ack (when the policy has roles). A denial is audited and
/// answered with a sentence; nothing is dispatched.
async fn check_access(gw: &Gateway, user: &str, command: &Command) -> Result<Caller, String> {
    let Some(access) = &gw.access else { return Ok(Caller::default()) };
    let decision = crate::access::authorize(access, user, command).await;
    if let Err(reason) = &decision {
        tracing::info!(user, command = %command.describe(), %reason, "denied");
        audit(gw, &uuid::Uuid::now_v7().to_string(), user, command, "denied", reason.clone()).await;
    }
    decision
}

/// Appends a gateway decision to the audit trail, when one is configured. Queued for the
/// audit writer (see `crate::audit` for why, and what keeps it durable), not written here.
async fn audit(gw: &Gateway, request_id: &str, user: &str, command: &Command, decision: &str, reason: String) {
    let Some(log) = &gw.audit else { return };
    let entry = AuditEntry {
        at_ms: (gw.clock)() * 1000,
        request_id: request_id.to_string(),
        actor: user.to_string(),
        command: command.describe(),
        vm: command.target_vm().map(str::to_string),
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
) -> Result<String, String> {
    if !gw.responder.allows(&response_url) {
        tracing::warn!(host = %iaas_slack::host_of(&response_url), "refused a request whose response_url is not Slack's");
        return Err("This request has no Slack response address, so its answer could not be delivered; nothing was done.".into());
    }
    let inv = Invocation {
        id: uuid::Uuid::now_v7().to_string(),
        command,
        user,
        channel,
        response_url: Some(response_url),
        issued_at: (gw.clock)(),
        caller,
    };
    let function = inv.command.function();
    let body = serde_json::to_vec(&inv).map_err(|e| {
        tracing::error!(error = %e, "could not encode the invocation");
        format!("`{what}` could not be sent to {function}; nothing was done. Please tell IT.")
    })?;
    let signed = iaas_invocation::sign(gw.shared_secret.expose().as_bytes(), inv.issued_at, body);
    let short = inv.short_id();
    match tokio::time::timeout(DISPATCH_TIMEOUT, gw.dispatcher.dispatch(function, signed)).await {
        Ok(Ok(())) => {
            tracing::info!(id = %inv.id, user = %inv.user.id, %function, command = %what, "accepted");
            audit(gw, &inv.id, &inv.user.id, &inv.command, "allowed", format!("handed to {function}")).await;
            Ok(inv.id)
        }
        Ok(Err(e)) => {
            tracing::error!(id = %inv.id, %function, error = %e, "dispatch failed");
            Err(format!("`{what}` could not be handed to {function} ({e}); nothing was done. Please try again, and tell IT if it keeps failing. (request {short})"))
        }
        Err(_) => {
            tracing::error!(id = %inv.id, %function, "dispatch timed out");
            Err(format!("{function} did not accept `{what}` in time; it may or may not run. Check with `/iaas vm info` before retrying. (request {short})"))
        }
    }
}
