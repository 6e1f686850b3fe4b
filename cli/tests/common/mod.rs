//! Drives the real `iaas` binary the way a user and Slack do: `iaas serve` as a child process,
//! signed slash commands, and a local stand-in for Slack's response_url.

#![allow(dead_code)]

pub mod decommission;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use iaas_slack::{Message, Press, SlashCommand};
use iaas_tests::slack;
use iaas_tests::slapd::{Slapd, BASE_DN, SVC_DN, SVC_PASSWORD};
use iaas_tests::socket_mode::SocketMode;
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{mpsc, Mutex};

pub const SIGNING_SECRET: &str = "e2e-signing-secret";
pub const SHARED_SECRET: &str = "e2e-shared-secret";
/// The app-level token the Socket Mode stand-in accepts (`SLACK_APP_TOKEN`).
pub const APP_TOKEN: &str = "xapp-1-A0E2EAPP1-1733320000-e2e";

pub struct Serve {
    pub url: String,
    pub dir: PathBuf,
    /// Everything posted to the stand-in for Slack's chat.postMessage, with the `ts` it got.
    pub posts: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    /// Every chat.update the stand-in took (of a message posted before).
    pub updates: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    /// Slack's Socket Mode stand-in; `iaas serve` connects to it when `SLACK_APP_TOKEN` is set.
    pub socket: SocketMode,
    /// The environment `iaas serve` got, so `cli()` runs `iaas` against the same state.
    env: Vec<(String, String)>,
    child: Child,
    responses: Mutex<mpsc::Receiver<Message>>,
    /// The stand-in's base URL; each command and press gets a response_url of its own under it.
    slack_base: String,
    next_url: std::sync::atomic::AtomicU64,
}

impl Serve {
    /// `iaas serve` on a free port with its own state; `vcenter` is a vcsim URL or None (demo).
    pub async fn start(vcenter: Option<&str>) -> Serve {
        Serve::start_with(vcenter, &[]).await
    }

    pub async fn start_with(vcenter: Option<&str>, extra_env: &[(&str, &str)]) -> Serve {
        let dir = std::env::temp_dir().join(format!("iaas-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        // Slack's response_url stand-in, on loopback (SLACK_API_URL's host is allowed).
        let (tx, rx) = mpsc::channel(32);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let posts: Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Arc::default();
        let updates = Updates::default();
        let socket = SocketMode::start(APP_TOKEN).await;
        let app = Router::new()
            .route("/commands/{team}/{n}/{secret}", post(receive))
            .route("/actions/{team}/{n}/{secret}", post(receive))
            .with_state(ResponseUrls { tx, uses: Arc::default() })
            .route("/api/users.info", axum::routing::get(users_info))
            .route("/api/users.lookupByEmail", axum::routing::get(users_lookup_by_email))
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update_message))
            .merge(socket.router())
            .layer(axum::Extension(posts.clone()))
            .layer(axum::Extension(updates.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("IAAS_STATE_DIR".into(), dir.display().to_string()),
            ("DATABASE_URL".into(), format!("sqlite://{}/iaas.db", dir.display())),
            ("SLACK_SIGNING_SECRET".into(), SIGNING_SECRET.into()),
            ("IAAS_SHARED_SECRET".into(), SHARED_SECRET.into()),
            ("SLACK_API_URL".into(), format!("{base}/api")),
            ("SLACK_BOT_TOKEN".into(), "e2e-bot-token".into()),
            ("RUST_LOG".into(), std::env::var("IAAS_E2E_LOG").unwrap_or_else(|_| "warn".into())),
        ];
        if let Some(url) = vcenter {
            env.extend([
                ("VCENTER_URL".into(), url.into()),
                ("VCENTER_USER".into(), "iaas".into()),
                ("VCENTER_PASSWORD".into(), "secret".into()),
                // Most tests run without roles; a policy with [roles] makes this moot.
                ("IAAS_ALLOW_EVERYONE".into(), "true".into()),
            ]);
        }
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (child, url) = spawn_serve(&env).await;
        Serve {
            url,
            dir,
            posts,
            updates: updates.0,
            socket,
            env,
            child,
            responses: Mutex::new(rx),
            slack_base: base,
            next_url: Default::default(),
        }
    }

    /// Kills `iaas serve` (like a crashed worker: no clean shutdown) and starts another on the
    /// same environment — same store, vCenter and Slack stand-ins.
    pub async fn restart(&mut self) {
        let _ = self.child.kill().await;
        (self.child, self.url) = spawn_serve(&self.env).await;
    }

    /// Sends `/iaas <text>` as user `user`, signed like Slack; returns the HTTP status, the ack,
    /// and the request id when work was dispatched.
    pub async fn slash(&self, user: &str, text: &str) -> (u16, Message, Option<String>) {
        let resp = self.post_signed("commands", self.slash_form(user, text)).await;
        let status = resp.status().as_u16();
        let id = resp.headers().get(iaas_gateway::REQUEST_ID_HEADER).map(|v| v.to_str().unwrap().to_string());
        let ack = resp.json().await.unwrap_or_default();
        (status, ack, id)
    }

    /// Presses a button (`delete.confirm`, `resize.cancel`, …) on an ephemeral message, as `user`,
    /// with the payload Slack documents for it. Returns the HTTP status.
    pub async fn press(&self, user: &str, action_id: &str, token: &str) -> u16 {
        self.press_with(user, action_id, token, |_| {}).await
    }

    /// Like [`Serve::press`], with the payload's shape changed first: a message in the channel
    /// (`press.message`), Enterprise Grid (`press.enterprise`), …
    pub async fn press_with(&self, user: &str, action_id: &str, token: &str, shape: impl FnOnce(&mut Press)) -> u16 {
        let mut press = self.press_on(user, action_id, token);
        shape(&mut press);
        self.post_signed("interactions", press.to_form()).await.status().as_u16()
    }

    /// The `block_actions` payload of `user` pressing `action_id` with `token` on an ephemeral
    /// message, as Slack documents it (for a Socket Mode envelope).
    pub fn press_payload(&self, user: &str, action_id: &str, token: &str) -> serde_json::Value {
        Press { style: Some("danger".into()), ..self.press_on(user, action_id, token) }.payload()
    }

    /// The whole form Slack posts for `/iaas <text>` from `user`, with a response_url of its own.
    fn slash_form(&self, user: &str, text: &str) -> String {
        SlashCommand {
            team_id: "T0E2E".into(),
            channel_id: "C0E2E".into(),
            user_id: user.into(),
            user_name: user.to_lowercase(),
            command: "/iaas".into(),
            text: text.into(),
            response_url: self.fresh_url("commands"),
            team_domain: "e2e".into(),
            channel_name: "e2e".into(),
            trigger_id: "13345224609.738474920.8088930838d88f008e0".into(),
            api_app_id: "A0E2EAPP1".into(),
            ..Default::default()
        }
        .to_form()
            + "&token=legacy-verification-token-not-used&is_enterprise_install=false"
    }

    /// `user` pressing `action_id` with `token` on an ephemeral message, as Slack documents it.
    fn press_on(&self, user: &str, action_id: &str, token: &str) -> Press {
        Press {
            user_id: user.into(),
            user_name: user.to_lowercase(),
            team_id: "T0E2E".into(),
            team_domain: "e2e".into(),
            channel_id: "C0E2E".into(),
            channel_name: "e2e".into(),
            response_url: self.fresh_url("actions"),
            action_id: action_id.into(),
            value: token.into(),
            label: "Confirm".into(),
            style: None,
            message: None,
            enterprise: None,
        }
    }

    /// A response_url of its own, as Slack gives each command and press one.
    fn fresh_url(&self, kind: &str) -> String {
        let n = self.next_url.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        format!("{}/{kind}/T0E2E/{n}/e2eSecretPart", self.slack_base)
    }

    /// Posts a form to `/slack/<path>`, signed with the signing secret the way Slack signs.
    async fn post_signed(&self, path: &str, form: String) -> reqwest::Response {
        let ts = chrono::Utc::now().timestamp();
        reqwest::Client::new()
            .post(format!("{}/slack/{path}", self.url))
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", iaas_slack::sign(SIGNING_SECRET.as_bytes(), ts, form.as_bytes()))
            .body(form)
            .send()
            .await
            .unwrap()
    }

    /// The next message a function posted to the response_url.
    pub async fn answer(&self) -> Message {
        tokio::time::timeout(Duration::from_secs(60), self.responses.lock().await.recv())
            .await
            .expect("a response_url message within 60 s")
            .unwrap()
    }

    /// A command through Slack and its final answer, as one line of readable text.
    pub async fn run(&self, user: &str, text: &str) -> Message {
        let (status, ack, id) = self.slash(user, text).await;
        assert_eq!(status, 200);
        assert!(id.is_some(), "`{text}` was not dispatched: {}", ack.readable());
        self.answer().await
    }

    /// Posts a body straight to a function mounted at `/function/<name>`.
    pub async fn post_function(&self, name: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, String) {
        let mut req = reqwest::Client::new().post(format!("{}/function/{name}", self.url)).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// `iaas <args>` with the same environment as the running `iaas serve` (same store, vCenter,
    /// Slack stand-in); returns stdout, panicking with stderr when it fails.
    pub async fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_iaas")).args(args).env_clear().envs(self.env.iter().cloned()).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "iaas {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    /// `iaas <args>` like `cli`, whatever its exit status.
    pub async fn cli_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_iaas")).args(args).env_clear().envs(self.env.iter().cloned()).output().await.unwrap()
    }

    /// chat.postMessage calls so far to this channel or user.
    pub fn posts_to(&self, channel: &str) -> Vec<serde_json::Value> {
        self.posts.lock().unwrap().iter().filter(|p| p["channel"] == channel).cloned().collect()
    }

    /// A fresh response_url of the stand-in, for invocations a test builds itself.
    pub fn response_url(&self) -> String {
        self.fresh_url("commands")
    }

    /// Another `iaas serve` on this environment plus `extra`, expected to stop at start-up
    /// (killed after 30 s otherwise); its exit status and output.
    pub async fn serve_output(&self, extra: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iaas"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env_clear()
            .envs(self.env.iter().cloned())
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.expect("iaas serve stops within 30 s").unwrap()
    }

    pub async fn healthy(&self) -> bool {
        reqwest::get(format!("{}/_/health", self.url)).await.map(|r| r.status().is_success()).unwrap_or(false)
    }
}

/// `iaas serve` on a free port with exactly `env`, and the URL it listens on.
async fn spawn_serve(env: &[(String, String)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iaas"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn iaas serve");
    let url = listening(&mut BufReader::new(child.stdout.take().unwrap()).lines()).await;
    (child, url)
}

/// Reads `iaas serve`'s stdout up to the line that says where it listens (within 30 s); the URL.
pub async fn listening(stdout: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("iaas serve listening on ") {
                return url.to_string();
            }
        }
        panic!("iaas serve exited before listening");
    })
    .await
    .expect("iaas serve listening within 30 s")
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Slack's chat.postMessage, answered as Slack documents it (`ok`, `channel`, `ts`, `message`):
/// records the message; a DM to a user id lands in a `D…` channel; each post gets its own
/// `ts`; no bearer token → `not_authed`; the user U0NODM cannot be messaged.
async fn post_message(
    axum::Extension(posts): axum::Extension<Arc<std::sync::Mutex<Vec<serde_json::Value>>>>,
    headers: axum::http::HeaderMap,
    Json(mut body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if let Some(refusal) = unauthed(&headers) {
        return refusal;
    }
    if body["channel"] == "U0NODM" {
        return Json(slack::error("cannot_dm_bot"));
    }
    let mut posts = posts.lock().unwrap();
    let ts = format!("1700000000.{:06}", posts.len() + 1);
    body["ts"] = ts.clone().into();
    let answer = slack::posted(&body, &ts);
    posts.push(body);
    Json(answer)
}

/// Slack's answer to a Web API call without a bot token.
fn unauthed(headers: &axum::http::HeaderMap) -> Option<Json<serde_json::Value>> {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_none_or(str::is_empty).then(|| Json(slack::error("not_authed")))
}

#[derive(Clone, Default)]
struct Updates(Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

/// chat.update: only a message that was posted (by ts) can be updated; answered as Slack
/// documents it (`ok`, `channel`, `ts`, `text`, `message`).
async fn update_message(
    axum::Extension(posts): axum::Extension<Arc<std::sync::Mutex<Vec<serde_json::Value>>>>,
    axum::Extension(updates): axum::Extension<Updates>,
    headers: axum::http::HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    if let Some(refusal) = unauthed(&headers) {
        return refusal;
    }
    if !posts.lock().unwrap().iter().any(|p| p["ts"] == body["ts"]) {
        return Json(slack::error("message_not_found"));
    }
    updates.0.lock().unwrap().push(body.clone());
    Json(slack::updated(&body))
}

/// Slack's users.info, with the whole user object Slack documents, for the people the access
/// tests resolve through Slack.
async fn users_info(
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Json<serde_json::Value> {
    if let Some(refusal) = unauthed(&headers) {
        return refusal;
    }
    let user = q.get("user").cloned().unwrap_or_default();
    Json(match user.as_str() {
        "U0ERIN" => slack::user_info(&user, "erin", Some("erin@example.test"), false),
        "U0CAROL" => slack::user_info(&user, "carol", Some("carol@example.test"), true),
        _ => slack::error("user_not_found"),
    })
}

/// Slack's users.lookupByEmail (the same user object as users.info), for the people the web
/// console finds in Slack.
async fn users_lookup_by_email(
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Json<serde_json::Value> {
    if let Some(refusal) = unauthed(&headers) {
        return refusal;
    }
    let email = q.get("email").cloned().unwrap_or_default();
    Json(match email.as_str() {
        "bob@example.test" => slack::user_info("U0BOB", "bob", Some(&email), false),
        "erin@example.test" => slack::user_info("U0ERIN", "erin", Some(&email), false),
        _ => slack::error("users_not_found"),
    })
}

/// The response_urls Slack handed out, and how often each was used.
#[derive(Clone)]
struct ResponseUrls {
    tx: mpsc::Sender<Message>,
    uses: Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

/// A post to a response_url. Slack takes five per URL (within 30 minutes), then refuses.
async fn receive(State(urls): State<ResponseUrls>, uri: axum::http::Uri, Json(m): Json<Message>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uses = {
        let mut all = urls.uses.lock().unwrap();
        let n = all.entry(uri.path().to_string()).or_default();
        *n += 1;
        *n
    };
    if uses > 5 {
        return (axum::http::StatusCode::NOT_FOUND, Json(slack::error("used_url"))).into_response();
    }
    let _ = urls.tx.send(m).await;
    Json(serde_json::json!({"ok": true})).into_response()
}

/// The confirmation token on a message's buttons.
pub fn button_token(message: &Message) -> String {
    message
        .blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find_map(|e| e["value"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no buttons on: {}", message.readable()))
}

/// `iaas serve` on vcsim with `policy` (TOML) as its `IAAS_CONFIG` and `env` besides, and a
/// SOAP client of the same vcsim to look at what the commands did.
pub async fn start_on(vcsim: &Vcsim, policy: &str, env: &[(&str, &str)]) -> (Serve, SoapClient) {
    let path = policy_file(policy);
    let mut all = vec![("IAAS_CONFIG", path.to_str().unwrap())];
    all.extend_from_slice(env);
    let serve = Serve::start_with(Some(&vcsim.url), &all).await;
    (serve, SoapClient::new(vcsim.config()).unwrap())
}

/// The environment that points `iaas serve` at a seeded slapd, bound as its read-only service
/// account, for [`Serve::start_with`] or [`start_on`].
pub fn ldap_env(slapd: &Slapd) -> [(&'static str, &str); 4] {
    [("LDAP_URL", slapd.url.as_str()), ("LDAP_BIND_DN", SVC_DN), ("LDAP_BIND_PASSWORD", SVC_PASSWORD), ("LDAP_BASE_DN", BASE_DN)]
}

/// Writes a policy file for `IAAS_CONFIG` and returns its path.
pub fn policy_file(toml: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("iaas-policy-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, toml).unwrap();
    path
}

impl Serve {
    /// `iaas trigger <function>` against this server, as a scheduler runs it; its output.
    pub async fn trigger(&self, function: &str) -> String {
        self.cli(&["trigger", function, "--gateway", &self.url]).await
    }
}

impl Serve {
    /// The process id of `iaas serve`, to read its open files in /proc.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("iaas serve is running")
    }
}

/// A slash command signed once, to be sent again as a replayer would.
pub struct Captured {
    form: String,
    timestamp: i64,
    signature: String,
}

impl Serve {
    /// `/iaas <text>` as `user`, signed like Slack signs it now, not yet sent.
    pub fn capture(&self, user: &str, text: &str) -> Captured {
        let form = self.slash_form(user, text);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = iaas_slack::sign(SIGNING_SECRET.as_bytes(), timestamp, form.as_bytes());
        Captured { form, timestamp, signature }
    }

    /// Sends a captured command exactly as it was signed; the HTTP status.
    pub async fn send_captured(&self, captured: &Captured) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/slack/commands", self.url))
            .header("x-slack-request-timestamp", captured.timestamp.to_string())
            .header("x-slack-signature", &captured.signature)
            .body(captured.form.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}
