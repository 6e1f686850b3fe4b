//! One delivery policy for every post to Slack (a response_url, the Web API).
//!
//! - No redirects: a 3xx from an allowed address is an answer, never a hop to another one
//!   (which would carry the message, and for the Web API the token's request, elsewhere).
//! - An answer is never posted twice: a retry happens only when the request provably did not
//!   arrive or was refused unprocessed — a connect error, a 429, a 5xx that says `Retry-After`.
//!   A timeout or a connection broken after sending may have delivered it, so it is not retried.
//! - `Retry-After` is honoured in both of its forms (delay-seconds and HTTP-date), within a
//!   total time budget; a wait beyond the budget ends the attempts.
//! - Errors are sentences without library internals or URLs; the detail is logged with the
//!   host at most (a response_url is a bearer credential for the conversation).

use std::time::{Duration, Instant, SystemTime};

use reqwest::{RequestBuilder, Response, StatusCode};

/// Bounds on one delivery: attempts, the total time they may take, and each request's timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub attempts: u32,
    /// All attempts and waits together; a `Retry-After` that would pass it is not waited for.
    pub budget: Duration,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            attempts: 3,
            budget: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// The HTTP client these limits call for: its timeouts, and no redirects.
    pub(crate) fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    }
}

/// Why a message did not reach Slack. Each `Display` is a sentence a user or an admin may read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("Slack answered {status}, so the message was not delivered")]
    Status { status: StatusCode },
    #[error("Slack could not be reached, so the message was not delivered")]
    Unreachable,
    #[error("Slack did not answer in time; the message may or may not have arrived, so it was not sent again")]
    MaybeDelivered,
    #[error("Slack asked to wait {}s before trying again, longer than the bot waits, so the message was not delivered", wait.as_secs())]
    WaitTooLong { wait: Duration },
}

/// Sends the request `make` builds, as often as the policy allows; the successful response.
/// `host` is only for the log.
pub(crate) async fn send(limits: &Limits, host: &str, make: impl Fn() -> RequestBuilder) -> Result<Response, DeliveryError> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (error, wait) = match make().send().await {
            Ok(resp) if resp.status().is_success() => return Ok(resp),
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, SystemTime::now()));
                match (status, retry_after) {
                    // A 429 was refused before any work; a 5xx with Retry-After says the same.
                    (StatusCode::TOO_MANY_REQUESTS, wait) => (DeliveryError::Status { status }, wait.unwrap_or_else(|| backoff(attempt))),
                    (s, Some(wait)) if s.is_server_error() => (DeliveryError::Status { status }, wait),
                    // A redirect, a 4xx, or a bare 5xx (the request may have been acted on): final.
                    _ => {
                        tracing::warn!(host, %status, attempt, "Slack refused a post; not retrying");
                        return Err(DeliveryError::Status { status });
                    }
                }
            }
            Err(e) if e.is_connect() => {
                tracing::warn!(host, error = %e.without_url(), attempt, "could not connect to Slack");
                (DeliveryError::Unreachable, backoff(attempt))
            }
            Err(e) => {
                tracing::warn!(host, error = %e.without_url(), attempt, "a post to Slack may have arrived; not retrying it");
                return Err(DeliveryError::MaybeDelivered);
            }
        };
        if attempt >= limits.attempts {
            return Err(error);
        }
        if started.elapsed().saturating_add(wait) > limits.budget {
            tracing::warn!(host, ?wait, "Slack asked to wait beyond the delivery budget; giving up");
            return Err(DeliveryError::WaitTooLong { wait });
        }
        tracing::debug!(host, attempt, ?wait, "retrying a post to Slack");
        tokio::time::sleep(wait).await;
    }
}

/// `Retry-After` as delay-seconds or as an HTTP-date (a date in the past means now).
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(2u64.saturating_pow(attempt.saturating_sub(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_both_forms() {
        let now = httpdate::parse_http_date("Fri, 04 Dec 2026 20:00:00 GMT").unwrap();
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(retry_after("Fri, 04 Dec 2026 20:00:42 GMT", now), Some(Duration::from_secs(42)));
        assert_eq!(retry_after("Fri, 04 Dec 2026 19:00:00 GMT", now), Some(Duration::ZERO), "a past date means now");
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }
}
