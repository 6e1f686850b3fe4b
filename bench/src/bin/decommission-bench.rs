//! Decommission of many VMs at 1 and at 10 workers, against vcsim with a delay on the vCenter
//! task methods the plan calls: wall time from the Confirm press to the summary, VMs/s, the
//! speed-up, the ideal (the injected delays divided among the workers), the overhead per step,
//! vCenter calls per VM, and each step's recorded duration minus the injected delay.
//!
//! Every run is the real path: vcsim (tests/vcsim, `-vms N -delay …`), `iaas serve` (release
//! binary next to this one) with its own SQLite store and a policy whose plans are only
//! `power_off` → `delete_vm`, a signed `/iaas decommission bench-vm-001 …`, the prompt read
//! from a local response_url receiver, the Confirm press signed to `/slack/interactions`, the
//! summary awaited on the response_url, the record read back through the REST API
//! (`GET /api/v1/decommissions/<id>` with a bearer token from the policy), and every VM checked
//! gone from vcsim. A fresh vcsim and `iaas serve` per run; worker counts alternate run by run.
//!
//! Run: `cargo build --release -p iaas-cli -p iaas-bench && target/release/decommission-bench`.
//! The markdown report goes to stdout, progress to stderr. Never run by `cargo test`. Side runs:
//! `--delay-ms 0` (the bot's own cost alone), `--bot-token` (progress as a message of its own,
//! edited with chat.update, instead of response_url posts); `--help` lists the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use iaas_bench::proc::{clock_ticks_per_sec, cpu_ticks, log_tail, machine, sibling_binary, wait_quiet, Proc, SysCpu};
use iaas_bench::vcenter::{diff, listening_url, settled};
use iaas_slack::{Message, SlashCommand};
use iaas_tests::vcsim::{Vcsim, VcsimOptions, PASSWORD, USER};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::Vcenter;
use serde_json::Value;
use sha2::Digest;
use tokio::sync::mpsc;

const SIGNING_SECRET: &str = "bench-decommission-signing-secret";
const SHARED_SECRET: &str = "bench-decommission-shared-secret";
/// The REST API token; the policy holds its SHA-256.
const API_TOKEN: &str = "bench-decommission-api-token";
const USER_ID: &str = "U0BENCH001";
/// The vCenter task methods the plan calls (power_off → PowerOffVM_Task, delete_vm →
/// Destroy_Task); each gets the injected delay.
const DELAYED: &[&str] = &["PowerOffVM_Task", "Destroy_Task"];
const STEPS_PER_VM: usize = 2;

#[derive(Parser, Debug)]
#[command(about = "Decommission of many VMs through iaas serve against vcsim with task delays, at several worker counts")]
struct Args {
    /// VMs in the one request (vcsim's bench-vm-001…; a request takes at most 50).
    #[arg(long, default_value_t = 50)]
    vms: usize,
    /// vcsim MethodDelay on PowerOffVM_Task and Destroy_Task, in ms.
    #[arg(long, default_value_t = 200)]
    delay_ms: u64,
    /// Worker counts (`[decommission] workers`), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    workers: Vec<usize>,
    /// Runs per worker count (alternating), for the median and spread.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Before each press, wait up to this many seconds for the machine to be under 10 % busy.
    #[arg(long, default_value_t = 60)]
    quiet_wait: u64,
    /// RUST_LOG for `iaas serve`.
    #[arg(long, default_value = "warn")]
    serve_log: String,
    /// `[decommission] cancel_poll_ms` (how often a running request reads its cancel flag).
    #[arg(long, default_value_t = 1000)]
    cancel_poll_ms: u64,
    /// Directory holding the `iaas` binary (default: next to this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Give `iaas serve` a Slack bot token (and a chat.postMessage / chat.update stand-in), so
    /// progress is a message of its own edited in place instead of response_url posts.
    #[arg(long)]
    bot_token: bool,
    /// Give up on one run after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// One step as the store recorded it.
#[derive(Debug, Clone)]
struct StepRecord {
    vm: String,
    kind: String,
    state: String,
    attempts: i64,
    started_ms: i64,
    finished_ms: i64,
}

/// One measured run.
#[derive(Debug, Clone)]
struct RunResult {
    workers: usize,
    run: usize,
    /// Confirm press sent → the summary arrived on the response_url.
    wall: Duration,
    /// Press → first step started (store clock).
    lead_ms: f64,
    /// First step started → last step finished.
    span_ms: f64,
    /// Last step finished → summary arrived.
    tail_ms: f64,
    /// Every step, in the store's terms.
    steps: Vec<StepRecord>,
    /// SOAP calls by method between the press and the settled end.
    calls: BTreeMap<String, u64>,
    /// SOAP calls by method for the prompt (`/iaas decommission …` until the buttons arrived).
    ask_calls: BTreeMap<String, u64>,
    /// Slash command sent → prompt arrived.
    ask: Duration,
    /// CPU ms of `iaas serve` and of vcsim over the run.
    serve_cpu_ms: f64,
    vcsim_cpu_ms: f64,
    /// Machine busy share over the run, and the part no process of ours used.
    busy: f64,
    others: f64,
    /// Warnings and errors in `iaas serve`'s log.
    log_problems: Vec<String>,
    progress_posts: usize,
}

impl RunResult {
    fn vms(&self) -> usize {
        self.steps.len() / STEPS_PER_VM
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.vms == 0 || args.vms > 50 {
        bail!("--vms must be 1..=50 (one request names at most 50 VMs)");
    }
    if args.workers.is_empty() || args.workers.contains(&0) || args.runs == 0 {
        bail!("--workers needs positive counts and --runs at least 1");
    }
    let iaas = sibling_binary(args.bin_dir.as_deref(), "iaas")?;
    let scratch = std::env::temp_dir().join(format!("iaas-decommission-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let started = Instant::now();
    let mut results: Vec<RunResult> = Vec::new();
    for run in 1..=args.runs {
        for &workers in &args.workers {
            eprintln!("run {run}/{}: {workers} worker(s), {} VMs, {} ms per task …", args.runs, args.vms, args.delay_ms);
            let dir = scratch.join(format!("run-{run}-w{workers}"));
            std::fs::create_dir_all(&dir)?;
            let r = one_run(&args, &iaas, &dir, workers, run).await.with_context(|| format!("run {run} with {workers} worker(s)"))?;
            eprintln!(
                "  wall {:.2} s ({:.1} VMs/s), steps p50 {:.1} ms over the delay, {} SOAP calls",
                r.wall.as_secs_f64(),
                r.vms() as f64 / r.wall.as_secs_f64(),
                percentile(&overheads(&r.steps, args.delay_ms, None), 50.0),
                r.calls.values().sum::<u64>()
            );
            results.push(r);
        }
    }
    if std::env::var_os("IAAS_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    } else {
        eprintln!("scratch kept: {}", scratch.display());
    }
    report(&args, &results, started.elapsed());
    Ok(())
}

fn policy(workers: usize, cancel_poll_ms: u64) -> String {
    let digest = hex::encode(sha2::Sha256::digest(API_TOKEN.as_bytes()));
    let plan = r#"[{ kind = "power_off", on_failure = "stop" }, { kind = "delete_vm", on_failure = "stop" }]"#;
    format!(
        r#"[protection]
folders = ["Infrastructure"]

[decommission]
workers = {workers}
cancel_poll_ms = {cancel_poll_ms}

[decommission.plans]
linux = {plan}
windows = {plan}
other = {plan}

[api]
tokens = [{{ name = "bench", sha256 = "{digest}", roles = [] }}]
"#
    )
}

type Received = (Instant, Message);

async fn receive(State(tx): State<mpsc::UnboundedSender<Received>>, Json(m): Json<Message>) -> &'static str {
    let _ = tx.send((Instant::now(), m));
    "ok"
}

/// Slack's chat.postMessage / chat.update for the progress message (with `--bot-token`), with
/// the answers Slack documents.
async fn post_message(State(calls): State<Arc<AtomicUsize>>, Json(mut body): Json<Value>) -> Json<Value> {
    calls.fetch_add(1, Ordering::Relaxed);
    body["ts"] = "1700000000.000100".into();
    Json(iaas_tests::slack::posted(&body, "1700000000.000100"))
}

async fn update_message(State(calls): State<Arc<AtomicUsize>>, Json(body): Json<Value>) -> Json<Value> {
    calls.fetch_add(1, Ordering::Relaxed);
    Json(iaas_tests::slack::updated(&body))
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// POSTs a form body to `path`, signed the way Slack signs it; the HTTP status.
async fn signed_post(http: &reqwest::Client, base: &str, path: &str, form: String) -> Result<u16> {
    let ts = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let resp = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", iaas_slack::sign(SIGNING_SECRET.as_bytes(), ts, form.as_bytes()))
        .body(form)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

/// The pid of our child vcsim launcher (the harness keeps it private): a child of this
/// process whose name is vcsim-iaas.
fn vcsim_pid() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = &stat[open + 1..close];
        let ppid: u32 = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
        (ppid == me && comm.starts_with("vcsim")).then_some(pid)
    })
}

fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / clock_ticks_per_sec() as f64
}

async fn one_run(args: &Args, iaas: &Path, dir: &Path, workers: usize, run: usize) -> Result<RunResult> {
    let vcsim = Vcsim::start_with(VcsimOptions {
        extra_vms: args.vms,
        delays: DELAYED.iter().map(|m| (m.to_string(), args.delay_ms)).collect(),
        ..Default::default()
    })
    .await
    .context("starting vcsim (tests/vcsim)")?;
    let vcsim_pid = vcsim_pid();

    let (tx, mut inbox) = mpsc::unbounded_channel::<Received>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let response_url = format!("http://{}/response", listener.local_addr()?);
    let base = format!("http://{}", listener.local_addr()?);
    let chat_calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route("/response", post(receive)).with_state(tx).merge(
        Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update_message))
            .with_state(chat_calls.clone()),
    );
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });

    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy(workers, args.cancel_poll_ms))?;
    let mut env = vec![
        ("IAAS_STATE_DIR", dir.display().to_string()),
        ("IAAS_CONFIG", policy_path.display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}/iaas.db", dir.display())),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_string()),
        ("IAAS_SHARED_SECRET", SHARED_SECRET.to_string()),
        // The Web API stand-in; its host also lets the response_url (same receiver) through.
        ("SLACK_API_URL", format!("{base}/api")),
        ("VCENTER_URL", vcsim.url.clone()),
        ("VCENTER_USER", USER.to_string()),
        ("VCENTER_PASSWORD", PASSWORD.to_string()),
        // No roles on a real vCenter needs consent (issue #18).
        ("IAAS_ALLOW_EVERYONE", "true".to_string()),
        ("RUST_LOG", args.serve_log.clone()),
    ];
    if args.bot_token {
        env.push(("SLACK_BOT_TOKEN", "bench-bot-token".to_string()));
    }
    let log = dir.join("iaas-serve.log");
    let mut serve = Proc::spawn("iaas serve", iaas, &["serve", "--listen", "127.0.0.1:0"], &env, log.clone(), true)?;
    let url = listening_url(&mut serve).await?;
    if !url.starts_with("http://127.0.0.1:") {
        bail!("iaas serve listens on {url}, not loopback");
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;

    // The ask: `/iaas decommission bench-vm-001 …`, answered by a prompt with buttons.
    let names: Vec<String> = (1..=args.vms).map(|i| format!("bench-vm-{i:03}")).collect();
    let before_ask = settled(&vcsim).await?;
    let form = SlashCommand {
        team_id: "T0BENCH01".into(),
        channel_id: "C0BENCH01".into(),
        user_id: USER_ID.into(),
        user_name: "bench.user".into(),
        command: "/iaas".into(),
        text: format!("decommission {} --ticket BENCH-1 --reason benchmark", names.join(" ")),
        response_url: response_url.clone(),
        trigger_id: format!("{run}.{workers}.bench"),
        ..Default::default()
    }
    .to_form();
    let asked = Instant::now();
    let status = signed_post(&http, &url, "/slack/commands", form).await?;
    if status != 200 {
        bail!("the slash command was answered {status}; log:\n{}", log_tail(&log));
    }
    let (prompted, prompt) = tokio::time::timeout(Duration::from_secs(120), inbox.recv())
        .await
        .map_err(|_| anyhow!("no prompt within 120 s; log:\n{}", log_tail(&log)))?
        .ok_or_else(|| anyhow!("the response receiver stopped"))?;
    let token = prompt
        .blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find_map(|e| e["value"].as_str().map(str::to_string))
        .ok_or_else(|| anyhow!("the prompt has no buttons: {}", prompt.readable()))?;
    let id = prompt
        .text
        .split_once("Request `")
        .and_then(|(_, rest)| rest.split('`').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the prompt names no request: {}", prompt.text))?;
    if !prompt.text.contains(&format!("Decommission {} VMs?", args.vms)) {
        bail!("unexpected prompt: {}", prompt.text);
    }
    let ask = prompted - asked;
    let after_ask = settled(&vcsim).await?;
    let ask_calls = diff(&before_ask, &after_ask);

    // The press, timed to the summary.
    wait_quiet(Duration::from_secs(args.quiet_wait)).await;
    let me = std::process::id();
    let (serve_t0, vcsim_t0, me_t0, sys0) = (cpu_ticks(serve.pid), vcsim_pid.and_then(cpu_ticks), cpu_ticks(me), SysCpu::read());
    let press = iaas_slack::Press {
        user_id: USER_ID.into(),
        user_name: "bench.user".into(),
        team_id: "T0BENCH01".into(),
        team_domain: "bench".into(),
        channel_id: "C0BENCH01".into(),
        channel_name: "ops".into(),
        response_url: response_url.clone(),
        action_id: "decommission.confirm".into(),
        value: token.clone(),
        label: "Decommission".into(),
        style: Some("danger".into()),
        message: None,
        enterprise: None,
    };
    // Only what `iaas serve` logs from the press on counts (start-up warnings are not the run's).
    let log_offset = std::fs::metadata(&log).map(|m| m.len() as usize).unwrap_or(0);
    let pressed_unix_ms = unix_ms();
    let pressed = Instant::now();
    let status = signed_post(&http, &url, "/slack/interactions", press.to_form()).await?;
    if status != 200 {
        bail!("the Confirm press was answered {status}; log:\n{}", log_tail(&log));
    }
    let deadline = pressed + Duration::from_secs(args.timeout);
    let mut progress_posts = 0;
    let (finished, summary) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no summary within {} s; log:\n{}", args.timeout, log_tail(&log));
        }
        match tokio::time::timeout(left.min(Duration::from_secs(1)), inbox.recv()).await {
            Ok(Some((_, m))) if m.text.starts_with('⏳') => progress_posts += 1,
            Ok(Some((at, m))) => break (at, m),
            Ok(None) => bail!("the response receiver stopped"),
            Err(_) => serve.check_alive()?,
        }
    };
    let wall = finished - pressed;
    if args.bot_token {
        // The first call posts the progress message; the rest edit it (the last with the summary).
        progress_posts = chat_calls.load(Ordering::Relaxed);
    }
    let (serve_t1, vcsim_t1, me_t1, sys1) = (cpu_ticks(serve.pid), vcsim_pid.and_then(cpu_ticks), cpu_ticks(me), SysCpu::read());
    if !summary.text.starts_with(&format!("Decommissioned {n} of {n} VMs.", n = args.vms)) {
        bail!("the request did not end well: {}", summary.readable());
    }
    let after_run = settled(&vcsim).await?;
    let calls = diff(&after_ask, &after_run);

    // The record, through the REST API.
    let view: Value = http
        .get(format!("{url}/api/v1/decommissions/{id}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await?
        .error_for_status()
        .context("GET /api/v1/decommissions/<id>")?
        .json()
        .await?;
    if view["state"] != "done" {
        bail!("the request is {} in the store, not done", view["state"]);
    }
    let mut steps = Vec::new();
    for vm in view["vm_plans"].as_array().ok_or_else(|| anyhow!("no vm_plans in {view}"))? {
        for s in vm["steps"].as_array().cloned().unwrap_or_default() {
            steps.push(StepRecord {
                vm: vm["name"].as_str().unwrap_or_default().to_string(),
                kind: s["kind"].as_str().unwrap_or_default().to_string(),
                state: s["state"].as_str().unwrap_or_default().to_string(),
                attempts: s["attempts"].as_i64().unwrap_or(0),
                started_ms: s["started_at_ms"].as_i64().ok_or_else(|| anyhow!("a step has no start: {s}"))?,
                finished_ms: s["finished_at_ms"].as_i64().ok_or_else(|| anyhow!("a step has no end: {s}"))?,
            });
        }
    }
    if steps.len() != args.vms * STEPS_PER_VM {
        bail!("{} steps recorded, expected {}", steps.len(), args.vms * STEPS_PER_VM);
    }
    if let Some(s) = steps.iter().find(|s| s.state != "done" || s.attempts != 1) {
        bail!("a step did not end done at its first attempt: {s:?}");
    }
    let mut recorded: Vec<&str> = steps.iter().map(|s| s.vm.as_str()).collect();
    recorded.sort_unstable();
    recorded.dedup();
    if recorded != names.iter().map(String::as_str).collect::<Vec<_>>() {
        bail!("the record names other VMs than asked: {recorded:?}");
    }

    // Every bench VM is gone from vCenter; the seed VMs are still there.
    let reader = SoapClient::new(vcsim.config())?;
    let left: Vec<String> =
        reader.list_vms().await?.into_iter().map(|v| v.vm.name.into_string()).filter(|n| n.starts_with("bench-vm-")).collect();
    if !left.is_empty() {
        bail!("{} bench VMs are still in vcsim: {left:?}", left.len());
    }
    reader.logout().await;

    let first_start = steps.iter().map(|s| s.started_ms).min().unwrap_or(0);
    let last_finish = steps.iter().map(|s| s.finished_ms).max().unwrap_or(0);
    let finished_unix_ms = pressed_unix_ms as f64 + wall.as_secs_f64() * 1000.0;
    let total_ticks = match (sys0, sys1) {
        (Some(a), Some(b)) => b.total.saturating_sub(a.total),
        _ => 0,
    };
    let busy = match (sys0, sys1) {
        (Some(a), Some(b)) => a.busy_until(&b),
        _ => f64::NAN,
    };
    let ours = [(serve_t0, serve_t1), (vcsim_t0, vcsim_t1), (me_t0, me_t1)]
        .iter()
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => b.saturating_sub(*a),
            _ => 0,
        })
        .sum::<u64>();
    let others = if total_ticks == 0 { f64::NAN } else { (busy - ours as f64 / total_ticks as f64).max(0.0) };
    let delta_ms = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => ticks_ms(b.saturating_sub(a)),
        _ => f64::NAN,
    };
    let log_text = std::fs::read(&log).unwrap_or_default();
    let log_problems: Vec<String> = String::from_utf8_lossy(log_text.get(log_offset..).unwrap_or_default())
        .lines()
        .map(strip_ansi)
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();

    serve.stop().await;
    receiver.abort();
    drop(vcsim);
    Ok(RunResult {
        workers,
        run,
        wall,
        lead_ms: (first_start - pressed_unix_ms) as f64,
        span_ms: (last_finish - first_start) as f64,
        tail_ms: finished_unix_ms - last_finish as f64,
        steps,
        calls,
        ask_calls,
        ask,
        serve_cpu_ms: delta_ms(serve_t0, serve_t1),
        vcsim_cpu_ms: delta_ms(vcsim_t0, vcsim_t1),
        busy,
        others,
        log_problems,
        progress_posts,
    })
}

/// A log line without its colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Each step's duration minus the injected delay, in ms; only `kind` when given.
fn overheads(steps: &[StepRecord], delay_ms: u64, kind: Option<&str>) -> Vec<f64> {
    steps.iter().filter(|s| kind.is_none_or(|k| s.kind == k)).map(|s| (s.finished_ms - s.started_ms) as f64 - delay_ms as f64).collect()
}

/// Nearest-rank percentile; NaN when empty.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// "median (min–max)".
fn spread(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() == 1 {
        return format!("{:.*}", decimals, values[0]);
    }
    format!("{:.*} ({:.*}–{:.*})", decimals, median(values), decimals, min, decimals, max)
}

/// Time inside steps beyond the injected delay, and time the worker lanes were not inside
/// a step, per step, in ms: (Σ(step − delay)) / steps and (span × lanes − Σ step) / steps.
/// Lanes are min(workers, VMs); with VMs a multiple of the workers every lane is full.
fn split(r: &RunResult, delay_ms: u64) -> (f64, f64) {
    let steps = r.steps.len() as f64;
    let in_steps: f64 = r.steps.iter().map(|s| (s.finished_ms - s.started_ms) as f64).sum();
    let lanes = r.workers.min(r.vms()) as f64;
    ((in_steps - steps * delay_ms as f64) / steps, (r.span_ms * lanes - in_steps) / steps)
}

fn ideal_s(vms: usize, delay_ms: u64, workers: usize) -> f64 {
    let per_vm = (STEPS_PER_VM as u64 * delay_ms) as f64 / 1000.0;
    // Whole VMs per lane: a VM's steps run in order on one worker.
    vms.div_ceil(workers) as f64 * per_vm
}

fn calls_text(calls: &BTreeMap<String, u64>, per: usize) -> String {
    calls.iter().map(|(k, v)| format!("{k} {}", fmt_per(*v, per))).collect::<Vec<_>>().join(", ")
}

fn fmt_per(v: u64, per: usize) -> String {
    let x = v as f64 / per as f64;
    if (x - x.round()).abs() < 0.005 {
        format!("{}", x.round())
    } else {
        format!("{x:.2}")
    }
}

fn report(args: &Args, results: &[RunResult], elapsed: Duration) {
    let steps = args.vms * STEPS_PER_VM;
    let sum_delays = steps as f64 * args.delay_ms as f64 / 1000.0;
    println!("## Decommission: {} VMs, {} workers", args.vms, args.workers.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(" vs "));
    println!();
    println!(
        "{} VMs in one request, plan `power_off` → `delete_vm` ({steps} steps), vcsim MethodDelay {} ms on {} (sum of delays {sum_delays:.1} s); \
         {} runs per worker count, alternating; a fresh vcsim and `iaas serve` (SQLite store) per run; progress shown {}.",
        args.vms,
        args.delay_ms,
        DELAYED.join(" and "),
        args.runs,
        if args.bot_token { "in a message of its own (bot token: chat.postMessage, then chat.update)" } else { "by response_url posts (no bot token)" }
    );
    println!("Machine: {}. Bench took {:.0} s.", machine(), elapsed.as_secs_f64());
    println!();
    println!("### Per worker count (median of the runs, min–max in brackets)");
    println!();
    println!("| workers | wall: press → summary, s | VMs/s | ideal s | wall / ideal | overhead per step in a lane, ms | overhead per step, all steps, ms | step − delay p50 ms | step − delay p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut medians: Vec<(usize, f64)> = Vec::new();
    for &w in &args.workers {
        let rs: Vec<&RunResult> = results.iter().filter(|r| r.workers == w).collect();
        let ideal = ideal_s(args.vms, args.delay_ms, w);
        let walls: Vec<f64> = rs.iter().map(|r| r.wall.as_secs_f64()).collect();
        let rates: Vec<f64> = rs.iter().map(|r| r.vms() as f64 / r.wall.as_secs_f64()).collect();
        let ratio: Vec<f64> = if ideal > 0.0 { walls.iter().map(|w| w / ideal).collect() } else { Vec::new() };
        let lane_steps = (args.vms.div_ceil(w) * STEPS_PER_VM) as f64;
        let lane: Vec<f64> = walls.iter().map(|x| (x - ideal) * 1000.0 / lane_steps).collect();
        let all: Vec<f64> = walls.iter().map(|x| (x - ideal) * 1000.0 / steps as f64).collect();
        let p50: Vec<f64> = rs.iter().map(|r| percentile(&overheads(&r.steps, args.delay_ms, None), 50.0)).collect();
        let p99: Vec<f64> = rs.iter().map(|r| percentile(&overheads(&r.steps, args.delay_ms, None), 99.0)).collect();
        medians.push((w, median(&walls)));
        println!(
            "| {w} | {} | {} | {ideal:.1} | {} | {} | {} | {} | {} |",
            spread(&walls, 2),
            spread(&rates, 1),
            spread(&ratio, 2),
            spread(&lane, 1),
            spread(&all, 1),
            spread(&p50, 1),
            spread(&p99, 1)
        );
    }
    println!();
    println!(
        "Ideal: whole VMs per worker × {} steps × {} ms (= sum of delays / workers when the VMs divide evenly). \
         Overhead per step in a lane = (wall − ideal) / steps one worker runs in sequence; over all steps = (wall − ideal) / {steps}. \
         Step − delay: each step's recorded duration (store, started → finished) minus the injected delay, over the run's {steps} steps.",
        STEPS_PER_VM, args.delay_ms
    );
    if let (Some(&(w1, m1)), true) = (medians.first(), medians.len() > 1) {
        println!();
        println!("| speed-up | measured (ratio of medians) | spread (worst–best pairing) | ideal |");
        println!("|---|---:|---:|---:|");
        let base: Vec<f64> = results.iter().filter(|r| r.workers == w1).map(|r| r.wall.as_secs_f64()).collect();
        for &(w, m) in &medians[1..] {
            let other: Vec<f64> = results.iter().filter(|r| r.workers == w).map(|r| r.wall.as_secs_f64()).collect();
            let lo = base.iter().copied().fold(f64::INFINITY, f64::min) / other.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let hi = base.iter().copied().fold(f64::NEG_INFINITY, f64::max) / other.iter().copied().fold(f64::INFINITY, f64::min);
            let ideal = if args.delay_ms > 0 {
                format!("{:.2}×", ideal_s(args.vms, args.delay_ms, w1) / ideal_s(args.vms, args.delay_ms, w))
            } else {
                "–".to_string()
            };
            println!("| {w} vs {w1} workers, press → summary | {:.2}× | {lo:.2}–{hi:.2}× | {ideal} |", m1 / m);
            let spans = |w: usize| results.iter().filter(|r| r.workers == w).map(|r| r.span_ms).collect::<Vec<_>>();
            let (a, b) = (spans(w1), spans(w));
            let lo = a.iter().copied().fold(f64::INFINITY, f64::min) / b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let hi = a.iter().copied().fold(f64::NEG_INFINITY, f64::max) / b.iter().copied().fold(f64::INFINITY, f64::min);
            println!("| {w} vs {w1} workers, first step → last step | {:.2}× | {lo:.2}–{hi:.2}× | {ideal} |", median(&a) / median(&b));
        }
    }

    println!();
    println!("### Where the time goes (median of the runs, ms)");
    println!();
    println!("| workers | press → first step | first step → last step | last step → summary | in steps beyond the delay, per step | lanes idle between steps, per step | power_off − delay p50 / p99 | delete_vm − delay p50 / p99 |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &w in &args.workers {
        let rs: Vec<&RunResult> = results.iter().filter(|r| r.workers == w).collect();
        let col = |f: &dyn Fn(&RunResult) -> f64| median(&rs.iter().map(|r| f(r)).collect::<Vec<_>>());
        let kind = |k: &str, p: f64| col(&|r| percentile(&overheads(&r.steps, args.delay_ms, Some(k)), p));
        println!(
            "| {w} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
            col(&|r| r.lead_ms),
            col(&|r| r.span_ms),
            col(&|r| r.tail_ms),
            col(&|r| split(r, args.delay_ms).0),
            col(&|r| split(r, args.delay_ms).1),
            kind("power_off", 50.0),
            kind("power_off", 99.0),
            kind("delete_vm", 50.0),
            kind("delete_vm", 99.0)
        );
    }
    println!();
    println!(
        "Times from the store are wall-clock milliseconds recorded by the runner (`started_at_ms`, `finished_at_ms`); the press and the summary are \
         this process's clock on the same machine. \"Lanes idle\" = (first → last step × min(workers, VMs) − Σ step durations) / steps: \
         the runner's own work between one step's end and the next step's start (store writes, the VM lock, the permit)."
    );

    println!();
    println!("### vCenter calls and CPU");
    println!();
    println!("| workers | SOAP calls per VM, press → end | by method, per VM | prompt: calls per VM | prompt: slash → buttons, s | `iaas serve` CPU ms per VM | vcsim CPU ms per VM | machine busy | other processes |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for &w in &args.workers {
        let rs: Vec<&RunResult> = results.iter().filter(|r| r.workers == w).collect();
        let Some(first) = rs.first() else { continue };
        let calls_per_vm: Vec<f64> = rs.iter().map(|r| r.calls.values().sum::<u64>() as f64 / r.vms() as f64).collect();
        let ask_per_vm: Vec<f64> = rs.iter().map(|r| r.ask_calls.values().sum::<u64>() as f64 / r.vms() as f64).collect();
        let ask_s: Vec<f64> = rs.iter().map(|r| r.ask.as_secs_f64()).collect();
        let serve_cpu: Vec<f64> = rs.iter().map(|r| r.serve_cpu_ms / r.vms() as f64).collect();
        let vcsim_cpu: Vec<f64> = rs.iter().map(|r| r.vcsim_cpu_ms / r.vms() as f64).collect();
        let busy: Vec<f64> = rs.iter().map(|r| r.busy * 100.0).collect();
        let others: Vec<f64> = rs.iter().map(|r| r.others * 100.0).collect();
        let same = rs.iter().all(|r| r.calls == first.calls);
        println!(
            "| {w} | {} | {}{} | {} | {} | {} | {} | {} % | {} % |",
            spread(&calls_per_vm, 2),
            calls_text(&first.calls, first.vms()),
            if same { "" } else { " (run 1; the runs differ)" },
            spread(&ask_per_vm, 2),
            spread(&ask_s, 2),
            spread(&serve_cpu, 2),
            spread(&vcsim_cpu, 2),
            spread(&busy, 0),
            spread(&others, 0)
        );
    }
    println!();
    println!(
        "Calls: vcsim's per-method counters (`/_stats`) diffed from the press until they settle after the summary; the prompt's calls \
         (find and read each VM) are counted separately. CPU: utime+stime from /proc over press → summary."
    );

    println!();
    println!("### Every run");
    println!();
    println!("| run | workers | wall s | VMs/s | press → first step ms | first → last step ms | last step → summary ms | step − delay p50 / p99 ms | progress posts (chat calls with --bot-token) | SOAP calls | serve log warnings |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let o = overheads(&r.steps, args.delay_ms, None);
        println!(
            "| {} | {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} / {:.1} | {} | {} | {} |",
            r.run,
            r.workers,
            r.wall.as_secs_f64(),
            r.vms() as f64 / r.wall.as_secs_f64(),
            r.lead_ms,
            r.span_ms,
            r.tail_ms,
            percentile(&o, 50.0),
            percentile(&o, 99.0),
            r.progress_posts,
            r.calls.values().sum::<u64>(),
            r.log_problems.len()
        );
    }
    let problems: Vec<&String> = results.iter().flat_map(|r| &r.log_problems).collect();
    if !problems.is_empty() {
        println!();
        println!("`iaas serve` logged {} warning/error line(s); the first few:", problems.len());
        println!();
        for p in problems.iter().take(5) {
            println!("    {}", p.chars().take(300).collect::<String>());
        }
    }
}
