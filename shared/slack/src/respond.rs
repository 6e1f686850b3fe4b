//! Posting answers to a slash command's `response_url`.
//!
//! The URL comes from a request body, so it is only ever posted to Slack's own host
//! (`hooks.slack.com`) or to the host of an overridden `SLACK_API_URL` (tests, local mode):
//! a crafted body can never make the bot call an arbitrary address.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::{StatusCode, Url};

use crate::Message;

const SLACK_HOOKS_HOST: &str = "hooks.slack.com";

/// What a response_url post is ([`Answer::as_str`]), for `iaas slash`; Slack ignores headers
/// it does not know.
pub const OUTCOME_HEADER: &str = "x-iaas-outcome";

/// A response_url post is an interim note (more follows) or the command's final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Interim,
    Succeeded,
    Failed,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Interim => "interim",
            Answer::Succeeded => "ok",
            Answer::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Answer> {
        [Answer::Interim, Answer::Succeeded, Answer::Failed].into_iter().find(|a| a.as_str() == value)
    }
}
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("response_url {0:?} is not a Slack address; not posting to it")]
    ForeignHost(String),
    #[error("Slack answered {status} to the response_url post")]
    Status { status: StatusCode },
    #[error("could not reach the response_url: {0}")]
    Transport(#[from] reqwest::Error),
}

#[derive(Clone, Debug)]
pub struct Responder {
    /// Built on first use: the gateway checks response_urls on every command but posts to one
    /// only when a button press could not be handed over, so it should not pay for a TLS client
    /// (root store, connector) at start-up.
    http: Arc<OnceLock<reqwest::Client>>,
    /// Host of `SLACK_API_URL` when overridden; allowed besides hooks.slack.com.
    extra_host: Option<String>,
}

/// Slack's response_url origin with the `/` that ends its authority. A URL that starts with
/// exactly this has host `hooks.slack.com` and scheme `https` under the WHATWG parser whatever
/// follows (the authority ends at the first `/`; a path, query or fragment cannot fail to parse
/// or change the host), so [`Responder::allows`] accepts it without parsing.
const SLACK_HOOKS_PREFIX: &str = "https://hooks.slack.com/";

impl Responder {
    /// `api_url` is `SLACK_API_URL` when set: its host becomes an allowed response_url host.
    pub fn new(api_url: Option<&str>) -> Self {
        let extra_host = api_url.and_then(|u| Url::parse(u).ok()).and_then(|u| u.host_str().map(str::to_string));
        Responder { http: Arc::default(), extra_host }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder().timeout(Duration::from_secs(10)).connect_timeout(Duration::from_secs(5)).build().unwrap_or_default()
        })
    }

    /// Whether this URL may be posted to: Slack's host over https, or the override's host.
    /// Slack's own form is recognised by its prefix (once per command at the gateway); anything
    /// else is decided by a full URL parse, exactly as before.
    pub fn allows(&self, response_url: &str) -> bool {
        response_url.starts_with(SLACK_HOOKS_PREFIX) || self.allows_parsed(response_url)
    }

    fn allows_parsed(&self, response_url: &str) -> bool {
        let Ok(url) = Url::parse(response_url) else { return false };
        match url.host_str() {
            Some(SLACK_HOOKS_HOST) => url.scheme() == "https",
            Some(host) => self.extra_host.as_deref() == Some(host) && matches!(url.scheme(), "http" | "https"),
            None => false,
        }
    }

    /// Posts with bounded retries on 429/5xx and transport errors, honouring `Retry-After`.
    pub async fn post(&self, response_url: &str, message: &Message) -> Result<(), RespondError> {
        self.post_outcome(response_url, message, None).await
    }

    /// [`post`](Self::post) saying in [`OUTCOME_HEADER`] what the message is, so `iaas slash`
    /// waits past interim notes and exits non-zero on a failure.
    pub async fn post_outcome(&self, response_url: &str, message: &Message, answer: Option<Answer>) -> Result<(), RespondError> {
        if !self.allows(response_url) {
            return Err(RespondError::ForeignHost(response_url.to_string()));
        }
        let mut last_err = None;
        for attempt in 1..=ATTEMPTS {
            let mut request = self.http().post(response_url).json(message);
            if let Some(answer) = answer {
                request = request.header(OUTCOME_HEADER, answer.as_str());
            }
            let delay = match request.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS || resp.status().is_server_error() => {
                    let retry_after =
                        resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                    last_err = Some(RespondError::Status { status: resp.status() });
                    retry_after.map(Duration::from_secs).unwrap_or(backoff(attempt))
                }
                Ok(resp) => return Err(RespondError::Status { status: resp.status() }),
                Err(e) => {
                    last_err = Some(RespondError::Transport(e));
                    backoff(attempt)
                }
            };
            if attempt < ATTEMPTS {
                tracing::debug!(attempt, ?delay, "retrying response_url post");
                tokio::time::sleep(delay.min(Duration::from_secs(10))).await;
            }
        }
        Err(last_err.unwrap_or(RespondError::Status { status: StatusCode::INTERNAL_SERVER_ERROR }))
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(attempt - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slack_or_the_override_host() {
        let plain = Responder::new(None);
        assert!(plain.allows("https://hooks.slack.com/commands/T1/2/abc"));
        assert!(!plain.allows("http://hooks.slack.com/commands/T1/2/abc"));
        assert!(!plain.allows("https://hooks.slack.com.evil.example/x"));
        assert!(!plain.allows("https://evil.example/?hooks.slack.com"));
        assert!(!plain.allows("http://127.0.0.1:8080/x"));
        assert!(!plain.allows("not a url"));
        let local = Responder::new(Some("http://127.0.0.1:9000/api"));
        assert!(local.allows("http://127.0.0.1:41234/response/1"));
        assert!(local.allows("https://hooks.slack.com/commands/T1/2/abc"));
        assert!(!local.allows("http://169.254.169.254/latest/meta-data"));
    }

    /// The prefix shortcut must never accept what the full parse refuses, and must not change
    /// any answer: the same decision as the parse on URLs made to confuse a string check.
    #[test]
    fn prefix_shortcut_agrees_with_the_parse() {
        let urls = [
            "https://hooks.slack.com/",
            "https://hooks.slack.com/commands/T1/2/abc?x=1#y",
            "https://hooks.slack.com//evil.example/x",
            "https://hooks.slack.com/@evil.example/",
            "https://hooks.slack.com/..%2F..%2Fevil",
            "https://hooks.slack.com/\\evil.example",
            "https://hooks.slack.com/ spaces\tand\nnewlines",
            "https://hooks.slack.com",
            "https://hooks.slack.com?x",
            "https://hooks.slack.com:443/x",
            "https://hooks.slack.com:8443/x",
            "https://hooks.slack.com:99999/x",
            "https://hooks.slack.com./x",
            "https://hooks.slack.com.evil.example/x",
            "https://hooks.slack.com@evil.example/x",
            "https://user:pw@hooks.slack.com/x",
            "https://evil.example\\@hooks.slack.com/x",
            "https://evil.example#@hooks.slack.com/x",
            "https://hooks%2eslack.com/x",
            "https:hooks.slack.com/x",
            "https:/hooks.slack.com/x",
            "HTTPS://HOOKS.SLACK.COM/x",
            " https://hooks.slack.com/x",
            "\thttps://hooks.slack.com/x",
            "http://hooks.slack.com/x",
            "wss://hooks.slack.com/x",
            "https://evil.example/https://hooks.slack.com/",
            "http://127.0.0.1:41234/response/1",
            "http://127.0.0.1@evil.example/",
            "http://127.0.0.1.evil.example/",
            "",
        ];
        for responder in [Responder::new(None), Responder::new(Some("http://127.0.0.1:9000/api"))] {
            for url in urls {
                assert_eq!(responder.allows(url), responder.allows_parsed(url), "{url:?} with {:?}", responder.extra_host);
            }
        }
        let plain = Responder::new(None);
        assert!(plain.allows("HTTPS://HOOKS.SLACK.COM/x"), "the parse lower-cases scheme and host");
        assert!(plain.allows("https://hooks.slack.com:443/x"), "the default port is the same origin");
        assert!(!plain.allows("https://hooks.slack.com@evil.example/x"));
        assert!(!plain.allows("https://evil.example\\@hooks.slack.com/x"));
        assert!(!plain.allows("https://hooks.slack.com./x"));
    }
}
