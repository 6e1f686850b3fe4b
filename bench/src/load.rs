//! A closed-loop load client: `concurrency` workers, each with one keep-alive HTTP/1.1
//! connection (hyper), each sending the next pre-signed request as soon as the previous answer
//! is read. A request counts when it was sent after the warm-up and answered before the end,
//! with 200 and the `x-iaas-request-id` header (the gateway sets it only when the work was
//! dispatched; the bare ceiling sends it too), or, for commands answered at the edge, with 200
//! and without it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::proc::{clock_ticks_per_sec, cpu_ticks, SysCpu};
use crate::slack::{Pool, Signed};

pub const PATH: &str = "/slack/commands";
pub const REQUEST_ID_HEADER: &str = "x-iaas-request-id";
/// Which of the bare ceiling's answers a request gets (the gateway ignores it).
pub const ANSWER_HEADER: &str = "x-bench-answer";
const SLACK_USER_AGENT: &str = "Slackbot 1.0 (+https://api.slack.com/robots)";

/// One answer read in full.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

fn build(host: &HeaderValue, req: &Signed) -> Request<Full<Bytes>> {
    let mut r = Request::post(PATH).body(Full::new(req.body.clone())).expect("static request parts are valid");
    let h = r.headers_mut();
    h.insert(HOST, host.clone());
    h.insert(USER_AGENT, HeaderValue::from_static(SLACK_USER_AGENT));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    h.insert(iaas_slack::TIMESTAMP_HEADER, req.timestamp.clone());
    h.insert(iaas_slack::SIGNATURE_HEADER, req.signature.clone());
    h.insert(ANSWER_HEADER, req.answer.clone());
    r
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn host_value(addr: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&addr.to_string()).expect("an address is a header value")
}

/// `GET path` on a fresh connection (health checks, the sink's count).
pub async fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    let mut sender = connect(addr).await?;
    let req = Request::get(path).header(HOST, host_value(addr)).body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Answer { status: parts.status, headers: parts.headers, body })
}

/// One request on a fresh connection (start-up polling, capturing the ack, single commands).
pub async fn send_once(addr: SocketAddr, req: &Signed) -> Result<Answer> {
    let mut sender = connect(addr).await?;
    let resp = sender.send_request(build(&host_value(addr), req)).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Answer { status: parts.status, headers: parts.headers, body })
}

pub struct PhaseSpec {
    pub addr: SocketAddr,
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Processes whose CPU time is read at the start and end of the measured window.
    pub cpu_pids: Vec<u32>,
    /// Whether a counted answer must carry the request id (a dispatched command) or must not
    /// (a command answered at the edge).
    pub dispatched: bool,
}

#[derive(Default)]
pub struct PhaseResult {
    /// Sorted latencies of the counted requests, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Length of the measured window(s), in seconds.
    pub seconds: f64,
    /// Non-200, missing request id, or transport errors (warm-up included).
    pub errors: u64,
    /// Every 200 with a request id, warm-up and stragglers included (to compare with the
    /// number of invocations the dispatch sink took).
    pub acked_total: u64,
    pub first_error: Option<String>,
    /// CPU seconds used by each of `cpu_pids` during the measured window(s).
    pub cpu_seconds: Vec<f64>,
    /// Share of the whole machine's CPU time that was busy during the measured window(s).
    pub system_busy: f64,
    /// Share of the machine's CPU time used by processes other than `cpu_pids` (someone
    /// else's build, say): a measurement with much of it is not trustworthy.
    pub foreign: f64,
}

impl PhaseResult {
    pub fn count(&self) -> usize {
        self.latencies_us.len()
    }

    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.count() as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Latency at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let n = self.latencies_us.len();
        let idx = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        self.latencies_us[idx] as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies_us.last().map(|&v| v as f64 / 1000.0).unwrap_or(f64::NAN)
    }

    /// CPU microseconds per counted request for pid slot `i`.
    pub fn cpu_us_per_request(&self, i: usize) -> f64 {
        match (self.cpu_seconds.get(i), self.count()) {
            (Some(s), n) if n > 0 => s * 1e6 / n as f64,
            _ => f64::NAN,
        }
    }

    /// Two runs against the same server, as one.
    pub fn merge(mut self, other: PhaseResult) -> PhaseResult {
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        let weigh = |a: f64, b: f64| (a * self.seconds + b * other.seconds) / (self.seconds + other.seconds);
        self.system_busy = weigh(self.system_busy, other.system_busy);
        self.foreign = weigh(self.foreign, other.foreign);
        self.seconds += other.seconds;
        self.errors += other.errors;
        self.acked_total += other.acked_total;
        self.first_error = self.first_error.or(other.first_error);
        if self.cpu_seconds.is_empty() {
            self.cpu_seconds = other.cpu_seconds;
        } else {
            for (a, b) in self.cpu_seconds.iter_mut().zip(other.cpu_seconds) {
                *a += b;
            }
        }
        self
    }
}

#[derive(Default)]
struct WorkerOut {
    latencies_us: Vec<u32>,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
}

fn fail(out: &mut WorkerOut, what: String) {
    out.errors += 1;
    out.first_error.get_or_insert(what);
}

/// Runs one phase: connects every worker, then `warmup + duration` of closed-loop requests.
pub async fn run_phase(spec: &PhaseSpec, pool: Arc<Pool>) -> Result<PhaseResult> {
    let host = host_value(spec.addr);
    let mut senders = Vec::with_capacity(spec.concurrency);
    for _ in 0..spec.concurrency {
        senders.push(connect(spec.addr).await.with_context(|| format!("connecting to {}", spec.addr))?);
    }
    let start = Instant::now();
    let warm_end = start + spec.warmup;
    let end = warm_end + spec.duration;
    let expected = (spec.duration.as_secs_f64() * 60_000.0 / spec.concurrency as f64) as usize;
    let workers: Vec<_> = senders
        .into_iter()
        .map(|sender| {
            let pool = pool.clone();
            let host = host.clone();
            let addr = spec.addr;
            tokio::spawn(worker(addr, host, sender, pool, spec.dispatched, warm_end, end, expected.min(1 << 20)))
        })
        .collect();

    let tck = clock_ticks_per_sec() as f64;
    tokio::time::sleep_until(warm_end.into()).await;
    let cpu_start: Vec<Option<u64>> = spec.cpu_pids.iter().map(|&p| cpu_ticks(p)).collect();
    let sys_start = SysCpu::read();
    let measure_start = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let cpu_end: Vec<Option<u64>> = spec.cpu_pids.iter().map(|&p| cpu_ticks(p)).collect();
    let sys_end = SysCpu::read();
    let measured = measure_start.elapsed();

    let mut result = PhaseResult {
        seconds: spec.duration.as_secs_f64(),
        cpu_seconds: cpu_start
            .iter()
            .zip(&cpu_end)
            .map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => (b.saturating_sub(*a)) as f64 / tck * (spec.duration.as_secs_f64() / measured.as_secs_f64()),
                _ => f64::NAN,
            })
            .collect(),
        system_busy: match (sys_start, sys_end) {
            (Some(a), Some(b)) => a.busy_until(&b),
            _ => f64::NAN,
        },
        foreign: match (sys_start, sys_end) {
            (Some(a), Some(b)) if b.total > a.total => {
                let ours: u64 = cpu_start
                    .iter()
                    .zip(&cpu_end)
                    .map(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) => y.saturating_sub(*x),
                        _ => 0,
                    })
                    .sum();
                (b.tasks.saturating_sub(a.tasks)).saturating_sub(ours) as f64 / (b.total - a.total) as f64
            }
            _ => f64::NAN,
        },
        ..Default::default()
    };
    for w in workers {
        let out = w.await.map_err(|e| anyhow!("load worker panicked: {e}"))?;
        result.latencies_us.extend(out.latencies_us);
        result.errors += out.errors;
        result.acked_total += out.acked;
        result.first_error = result.first_error.or(out.first_error);
    }
    result.latencies_us.sort_unstable();
    Ok(result)
}

async fn worker(
    addr: SocketAddr,
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
    pool: Arc<Pool>,
    expect_dispatched: bool,
    warm_end: Instant,
    end: Instant,
    capacity: usize,
) -> WorkerOut {
    let mut out = WorkerOut { latencies_us: Vec::with_capacity(capacity), ..Default::default() };
    let mut sender = Some(sender);
    while Instant::now() < end {
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    fail(&mut out, format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if s.ready().await.is_err() {
            sender = None;
            continue;
        }
        let request = build(&host, pool.take());
        let sent = Instant::now();
        match s.send_request(request).await {
            Ok(resp) => {
                let status = resp.status();
                let dispatched = resp.headers().contains_key(REQUEST_ID_HEADER);
                let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                let done = Instant::now();
                match body {
                    Ok(_) if status == StatusCode::OK && dispatched == expect_dispatched => {
                        out.acked += 1;
                        if sent >= warm_end && done <= end {
                            out.latencies_us.push(done.duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
                        }
                    }
                    Ok(body) => fail(&mut out, format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]))),
                    Err(e) => {
                        fail(&mut out, format!("reading body: {e}"));
                        sender = None;
                    }
                }
            }
            Err(e) => {
                fail(&mut out, format!("request: {e}"));
                sender = None;
            }
        }
    }
    out
}
