//! `iaas slash "/iaas …"`: talk to a gateway the way Slack does — a signed form post — and
//! serve the response_url locally so the function's answer is printed too.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use iaas_slack::{Message, SlashCommand};
use tokio::sync::mpsc;

use crate::local;

#[derive(clap::Args)]
pub struct SlashArgs {
    /// The command as typed in Slack, e.g. "/iaas power off app-web-01".
    text: String,
    /// The gateway's base URL.
    #[arg(long, default_value = local::DEFAULT_GATEWAY)]
    gateway: String,
    /// The Slack user id to act as.
    #[arg(long, default_value = "U0LOCAL")]
    user: String,
    /// The Slack channel id to act in.
    #[arg(long, default_value = "C0LOCAL")]
    channel: String,
    /// How long to wait for the function's answer, in seconds.
    #[arg(long, default_value_t = 120)]
    wait: u64,
}

pub async fn run(args: SlashArgs) -> anyhow::Result<ExitCode> {
    let secret = local::signing_secret_for_client()?;
    let (tx, mut rx) = mpsc::channel::<Message>(16);
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
        response_url,
        trigger_id: local::random_hex(),
        ..Default::default()
    }
    .to_form();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = iaas_slack::sign(secret.expose().as_bytes(), timestamp, form.as_bytes());
    let url = format!("{}/slack/commands", args.gateway.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(iaas_slack::TIMESTAMP_HEADER, timestamp.to_string())
        .header(iaas_slack::SIGNATURE_HEADER, signature)
        .body(form)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {url} — is `iaas serve` running?"))?;
    let status = resp.status();
    let dispatched = resp.headers().contains_key(iaas_gateway::REQUEST_ID_HEADER);
    if !status.is_success() {
        bail!("the gateway answered {status}: {}", resp.text().await.unwrap_or_default().trim());
    }
    let ack: Message = resp.json().await.context("the gateway's answer is not a Slack message")?;
    println!("{}", ack.readable());
    if !dispatched {
        return Ok(ExitCode::SUCCESS);
    }
    match tokio::time::timeout(Duration::from_secs(args.wait), rx.recv()).await {
        Ok(Some(message)) => {
            println!("\n{}", message.readable());
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("no answer within {} s", args.wait),
    }
}

async fn receive(State(tx): State<mpsc::Sender<Message>>, Json(message): Json<Message>) -> &'static str {
    let _ = tx.send(message).await;
    "ok"
}
