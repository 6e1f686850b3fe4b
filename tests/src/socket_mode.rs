//! A stand-in for Slack's Socket Mode: `apps.connections.open` (an axum route to mount under the
//! tests' `SLACK_API_URL`) hands out `ws://` URLs of a WebSocket server that says `hello`, sends
//! envelopes in the shapes Slack documents, records the acks, and can ask for a refresh
//! (`disconnect`), drop a socket, and redeliver what was not acked, as Slack does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message as Frame;

/// What a connection's writer is told to do.
enum Order {
    Send(Value),
    /// Close the TCP connection without a close frame, as a network failure would.
    Drop,
}

struct Connection {
    orders: mpsc::UnboundedSender<Order>,
    open: bool,
}

/// An envelope sent and not yet acked: redelivered when its connection drops.
struct Pending {
    connection: u64,
    envelope: Value,
}

#[derive(Default)]
struct State {
    connections: HashMap<u64, Connection>,
    /// Every ack received, in order, with the connection it came on.
    acks: Vec<(u64, Value)>,
    unacked: HashMap<String, Pending>,
    /// `apps.connections.open` calls answered with a URL.
    opened: u32,
    /// When each envelope was first sent and first acked (for the benchmark).
    sent_at: HashMap<String, Instant>,
    acked_at: HashMap<String, Instant>,
}

#[derive(Clone)]
pub struct SocketMode {
    ws_base: String,
    app_token: String,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    next_id: Arc<AtomicU64>,
    /// Slack unreachable: WebSocket connections are closed before the handshake.
    refusing: Arc<AtomicBool>,
}

impl SocketMode {
    /// A WebSocket server on loopback that accepts connections opened with `app_token`.
    pub async fn start(app_token: &str) -> SocketMode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the Socket Mode stand-in");
        let ws_base = format!("ws://{}", listener.local_addr().unwrap());
        let socket = SocketMode {
            ws_base,
            app_token: app_token.into(),
            state: Arc::default(),
            changed: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            refusing: Arc::default(),
        };
        let accepting = socket.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let socket = accepting.clone();
                tokio::spawn(async move { socket.serve(tcp).await });
            }
        });
        socket
    }

    /// `POST /api/apps.connections.open`, to merge into the router serving `SLACK_API_URL`.
    pub fn router(&self) -> Router {
        let socket = self.clone();
        Router::new().route("/api/apps.connections.open", post(move |headers: HeaderMap| async move { Json(socket.open(&headers)) }))
    }

    /// Slack's answers: a fresh single-use URL, or `not_authed`, `not_allowed_token_type`
    /// (not an app-level token), `invalid_auth`.
    fn open(&self, headers: &HeaderMap) -> Value {
        let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        match bearer {
            None | Some("") => crate::slack::error("not_authed"),
            Some(token) if !token.starts_with("xapp-") => crate::slack::error("not_allowed_token_type"),
            Some(token) if token != self.app_token => crate::slack::error("invalid_auth"),
            Some(_) => {
                self.state.lock().unwrap().opened += 1;
                json!({"ok": true, "url": format!("{}/link/?ticket={}&app_id=A0E2EAPP1", self.ws_base, uuid::Uuid::new_v4())})
            }
        }
    }

    async fn serve(&self, tcp: tokio::net::TcpStream) {
        if self.refusing.load(Ordering::Relaxed) {
            return;
        }
        // Like Slack's edge, no Nagle delay on small frames.
        let _ = tcp.set_nodelay(true);
        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        let (mut sink, mut stream) = ws.split();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (orders, mut queue) = mpsc::unbounded_channel();
        let hello = {
            let mut state = self.state.lock().unwrap();
            state.connections.insert(id, Connection { orders, open: true });
            let open = state.connections.values().filter(|c| c.open).count();
            json!({
                "type": "hello", "num_connections": open,
                "debug_info": {"host": format!("applink-{id}"), "build_number": 105, "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0E2EAPP1"}
            })
        };
        if sink.send(Frame::text(hello.to_string())).await.is_err() {
            self.closed(id);
            return;
        }
        self.changed.notify_waiters();
        loop {
            tokio::select! {
                order = queue.recv() => match order {
                    Some(Order::Send(frame)) => if sink.send(Frame::text(frame.to_string())).await.is_err() { break },
                    Some(Order::Drop) | None => break,
                },
                frame = stream.next() => match frame {
                    Some(Ok(Frame::Text(text))) => self.record_ack(id, &text),
                    Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        // Dropping both halves closes the TCP connection; then what it left unacked goes elsewhere.
        drop((sink, stream));
        self.closed(id);
    }

    fn record_ack(&self, connection: u64, text: &str) {
        let Ok(ack) = serde_json::from_str::<Value>(text) else { return };
        let mut state = self.state.lock().unwrap();
        if let Some(id) = ack["envelope_id"].as_str() {
            state.unacked.remove(id);
            state.acked_at.entry(id.to_string()).or_insert_with(Instant::now);
        }
        state.acks.push((connection, ack));
        drop(state);
        self.changed.notify_waiters();
    }

    /// A closed connection's unacked envelopes are redelivered on another open connection,
    /// `retry_attempt` counted up, as Slack does.
    fn closed(&self, connection: u64) {
        let mut state = self.state.lock().unwrap();
        state.connections.remove(&connection);
        let target = state.connections.iter().find(|(_, c)| c.open).map(|(id, _)| *id);
        if let Some(target) = target {
            let orders = state.connections[&target].orders.clone();
            for pending in state.unacked.values_mut().filter(|p| p.connection == connection) {
                let retry = pending.envelope["retry_attempt"].as_u64().unwrap_or(0) + 1;
                pending.envelope["retry_attempt"] = retry.into();
                pending.envelope["retry_reason"] = "timeout".into();
                pending.connection = target;
                let _ = orders.send(Order::Send(pending.envelope.clone()));
            }
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Waits (up to 30 s) until at least `n` connections said hello and are not refreshing;
    /// their ids, oldest first.
    pub async fn connections(&self, n: usize) -> Vec<u64> {
        self.wait(|state| {
            let mut open: Vec<u64> = state.connections.iter().filter(|(_, c)| c.open).map(|(id, _)| *id).collect();
            open.sort();
            (open.len() >= n).then_some(open)
        })
        .await
        .unwrap_or_else(|| panic!("{n} Socket Mode connection(s) within 30 s"))
    }

    /// Sends an envelope on `connection`; it is remembered until acked.
    pub fn send(&self, connection: u64, envelope: Value) {
        let mut state = self.state.lock().unwrap();
        if let Some(id) = envelope["envelope_id"].as_str() {
            state.unacked.insert(id.to_string(), Pending { connection, envelope: envelope.clone() });
            state.sent_at.entry(id.to_string()).or_insert_with(Instant::now);
        }
        let _ = state.connections.get(&connection).expect("an open connection").orders.send(Order::Send(envelope));
    }

    /// Slack's `disconnect` with `reason` (`refresh_requested`, `warning`); the connection no
    /// longer gets envelopes and is closed after `grace` (Slack waits about 10 s).
    pub fn disconnect(&self, connection: u64, reason: &str, grace: Duration) {
        let frame = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": format!("applink-{connection}")}});
        let orders = {
            let mut state = self.state.lock().unwrap();
            let conn = state.connections.get_mut(&connection).expect("an open connection");
            conn.open = false;
            conn.orders.clone()
        };
        let _ = orders.send(Order::Send(frame));
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = orders.send(Order::Drop);
        });
    }

    /// While `refuse` holds, new WebSocket connections fail (as if Slack were unreachable).
    pub fn refuse_connections(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::Relaxed);
    }

    /// Closes `connection` abruptly (no close frame); its unacked envelopes are redelivered.
    pub fn drop_connection(&self, connection: u64) {
        if let Some(conn) = self.state.lock().unwrap().connections.get(&connection) {
            let _ = conn.orders.send(Order::Drop);
        }
    }

    /// The acks received for `envelope_id` so far.
    pub fn acks_for(&self, envelope_id: &str) -> Vec<Value> {
        self.state.lock().unwrap().acks.iter().filter(|(_, a)| a["envelope_id"] == envelope_id).map(|(_, a)| a.clone()).collect()
    }

    /// The first ack of `envelope_id` (waiting up to 30 s) and the connection it came on.
    pub async fn ack(&self, envelope_id: &str) -> (u64, Value) {
        self.wait(|state| state.acks.iter().find(|(_, a)| a["envelope_id"] == envelope_id).cloned())
            .await
            .unwrap_or_else(|| panic!("an ack of envelope {envelope_id} within 30 s"))
    }

    /// Waits until every envelope sent was acked (up to 60 s).
    pub async fn all_acked(&self) {
        self.wait_for(Duration::from_secs(60), |state| state.unacked.is_empty().then_some(()))
            .await
            .expect("every envelope acked within 60 s");
    }

    /// From sending `envelope_id` to its first ack, once acked.
    pub fn ack_latency(&self, envelope_id: &str) -> Option<Duration> {
        let state = self.state.lock().unwrap();
        Some(state.acked_at.get(envelope_id)?.duration_since(*state.sent_at.get(envelope_id)?))
    }

    /// Waits (up to 30 s) for the first ack of `envelope_id`; the time from sending it.
    pub async fn acked(&self, envelope_id: &str) -> Duration {
        self.wait(|state| Some(state.acked_at.get(envelope_id)?.duration_since(*state.sent_at.get(envelope_id)?)))
            .await
            .unwrap_or_else(|| panic!("an ack of envelope {envelope_id} within 30 s"))
    }

    /// Whether `connection` is still up (refreshing or not).
    pub fn is_connected(&self, connection: u64) -> bool {
        self.state.lock().unwrap().connections.contains_key(&connection)
    }

    /// How many URLs `apps.connections.open` handed out.
    pub fn opened(&self) -> u32 {
        self.state.lock().unwrap().opened
    }

    async fn wait<T>(&self, ready: impl Fn(&State) -> Option<T>) -> Option<T> {
        self.wait_for(Duration::from_secs(30), ready).await
    }

    async fn wait_for<T>(&self, limit: Duration, ready: impl Fn(&State) -> Option<T>) -> Option<T> {
        tokio::time::timeout(limit, async {
            loop {
                let changed = self.changed.notified();
                if let Some(found) = ready(&self.state.lock().unwrap()) {
                    return found;
                }
                // A change between the check and here is not lost: poll again shortly anyway.
                let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
            }
        })
        .await
        .ok()
    }
}

/// A `slash_commands` envelope as Slack documents it: the command's fields as JSON strings.
pub fn slash_envelope(envelope_id: &str, user: &str, text: &str, response_url: &str) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": {
            "token": "legacy-verification-token-not-used",
            "team_id": "T0E2E", "team_domain": "e2e",
            "channel_id": "C0E2E", "channel_name": "e2e",
            "user_id": user, "user_name": user.to_lowercase(),
            "command": "/iaas", "text": text,
            "api_app_id": "A0E2EAPP1", "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "13345224609.738474920.8088930838d88f008e0"
        }
    })
}

/// An `interactive` envelope carrying `payload` (e.g. `iaas_slack::Press::payload()`).
pub fn interactive_envelope(envelope_id: &str, payload: Value) -> Value {
    json!({"envelope_id": envelope_id, "type": "interactive", "accepts_response_payload": false, "payload": payload})
}

/// A fresh envelope id in Slack's shape (a UUID).
pub fn envelope_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
