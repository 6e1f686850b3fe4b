//! `POST /slack/commands`: verified by [`verify_slack`], answered by [`command`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iaas_invocation::{Command, Invocation, SlackChannel, SlackUser};
use iaas_slack::{Message, SlashCommand, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::commands::{self, Parsed};
use crate::dispatch::DISPATCH_TIMEOUT;
use crate::{Gateway, BODY_LIMIT};

/// Reads the raw body (413 above the limit), answers Slack's `ssl_check` with an empty 200, and
/// lets only correctly signed, fresh requests through (401 with a short body otherwise).
pub async fn verify_slack(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    };
    // Slack's certificate check carries no command; answering it reveals and does nothing.
    if SlashCommand::is_ssl_check(&bytes) {
        return StatusCode::OK.into_response();
    }
    let header = |h: &str| parts.headers.get(h).and_then(|v| v.to_str().ok());
    if let Err(e) = iaas_slack::verify(gw.signing_secret.expose().as_bytes(), header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), &bytes, (gw.clock)()) {
        tracing::warn!(error = %e, path = %parts.uri.path(), "refused a request not signed by Slack");
        return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

pub async fn command(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    let Some(slash) = SlashCommand::parse(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed slash command body\n").into_response();
    };
    match commands::parse(&slash.text) {
        Parsed::Help(text) | Parsed::Invalid(text) => Json(Message::ephemeral(text)).into_response(),
        Parsed::Run(cmd) => match accept(&gw, &slash, cmd).await {
            // The id header tells `iaas slash` (and logs) that work was handed over; Slack ignores it.
            (ack, Some(id)) => ([(REQUEST_ID_HEADER, id)], Json(ack)).into_response(),
            (ack, None) => Json(ack).into_response(),
        },
    }
}

/// Set on acks whose work was dispatched.
pub const REQUEST_ID_HEADER: &str = "x-iaas-request-id";

/// Signs and dispatches the command; the ack says whether the work was handed over, and the
/// request id comes back only when it was.
async fn accept(gw: &Gateway, slash: &SlashCommand, command: Command) -> (Message, Option<String>) {
    if !gw.responder.allows(&slash.response_url) {
        tracing::warn!(response_url = %slash.response_url, "refused a command whose response_url is not Slack's");
        return (Message::ephemeral("This request has no Slack response address, so its answer could not be delivered; nothing was done."), None);
    }
    let inv = Invocation {
        id: uuid::Uuid::now_v7().to_string(),
        command,
        user: SlackUser { id: slash.user_id.clone(), name: slash.user_name.clone(), team_id: slash.team_id.clone() },
        channel: SlackChannel { id: slash.channel_id.clone(), name: slash.channel_name.clone() },
        response_url: Some(slash.response_url.clone()),
        issued_at: (gw.clock)(),
    };
    let what = inv.command.describe();
    let function = inv.command.function();
    let body = match serde_json::to_vec(&inv) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not encode the invocation");
            return (Message::ephemeral(format!("`{what}` could not be sent to {function}; nothing was done. Please tell IT.")), None);
        }
    };
    let signed = iaas_invocation::sign(gw.shared_secret.expose().as_bytes(), inv.issued_at, body);
    let handed_over = tokio::time::timeout(DISPATCH_TIMEOUT, gw.dispatcher.dispatch(function, signed)).await;
    match handed_over {
        Ok(Ok(())) => {
            tracing::info!(id = %inv.id, user = %inv.user.id, %function, command = %what, "accepted");
            let ack = Message::ephemeral(format!("Accepted `{what}`. I'll answer here when it's done."))
                .with_context(&format!("request {}", inv.short_id()));
            (ack, Some(inv.id))
        }
        Ok(Err(e)) => {
            tracing::error!(id = %inv.id, %function, error = %e, "dispatch failed");
            let ack = Message::ephemeral(format!("`{what}` could not be handed to {function} ({e}); nothing was done. Please try again, and tell IT if it keeps failing."))
                .with_context(&format!("request {}", inv.short_id()));
            (ack, None)
        }
        Err(_) => {
            tracing::error!(id = %inv.id, %function, "dispatch timed out");
            let ack = Message::ephemeral(format!("{function} did not accept `{what}` in time; it may or may not run. Check with `/iaas vm info` before retrying."))
                .with_context(&format!("request {}", inv.short_id()));
            (ack, Some(inv.id))
        }
    }
}
