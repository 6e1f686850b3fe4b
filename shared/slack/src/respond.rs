//! Posting answers to a slash command's `response_url`.
//!
//! The URL comes from a request body, so it is only ever posted to Slack's own origin
//! (`https://hooks.slack.com`) or to the origin (scheme, host and port) of an overridden
//! `SLACK_API_URL` (tests, local mode), and redirects are never followed: a crafted body can
//! never make the bot call an arbitrary address.

use std::sync::{Arc, OnceLock};

use reqwest::Url;

use crate::deliver::{self, DeliveryError, Limits};
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    /// Only the host is kept: a response_url is a credential for the conversation.
    #[error("the response_url is not a Slack address (host {host:?}), so the bot did not post to it")]
    ForeignHost { host: String },
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// Scheme, host and port: what must match for a response_url to be posted to.
type Origin = (String, String, u16);

fn origin(url: &Url) -> Option<Origin> {
    Some((url.scheme().to_string(), url.host_str()?.to_string(), url.port_or_known_default()?))
}

/// The host of a URL for the logs, never its path (which holds the response_url's secret).
pub fn host_of(url: &str) -> String {
    Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "(not a URL)".to_string())
}

#[derive(Clone, Debug)]
pub struct Responder {
    /// Built on first use: the gateway checks response_urls on every command but posts to one
    /// only when a button press could not be handed over, so it should not pay for a TLS client
    /// (root store, connector) at start-up.
    http: Arc<OnceLock<reqwest::Client>>,
    limits: Limits,
    /// What `SLACK_API_URL` allows besides https://hooks.slack.com, when overridden.
    extra: Option<Allowed>,
}

/// The override's allowance.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Allowed {
    /// Exactly this scheme, host and port.
    Origin(Origin),
    /// `http://127.0.0.1` with no port, which `iaas serve` passes in local mode (no Slack app:
    /// only `iaas slash` on this machine can sign, and it listens on a port of its own): any
    /// port on the loopback address, over http.
    AnyLoopbackPort,
}

/// Slack's response_url origin with the `/` that ends its authority. A URL that starts with
/// exactly this has scheme `https`, host `hooks.slack.com` and port 443 under the WHATWG parser
/// whatever follows (the authority ends at the first `/`; a path, query or fragment cannot fail
/// to parse or change the origin), so [`Responder::allows`] accepts it without parsing.
const SLACK_HOOKS_PREFIX: &str = "https://hooks.slack.com/";

impl Responder {
    /// `api_url` is `SLACK_API_URL` when set: its origin (scheme, host, port) becomes an allowed
    /// response_url origin.
    pub fn new(api_url: Option<&str>) -> Self {
        Responder::with_limits(api_url, Limits::default())
    }

    pub fn with_limits(api_url: Option<&str>, limits: Limits) -> Self {
        let extra = api_url.and_then(|u| Url::parse(u).ok()).filter(|u| matches!(u.scheme(), "http" | "https")).and_then(|u| {
            match (u.scheme(), u.host_str(), u.port()) {
                ("http", Some("127.0.0.1"), None) => Some(Allowed::AnyLoopbackPort),
                _ => origin(&u).map(Allowed::Origin),
            }
        });
        Responder { http: Arc::default(), limits, extra }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| self.limits.client())
    }

    /// Whether this URL may be posted to: exactly Slack's origin (https, hooks.slack.com, 443),
    /// or exactly the override's. Slack's own form is recognised by its prefix (once per command
    /// at the gateway); anything else is decided by a full URL parse.
    pub fn allows(&self, response_url: &str) -> bool {
        response_url.starts_with(SLACK_HOOKS_PREFIX) || self.allows_parsed(response_url)
    }

    fn allows_parsed(&self, response_url: &str) -> bool {
        let Some(origin) = Url::parse(response_url).ok().and_then(|u| origin(&u)) else { return false };
        let slack = ("https", SLACK_HOOKS_HOST, 443);
        (origin.0.as_str(), origin.1.as_str(), origin.2) == slack
            || match &self.extra {
                Some(Allowed::Origin(allowed)) => *allowed == origin,
                Some(Allowed::AnyLoopbackPort) => (origin.0.as_str(), origin.1.as_str()) == ("http", "127.0.0.1"),
                None => false,
            }
    }

    /// Posts once, or again only when the post provably did not arrive (see [`crate::deliver`]).
    pub async fn post(&self, response_url: &str, message: &Message) -> Result<(), RespondError> {
        self.post_outcome(response_url, message, None).await
    }

    /// [`post`](Self::post) saying in [`OUTCOME_HEADER`] what the message is, so `iaas slash`
    /// waits past interim notes and exits non-zero on a failure.
    pub async fn post_outcome(&self, response_url: &str, message: &Message, answer: Option<Answer>) -> Result<(), RespondError> {
        let host = host_of(response_url);
        if !self.allows(response_url) {
            return Err(RespondError::ForeignHost { host });
        }
        deliver::send(&self.limits, &host, || {
            let request = self.http().post(response_url).json(message);
            match answer {
                Some(answer) => request.header(OUTCOME_HEADER, answer.as_str()),
                None => request,
            }
        })
        .await?;
        Ok(())
    }
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
        assert!(local.allows("http://127.0.0.1:9000/response/1"));
        assert!(local.allows("https://hooks.slack.com/commands/T1/2/abc"));
        assert!(!local.allows("http://169.254.169.254/latest/meta-data"));
    }

    /// The allow-list compares the whole origin: another port or scheme on an allowed host is
    /// another service.
    #[test]
    fn another_port_or_scheme_on_an_allowed_host_is_refused() {
        let local = Responder::new(Some("http://127.0.0.1:9000/api"));
        assert!(!local.allows("http://127.0.0.1:41234/response/1"));
        assert!(!local.allows("http://127.0.0.1/response/1"));
        assert!(!local.allows("https://127.0.0.1:9000/response/1"));
        let plain = Responder::new(None);
        assert!(!plain.allows("https://hooks.slack.com:8443/x"));
        assert!(plain.allows("https://hooks.slack.com:443/x"));
        let default_port = Responder::new(Some("https://slack.example"));
        assert!(default_port.allows("https://slack.example:443/r"));
        assert!(!default_port.allows("https://slack.example:444/r"));
        assert!(!Responder::new(Some("ftp://127.0.0.1:21")).allows("ftp://127.0.0.1:21/x"));
        // `iaas serve`'s local mode: loopback without a port allows any loopback port, over http.
        let local_mode = Responder::new(Some("http://127.0.0.1"));
        assert!(local_mode.allows("http://127.0.0.1:41234/response/1"));
        assert!(!local_mode.allows("https://127.0.0.1:41234/response/1"));
        assert!(!local_mode.allows("http://localhost:41234/response/1"));
        assert!(!local_mode.allows("http://10.0.0.1:41234/response/1"));
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
                assert_eq!(responder.allows(url), responder.allows_parsed(url), "{url:?} with {:?}", responder.extra);
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
