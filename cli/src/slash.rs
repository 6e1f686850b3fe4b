//! `iaas slash "/iaas …"`: talk to a gateway the way Slack does — a signed form post — and
//! serve the response_url locally so the function's answer is printed too. Buttons on the
//! answer are listed with numbers; `--press N` (or the prompt, on a terminal) presses one the
//! way Slack does: a signed `block_actions` interaction to `/slack/interactions`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use iaas_slack::{Answer, Message, Press, SlashCommand, OUTCOME_HEADER};
use tokio::sync::mpsc;

use crate::local;

#[derive(clap::Args)]
pub struct SlashArgs {
    /// The command as typed in Slack, e.g. "/iaas power off app-web-01".
    text: String,
    /// The gateway's base URL (default http://127.0.0.1:3000, or $PORT's like `iaas serve`).
    #[arg(long)]
    gateway: Option<String>,
    /// The Slack user id to act as.
    #[arg(long, default_value = "U0LOCAL")]
    user: String,
    /// The Slack channel id to act in.
    #[arg(long, default_value = "C0LOCAL")]
    channel: String,
    /// How long to wait for the function's answer, in seconds.
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// Press button N of the answer (as listed), as the same user. Without it, a terminal is
    /// asked which to press; otherwise the buttons are only listed.
    #[arg(long, value_name = "N")]
    press: Option<usize>,
}

/// A message posted to the local response_url, with what the function said it is.
struct Received {
    message: Message,
    answer: Option<Answer>,
}

/// A button on a message, as Slack would show and send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub label: String,
    pub action_id: String,
    pub value: String,
    pub style: Option<String>,
}

pub async fn run(args: SlashArgs) -> anyhow::Result<ExitCode> {
    let secret = local::signing_secret_for_client()?;
    let gateway = args.gateway.clone().unwrap_or_else(local::default_gateway);
    let gateway = gateway.trim_end_matches('/').to_string();
    let (tx, mut rx) = mpsc::channel::<Received>(16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let response_url = format!("http://{}/response", listener.local_addr()?);
    let receiver = Router::new().route("/response", post(receive)).with_state(tx);
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let text = args.text.trim();
    let text = text.strip_prefix("/iaas").unwrap_or(text).trim().to_string();
    let form = SlashCommand {
        team_id: "T0LOCAL".into(),
        team_domain: "local".into(),
        channel_id: args.channel.clone(),
        channel_name: "local".into(),
        user_id: args.user.clone(),
        user_name: args.user.to_lowercase(),
        command: "/iaas".into(),
        text,
        response_url: response_url.clone(),
        trigger_id: local::random_hex(),
        ..Default::default()
    }
    .to_form();
    let resp = post_signed(&gateway, "commands", form, secret.expose()).await?;
    let dispatched = resp.headers().contains_key(iaas_gateway::REQUEST_ID_HEADER);
    let answer = outcome(resp.headers());
    let ack: Message = resp.json().await.context("the gateway's answer is not a Slack message")?;
    println!("{}", ack.readable());
    if !dispatched {
        // Answered by the gateway itself (help, usage, a refusal): there is nothing to press.
        return Ok(exit_code(answer));
    }
    let mut last = wait_for_answer(&mut rx, args.wait).await?;
    let mut press = args.press;
    loop {
        let buttons = buttons(&last.message);
        if buttons.is_empty() {
            return Ok(exit_code(last.answer));
        }
        println!();
        for (i, b) in buttons.iter().enumerate() {
            println!("  [{}] {}", i + 1, b.label);
        }
        let chosen = match press.take() {
            Some(n) => Some(n),
            None if std::io::stdin().is_terminal() => ask_which(buttons.len()).await?,
            None => {
                println!("Press one with: iaas slash --press <N> \"{}\"", args.text.trim());
                None
            }
        };
        let Some(n) = chosen else {
            return Ok(exit_code(last.answer));
        };
        let Some(button) = buttons.get(n.wrapping_sub(1)) else {
            bail!("there is no button {n}: this answer has {} (numbered from 1); nothing was pressed", buttons.len());
        };
        println!("\nPressing [{n}] {}", button.label);
        let form = press_form(button, &args.user, &args.channel, &response_url);
        let resp = post_signed(&gateway, "interactions", form, secret.expose()).await?;
        // Slack shows nothing for an empty ack; a refusal comes back as a message.
        let body = resp.text().await.unwrap_or_default();
        if let Ok(ack) = serde_json::from_str::<Message>(&body) {
            println!("{}", ack.readable());
        }
        last = wait_for_answer(&mut rx, args.wait).await?;
    }
}

/// Posts `form` to `<gateway>/slack/<path>`, signed like Slack; a non-2xx answer is an error.
async fn post_signed(gateway: &str, path: &str, form: String, secret: &str) -> anyhow::Result<reqwest::Response> {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = iaas_slack::sign(secret.as_bytes(), timestamp, form.as_bytes());
    let url = format!("{gateway}/slack/{path}");
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(iaas_slack::TIMESTAMP_HEADER, timestamp.to_string())
        .header(iaas_slack::SIGNATURE_HEADER, signature)
        .body(form)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach the gateway at {url}; is `iaas serve` running there?"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("the gateway answered {status}: {}", resp.text().await.unwrap_or_default().trim());
    }
    Ok(resp)
}

/// Prints what arrives at the response_url until a message that is not an interim note.
async fn wait_for_answer(rx: &mut mpsc::Receiver<Received>, wait: u64) -> anyhow::Result<Received> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(received)) => {
                println!("\n{}", without_buttons(&received.message).readable());
                if received.answer != Some(Answer::Interim) {
                    return Ok(received);
                }
            }
            _ => bail!("no answer within {wait} s"),
        }
    }
}

/// The message as read, its buttons left out: they are listed with their numbers instead.
fn without_buttons(message: &Message) -> Message {
    let mut shown = message.clone();
    shown.blocks.retain(|b| b["type"] != "actions");
    shown
}

/// Non-zero when the function said its answer reports a failure (a refusal included).
fn exit_code(answer: Option<Answer>) -> ExitCode {
    match answer {
        Some(Answer::Failed) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

/// Asks on the terminal which button to press; empty input presses none.
async fn ask_which(count: usize) -> anyhow::Result<Option<usize>> {
    tokio::task::spawn_blocking(move || loop {
        eprint!("Press which button (1-{count}, Enter for none)? ");
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(None);
        }
        match line.trim().parse::<usize>() {
            Ok(n) if (1..=count).contains(&n) => return Ok(Some(n)),
            _ => eprintln!("{:?} is not a number from 1 to {count}.", line.trim()),
        }
    })
    .await?
}

/// The buttons of a message's `actions` blocks, in the order Slack shows them.
pub fn buttons(message: &Message) -> Vec<Button> {
    let mut out = Vec::new();
    for block in message.blocks.iter().filter(|b| b["type"] == "actions") {
        for e in block["elements"].as_array().into_iter().flatten().filter(|e| e["type"] == "button") {
            out.push(Button {
                label: e["text"]["text"].as_str().unwrap_or_default().to_string(),
                action_id: e["action_id"].as_str().unwrap_or_default().to_string(),
                value: e["value"].as_str().unwrap_or_default().to_string(),
                style: e["style"].as_str().map(str::to_string),
            });
        }
    }
    out
}

/// The form body Slack posts for a press of `button` on an ephemeral message.
fn press_form(button: &Button, user: &str, channel: &str, response_url: &str) -> String {
    Press {
        user_id: user.to_string(),
        user_name: user.to_lowercase(),
        team_id: "T0LOCAL".into(),
        team_domain: "local".into(),
        channel_id: channel.to_string(),
        channel_name: "local".into(),
        response_url: response_url.to_string(),
        action_id: button.action_id.clone(),
        value: button.value.clone(),
        label: button.label.clone(),
        style: button.style.clone(),
        // The answers `iaas slash` prints are ephemeral: Slack echoes no message for them.
        message: None,
        enterprise: None,
    }
    .to_form()
}

/// What the sender said the message is ([`OUTCOME_HEADER`]), if it said.
fn outcome(headers: &HeaderMap) -> Option<Answer> {
    headers.get(OUTCOME_HEADER).and_then(|v| v.to_str().ok()).and_then(Answer::parse)
}

async fn receive(State(tx): State<mpsc::Sender<Received>>, headers: HeaderMap, Json(message): Json<Message>) -> &'static str {
    let answer = outcome(&headers);
    let _ = tx.send(Received { message, answer }).await;
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_are_listed_in_order_with_what_a_press_sends() {
        let message = Message::new("Delete build-agent-07?").with_block(serde_json::json!({
            "type": "actions",
            "block_id": "confirm",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Delete build-agent-07"}, "action_id": "delete.confirm", "value": "tok", "style": "danger"},
                {"type": "button", "text": {"type": "plain_text", "text": "Cancel"}, "action_id": "delete.cancel", "value": "tok"},
            ],
        }));
        let found = buttons(&message);
        assert_eq!(found.iter().map(|b| b.label.as_str()).collect::<Vec<_>>(), ["Delete build-agent-07", "Cancel"]);
        assert_eq!((found[0].action_id.as_str(), found[0].value.as_str()), ("delete.confirm", "tok"));
        assert_eq!((found[0].style.as_deref(), found[1].style.as_deref()), (Some("danger"), None));
        assert_eq!(without_buttons(&message).readable(), "Delete build-agent-07?");
        assert!(buttons(&Message::new("no buttons")).is_empty());
    }
}
