//! Slash-command requests signed the way Slack signs them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderValue;
use iaas_slack::SlashCommand;

/// The signing secret given to every server under test.
pub const SIGNING_SECRET: &str = "bench-slack-signing-secret";
/// Gateway → function secret.
pub const SHARED_SECRET: &str = "bench-shared-secret";

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// One ready-to-send request: the raw form body and its two Slack headers, and which of the
/// bare ceiling's answers corresponds to the gateway's (`x-bench-answer`, ignored by the gateway).
#[derive(Clone)]
pub struct Signed {
    pub body: Bytes,
    pub timestamp: HeaderValue,
    pub signature: HeaderValue,
    pub answer: HeaderValue,
}

impl Signed {
    pub fn new(form: String, now: i64) -> Signed {
        Signed::answered_by(form, now, 0)
    }

    /// A request whose bare-ceiling counterpart is answer `answer` (see `bare-ack`).
    pub fn answered_by(form: String, now: i64, answer: usize) -> Signed {
        let signature = iaas_slack::sign(SIGNING_SECRET.as_bytes(), now, form.as_bytes());
        Signed {
            timestamp: HeaderValue::from_str(&now.to_string()).expect("digits are a header value"),
            signature: HeaderValue::from_str(&signature).expect("hex is a header value"),
            body: Bytes::from(form),
            answer: HeaderValue::from(answer),
        }
    }
}

/// Kinds of command the gateway answers at the edge, without a hand-over (bare answers 1–4).
pub const EDGE_KINDS: [&str; 4] = ["help", "usage", "did you mean", "refusal (response_url not Slack's)"];

/// Edge request `n`: help, a usage error, an unknown command with a did-you-mean, or a command
/// refused before its hand-over (its response_url is not Slack's). Its bare answer is `n % 4 + 1`.
pub fn edge_request_at(n: u64, now: i64) -> Signed {
    let vm = format!("bench-vm-{n:07}");
    let kind = (n % 4) as usize;
    let (text, url) = match kind {
        0 => ("help".to_string(), hooks_url(n)),
        1 => ("power on".to_string(), hooks_url(n)),
        2 => (format!("powr status {vm}"), hooks_url(n)),
        _ => (format!("power status {vm}"), format!("https://hooks.example.com/commands/T0BENCH01/{n}")),
    };
    Signed::answered_by(form(n, &text, &url), now, kind + 1)
}

/// The form Slack posts for `/iaas <text>`, with a unique trigger_id per `n`.
pub fn form(n: u64, text: &str, response_url: &str) -> String {
    SlashCommand {
        team_id: "T0BENCH01".into(),
        team_domain: "bench-corp".into(),
        channel_id: "C0BENCH01".into(),
        channel_name: "ops".into(),
        user_id: format!("U0BENCH{:03}", n % 500),
        user_name: format!("bench.user{}", n % 500),
        command: "/iaas".into(),
        text: text.into(),
        response_url: response_url.into(),
        trigger_id: format!(
            "{n}.{}.{:032x}",
            1_000_000_000_000u64 + n,
            (n as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        ),
        api_app_id: "A0BENCH01".into(),
        ssl_check: String::new(),
    }
    .to_form()
}

/// The `/iaas` text for request `n`: a rotation of commands that are all dispatched (power →
/// iaas-power, vm → iaas-inventory), each naming a different VM.
pub fn text(n: u64) -> String {
    let vm = format!("bench-vm-{n:07}");
    match n % 4 {
        0 => format!("power status {vm}"),
        1 => format!("vm info {vm}"),
        2 => format!("power on {vm}"),
        _ => format!("vm list {vm}*"),
    }
}

/// A Slack-looking response_url (the gateway refuses any other host).
pub fn hooks_url(n: u64) -> String {
    format!("https://hooks.slack.com/commands/T0BENCH01/{}/{:024x}", 7_000_000_000_000u64 + n, n.wrapping_mul(0x2545_f491_4f6c_dd1d))
}

/// Request `n`, signed now.
pub fn request(n: u64) -> Signed {
    Signed::new(form(n, &text(n), &hooks_url(n)), unix_now())
}

/// Unique requests generated before a timed run; workers take them in order. When a run
/// outlasts the pool it wraps around, and [`Pool::reused`] says how many were sent twice.
pub struct Pool {
    requests: Vec<Signed>,
    next: AtomicUsize,
}

impl Pool {
    /// `len` requests numbered from `first`, all signed with the current time.
    pub fn generate(first: u64, len: usize) -> Pool {
        let now = unix_now();
        let requests = (first..first + len as u64).map(|n| Signed::new(form(n, &text(n), &hooks_url(n)), now)).collect();
        Pool { requests, next: AtomicUsize::new(0) }
    }

    /// `len` edge requests ([`edge_request_at`]) numbered from `first`.
    pub fn generate_edge(first: u64, len: usize) -> Pool {
        let now = unix_now();
        let requests = (first..first + len as u64).map(|n| edge_request_at(n, now)).collect();
        Pool { requests, next: AtomicUsize::new(0) }
    }

    pub fn take(&self) -> &Signed {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.requests[i % self.requests.len()]
    }

    pub fn taken(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    pub fn reused(&self) -> usize {
        self.taken().saturating_sub(self.requests.len())
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}
