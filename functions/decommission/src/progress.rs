//! The one Slack message that shows a request's progress. With a bot token and a channel it is
//! a message of its own, edited with `chat.update` (its place is stored, so a resumed request
//! goes on editing it); otherwise the press's response_url is replaced a few times (Slack takes
//! five posts per response_url: a few progress posts and the summary stay within).

use iaas_function::Context;
use iaas_invocation::STOP_DECOMMISSION_ACTION;
use iaas_slack::{Message, Posted, WebApi};
use iaas_store::{DecommissionDetail, DecommissionState};
use serde_json::json;

use crate::report;

/// Response_url posts for progress; the summary is one more.
pub const MAX_RESPONSE_URL_POSTS: u32 = 3;

#[derive(Debug, Clone)]
pub enum Progress {
    Message(Posted),
    ResponseUrl(String),
}

/// Opens the progress message for a request about to run: a message in `channel` when the bot
/// can post there, else the press's response_url.
pub async fn open(
    ctx: &Context,
    slack: &WebApi,
    detail: &DecommissionDetail,
    channel: &str,
    response_url: Option<String>,
) -> Option<Progress> {
    if slack.has_token() && !channel.is_empty() {
        match slack.post(channel, &linked(ctx, running(detail), detail)).await {
            Ok(posted) => {
                if let Err(e) = ctx.store.set_decommission_progress(&detail.request.id, &posted.channel, &posted.ts).await {
                    tracing::warn!(error = %e, "could not record the progress message; a resumed request posts its summary instead");
                }
                return Some(Progress::Message(posted));
            }
            // E.g. the bot is not in that channel: the response_url still reaches the requester.
            Err(e) => tracing::warn!(error = %e, channel, "could not post the progress message; using the response_url"),
        }
    }
    response_url.filter(|u| !u.is_empty()).map(Progress::ResponseUrl)
}

/// The stored progress message of a request being resumed, if it has one.
pub fn stored(detail: &DecommissionDetail) -> Option<Progress> {
    let r = &detail.request;
    (!r.progress_ts.is_empty()).then(|| Progress::Message(Posted { channel: r.progress_channel.clone(), ts: r.progress_ts.clone() }))
}

/// Shows the request as it is now. Returns whether Slack took it.
pub async fn show(ctx: &Context, slack: &WebApi, to: &Progress, detail: &DecommissionDetail) -> bool {
    let message = match detail.request.state {
        DecommissionState::Running => running(detail),
        DecommissionState::PendingConfirmation | DecommissionState::Done | DecommissionState::Failed | DecommissionState::Cancelled => {
            Message::new(report::summary_text(detail))
        }
    };
    let message = linked(ctx, message, detail);
    let result = match to {
        Progress::Message(posted) => slack.update(posted, &message).await.map_err(|e| e.to_string()),
        Progress::ResponseUrl(url) => ctx.responder.post(url, &message.replace_original(true)).await.map_err(|e| e.to_string()),
    };
    if let Err(e) = &result {
        tracing::warn!(error = %e, request = %detail.request.id, "could not show decommission progress");
    }
    result.is_ok()
}

/// With a line pointing to the request's page in the web console, when there is one (Slack
/// links a bare URL by itself).
fn linked(ctx: &Context, message: Message, detail: &DecommissionDetail) -> Message {
    match &ctx.console_url {
        Some(url) => message.with_context(&format!("Follow it in the console: {url}/console/requests/{}", detail.request.id)),
        None => message,
    }
}

/// Progress so far, with a Cancel button while the request can still be stopped.
fn running(detail: &DecommissionDetail) -> Message {
    let text = format!("⏳ {}", report::status_text(detail));
    if detail.request.cancel_requested {
        return Message::new(text);
    }
    let cancel = json!({
        "type": "actions",
        "elements": [{
            "type": "button", "style": "danger", "action_id": STOP_DECOMMISSION_ACTION, "value": detail.request.id,
            "text": {"type": "plain_text", "text": "Cancel"},
            "confirm": {
                "title": {"type": "plain_text", "text": "Stop this decommission?"},
                "text": {"type": "plain_text", "text": "It stops before its next step. Steps that ran are not rolled back."},
                "confirm": {"type": "plain_text", "text": "Stop it"},
                "deny": {"type": "plain_text", "text": "Keep going"}
            }
        }]
    });
    Message::new(text).with_block(cancel)
}
