//! `socket-bench`: Socket Mode envelope → ack latency, and the same command as a signed HTTP
//! POST → ack, on one `iaas serve` (demo inventory, SQLite) in one run. The Socket Mode side is
//! the tests' stand-in (`iaas_tests::socket_mode`) on loopback. See bench/README.md.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use iaas_bench::proc::sibling_binary;
use iaas_bench::slack::{unix_now, SHARED_SECRET, SIGNING_SECRET};
use iaas_tests::socket_mode::{envelope_id, slash_envelope, SocketMode};
use tokio::io::{AsyncBufReadExt, BufReader};

const APP_TOKEN: &str = "xapp-1-A0BENCH01-1733320000-bench";
const TEXT: &str = "power status app-web-01";

#[derive(Parser)]
#[command(name = "socket-bench", about = "Socket Mode envelope → ack latency against the same command over HTTP")]
struct Args {
    /// Commands measured per ingress and level (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 640)]
    commands: usize,
    /// Envelopes (and HTTP requests) in flight.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 64])]
    in_flight: Vec<usize>,
    /// Where `iaas` is (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let socket = SocketMode::start(APP_TOKEN).await;
    // SLACK_API_URL: apps.connections.open and a response_url sink (the functions' answers).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = Router::new().route("/commands/{n}", post(|| async { Json(serde_json::json!({"ok": true})) })).merge(socket.router());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!("iaas-socket-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let iaas = sibling_binary(args.bin_dir.as_deref(), "iaas")?;
    let log = dir.join("serve.log");
    let mut child = tokio::process::Command::new(&iaas)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IAAS_STATE_DIR", &dir)
        .env("DATABASE_URL", format!("sqlite://{}/iaas.db", dir.display()))
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("IAAS_SHARED_SECRET", SHARED_SECRET)
        .env("SLACK_API_URL", format!("{base}/api"))
        .env("SLACK_APP_TOKEN", APP_TOKEN)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log)?))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", iaas.display()))?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let url = loop {
        match lines.next_line().await? {
            Some(line) => {
                if let Some(url) = line.strip_prefix("iaas serve listening on ") {
                    break url.to_string();
                }
            }
            None => bail!("iaas serve exited; see {}", log.display()),
        }
    };
    let connections = socket.connections(2).await;
    let target = Target { socket: socket.clone(), connections, http: reqwest::Client::new(), gateway: url, base };

    println!("| ingress | in flight | commands | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for &in_flight in &args.in_flight {
        for ingress in [Ingress::SocketMode, Ingress::Http] {
            measure(&target, ingress, in_flight, (args.commands / 10).max(in_flight)).await;
            let mut latencies = measure(&target, ingress, in_flight, args.commands).await;
            latencies.sort();
            let q = |p: f64| latencies[((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1].as_secs_f64() * 1000.0;
            println!("| {ingress:?} | {in_flight} | {} | {:.2} | {:.2} | {:.2} |", latencies.len(), q(0.5), q(0.99), q(1.0));
        }
    }
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ingress {
    SocketMode,
    Http,
}

/// Both ways into the same `iaas serve`.
#[derive(Clone)]
struct Target {
    socket: SocketMode,
    connections: Vec<u64>,
    http: reqwest::Client,
    gateway: String,
    base: String,
}

/// Makes every command's body unique (its response_url), so no signed request is a replay.
static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Target {
    /// Sends command `n` and waits for its ack: the time in between.
    async fn one(&self, ingress: Ingress, n: usize) -> Duration {
        let response_url = format!("{}/commands/{n}", self.base);
        match ingress {
            Ingress::SocketMode => {
                let id = envelope_id();
                self.socket.send(self.connections[n % self.connections.len()], slash_envelope(&id, "U0BENCH01", TEXT, &response_url));
                self.socket.acked(&id).await
            }
            Ingress::Http => {
                let form = form(&response_url);
                let now = unix_now();
                let started = Instant::now();
                let answer = self
                    .http
                    .post(format!("{}/slack/commands", self.gateway))
                    .header("x-slack-request-timestamp", now.to_string())
                    .header("x-slack-signature", iaas_slack::sign(SIGNING_SECRET.as_bytes(), now, form.as_bytes()))
                    .body(form)
                    .send()
                    .await
                    .expect("the gateway answers");
                assert!(answer.status().is_success(), "HTTP {}", answer.status());
                let _ = answer.bytes().await;
                started.elapsed()
            }
        }
    }
}

/// `count` commands through `ingress`, `in_flight` at a time; each one's latency.
async fn measure(target: &Target, ingress: Ingress, in_flight: usize, count: usize) -> Vec<Duration> {
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let started = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (target, latencies, started) = (target.clone(), latencies.clone(), started.clone());
            tokio::spawn(async move {
                while started.fetch_add(1, Ordering::Relaxed) < count {
                    let latency = target.one(ingress, NEXT.fetch_add(1, Ordering::Relaxed)).await;
                    latencies.lock().unwrap().push(latency);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let latencies = latencies.lock().unwrap().clone();
    latencies
}

/// The form Slack posts for `/iaas power status app-web-01`.
fn form(response_url: &str) -> String {
    iaas_slack::SlashCommand {
        team_id: "T0BENCH01".into(),
        team_domain: "bench-corp".into(),
        channel_id: "C0BENCH01".into(),
        channel_name: "ops".into(),
        user_id: "U0BENCH01".into(),
        user_name: "bench.user".into(),
        command: "/iaas".into(),
        text: TEXT.into(),
        response_url: response_url.into(),
        trigger_id: "13345224609.738474920.8088930838d88f008e0".into(),
        api_app_id: "A0BENCH01".into(),
        ssl_check: String::new(),
    }
    .to_form()
}
