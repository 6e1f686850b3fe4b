//! vCenter SOAP calls per command: vcsim (tests/vcsim, which counts calls by method at
//! `GET /_stats`), `iaas serve` against it, signed slash commands, and a local stand-in for
//! Slack's response_url. The same commands are sent in several passes, so the first (cold:
//! login, service content, views) and the later ones (warm session) show separately.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use iaas_slack::Message;
use iaas_tests::vcsim::{Vcsim, VcsimOptions, PASSWORD, USER};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::load::{send_once, REQUEST_ID_HEADER};
use crate::proc::Proc;
use crate::slack::{form, unix_now, Signed, SHARED_SECRET, SIGNING_SECRET};

pub const COMMANDS: &[&str] = &["vm list", "vm info app-web-01", "power off app-web-01", "power on app-web-01"];

const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct CommandCalls {
    pub pass: usize,
    pub text: String,
    /// SOAP calls by method while this command ran.
    pub calls: BTreeMap<String, u64>,
    /// Request plus response body bytes by method while this command ran.
    pub bytes: BTreeMap<String, u64>,
    /// Slash command sent → answer received on the response_url.
    pub answer_ms: f64,
    /// First line of the answer, to show it worked.
    pub answer: String,
}

impl CommandCalls {
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.bytes.values().sum()
    }
}

pub struct VcenterReport {
    /// Calls made by `iaas serve` between start and its first command.
    pub startup: BTreeMap<String, u64>,
    pub commands: Vec<CommandCalls>,
    /// Logins by `iaas serve` over the whole run.
    pub logins: u64,
}

/// vcsim's SOAP counts by method (`GET /_stats`).
pub type Stats = HashMap<String, u64>;

/// What grew from `before` to `after`, by method.
pub fn diff(before: &Stats, after: &Stats) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Stats once they stop changing (a function may still be finishing after its answer).
pub async fn settled(vcsim: &Vcsim) -> Result<Stats> {
    let mut last = vcsim.stats().await?;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = vcsim.stats().await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// The URL `iaas serve` (spawned with its stdout piped) says it listens on, within 30 s; its
/// stdout is drained after, so it never blocks on a full pipe.
pub async fn listening_url(serve: &mut Proc) -> Result<String> {
    let stdout = serve.child_mut().stdout.take().ok_or_else(|| anyhow!("iaas serve has no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("iaas serve listening on ") {
                return Ok(url.trim().to_string());
            }
        }
        bail!("iaas serve exited before listening")
    })
    .await
    .map_err(|_| anyhow!("iaas serve did not listen within 30 s"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(url)
}

async fn receive(State(tx): State<mpsc::Sender<Message>>, Json(m): Json<Message>) -> &'static str {
    let _ = tx.send(m).await;
    "ok"
}

pub async fn measure(iaas_bin: &Path, workdir: &Path, passes: usize) -> Result<VcenterReport> {
    measure_with(iaas_bin, workdir, passes, 0, COMMANDS).await
}

/// A command's text in pass `pass`: `{pass}` is replaced (a `create` needs a new name each time).
pub fn command_text(text: &str, pass: usize) -> String {
    text.replace("{pass}", &pass.to_string())
}

/// [`measure`] with `extra_vms` more VMs in vcsim (`bench-vm-001`…) and these commands.
pub async fn measure_with(iaas_bin: &Path, workdir: &Path, passes: usize, extra_vms: usize, commands: &[&str]) -> Result<VcenterReport> {
    let opts = VcsimOptions { extra_vms, ..VcsimOptions::default() };
    let vcsim = Vcsim::start_with(opts).await.context("starting vcsim (tests/vcsim)")?;
    measure_on(&vcsim, iaas_bin, workdir, passes, commands, &[]).await
}

/// [`measure`] against a running vcsim, with `extra_env` for `iaas serve` (e.g. `IAAS_CONFIG`).
pub async fn measure_on(
    vcsim: &Vcsim,
    iaas_bin: &Path,
    workdir: &Path,
    passes: usize,
    commands: &[&str],
    extra_env: &[(&str, String)],
) -> Result<VcenterReport> {
    let initial = vcsim.stats().await?;

    // Slack's response_url stand-in on loopback; SLACK_API_URL's host (127.0.0.1) is allowed.
    let (tx, mut answers) = mpsc::channel::<Message>(16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let response_url = format!("http://{}/response", listener.local_addr()?);
    let receiver = tokio::spawn(async move { axum::serve(listener, Router::new().route("/response", post(receive)).with_state(tx)).await });

    let dir = workdir.join("serve");
    std::fs::create_dir_all(&dir)?;
    let mut env = vec![
        ("IAAS_STATE_DIR", dir.display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}/iaas.db", dir.display())),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_string()),
        ("IAAS_SHARED_SECRET", SHARED_SECRET.to_string()),
        // No port: loopback response_urls on any port are allowed (local mode).
        ("SLACK_API_URL", "http://127.0.0.1".to_string()),
        ("VCENTER_URL", vcsim.url.clone()),
        ("VCENTER_USER", USER.to_string()),
        ("VCENTER_PASSWORD", PASSWORD.to_string()),
        // No roles on a real vCenter needs consent (issue #18).
        ("IAAS_ALLOW_EVERYONE", "true".to_string()),
        ("RUST_LOG", "warn".to_string()),
    ];
    env.extend(extra_env.iter().cloned());
    let mut serve = Proc::spawn("iaas serve", iaas_bin, &["serve", "--listen", "127.0.0.1:0"], &env, workdir.join("iaas-serve.log"), true)?;
    let url = listening_url(&mut serve).await?;
    let addr: SocketAddr = url.trim_start_matches("http://").parse().with_context(|| format!("iaas serve printed {url:?}"))?;
    if !addr.ip().is_loopback() {
        bail!("iaas serve listens on {addr}, not loopback");
    }

    let after_start = settled(vcsim).await?;
    let startup = diff(&initial, &after_start);

    let mut measured = Vec::new();
    let mut n = 0u64;
    for pass in 1..=passes {
        for text in commands {
            let text = &command_text(text, pass);
            serve.check_alive()?;
            n += 1;
            let before = vcsim.stats().await?;
            let before_bytes = vcsim.bytes().await?;
            let started = Instant::now();
            let req = Signed::new(form(900_000 + n, text, &response_url), unix_now());
            let ack = send_once(addr, &req).await.with_context(|| format!("sending `{text}`"))?;
            if !ack.status.is_success() || !ack.headers.contains_key(REQUEST_ID_HEADER) {
                bail!("`{text}` was not dispatched ({}): {}", ack.status, String::from_utf8_lossy(&ack.body));
            }
            let answer = tokio::time::timeout(ANSWER_TIMEOUT, answers.recv())
                .await
                .map_err(|_| anyhow!("no answer to `{text}` within {ANSWER_TIMEOUT:?}"))?
                .ok_or_else(|| anyhow!("response receiver stopped"))?;
            let answer_ms = started.elapsed().as_secs_f64() * 1000.0;
            let after = settled(vcsim).await?;
            let after_bytes = vcsim.bytes().await?;
            let readable = answer.readable();
            measured.push(CommandCalls {
                pass,
                text: text.to_string(),
                calls: diff(&before, &after),
                bytes: diff(&before_bytes, &after_bytes),
                answer_ms,
                answer: readable.lines().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(80).collect(),
            });
        }
    }
    let last = vcsim.stats().await?;
    let logins = last.get("Login").copied().unwrap_or(0).saturating_sub(initial.get("Login").copied().unwrap_or(0));
    serve.stop().await;
    receiver.abort();
    Ok(VcenterReport { startup, commands: measured, logins })
}
