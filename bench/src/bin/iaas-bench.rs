//! `iaas-bench`: one run measures the gateway against a bare axum ceiling and prints a markdown
//! report on stdout (progress goes to stderr). See bench/README.md.
//!
//! 1. A dispatch sink (stand-in for OpenFaaS `/async-function/<name>`, answers 202).
//! 2. Start-up: `iaas-gateway` spawned N times; process spawn → first 200 ack, polled every
//!    ~1 ms with a signed request on a fresh connection. The last one stays up; its VmRSS is
//!    read after 1 s idle. The first ack is captured and handed to `bare-ack`, which is timed
//!    the same way.
//! 3. Load: for each concurrency, gateway and the ceilings alternately (gateway, bare,
//!    bare + the same hand-over twice, bare, gateway; then commands answered at the edge:
//!    gateway, bare, bare, gateway), warm-up then a fixed window of unique pre-signed requests,
//!    one keep-alive connection per worker; req/s, latency quantiles, CPU per request of every
//!    process, and the gateway's RSS under load.
//! 4. vCenter calls per command through `iaas serve` against vcsim.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use http::StatusCode;
use iaas_bench::load::{self, Answer, PhaseResult, PhaseSpec, REQUEST_ID_HEADER};
use iaas_bench::proc::{self, free_port, loopback, sibling_binary, status_kb, Proc};
use iaas_bench::slack::{self, Pool, SHARED_SECRET, SIGNING_SECRET};
use iaas_bench::vcenter::{self, VcenterReport};

#[derive(Parser)]
#[command(name = "iaas-bench", about = "Gateway ack throughput, latency, start-up, memory, and vCenter calls per command")]
struct Args {
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Warm-up seconds before each measured window (same connections, not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrency levels (workers, one connection each).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 64, 256])]
    concurrency: Vec<usize>,
    /// Rounds per concurrency; each round is gateway, bare, bare, gateway.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Warm process starts timed for each server (binary in the page cache).
    #[arg(long, default_value_t = 11)]
    startup_trials: usize,
    /// Cold starts timed first: the binary is evicted from the page cache before each.
    #[arg(long, default_value_t = 3)]
    cold_trials: usize,
    /// Unique pre-signed requests generated for the gateway per concurrency level.
    #[arg(long, default_value_t = 250_000)]
    pool: usize,
    /// Passes over the vCenter command list (the first is cold, the rest warm).
    #[arg(long, default_value_t = 2)]
    vcenter_passes: usize,
    /// Skip the vCenter-calls part (needs tests/vcsim and target/release/iaas).
    #[arg(long)]
    skip_vcenter: bool,
    /// A phase during which other processes used more than this share of the machine is run
    /// again (see --retries).
    #[arg(long, default_value_t = 0.05)]
    max_foreign: f64,
    /// Re-runs allowed per phase when other processes disturbed it.
    #[arg(long, default_value_t = 3)]
    retries: usize,
    /// Seconds to wait, before each phase, for the machine to go quiet (under 10 % busy).
    #[arg(long, default_value_t = 60)]
    quiet_wait: u64,
    /// Extra environment for the gateway, KEY=VALUE, repeatable (e.g. RUST_LOG=warn, or
    /// LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 to try another allocator).
    #[arg(long = "gateway-env", value_parser = parse_env)]
    gateway_env: Vec<(String, String)>,
    /// Leave out the "bare + dispatch" ceiling (bare-ack that also POSTs to the sink).
    #[arg(long)]
    no_dispatch_ceiling: bool,
    /// Leave out the commands answered at the edge (help, usage, did-you-mean, refusal).
    #[arg(long)]
    no_edge: bool,
    /// Unique pre-signed edge requests per concurrency level (edge answers are faster, and
    /// every gateway request must be unique or the replay check refuses it).
    #[arg(long, default_value_t = 500_000)]
    edge_pool: usize,
    /// Where iaas-gateway, bare-ack, dispatch-sink and iaas are (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

impl Args {
    fn check(&self) -> Result<()> {
        if !(0.5..=120.0).contains(&self.duration) || !(0.0..=30.0).contains(&self.warmup) {
            bail!("--duration must be 0.5..=120 s and --warmup 0..=30 s");
        }
        if self.concurrency.is_empty() || self.concurrency.iter().any(|&c| c == 0 || c > 1024) {
            bail!("--concurrency takes levels from 1 to 1024");
        }
        if !(1..=10).contains(&self.rounds)
            || !(1..=50).contains(&self.startup_trials)
            || self.cold_trials > 10
            || !(1..=5).contains(&self.vcenter_passes)
        {
            bail!("--rounds 1..=10, --startup-trials 1..=50, --vcenter-passes 1..=5");
        }
        if self.retries > 10 || self.quiet_wait > 600 || !(0.0..=1.0).contains(&self.max_foreign) {
            bail!("--retries 0..=10, --quiet-wait 0..=600, --max-foreign 0..=1");
        }
        if !(1_000..=2_000_000).contains(&self.pool) || !(1_000..=2_000_000).contains(&self.edge_pool) {
            bail!("--pool and --edge-pool must be 1000..=2000000");
        }
        Ok(())
    }
}

const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(1);

// Goals from issue 12 ("Gateway speed, decided"), which replaced the foundation issue's
// "≥ 60 % of bare axum" for dispatched commands and its 20 ms cold start.
/// A dispatched command against bare axum plus the same hand-over, at every concurrency.
const GOAL_DISPATCH_RATIO: f64 = 0.90;
/// The gateway's p99 at [`GOAL_P99_CONCURRENCY`] against the same ceiling's p99.
const GOAL_P99_FACTOR: f64 = 1.25;
const GOAL_P99_CONCURRENCY: usize = 64;
/// Commands answered at the edge against bare axum.
const GOAL_EDGE_RATIO: f64 = 0.60;
/// Cold start to the first ack against bare axum's cold start.
const GOAL_COLD_FACTOR: f64 = 1.5;
// From the foundation issue, still standing.
const GOAL_FIRST_ACK_MS: f64 = 20.0;
const GOAL_IDLE_RSS_MB: f64 = 20.0;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // On Ctrl-C or SIGTERM the run is dropped, and with it every child (kill on drop).
    let result = tokio::select! {
        r = run(args) => r,
        _ = interrupted() => Err(anyhow::anyhow!("interrupted; children stopped")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iaas-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

struct Startup {
    /// Spawn → first 200 ack, per start.
    ms: Vec<f64>,
    /// Spawn → first accepted TCP connection, per start.
    listen_ms: Vec<f64>,
    /// The same for cold starts (binary evicted from the page cache).
    cold_ms: Vec<f64>,
    cold_listen_ms: Vec<f64>,
    /// Bytes of the binary in the page cache right after a cold start's first ack: what the
    /// start read from disk (with the kernel's read-ahead).
    cold_read: Vec<u64>,
    /// Major page faults of the process up to a cold start's first ack.
    cold_majflt: Vec<u64>,
    /// The binary's size on disk.
    binary_bytes: u64,
}

impl Startup {
    fn new(bin: &std::path::Path) -> Startup {
        let binary_bytes = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        Startup {
            ms: vec![],
            listen_ms: vec![],
            cold_ms: vec![],
            cold_listen_ms: vec![],
            cold_read: vec![],
            cold_majflt: vec![],
            binary_bytes,
        }
    }

    fn record(&mut self, cold: bool, listen_ms: f64, ms: f64) {
        if cold {
            self.cold_listen_ms.push(listen_ms);
            self.cold_ms.push(ms);
        } else {
            self.listen_ms.push(listen_ms);
            self.ms.push(ms);
        }
    }
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// (min, median, max)
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let v = sorted(v);
    match (v.first(), v.last()) {
        (Some(&lo), Some(&hi)) => (lo, v[(v.len() - 1) / 2], hi),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// The servers measured under load (index into `Level::results`).
const GATEWAY: usize = 0;
const BARE: usize = 1;
const BARE_DISPATCH: usize = 2;
const GATEWAY_EDGE: usize = 3;
const BARE_EDGE: usize = 4;
const SERVER_NAMES: [&str; 5] =
    ["gateway, dispatched", "bare axum", "bare axum + same hand-over", "gateway, answered at the edge", "bare axum, edge answers"];

struct Level {
    concurrency: usize,
    /// One merged result per server measured, by the indices above (`None`: not run).
    results: Vec<Option<PhaseResult>>,
    gateway_rss_peak_kb: u64,
    reused: usize,
    sink_taken: u64,
    /// Invocations the sink took during edge phases (must be 0).
    sink_edge: u64,
}

impl Level {
    fn get(&self, i: usize) -> Option<&PhaseResult> {
        self.results.get(i).and_then(Option::as_ref)
    }

    fn ratio(&self, a: usize, b: usize) -> f64 {
        match (self.get(a), self.get(b)) {
            (Some(a), Some(b)) => a.rps() / b.rps(),
            _ => f64::NAN,
        }
    }
}

/// Bytes of `path` resident in the page cache (mmap + mincore).
fn cached_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len() as usize;
    if len == 0 {
        return Some(0);
    }
    // SAFETY: a read-only private mapping of an open file, unmapped below; mincore only
    // reports residency into a vector of the right length.
    unsafe {
        let addr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0);
        if addr == libc::MAP_FAILED {
            return None;
        }
        let page = libc::sysconf(libc::_SC_PAGESIZE).max(4096) as usize;
        let mut vec = vec![0u8; len.div_ceil(page)];
        let rc = libc::mincore(addr, len, vec.as_mut_ptr());
        libc::munmap(addr, len);
        (rc == 0).then(|| vec.iter().filter(|&&b| b & 1 == 1).count() as u64 * page as u64)
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**PASS**"
    } else {
        "**FAIL**"
    }
}

/// Spawns a server and polls it with `req` until the first 200; the clock starts just before
/// the spawn. Returns (ms to accept a TCP connection, ms to the first ack, child, the ack).
async fn first_ack(
    name: &str,
    bin: &std::path::Path,
    env: &[(&str, String)],
    port: u16,
    req: &slack::Signed,
    log: PathBuf,
) -> Result<(f64, f64, Proc, Answer)> {
    let addr = loopback(port);
    let t0 = Instant::now();
    let mut child = Proc::spawn(name, bin, &[], env, log, false)?;
    let ms = |t0: Instant| t0.elapsed().as_secs_f64() * 1000.0;
    let mut listening: Option<f64> = None;
    loop {
        if listening.is_none() && tokio::net::TcpStream::connect(addr).await.is_ok() {
            listening = Some(ms(t0));
        }
        if listening.is_some() {
            match load::send_once(addr, req).await {
                Ok(answer) if answer.status == StatusCode::OK => return Ok((listening.unwrap_or(f64::NAN), ms(t0), child, answer)),
                Ok(answer) => bail!("{name} answered {} to the first request: {}", answer.status, String::from_utf8_lossy(&answer.body)),
                Err(_) => {}
            }
        }
        child.check_alive()?;
        if t0.elapsed() > FIRST_ACK_TIMEOUT {
            bail!("{name} did not ack within {FIRST_ACK_TIMEOUT:?}; log {}:\n{}", child.log.display(), proc::log_tail(&child.log));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Saves an answer for `bare-ack`: `<n>.body` and the headers it must send too in `<n>.head`.
fn write_answer(dir: &std::path::Path, n: usize, answer: &Answer) -> Result<()> {
    std::fs::write(dir.join(format!("{n}.body")), &answer.body)?;
    let mut head = String::new();
    for name in ["content-type", REQUEST_ID_HEADER, iaas_slack::OUTCOME_HEADER] {
        if let Some(v) = answer.headers.get(name).and_then(|v| v.to_str().ok()) {
            head.push_str(&format!("{name}: {v}\n"));
        }
    }
    std::fs::write(dir.join(format!("{n}.head")), head)?;
    Ok(())
}

async fn sink_count(port: u16) -> Result<u64> {
    let a = load::get(loopback(port), "/_count").await?;
    Ok(String::from_utf8_lossy(&a.body).trim().parse()?)
}

async fn run(args: Args) -> Result<()> {
    args.check()?;
    let bin_dir = args.bin_dir.as_deref();
    let gateway_bin = sibling_binary(bin_dir, "iaas-gateway")?;
    let bare_bin = sibling_binary(bin_dir, "bare-ack")?;
    let sink_bin = sibling_binary(bin_dir, "dispatch-sink")?;
    let workdir = std::env::temp_dir().join(format!("iaas-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    eprintln!("iaas-bench: logs and scratch files in {}", workdir.display());
    let me = std::process::id();
    let quiet = Duration::from_secs(args.quiet_wait);

    // 1. The dispatch sink.
    let sink_port = free_port()?;
    let mut sink = Proc::spawn("dispatch-sink", &sink_bin, &[], &[("PORT", sink_port.to_string())], workdir.join("sink.log"), false)?;
    let t = Instant::now();
    while sink_count(sink_port).await.is_err() {
        sink.check_alive()?;
        if t.elapsed() > Duration::from_secs(10) {
            bail!("dispatch-sink did not come up");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }

    // 2. Start-up of the gateway.
    let mut gateway_env: Vec<(&str, String)> = vec![
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.into()),
        ("IAAS_SHARED_SECRET", SHARED_SECRET.into()),
        ("IAAS_DISPATCH", format!("openfaas:http://127.0.0.1:{sink_port}")),
        // The stand-alone gateway without roles needs consent (issue #18).
        ("IAAS_ALLOW_EVERYONE", "true".into()),
    ];
    for (k, v) in &args.gateway_env {
        gateway_env.push((k.as_str(), v.clone()));
    }
    let load_at_start = load_average();
    let mut gateway_start = Startup::new(&gateway_bin);
    let mut bare_start = Startup::new(&bare_bin);
    let mut gateway: Option<(Proc, u16)> = None;
    let mut captured: Option<Answer> = None;
    // The gateway's and bare axum's starts alternate, cold ones first, so drift and other
    // people's builds weigh on both alike. bare-ack needs the gateway's ack bytes, so each
    // gateway start comes first and bare-ack starts with a placeholder answer until then.
    let answers_dir = workdir.join("answers");
    std::fs::create_dir_all(&answers_dir)?;
    let mut bare: Option<(Proc, u16)> = None;
    for trial in 0..args.cold_trials + args.startup_trials {
        let cold = trial < args.cold_trials;
        for server in ["gateway", "bare"] {
            proc::wait_quiet(quiet).await;
            let port = free_port()?;
            let (bin, start, req) = if server == "gateway" {
                if let Some((old, _)) = gateway.take() {
                    old.stop().await;
                }
                (&gateway_bin, &mut gateway_start, slack::request(trial as u64))
            } else {
                if let Some((old, _)) = bare.take() {
                    old.stop().await;
                }
                (&bare_bin, &mut bare_start, slack::request(100 + trial as u64))
            };
            if cold {
                proc::evict_from_page_cache(bin)?;
            }
            let mut env = if server == "gateway" {
                gateway_env.clone()
            } else {
                if let Some(ack) = &captured {
                    write_answer(&answers_dir, 0, ack)?;
                }
                vec![("ANSWERS", answers_dir.display().to_string())]
            };
            env.push(("PORT", port.to_string()));
            let log = workdir.join(format!("{server}-{trial}.log"));
            let (listen_ms, ms, child, answer) = first_ack(server, bin, &env, port, &req, log).await?;
            if cold {
                start.cold_read.push(cached_bytes(bin).unwrap_or(0));
                start.cold_majflt.push(proc::major_faults(child.pid).unwrap_or(0));
            }
            start.record(cold, listen_ms, ms);
            eprintln!(
                "iaas-bench: {server} {} start {trial}: listening after {listen_ms:.1} ms, first ack after {ms:.1} ms",
                if cold { "cold" } else { "warm" }
            );
            if server == "gateway" {
                if !answer.headers.contains_key(REQUEST_ID_HEADER) {
                    bail!("the gateway's first ack was not dispatched: {}", String::from_utf8_lossy(&answer.body));
                }
                captured.get_or_insert(answer);
                gateway = Some((child, port));
            } else {
                if captured.as_ref().is_some_and(|c| c.body != answer.body) {
                    bail!("bare-ack does not send the gateway's ack bytes");
                }
                bare = Some((child, port));
            }
        }
    }
    let (gateway, gateway_port) = gateway.expect("at least one trial");
    let (mut bare, mut bare_port) = bare.expect("at least one trial");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gateway_idle_kb = status_kb(gateway.pid, "VmRSS").unwrap_or(0);
    let captured = captured.expect("at least one trial");
    eprintln!(
        "iaas-bench: gateway idle VmRSS {:.1} MB; ack is {} bytes: {}",
        mb(gateway_idle_kb),
        captured.body.len(),
        String::from_utf8_lossy(&captured.body)
    );

    // The gateway's answers for the ceilings: the dispatched ack (answer 0) and one of each
    // kind answered at the edge (answers 1–4), and the invocation it handed over.
    write_answer(&answers_dir, 0, &captured)?;
    let mut edge_bytes = Vec::new();
    if !args.no_edge {
        let now = slack::unix_now();
        for kind in 0..slack::EDGE_KINDS.len() {
            let req = slack::edge_request_at(kind as u64 + 500, now);
            let answer = load::send_once(loopback(gateway_port), &req).await?;
            if answer.status != StatusCode::OK || answer.headers.contains_key(REQUEST_ID_HEADER) {
                bail!("the gateway did not answer the {} at the edge: {}", slack::EDGE_KINDS[kind], String::from_utf8_lossy(&answer.body));
            }
            eprintln!("iaas-bench: edge answer {}: {} bytes", slack::EDGE_KINDS[kind], answer.body.len());
            edge_bytes.push(answer.body.len());
            write_answer(&answers_dir, kind + 1, &answer)?;
        }
        // bare-ack reads its answers at start-up: start the last one again with all of them.
        bare.stop().await;
        bare_port = free_port()?;
        let env = vec![("ANSWERS", answers_dir.display().to_string()), ("PORT", bare_port.to_string())];
        let (_, _, child, _) = first_ack("bare-ack", &bare_bin, &env, bare_port, &slack::request(300), workdir.join("bare.log")).await?;
        bare = child;
    }
    let invocation = load::get(loopback(sink_port), "/_first").await?.body;
    let invocation_file = workdir.join("invocation.json");
    std::fs::write(&invocation_file, &invocation)?;
    eprintln!("iaas-bench: the gateway's invocation is {} bytes", invocation.len());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bare_idle_kb = status_kb(bare.pid, "VmRSS").unwrap_or(0);

    let bare_dispatch = if args.no_dispatch_ceiling {
        None
    } else {
        let port = free_port()?;
        let env = vec![
            ("ANSWERS", answers_dir.display().to_string()),
            ("PORT", port.to_string()),
            ("DISPATCH_URL", format!("http://127.0.0.1:{sink_port}")),
            ("DISPATCH_BODY", invocation_file.display().to_string()),
        ];
        let (_, _, child, answer) =
            first_ack("bare-ack + dispatch", &bare_bin, &env, port, &slack::request(200), workdir.join("bare-dispatch.log")).await?;
        if answer.body != captured.body {
            bail!("bare-ack + dispatch does not send the gateway's ack bytes");
        }
        Some((child, port))
    };

    // 3. Load.
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let mut levels = Vec::new();
    let mut next_request = 1_000_000u64;
    // Gateway first and last in each round, the ceilings mirrored in between, so drift cancels.
    let mut order: Vec<usize> = if bare_dispatch.is_some() {
        vec![GATEWAY, BARE, BARE_DISPATCH, BARE_DISPATCH, BARE, GATEWAY]
    } else {
        vec![GATEWAY, BARE, BARE, GATEWAY]
    };
    if !args.no_edge {
        order.extend([GATEWAY_EDGE, BARE_EDGE, BARE_EDGE, GATEWAY_EDGE]);
    }

    for &c in &args.concurrency {
        eprintln!("iaas-bench: concurrency {c}: signing {} + {} unique requests for the gateway…", args.pool, args.edge_pool);
        // The ceilings do not read the requests, so they share smaller pools.
        let (first, len) = (next_request, args.pool);
        let gw_pool = Arc::new(tokio::task::spawn_blocking(move || Pool::generate(first, len)).await?);
        next_request += args.pool as u64;
        let first = next_request;
        let ceiling_pool = Arc::new(tokio::task::spawn_blocking(move || Pool::generate(first, 50_000)).await?);
        next_request += 50_000;
        let (first, len) = (next_request, if args.no_edge { 1_000 } else { args.edge_pool });
        let gw_edge_pool = Arc::new(tokio::task::spawn_blocking(move || Pool::generate_edge(first, len)).await?);
        next_request += len as u64;
        let first = next_request;
        let edge_ceiling_pool = Arc::new(tokio::task::spawn_blocking(move || Pool::generate_edge(first, 50_000)).await?);
        next_request += 50_000;
        let mut totals: Vec<Option<PhaseResult>> = (0..SERVER_NAMES.len()).map(|_| None).collect();
        let mut rss_peak = 0u64;
        let mut sink_taken = 0u64;
        let mut sink_edge = 0u64;
        for round in 0..args.rounds {
            for &which in &order {
                let (pid, port, pool) = match which {
                    GATEWAY => (gateway.pid, gateway_port, gw_pool.clone()),
                    GATEWAY_EDGE => (gateway.pid, gateway_port, gw_edge_pool.clone()),
                    BARE => (bare.pid, bare_port, ceiling_pool.clone()),
                    BARE_EDGE => (bare.pid, bare_port, edge_ceiling_pool.clone()),
                    _ => {
                        let (p, port) = bare_dispatch.as_ref().expect("the dispatch ceiling runs");
                        (p.pid, *port, ceiling_pool.clone())
                    }
                };
                let is_gateway = which == GATEWAY || which == GATEWAY_EDGE;
                let name = SERVER_NAMES[which];
                let spec = PhaseSpec {
                    addr: loopback(port),
                    concurrency: c,
                    warmup,
                    duration,
                    cpu_pids: vec![pid, sink.pid, me],
                    dispatched: which != GATEWAY_EDGE && which != BARE_EDGE,
                };
                let mut attempt = 0;
                let (r, sink_delta, phase_peak) = loop {
                    let busy = proc::wait_quiet(quiet).await;
                    if busy >= 0.10 {
                        eprintln!("iaas-bench: WARNING: the machine is still {:.0} % busy with other work; measuring anyway", busy * 100.0);
                    }
                    let sampling = Arc::new(AtomicBool::new(true));
                    let peak = Arc::new(AtomicU64::new(0));
                    let sampler = is_gateway.then(|| {
                        let (sampling, peak) = (sampling.clone(), peak.clone());
                        tokio::spawn(async move {
                            while sampling.load(Ordering::Relaxed) {
                                if let Some(kb) = status_kb(pid, "VmRSS") {
                                    peak.fetch_max(kb, Ordering::Relaxed);
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        })
                    });
                    let sink_before = sink_count(sink_port).await?;
                    let r = load::run_phase(&spec, pool.clone()).await?;
                    sampling.store(false, Ordering::Relaxed);
                    if let Some(s) = sampler {
                        let _ = s.await;
                    }
                    let sink_delta = sink_count(sink_port).await? - sink_before;
                    eprintln!(
                        "iaas-bench: c={c} round {round} {name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, machine busy {:.0} % (others {:.1} %), load {}, {} errors{}",
                        r.rps(),
                        r.quantile_ms(0.5),
                        r.quantile_ms(0.99),
                        r.system_busy * 100.0,
                        r.foreign * 100.0,
                        load_average(),
                        r.errors,
                        r.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default()
                    );
                    if r.foreign > args.max_foreign && attempt < args.retries {
                        attempt += 1;
                        eprintln!("iaas-bench: other processes disturbed that phase; running it again ({attempt}/{})", args.retries);
                        continue;
                    }
                    break (r, sink_delta, peak.load(Ordering::Relaxed));
                };
                if which == GATEWAY {
                    sink_taken += sink_delta;
                    if sink_delta != r.acked_total {
                        eprintln!(
                            "iaas-bench: WARNING: {} acks with a request id but {sink_delta} invocations reached the sink",
                            r.acked_total
                        );
                    }
                }
                if which == GATEWAY_EDGE {
                    sink_edge += sink_delta;
                }
                if is_gateway {
                    rss_peak = rss_peak.max(phase_peak);
                }
                let total = &mut totals[which];
                *total = Some(match total.take() {
                    Some(t) => t.merge(r),
                    None => r,
                });
            }
        }
        levels.push(Level {
            concurrency: c,
            results: totals,
            gateway_rss_peak_kb: rss_peak,
            reused: gw_pool.reused() + if args.no_edge { 0 } else { gw_edge_pool.reused() },
            sink_taken,
            sink_edge,
        });
    }
    let load_at_end = load_average();
    let gateway_hwm_kb = status_kb(gateway.pid, "VmHWM").unwrap_or(0);
    let gateway_after_kb = status_kb(gateway.pid, "VmRSS").unwrap_or(0);
    let gateway_log = gateway.log.clone();
    gateway.stop().await;
    bare.stop().await;
    if let Some((p, _)) = bare_dispatch {
        p.stop().await;
    }
    sink.stop().await;

    // 4. vCenter calls per command.
    let vc: Result<VcenterReport> = if args.skip_vcenter {
        Err(anyhow::anyhow!("skipped (--skip-vcenter)"))
    } else {
        eprintln!("iaas-bench: vCenter calls per command (vcsim + iaas serve)…");
        match sibling_binary(bin_dir, "iaas") {
            Ok(iaas) => vcenter::measure(&iaas, &workdir, args.vcenter_passes).await,
            Err(e) => Err(e),
        }
    };
    if let Err(e) = &vc {
        eprintln!("iaas-bench: vCenter part not measured: {e:#}");
    }

    // Report.
    let log_lines = std::fs::read_to_string(&gateway_log).map(|t| t.lines().count()).unwrap_or(0);
    let report = Report {
        args: &args,
        gateway_start,
        bare_start,
        gateway_idle_kb,
        bare_idle_kb,
        levels,
        gateway_hwm_kb,
        gateway_after_kb,
        vc,
        gateway_log_lines: log_lines,
        load: (load_at_start, load_at_end),
        invocation_bytes: invocation.len(),
        edge_bytes,
    };
    report.print();
    if std::env::var_os("IAAS_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&workdir);
    }
    Ok(())
}

/// The source the binaries were built from, as far as git can tell.
fn source_revision() -> String {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--", "gateway", "shared"]).map(|s| !s.is_empty()).unwrap_or(false);
            format!("commit {rev}{}", if dirty { " with uncommitted changes under gateway/ or shared/" } else { "" })
        }
        None => "unknown revision".into(),
    }
}

struct Report<'a> {
    args: &'a Args,
    gateway_start: Startup,
    bare_start: Startup,
    gateway_idle_kb: u64,
    bare_idle_kb: u64,
    levels: Vec<Level>,
    gateway_hwm_kb: u64,
    gateway_after_kb: u64,
    vc: Result<VcenterReport>,
    gateway_log_lines: usize,
    load: (String, String),
    invocation_bytes: usize,
    edge_bytes: Vec<usize>,
}

/// `x` as a percentage with no decimals.
fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

/// The goals table's row for server `ours`'s throughput over `ceiling`'s at `l`'s concurrency,
/// at least `goal`; `what` says what is compared.
fn throughput_goal(l: &Level, what: &str, ours: usize, ceiling: usize, goal: f64) -> String {
    let ratio = l.ratio(ours, ceiling);
    format!(
        "| {what}, concurrency {} | ≥ {} | {} ({:.0} vs {:.0} req/s) | {} |",
        l.concurrency,
        pct(goal),
        pct(ratio),
        l.get(ours).map_or(f64::NAN, PhaseResult::rps),
        l.get(ceiling).map_or(f64::NAN, PhaseResult::rps),
        verdict(ratio >= goal)
    )
}

impl Report<'_> {
    fn print(&self) {
        let args = self.args;
        let levels = &self.levels;
        println!("## iaas-bench results\n");
        println!("Machine: {}.  ", proc::machine());
        println!("Load average (1, 5, 15 min) at the start: {}; at the end of the load phases: {}.  ", self.load.0, self.load.1);
        println!("Source: {}.  ", source_revision());
        let env: Vec<String> = args.gateway_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "Run: {} s measured after {} s warm-up per phase; {} round(s) per concurrency of {}{}; \
             one keep-alive HTTP/1.1 connection per worker; the gateway dispatches every command to a local OpenFaaS stand-in (202); \
             extra gateway environment: {}.\n",
            args.duration,
            args.warmup,
            args.rounds,
            if args.no_dispatch_ceiling {
                "gateway, bare, bare, gateway"
            } else {
                "gateway, bare, bare+hand-over, bare+hand-over, bare, gateway"
            },
            if args.no_edge { "" } else { ", then edge answers: gateway, bare, bare, gateway" },
            if env.is_empty() { "none (logs at info, as deployed)".to_string() } else { env.join(" ") }
        );

        println!("### Goals (issue 12)\n");
        println!("| goal | target | measured | result |");
        println!("|---|---|---|---|");
        for l in levels.iter().filter(|l| l.get(BARE_DISPATCH).is_some()) {
            let what = "dispatched command: ack throughput vs bare axum + the same hand-over";
            println!("{}", throughput_goal(l, what, GATEWAY, BARE_DISPATCH, GOAL_DISPATCH_RATIO));
        }
        if let Some(l) = levels.iter().find(|l| l.concurrency == GOAL_P99_CONCURRENCY) {
            if let (Some(g), Some(c)) = (l.get(GATEWAY), l.get(BARE_DISPATCH)) {
                let (gp, cp) = (g.quantile_ms(0.99), c.quantile_ms(0.99));
                println!(
                    "| dispatched command: ack p99 at concurrency {GOAL_P99_CONCURRENCY} vs the same ceiling's p99 | ≤ {GOAL_P99_FACTOR}× | {:.2}× ({gp:.2} vs {cp:.2} ms) | {} |",
                    gp / cp,
                    verdict(gp <= GOAL_P99_FACTOR * cp)
                );
            }
        }
        for l in levels.iter().filter(|l| l.get(GATEWAY_EDGE).is_some()) {
            let what = "answered at the edge (help, usage, did-you-mean, refusal): throughput vs bare axum";
            println!("{}", throughput_goal(l, what, GATEWAY_EDGE, BARE_EDGE, GOAL_EDGE_RATIO));
        }
        if !self.gateway_start.cold_ms.is_empty() && !self.bare_start.cold_ms.is_empty() {
            let (_, g, _) = spread(&self.gateway_start.cold_ms);
            let (_, b, _) = spread(&self.bare_start.cold_ms);
            println!(
                "| cold start (binary evicted from the page cache) to the first ack vs bare axum's, medians of {} | ≤ {GOAL_COLD_FACTOR}× | {:.2}× ({g:.1} vs {b:.1} ms) | {} |",
                self.gateway_start.cold_ms.len(),
                g / b,
                verdict(g <= GOAL_COLD_FACTOR * b)
            );
        }
        let (_, median, worst) = spread(&self.gateway_start.ms);
        println!(
            "| first ack after process spawn, warm (median of {} starts; worst shown) | ≤ {GOAL_FIRST_ACK_MS} ms | {median:.1} ms (worst {worst:.1} ms) | {} |",
            self.gateway_start.ms.len(),
            verdict(median <= GOAL_FIRST_ACK_MS)
        );
        println!(
            "| idle RSS (VmRSS 1 s after first ack) | < {GOAL_IDLE_RSS_MB} MB | {:.1} MB | {} |",
            mb(self.gateway_idle_kb),
            verdict(mb(self.gateway_idle_kb) < GOAL_IDLE_RSS_MB)
        );
        if let Ok(vc) = &self.vc {
            println!("| vCenter logins by `iaas serve` for the whole run | 1 | {} | {} |", vc.logins, verdict(vc.logins == 1));
        }
        println!();
        // One line per run, for comparing runs (bench/README.md's spreads).
        let summary: Vec<String> = levels
            .iter()
            .map(|l| {
                format!(
                    "c={} disp {} p99 {:.2}/{:.2} edge {}",
                    l.concurrency,
                    pct(l.ratio(GATEWAY, BARE_DISPATCH)),
                    l.get(GATEWAY).map_or(f64::NAN, |r| r.quantile_ms(0.99)),
                    l.get(BARE_DISPATCH).map_or(f64::NAN, |r| r.quantile_ms(0.99)),
                    pct(l.ratio(GATEWAY_EDGE, BARE_EDGE))
                )
            })
            .collect();
        println!(
            "Summary: {}; cold {:.1}/{:.1} ms.\n",
            summary.join("; "),
            spread(&self.gateway_start.cold_ms).1,
            spread(&self.bare_start.cold_ms).1
        );

        println!("### Throughput and latency\n");
        println!("| concurrency | server | req/s | vs its ceiling | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |");
        println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for l in levels {
            for (i, r) in l.results.iter().enumerate() {
                let Some(r) = r else { continue };
                let vs = match i {
                    GATEWAY if l.get(BARE_DISPATCH).is_some() => format!("{} of bare + hand-over", pct(l.ratio(i, BARE_DISPATCH))),
                    GATEWAY | BARE_DISPATCH => format!("{} of bare", pct(l.ratio(i, BARE))),
                    GATEWAY_EDGE => format!("{} of bare", pct(l.ratio(i, BARE_EDGE))),
                    _ => "ceiling".to_string(),
                };
                println!(
                    "| {} | {} | {:.0} | {vs} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                    l.concurrency,
                    SERVER_NAMES[i],
                    r.rps(),
                    r.quantile_ms(0.5),
                    r.quantile_ms(0.9),
                    r.quantile_ms(0.99),
                    r.quantile_ms(0.999),
                    r.max_ms(),
                    r.errors
                );
            }
        }
        println!();
        let sent: u64 = levels.iter().filter_map(|l| l.get(GATEWAY)).map(|r| r.acked_total).sum();
        let sunk: u64 = levels.iter().map(|l| l.sink_taken).sum();
        let sunk_edge: u64 = levels.iter().map(|l| l.sink_edge).sum();
        let reused: usize = levels.iter().map(|l| l.reused).sum();
        println!(
            "Every counted dispatched ack carried a request id; the sink took {sunk} invocations for {sent} such acks{}, and {sunk_edge} during the edge phases. \
             {reused} gateway requests reused a body (pools of {} dispatched and {} edge requests per level, each unique). Gateway log lines: {}. \
             The hand-over: the gateway's own invocation body ({} bytes), the same client and headers; edge answers are {} bytes.\n",
            if sunk == sent { " (equal)" } else { " (**not equal**)" },
            args.pool,
            args.edge_pool,
            self.gateway_log_lines,
            self.invocation_bytes,
            self.edge_bytes.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
        );

        println!("### CPU per request (µs of CPU time per counted request, measured window)\n");
        println!("| concurrency | server | server process | dispatch sink | load client | sum | machine busy | other processes |");
        println!("|---:|---|---:|---:|---:|---:|---:|---:|");
        for l in levels {
            for (i, r) in l.results.iter().enumerate() {
                let Some(r) = r else { continue };
                let (s, k, c) = (r.cpu_us_per_request(0), r.cpu_us_per_request(1), r.cpu_us_per_request(2));
                println!(
                    "| {} | {} | {s:.1} | {k:.1} | {c:.1} | {:.1} | {:.0} % | {:.1} % |",
                    l.concurrency,
                    SERVER_NAMES[i],
                    s + k + c,
                    r.system_busy * 100.0,
                    r.foreign * 100.0
                );
            }
        }
        println!(
            "\n\"Machine busy\" is all CPU time on the box (user, system, irq, softirq, steal) over the window; \"other processes\" is the part \
             not charged to the server, the sink or the client (a phase with more than {:.0} % of it is run again, up to {} times). Per-process \
             figures are utime+stime ticks from /proc/<pid>/stat; loopback TCP receive work is often charged to the sender.\n",
            args.max_foreign * 100.0,
            args.retries
        );

        println!("### Memory (gateway)\n");
        println!("| when | value |");
        println!("|---|---:|");
        println!("| VmRSS idle, 1 s after the first ack | {:.1} MB |", mb(self.gateway_idle_kb));
        for l in levels {
            println!("| VmRSS peak sampled every 100 ms under load, concurrency {} | {:.1} MB |", l.concurrency, mb(l.gateway_rss_peak_kb));
        }
        println!("| VmRSS after all load | {:.1} MB |", mb(self.gateway_after_kb));
        println!("| VmHWM (peak) at the end | {:.1} MB |", mb(self.gateway_hwm_kb));
        println!("| bare-ack VmRSS idle, for comparison | {:.1} MB |", mb(self.bare_idle_kb));
        println!("\nMB = 10^6 bytes.\n");

        println!(
            "### Start-up: process spawn → first 200 ack ({} cold and {} warm starts each, alternating, polled every ~1 ms)\n",
            self.gateway_start.cold_ms.len(),
            self.gateway_start.ms.len()
        );
        println!(
            "Cold: the binary alone was evicted from the page cache with posix_fadvise(POSIX_FADV_DONTNEED) just before the spawn, as on a new \
             host or container (shared libraries such as libc stay cached for both). \"Read from disk\" is how much of the binary was in the \
             page cache right after the cold start's first ack (mincore): what the start paged in, read-ahead included.\n"
        );
        println!("| server | binary | start | milestone | min ms | median ms | max ms | read from disk (median) | major faults (median) |");
        println!("|---|---:|---|---|---:|---:|---:|---:|---:|");
        for (name, s) in [("gateway", &self.gateway_start), ("bare axum", &self.bare_start)] {
            for (kind, listen, ack) in [("cold", &s.cold_listen_ms, &s.cold_ms), ("warm", &s.listen_ms, &s.ms)] {
                if ack.is_empty() {
                    continue;
                }
                let median = |v: &[u64]| {
                    let mut v = v.to_vec();
                    v.sort_unstable();
                    v.get(v.len().saturating_sub(1) / 2).copied()
                };
                let (read, faults) = match (kind, median(&s.cold_read), median(&s.cold_majflt)) {
                    ("cold", Some(r), Some(f)) => (format!("{:.1} MB", r as f64 / 1e6), f.to_string()),
                    _ => ("—".into(), "—".into()),
                };
                let size = format!("{:.1} MB", s.binary_bytes as f64 / 1e6);
                let (a, b, c) = spread(listen);
                println!("| {name} | {size} | {kind} | accepts a TCP connection | {a:.1} | {b:.1} | {c:.1} | | |");
                let (a, b, c) = spread(ack);
                println!(
                    "| {name} | {size} | {kind} | first 200 ack{} | {a:.1} | {b:.1} | {c:.1} | {read} | {faults} |",
                    if name == "gateway" { " (after its first hand-over)" } else { "" }
                );
            }
        }
        println!();

        println!("### vCenter SOAP calls per command (`iaas serve` against vcsim)\n");
        match &self.vc {
            Err(e) => println!("Not yet measured: {e:#}.\n"),
            Ok(vc) => {
                let fmt = |m: &std::collections::BTreeMap<String, u64>| {
                    if m.is_empty() {
                        "none".to_string()
                    } else {
                        m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
                    }
                };
                println!("At start-up, before any command: {}.\n", fmt(&vc.startup));
                println!("| pass | command | calls | by method | ms to answer | answer |");
                println!("|---:|---|---:|---|---:|---|");
                for c in &vc.commands {
                    println!(
                        "| {} | `{}` | {} | {} | {:.0} | {} |",
                        c.pass,
                        c.text,
                        c.total(),
                        fmt(&c.calls),
                        c.answer_ms,
                        c.answer.replace('|', "\\|")
                    );
                }
                println!("\nLogins by `iaas serve` over the whole run: {}.\n", vc.logins);
            }
        }
    }
}
