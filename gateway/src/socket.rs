//! Socket Mode ingress: the gateway opens outbound WebSockets to Slack (`apps.connections.open`)
//! and receives slash commands and button presses over them, for a gateway Slack cannot reach.
//!
//! Only the transport lives here. Each envelope is acked with what the HTTP ingress would have
//! answered, computed by the same [`run_command`]/[`run_interaction`]. There is no request
//! signature: authenticity is the app-level token, sent over TLS to Slack only.
//!
//! slack-morphism 2.31's Socket Mode listener is not used: its callbacks get the payload without
//! the envelope's `envelope_id` and `retry_attempt` (needed to act once on a redelivery), it
//! parses every Block Kit element of a press strictly (`interaction.rs` reads them leniently on
//! purpose), and it reconnects after the old socket closed rather than before. Its frame models
//! (`SlackSocketModeHelloEvent`, …) are not reachable from outside the crate (its `models`
//! module is private and `slack_morphism::socket_mode` names the listener), so the three frame
//! fields read here are declared below; payloads are read with the models the HTTP path uses.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use iaas_config::{ConfigError, Secret};
use iaas_slack::{Interaction, SlashCommand};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::slack::{audit_repeat, run_command, run_interaction, Ack, STORE_DOWN};
use crate::Gateway;

pub const APP_TOKEN: &str = "SLACK_APP_TOKEN";
pub const CONNECTIONS: &str = "SLACK_SOCKET_CONNECTIONS";
const DEFAULT_CONNECTIONS: usize = 2;
/// Slack allows an app ten Socket Mode connections at once.
const MAX_CONNECTIONS: usize = 10;

/// Reconnect back-off: doubling from the first step up to the cap, each wait jittered by up to
/// half so a fleet of gateways does not reconnect in step.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// We ping this often; a socket silent (no frame, no pong) for `SILENT_LIMIT` is dead.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENT_LIMIT: Duration = Duration::from_secs(45);
/// After `disconnect`, the old socket is drained this long at most (Slack closes it sooner).
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// For `apps.connections.open` and for the WebSocket handshake.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// `SLACK_APP_TOKEN` and how many connections to hold.
pub struct SocketSettings {
    pub app_token: Secret,
    pub connections: usize,
    /// `SLACK_API_URL` or Slack's, where `apps.connections.open` is called.
    pub api_url: String,
}

impl SocketSettings {
    /// `None` when no app token is set (Socket Mode off). The token is read like every secret.
    pub fn from_env() -> Result<Option<SocketSettings>, ConfigError> {
        let Some(app_token) = iaas_config::secret(APP_TOKEN)? else { return Ok(None) };
        if !app_token.expose().starts_with("xapp-") {
            return Err(ConfigError::new(
                APP_TOKEN,
                "is not an app-level token (those start with xapp-)",
                "Create one under Basic Information → App-Level Tokens with the connections:write scope.",
            ));
        }
        if iaas_runtime::on_lambda() {
            return Err(ConfigError::new(
                APP_TOKEN,
                "Socket Mode needs a long-running process, and a Lambda function cannot hold a WebSocket",
                "Run the Socket Mode gateway as a container (deploy/socket-mode), or unset SLACK_APP_TOKEN on Lambda.",
            ));
        }
        let connections = iaas_config::parse_var::<usize>(CONNECTIONS, "a number from 1 to 10")?.unwrap_or(DEFAULT_CONNECTIONS);
        if !(1..=MAX_CONNECTIONS).contains(&connections) {
            return Err(ConfigError::new(CONNECTIONS, format!("is {connections}"), "Slack allows 1 to 10 connections per app."));
        }
        let api_url = iaas_config::var("SLACK_API_URL").unwrap_or_else(|| iaas_slack::web::DEFAULT_API_URL.to_string());
        Ok(Some(SocketSettings { app_token, connections, api_url: api_url.trim_end_matches('/').to_string() }))
    }
}

/// How many Socket Mode connections are open (said `hello`), for `/_/ready` and logs.
#[derive(Clone, Default)]
pub struct SocketStatus(Arc<StatusInner>);

#[derive(Default)]
struct StatusInner {
    enabled: AtomicBool,
    open: AtomicUsize,
}

impl SocketStatus {
    pub fn enabled(&self) -> bool {
        self.0.enabled.load(Ordering::Relaxed)
    }

    pub fn open_connections(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    /// Ready unless Socket Mode is on and no connection is open (Slack could not reach us).
    pub fn ready(&self) -> bool {
        !self.enabled() || self.open_connections() > 0
    }
}

/// Counts a connection open from its `hello` until it is dropped.
struct OpenGuard(SocketStatus);

impl OpenGuard {
    fn new(status: &SocketStatus) -> OpenGuard {
        status.0.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(status.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0 .0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why `apps.connections.open` gave no URL.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    /// Slack refused the token: retrying cannot help.
    #[error("Slack refused the app token ({0})")]
    Refused(String),
    #[error("apps.connections.open failed: {0}")]
    Failed(String),
}

/// Checks the token with a first `apps.connections.open` (a refused token stops start-up with
/// one line), then holds `settings.connections` connections in background tasks.
pub async fn start(gateway: Arc<Gateway>, settings: SocketSettings) -> Result<(), ConfigError> {
    let tls = Arc::new(tls_config().map_err(|e| ConfigError::new(APP_TOKEN, format!("cannot set up TLS for Socket Mode: {e}"), ""))?);
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConfigError::new(APP_TOKEN, format!("cannot build an HTTP client: {e}"), ""))?;
    let opener = Arc::new(Opener { http, url: format!("{}/apps.connections.open", settings.api_url), token: settings.app_token });
    let mut first = match opener.open().await {
        Ok(url) => Some(url),
        Err(OpenError::Refused(code)) => {
            return Err(ConfigError::new(
                APP_TOKEN,
                format!("Slack refused it ({code})"),
                "Use the app-level token (xapp-…) with the connections:write scope, and turn Socket Mode on for the app.",
            ))
        }
        // Slack unreachable at start-up is not a configuration error: the slots retry.
        Err(e) => {
            tracing::warn!(error = %e, "Socket Mode: could not open a connection yet; retrying");
            None
        }
    };
    gateway.socket.0.enabled.store(true, Ordering::Relaxed);
    tracing::info!(connections = settings.connections, "Socket Mode on");
    for slot in 0..settings.connections {
        let slot = Slot { number: slot, gateway: gateway.clone(), opener: opener.clone(), tls: tls.clone() };
        tokio::spawn(slot.hold(first.take()));
    }
    Ok(())
}

/// rustls with ring and webpki's roots, built here so the process-wide crypto provider (two
/// are compiled in through the AWS SDK) never has to be guessed.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

struct Opener {
    http: reqwest::Client,
    url: String,
    token: Secret,
}

#[derive(Deserialize)]
struct OpenAnswer {
    ok: bool,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl Opener {
    /// A fresh WebSocket URL (each is single use).
    async fn open(&self) -> Result<String, OpenError> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(self.token.expose())
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            // Without the URL: reqwest's error names it, and it says nothing of the token.
            .map_err(|e| OpenError::Failed(e.without_url().to_string()))?;
        let status = response.status();
        let answer: OpenAnswer = response.json().await.map_err(|_| OpenError::Failed(format!("HTTP {status}, not Slack's answer")))?;
        match (answer.ok, answer.url, answer.error) {
            (true, Some(url), _) => Ok(url),
            (_, _, Some(code))
                if matches!(
                    code.as_str(),
                    "invalid_auth" | "not_allowed_token_type" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired"
                ) =>
            {
                Err(OpenError::Refused(code))
            }
            (_, _, error) => Err(OpenError::Failed(error.unwrap_or_else(|| format!("HTTP {status} without a URL")))),
        }
    }
}

/// One of the `SLACK_SOCKET_CONNECTIONS` connections the gateway keeps: a refreshed or dropped
/// socket is replaced, the refreshed one before it closes.
struct Slot {
    number: usize,
    gateway: Arc<Gateway>,
    opener: Arc<Opener>,
    tls: Arc<rustls::ClientConfig>,
}

/// How a connection ended, told to its slot.
enum Ended {
    /// Slack sent `disconnect`: replace it now, the old one drains meanwhile.
    Refresh,
    /// The socket closed or failed (dropping the sender says the same).
    Dropped,
}

impl Slot {
    async fn hold(self, mut url: Option<String>) {
        let mut failures: u32 = 0;
        loop {
            if failures > 0 {
                tokio::time::sleep(backoff(failures)).await;
            }
            let ws_url = match url.take() {
                Some(url) => url,
                None => match self.opener.open().await {
                    Ok(url) => url,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(slot = self.number, error = %e, "Socket Mode: could not get a connection URL; backing off");
                        continue;
                    }
                },
            };
            let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
            // Nagle off: acks are small frames that must not wait for more data.
            let connecting = tokio_tungstenite::connect_async_tls_with_config(ws_url.as_str(), None, true, Some(connector));
            let ws = match tokio::time::timeout(HTTP_TIMEOUT, connecting).await {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(e)) => {
                    failures += 1;
                    tracing::warn!(slot = self.number, error = %e, "Socket Mode: could not connect; backing off");
                    continue;
                }
                Err(_) => {
                    failures += 1;
                    tracing::warn!(slot = self.number, "Socket Mode: the WebSocket handshake timed out; backing off");
                    continue;
                }
            };
            let (ended_tx, ended_rx) = oneshot::channel();
            let (hello_tx, hello_rx) = oneshot::channel();
            let connection = Connection { slot: self.number, gateway: self.gateway.clone() };
            tokio::spawn(connection.serve(ws, hello_tx, ended_tx));
            // A connection that said hello resets the back-off.
            if hello_rx.await.is_ok() {
                failures = 0;
            }
            match ended_rx.await.unwrap_or(Ended::Dropped) {
                Ended::Refresh => {
                    tracing::info!(slot = self.number, "Socket Mode: Slack asked to refresh; opening the new connection first");
                }
                Ended::Dropped => {
                    failures += 1;
                    tracing::warn!(slot = self.number, "Socket Mode: connection dropped; reconnecting");
                }
            }
        }
    }
}

/// Doubling from [`BACKOFF_FIRST`] up to [`BACKOFF_CAP`], minus up to half as jitter.
fn backoff(failures: u32) -> Duration {
    let full = BACKOFF_FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(BACKOFF_CAP);
    full.mul_f64(1.0 - fastrand::f64() / 2.0)
}

/// A Socket Mode frame as Slack documents it; only what the transport needs is typed here.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    envelope_id: Option<EnvelopeId>,
    #[serde(default)]
    retry_attempt: u32,
    #[serde(default)]
    payload: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
struct EnvelopeId(String);

/// `hello`: Slack's count of the app's open connections.
#[derive(Deserialize)]
struct Hello {
    #[serde(default)]
    num_connections: Option<u32>,
}

/// `disconnect`: `refresh_requested`, `warning` (closing soon) or `link_disabled`.
#[derive(Deserialize)]
struct Disconnect {
    #[serde(default)]
    reason: String,
}

struct Connection {
    slot: usize,
    gateway: Arc<Gateway>,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Connection {
    /// Reads frames until the socket closes; each envelope is handled in a task of its own
    /// (commands run concurrently) and its ack written back through `acks`.
    async fn serve(self, ws: Socket, hello: oneshot::Sender<()>, ended: oneshot::Sender<Ended>) {
        let (mut sink, mut stream) = ws.split();
        let (acks_tx, mut acks) = mpsc::channel::<String>(64);
        let (mut hello, mut ended) = (Some(hello), Some(ended));
        let mut open: Option<OpenGuard> = None;
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut last_heard = tokio::time::Instant::now();
        let mut drain_until: Option<tokio::time::Instant> = None;
        loop {
            let drained = async {
                match drain_until {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                frame = stream.next() => {
                    let text = match frame {
                        Some(Ok(Frame::Text(text))) => text,
                        Some(Ok(Frame::Close(_))) | None => break,
                        // Pings are answered by tungstenite; any frame shows the socket lives.
                        Some(Ok(_)) => { last_heard = tokio::time::Instant::now(); continue }
                        Some(Err(e)) => {
                            tracing::warn!(slot = self.slot, error = %e, "Socket Mode: socket failed");
                            break;
                        }
                    };
                    last_heard = tokio::time::Instant::now();
                    let envelope: Envelope = match serde_json::from_str(text.as_str()) {
                        Ok(envelope) => envelope,
                        Err(e) => {
                            tracing::warn!(slot = self.slot, error = %e, "Socket Mode: ignored a frame that is not an envelope");
                            continue;
                        }
                    };
                    match envelope.kind.as_str() {
                        "hello" => {
                            let connections = serde_json::from_str::<Hello>(text.as_str()).ok().and_then(|h| h.num_connections);
                            open.get_or_insert_with(|| OpenGuard::new(&self.gateway.socket));
                            tracing::info!(slot = self.slot, slack_connections = ?connections, open = self.gateway.socket.open_connections(), "Socket Mode: connection open");
                            if let Some(hello) = hello.take() {
                                let _ = hello.send(());
                            }
                        }
                        "disconnect" => {
                            let reason = serde_json::from_str::<Disconnect>(text.as_str()).map(|d| d.reason).unwrap_or_default();
                            if reason == "link_disabled" {
                                tracing::error!(slot = self.slot, "Socket Mode: Slack disabled Socket Mode for this app; turn it on in the app's settings");
                            } else {
                                tracing::info!(slot = self.slot, %reason, "Socket Mode: Slack will close this connection; refreshing");
                            }
                            // The slot opens the replacement now (without waiting for a hello that may
                            // never come); this one keeps reading until Slack closes it.
                            hello.take();
                            if let Some(ended) = ended.take() {
                                let _ = ended.send(if reason == "link_disabled" { Ended::Dropped } else { Ended::Refresh });
                            }
                            drain_until.get_or_insert(tokio::time::Instant::now() + DRAIN_LIMIT);
                        }
                        _ => match envelope.envelope_id.clone() {
                            Some(id) => {
                                let (gateway, acks, slot) = (self.gateway.clone(), acks_tx.clone(), self.slot);
                                tokio::spawn(async move {
                                    let ack = handle(&gateway, slot, envelope, &id).await;
                                    let _ = acks.send(ack_frame(&id, ack.as_ref().and_then(Ack::payload))).await;
                                });
                            }
                            None => tracing::info!(slot = self.slot, kind = %envelope.kind, "Socket Mode: ignored a frame without an envelope id"),
                        },
                    }
                }
                Some(ack) = acks.recv() => {
                    if let Err(e) = sink.send(Frame::text(ack)).await {
                        // Unacked envelopes are redelivered by Slack on another connection.
                        tracing::warn!(slot = self.slot, error = %e, "Socket Mode: could not send an ack");
                        break;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > SILENT_LIMIT {
                        tracing::warn!(slot = self.slot, "Socket Mode: no frame from Slack for too long; dropping the connection");
                        break;
                    }
                    if sink.send(Frame::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
                _ = drained => break,
            }
        }
        let _ = sink.close().await;
        drop(open);
        tracing::info!(slot = self.slot, open = self.gateway.socket.open_connections(), "Socket Mode: connection closed");
        // `ended` still here: no disconnect came, so the socket dropped (the slot reconnects).
        if let Some(ended) = ended.take() {
            let _ = ended.send(Ended::Dropped);
        }
    }
}

/// One envelope, after the transport: acted on at most once per envelope id, then the path the
/// HTTP ingress shares. `None` acks bare.
async fn handle(gw: &Gateway, slot: usize, envelope: Envelope, id: &EnvelopeId) -> Option<Ack> {
    let kind = envelope.kind.as_str();
    if !matches!(kind, "slash_commands" | "interactive") {
        tracing::info!(slot, kind, "Socket Mode: acked an envelope type the bot does not handle");
        return None;
    }
    // Slack redelivers an envelope whose ack it did not get (retry_attempt > 0), maybe on another
    // connection or gateway replica: the store (or memory) remembers the id, as for replays.
    let now = (gw.clock)();
    match gw.replays.first_sight(&format!("socket-mode:{}", id.0), now, now).await {
        Ok(true) => {}
        Ok(false) => {
            let actor =
                envelope.payload.get("user_id").or_else(|| envelope.payload.pointer("/user/id")).and_then(Value::as_str).unwrap_or("slack");
            tracing::info!(slot, envelope_id = %id.0, retry_attempt = envelope.retry_attempt, "Socket Mode: redelivered envelope already handled; not run again");
            let reason = format!("Socket Mode envelope {} redelivered (retry {}); it was already received", id.0, envelope.retry_attempt);
            audit_repeat(gw, actor.to_string(), "redelivered envelope", reason).await;
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not check a Socket Mode envelope for redelivery");
            return Some(Ack::refused(STORE_DOWN.into()));
        }
    }
    if kind == "slash_commands" {
        match serde_json::from_value::<SlashCommand>(envelope.payload) {
            Ok(slash) if !slash.user_id.is_empty() => Some(run_command(gw, slash).await),
            _ => {
                tracing::warn!(slot, "Socket Mode: a slash_commands envelope without a readable command; acked");
                None
            }
        }
    } else {
        match serde_json::from_value::<Interaction>(envelope.payload) {
            Ok(interaction) => Some(run_interaction(gw, interaction).await),
            Err(e) => {
                tracing::warn!(slot, error = %e, "Socket Mode: an interactive envelope without a readable payload; acked");
                None
            }
        }
    }
}

/// `{"envelope_id": …, "payload": …}`: the payload is JSON the gateway built itself.
fn ack_frame(id: &EnvelopeId, payload: Option<&[u8]>) -> String {
    let id = serde_json::to_string(&id.0).unwrap_or_default();
    match payload.map(String::from_utf8_lossy) {
        Some(payload) => format!(r#"{{"envelope_id":{id},"payload":{payload}}}"#),
        None => format!(r#"{{"envelope_id":{id}}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_below_it() {
        for failures in 1..40 {
            let wait = backoff(failures);
            assert!(wait <= BACKOFF_CAP, "{failures}: {wait:?}");
            assert!(wait >= BACKOFF_FIRST / 2, "{failures}: {wait:?}");
        }
        assert!(backoff(30) >= BACKOFF_CAP / 2);
    }

    #[test]
    fn tls_is_set_up_with_ring_whatever_else_is_compiled_in() {
        assert!(tls_config().is_ok());
    }

    #[test]
    fn readiness_waits_for_a_connection_only_when_socket_mode_is_on() {
        let status = SocketStatus::default();
        assert!(status.ready(), "HTTP only: ready");
        status.0.enabled.store(true, Ordering::Relaxed);
        assert!(!status.ready());
        let open = OpenGuard::new(&status);
        assert!(status.ready());
        drop(open);
        assert!(!status.ready(), "a dropped connection is counted out");
    }

    #[test]
    fn an_ack_carries_the_envelope_id_and_the_payload_verbatim() {
        let id = EnvelopeId("57d6a792-\"x".into());
        let frame: Value = serde_json::from_str(&ack_frame(&id, Some(br#"{"text":"hi"}"#))).unwrap();
        assert_eq!(frame, serde_json::json!({"envelope_id": "57d6a792-\"x", "payload": {"text": "hi"}}));
        let bare: Value = serde_json::from_str(&ack_frame(&id, None)).unwrap();
        assert_eq!(bare, serde_json::json!({"envelope_id": "57d6a792-\"x"}));
    }
}
