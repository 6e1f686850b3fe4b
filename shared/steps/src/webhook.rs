//! Webhook: tell a CMDB / ticketing system / anything with an HTTP API that the VM is gone.
//!
//! The URL and body are templates: `{{name}} {{moref}} {{uuid}} {{ip}} {{os}} {{owner}}
//! {{ticket}} {{reason}}` are replaced by the VM's facts (an absent fact is the empty string).
//! In the URL values are percent-encoded; in a JSON body (a `Content-Type` header containing
//! `json`, or a template starting with `{` or `[`) they are JSON-escaped, and the rendered body
//! must parse as JSON. An unknown placeholder is an error, so a typo is not sent as-is.
//!
//! Outcome by status: `already_done_statuses` (default `[404]`) → [`StepOutcome::AlreadyDone`];
//! `expected_statuses` (default: any 2xx) → [`StepOutcome::Done`]; 429, 500, 502, 503, 504 and
//! transport errors are retried up to `retries` times with exponential backoff from `backoff`
//! (capped at [`MAX_BACKOFF`]), waiting `Retry-After` instead when the server sends it (up to
//! [`MAX_RETRY_AFTER`]); anything else is a [`StepError`]. Redirects are not followed (the
//! bearer token must not travel to another host).

use std::fmt;
use std::time::Duration;

use iaas_config::Secret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use crate::settings::Settings;
use crate::{StepError, StepOutcome, VmFacts};

/// Longest wait between two attempts from our own backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest `Retry-After` we honour; a server asking for more makes the step fail now (the
/// runner can resume later) instead of holding a worker.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Most of a response body quoted in an error.
const BODY_SNIPPET: usize = 200;

/// One HTTP call per run (plus bounded retries). `Debug` never prints the secret.
#[derive(Clone)]
pub struct WebhookStep {
    /// `POST`, `DELETE`, `PUT`, `PATCH`, …
    pub method: String,
    /// `http(s)://…`, may hold placeholders (percent-encoded when rendered).
    pub url: String,
    /// Extra request headers (not `Authorization` when `secret` is set).
    pub headers: Vec<(String, String)>,
    /// The body template; `None` sends no body.
    pub body_template: Option<String>,
    /// Sent as `Authorization: Bearer <secret>`.
    pub secret: Option<Secret>,
    /// Statuses meaning "done"; empty = any 2xx.
    pub expected_statuses: Vec<u16>,
    /// Statuses meaning "already gone" (checked first).
    pub already_done_statuses: Vec<u16>,
    /// Bound on each attempt (connect + request + response body).
    pub timeout: Duration,
    /// Extra attempts after the first (so at most `retries + 1` requests).
    pub retries: u32,
    /// First backoff delay; doubles per attempt up to [`MAX_BACKOFF`].
    pub backoff: Duration,
}

impl fmt::Debug for WebhookStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookStep")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("body_template", &self.body_template)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("expected_statuses", &self.expected_statuses)
            .field("already_done_statuses", &self.already_done_statuses)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// The keys a `webhook` plan entry may have.
const KEYS: [&str; 10] = [
    "url",
    "method",
    "headers",
    "body",
    "secret_env",
    "expected_statuses",
    "already_done_statuses",
    "timeout_secs",
    "retries",
    "backoff_ms",
];

impl WebhookStep {
    /// The step a plan entry describes (keys as in [`KEYS`]; method POST, timeout 10 s,
    /// 3 retries from 500 ms unless set). The error is a sentence naming the key at fault.
    pub fn from_settings(settings: &serde_json::Value) -> Result<WebhookStep, String> {
        let s = Settings::new("webhook", settings, &KEYS)?;
        let mut w = WebhookStep::new(s.text("method")?.unwrap_or_else(|| "POST".into()), s.required("url")?);
        w.headers = s.string_table("headers")?;
        w.body_template = s.text("body")?;
        w.secret = s.secret(false)?;
        if let Some(v) = s.statuses("expected_statuses")? {
            w.expected_statuses = v;
        }
        if let Some(v) = s.statuses("already_done_statuses")? {
            w.already_done_statuses = v;
        }
        w.timeout = s.timeout(10)?;
        w.retries = u32::try_from(s.number("retries", 3)?).map_err(|_| "The webhook step's retries is too large".to_string())?;
        w.backoff = Duration::from_millis(s.number("backoff_ms", 500)?);
        Ok(w)
    }

    /// Defaults: no headers, body or secret; 2xx = done, 404 = already done; 10 s timeout,
    /// 3 retries from 500 ms.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> WebhookStep {
        WebhookStep {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body_template: None,
            secret: None,
            expected_statuses: Vec::new(),
            already_done_statuses: vec![404],
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }

    pub async fn run(&self, vm: &VmFacts) -> Result<StepOutcome, StepError> {
        let method = Method::from_bytes(self.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| StepError::new(format!("The webhook method {:?} is not an HTTP method.", self.method)))?;
        let url = render(&self.url, vm, Escape::Url)?;
        let shown = redact_url(&url);
        let parsed = reqwest::Url::parse(&url)
            .map_err(|_| StepError::new(format!("The webhook URL {shown} is not a valid URL; check the step's url.")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(StepError::new(format!("The webhook URL {shown} must start with http:// or https://.")));
        }
        if self.timeout.is_zero() {
            return Err(StepError::new("The webhook step's timeout is zero; set it to a few seconds."));
        }
        let headers = self.headers()?;
        let body = match &self.body_template {
            Some(t) => {
                let json = self.is_json(t);
                let body = render(t, vm, if json { Escape::Json } else { Escape::None })?;
                if json && serde_json::from_str::<serde_json::Value>(&body).is_err() {
                    return Err(StepError::new("The webhook body template does not render to valid JSON; check its quotes and commas."));
                }
                Some(body)
            }
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StepError::new(format!("The HTTP client could not be set up ({e}).")))?;

        let attempts = self.retries.saturating_add(1);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut req = client.request(method.clone(), parsed.clone()).headers(headers.clone());
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let last = attempt >= attempts;
            let (wait, failure) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    let code = status.as_u16();
                    if self.already_done_statuses.contains(&code) {
                        return Ok(StepOutcome::AlreadyDone(format!("{method} {shown} answered {status}: nothing left to do.")));
                    }
                    let expected =
                        if self.expected_statuses.is_empty() { status.is_success() } else { self.expected_statuses.contains(&code) };
                    if expected {
                        return Ok(StepOutcome::Done(format!("{method} {shown} answered {status}.")));
                    }
                    let text = snippet(resp).await;
                    let failure = format!("{method} {shown} answered {status}{text}");
                    if !retryable(status) {
                        return Err(StepError::new(format!(
                            "{failure}. That is not one of the expected statuses; check the webhook's configuration."
                        )));
                    }
                    (retry_after, failure)
                }
                Err(e) => {
                    let why = if e.is_timeout() {
                        format!("did not answer within {:?}", self.timeout)
                    } else if e.is_connect() {
                        "could not be reached".to_owned()
                    } else {
                        format!("failed ({})", e.without_url())
                    };
                    (None, format!("{method} {shown} {why}"))
                }
            };
            if last {
                return Err(StepError::new(format!("{failure}; gave up after {attempt} attempt{}.", if attempt == 1 { "" } else { "s" })));
            }
            let delay = match wait {
                Some(d) if d > MAX_RETRY_AFTER => {
                    return Err(StepError::new(format!(
                        "{failure} and asked to retry after {} s, longer than the {} s this step waits; try again later.",
                        d.as_secs(),
                        MAX_RETRY_AFTER.as_secs()
                    )))
                }
                Some(d) => d,
                None => backoff(self.backoff, attempt),
            };
            tracing::info!(url = %shown, attempt, delay_ms = delay.as_millis() as u64, "webhook attempt failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether the webhook's host resolves and answers, sending nothing a run would: one
    /// `HEAD` of the URL (placeholders filled in for a VM named `iaas-doctor-probe`), no body,
    /// no credentials, no retries, redirects not followed. Any HTTP answer counts as reachable;
    /// `Ok` says which status came back.
    pub async fn probe(&self) -> Result<String, StepError> {
        let probe = VmFacts {
            name: "iaas-doctor-probe".into(),
            moref: String::new(),
            uuid: None,
            ip: None,
            os_family: "other".into(),
            owner: None,
            ticket: None,
            reason: None,
        };
        let url = render(&self.url, &probe, Escape::Url)?;
        let shown = redact_url(&url);
        let parsed = reqwest::Url::parse(&url)
            .map_err(|_| StepError::new(format!("The webhook URL {shown} is not a valid URL; check the step's url.")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(StepError::new(format!("The webhook URL {shown} must start with http:// or https://.")));
        }
        let host = parsed.host_str().unwrap_or_default().to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let timeout = if self.timeout.is_zero() { Duration::from_secs(10) } else { self.timeout };
        let resolved = tokio::time::timeout(timeout, tokio::net::lookup_host((host.trim_matches(['[', ']']), port))).await;
        match resolved.map(|r| r.map(|mut addrs| addrs.next().is_some())) {
            Ok(Ok(true)) => {}
            Ok(_) => return Err(StepError::new(format!("The webhook host {host} does not resolve; check the step's url and DNS."))),
            Err(_) => return Err(StepError::new(format!("Resolving the webhook host {host} took longer than {timeout:?}."))),
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StepError::new(format!("The HTTP client could not be set up ({e}).")))?;
        match client.head(parsed).send().await {
            Ok(resp) => Ok(format!("HEAD {shown} answered {}", resp.status())),
            Err(e) if e.is_timeout() => Err(StepError::new(format!("HEAD {shown} did not answer within {timeout:?}."))),
            Err(e) if e.is_connect() => Err(StepError::new(format!("HEAD {shown} could not connect: nothing answers at {host}:{port}."))),
            Err(e) => Err(StepError::new(format!("HEAD {shown} failed ({}).", e.without_url()))),
        }
    }

    fn is_json(&self, template: &str) -> bool {
        let by_header = self.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.to_ascii_lowercase().contains("json"));
        let t = template.trim_start();
        by_header || t.starts_with('{') || t.starts_with('[')
    }

    fn headers(&self) -> Result<HeaderMap, StepError> {
        let mut map = HeaderMap::new();
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| StepError::new(format!("The webhook header name {k:?} is not valid.")))?;
            if name == AUTHORIZATION && self.secret.is_some() {
                return Err(StepError::new("The webhook has both an Authorization header and a secret; keep only the secret."));
            }
            let mut value =
                HeaderValue::from_str(v).map_err(|_| StepError::new(format!("The value of the webhook header {k:?} is not valid.")))?;
            if name == AUTHORIZATION {
                value.set_sensitive(true);
            }
            map.append(name, value);
        }
        if let Some(secret) = &self.secret {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
                .map_err(|_| StepError::new("The webhook secret holds characters not allowed in an HTTP header."))?;
            value.set_sensitive(true);
            map.insert(AUTHORIZATION, value);
        }
        if self.body_template.as_deref().is_some_and(|t| self.is_json(t)) && !map.contains_key(CONTENT_TYPE) {
            map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Ok(map)
    }
}

#[derive(Clone, Copy)]
enum Escape {
    None,
    Json,
    Url,
}

/// Replaces `{{placeholder}}`s (spaces inside the braces allowed) with the VM's facts.
fn render(template: &str, vm: &VmFacts, escape: Escape) -> Result<String, StepError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(StepError::new("A webhook template has a {{ without a closing }}."));
        };
        let key = after[..end].trim();
        let value = match key {
            "name" => Some(vm.name.as_str()),
            "moref" => Some(vm.moref.as_str()),
            "uuid" => vm.uuid.as_deref(),
            "ip" => vm.ip.as_deref(),
            "os" => Some(vm.os_family.as_str()),
            "owner" => vm.owner.as_deref(),
            "ticket" => vm.ticket.as_deref(),
            "reason" => vm.reason.as_deref(),
            other => {
                return Err(StepError::new(format!(
                    "The webhook template uses an unknown placeholder {{{{{other}}}}}; known are name, moref, uuid, ip, os, owner, ticket and reason."
                )))
            }
        }
        .unwrap_or("");
        match escape {
            Escape::None => out.push_str(value),
            Escape::Json => {
                let quoted = serde_json::Value::String(value.to_owned()).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            Escape::Url => {
                for b in value.bytes() {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                        out.push(b as char);
                    } else {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds, or as an HTTP date is not supported (treated as absent).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// `: <first 200 chars of the body>` or nothing; never waits longer than the client timeout.
async fn snippet(resp: reqwest::Response) -> String {
    match resp.text().await {
        Ok(t) => {
            let t = t.trim();
            if t.is_empty() {
                String::new()
            } else {
                let cut: String = t.chars().take(BODY_SNIPPET).collect();
                format!(" ({cut}{})", if t.chars().count() > BODY_SNIPPET { "…" } else { "" })
            }
        }
        Err(_) => String::new(),
    }
}

/// The URL without query string and user info (either could hold a token).
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            if u.query().is_some() {
                u.set_query(Some("…"));
            }
            u.to_string()
        }
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> VmFacts {
        VmFacts {
            name: "app \"web\" 01".into(),
            moref: "vm-42".into(),
            uuid: None,
            ip: Some("10.20.0.11".into()),
            os_family: "linux".into(),
            owner: Some("ann@example.test".into()),
            ticket: None,
            reason: Some("line1\nline2".into()),
        }
    }

    #[test]
    fn renders_json_escaped() {
        let out = render(r#"{"n":"{{name}}","ip":"{{ ip }}","u":"{{uuid}}","r":"{{reason}}"}"#, &vm(), Escape::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["n"], "app \"web\" 01");
        assert_eq!(v["ip"], "10.20.0.11");
        assert_eq!(v["u"], "");
        assert_eq!(v["r"], "line1\nline2");
    }

    #[test]
    fn renders_url_encoded_and_rejects_unknown() {
        assert_eq!(render("http://h/ci/{{name}}", &vm(), Escape::Url).unwrap(), "http://h/ci/app%20%22web%22%2001");
        assert!(render("{{nmae}}", &vm(), Escape::None).is_err());
        assert!(render("{{name", &vm(), Escape::None).is_err());
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(Duration::from_millis(100), 1), Duration::from_millis(100));
        assert_eq!(backoff(Duration::from_millis(100), 3), Duration::from_millis(400));
        assert_eq!(backoff(Duration::from_secs(1), 1000), MAX_BACKOFF);
    }

    #[test]
    fn debug_hides_secret_and_query() {
        let mut s = WebhookStep::new("POST", "https://cmdb.example.test/api?token=abc");
        s.secret = Some(Secret::new("s3cr3t"));
        let d = format!("{s:?}");
        assert!(!d.contains("s3cr3t") && !d.contains("abc"), "{d}");
    }
}
