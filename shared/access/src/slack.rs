//! Slack's `users.info`: a Slack user id → the e-mail address on their profile.

use std::fmt;
use std::time::Duration;

use iaas_config::Secret;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::time::Instant;

use crate::AccessError;

/// Largest `users.info` answer read (they are a few KB).
const MAX_BODY: usize = 256 * 1024;
/// Bound on one HTTP exchange; `identify`'s deadline usually cuts in first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Wait assumed when a 429 carries no (readable) `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A client for Slack's `users.info` (needs the bot scopes `users:read` and `users:read.email`).
/// Cheap to clone. `Debug` never prints the token.
#[derive(Clone)]
pub struct SlackUsers {
    endpoint: Url,
    token: Secret,
    http: reqwest::Client,
}

impl fmt::Debug for SlackUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackUsers").field("endpoint", &self.endpoint.as_str()).field("token", &"***").finish()
    }
}

enum Attempt {
    Done(Result<String, AccessError>),
    RateLimited(Duration),
}

impl SlackUsers {
    /// Slack's Web API (`SLACK_API_URL` overrides it).
    pub const DEFAULT_BASE_URL: &'static str = "https://slack.com/api";

    /// `base_url` is the Web API base (`https://slack.com/api`, or a local stand-in); `token` the
    /// bot token (`xoxb-…`). Refuses an empty token and a URL that is not http(s); warns when the
    /// token would cross the network in clear text (plain http to a host other than loopback).
    pub fn new(base_url: impl Into<String>, token: Secret) -> Result<SlackUsers, AccessError> {
        let base = base_url.into();
        let trimmed = base.trim().trim_end_matches('/');
        let config = |s: String| Err(AccessError::Config(s));
        let url = match Url::parse(&format!("{trimmed}/users.info")) {
            Ok(u) => u,
            Err(e) => {
                return config(format!(
                    "The Slack API URL {base:?} is not a valid URL ({e}). Set SLACK_API_URL to e.g. https://slack.com/api."
                ))
            }
        };
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return config(format!("The Slack API URL {base:?} must be an http(s) URL with a host, e.g. https://slack.com/api."));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return config(format!("The Slack API URL {base:?} must not carry credentials or a query."));
        }
        if token.expose().trim().is_empty() {
            return config("The Slack bot token is empty, so users.info cannot be called. Set SLACK_BOT_TOKEN.".into());
        }
        if url.scheme() == "http" {
            let host = url.host_str().unwrap_or_default();
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
            if !loopback {
                tracing::warn!(url = %url, "the Slack API URL is plain http: the bot token crosses the network in clear text");
            }
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // The token rides in a header; never follow a redirect with it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AccessError::Config(format!("The HTTP client for Slack could not be built: {e}.")))?;
        Ok(SlackUsers { endpoint: url, token, http })
    }

    /// The e-mail address on `user`'s Slack profile. One retry after a 429 when its
    /// `Retry-After` ends before `deadline`; otherwise a 429 is `SlackUnavailable` at once.
    pub(crate) async fn email_of(&self, user: &str, deadline: Instant) -> Result<String, AccessError> {
        match self.attempt(user).await {
            Attempt::Done(r) => r,
            Attempt::RateLimited(wait) => {
                if Instant::now() + wait >= deadline {
                    return Err(AccessError::SlackUnavailable(format!(
                        "Slack rate-limited users.info and asked to wait {} s, longer than the access check may take.",
                        wait.as_secs_f32()
                    )));
                }
                tracing::debug!(?wait, "users.info rate-limited; retrying once");
                tokio::time::sleep(wait).await;
                match self.attempt(user).await {
                    Attempt::Done(r) => r,
                    Attempt::RateLimited(_) => Err(AccessError::SlackUnavailable("Slack rate-limited users.info twice in a row.".into())),
                }
            }
        }
    }

    /// The id of the Slack user whose profile has this e-mail address (`users.lookupByEmail`,
    /// same scopes), `None` when Slack knows nobody by it; one attempt, no retry.
    pub async fn id_by_email(&self, email: &str) -> Result<Option<String>, AccessError> {
        let unavailable = |why: String| AccessError::SlackUnavailable(format!("Slack's users.lookupByEmail {why}."));
        let url = self.endpoint.join("users.lookupByEmail").map_err(|e| unavailable(format!("has no URL ({e})")))?;
        let resp = self
            .http
            .get(url)
            .query(&[("email", email)])
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| unavailable(format!("could not be reached ({})", without_url(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(unavailable(format!("answered HTTP {status}")));
        }
        let body = resp.bytes().await.map_err(|e| unavailable(format!("answer could not be read ({})", without_url(&e))))?;
        if body.len() > MAX_BODY {
            return Err(unavailable(format!("answer is larger than {MAX_BODY} bytes")));
        }
        let info: UsersInfo = serde_json::from_slice(&body).map_err(|e| unavailable(format!("answer is not the expected JSON ({e})")))?;
        match (info.ok, info.error.as_deref(), info.user) {
            (true, _, Some(SlackUser { id: Some(id), deleted: false, is_bot: false, .. })) => Ok(Some(id)),
            (true, _, _) | (false, Some("users_not_found"), _) => Ok(None),
            (false, code, _) => Err(unavailable(format!("answered the error {:?}", code.unwrap_or_default()))),
        }
    }

    async fn attempt(&self, user: &str) -> Attempt {
        let sent = self.http.get(self.endpoint.clone()).query(&[("user", user)]).bearer_auth(self.token.expose()).send().await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() { "did not answer in time" } else { "could not be reached" };
                return Attempt::Done(Err(AccessError::SlackUnavailable(format!(
                    "Slack's users.info at {} {what} ({}).",
                    self.endpoint,
                    without_url(&e)
                ))));
            }
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Attempt::RateLimited(retry_after(resp.headers()));
        }
        if !status.is_success() {
            return Attempt::Done(Err(AccessError::SlackUnavailable(format!("Slack's users.info answered HTTP {status}."))));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Attempt::Done(Err(AccessError::SlackUnavailable(format!(
                            "Slack's users.info answer is larger than {MAX_BODY} bytes."
                        ))));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Attempt::Done(Err(AccessError::SlackUnavailable(format!(
                        "Slack's users.info answer could not be read ({}).",
                        without_url(&e)
                    ))))
                }
            }
        }
        let info: UsersInfo = match serde_json::from_slice(&body) {
            Ok(i) => i,
            Err(e) => {
                return Attempt::Done(Err(AccessError::SlackUnavailable(format!(
                    "Slack's users.info answer is not the expected JSON ({e})."
                ))))
            }
        };
        if !info.ok {
            let code = info.error.unwrap_or_default();
            return match code.as_str() {
                "ratelimited" => Attempt::RateLimited(DEFAULT_RETRY_AFTER),
                "user_not_found" | "user_not_visible" => Attempt::Done(Err(AccessError::UnknownUser(format!(
                    "Slack does not know the user {user}, so your access cannot be checked."
                )))),
                _ => Attempt::Done(Err(AccessError::SlackUnavailable(format!(
                    "Slack's users.info answered the error {code:?} (check the bot token and its users:read and users:read.email scopes)."
                )))),
            };
        }
        Attempt::Done(interpret(user, info.user))
    }
}

fn interpret(user: &str, info: Option<SlackUser>) -> Result<String, AccessError> {
    let Some(u) = info else {
        return Err(AccessError::SlackUnavailable("Slack's users.info answered ok without a user.".into()));
    };
    if let Some(id) = &u.id {
        if id != user {
            return Err(AccessError::SlackUnavailable(format!("Slack's users.info answered for {id:?} when asked about {user}.")));
        }
    }
    if u.deleted {
        return Err(AccessError::Disabled("Your Slack account is deactivated, so you may not use iaas.".into()));
    }
    if u.is_bot {
        return Err(AccessError::UnknownUser("Bots may not use iaas.".into()));
    }
    let email = u.profile.and_then(|p| p.email).map(|e| e.trim().to_owned()).unwrap_or_default();
    if email.is_empty() {
        return Err(AccessError::UnknownUser(
            "Slack shares no e-mail address for you, so iaas cannot find you in the directory. Ask IT to check your Slack profile (and that the bot has the users:read.email scope).".into(),
        ));
    }
    if !plausible_email(&email) {
        return Err(AccessError::UnknownUser(
            "The e-mail address on your Slack profile is not usable, so iaas cannot find you in the directory. Ask IT to check your Slack profile.".into(),
        ));
    }
    Ok(email)
}

/// Something@something, no whitespace or control characters, at most 254 characters.
pub(crate) fn plausible_email(e: &str) -> bool {
    e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty())
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

/// reqwest's error text without the URL (which carries the user id query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "users.info");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[derive(Deserialize)]
struct UsersInfo {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    user: Option<SlackUser>,
}

#[derive(Deserialize)]
struct SlackUser {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_refuses_bad_urls_and_empty_tokens() {
        let t = || Secret::new("xoxb-1");
        assert!(SlackUsers::new("https://slack.com/api/", t()).is_ok());
        assert!(SlackUsers::new("http://127.0.0.1:9/api", t()).is_ok());
        for bad in ["slack.com/api", "ftp://slack.com/api", "https://u:p@slack.com/api", ""] {
            assert!(matches!(SlackUsers::new(bad, t()), Err(AccessError::Config(_))), "{bad}");
        }
        assert!(matches!(SlackUsers::new("https://slack.com/api", Secret::new(" ")), Err(AccessError::Config(_))));
        let s = SlackUsers::new("https://slack.com/api", Secret::new("bot-token-very-secret")).unwrap();
        assert!(!format!("{s:?}").contains("very-secret"));
        assert_eq!(s.endpoint.as_str(), "https://slack.com/api/users.info");
    }

    #[test]
    fn emails_are_checked() {
        assert!(plausible_email("ann@example.test"));
        for bad in ["", "ann", "@x", "ann@", "a nn@x", "ann@x\n", "a\u{0}@x"] {
            assert!(!plausible_email(bad), "{bad:?}");
        }
    }
}
