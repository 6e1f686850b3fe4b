//! Slack's Web API, the two methods the bot posts with: `chat.postMessage` (DMs to a user id,
//! notices to a channel) and `chat.update` (a progress message edited in place). Bounded
//! retries on 429/5xx honour `Retry-After`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::Message;

pub const DEFAULT_API_URL: &str = "https://slack.com/api";
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum WebApiError {
    #[error("no SLACK_BOT_TOKEN is set, so the bot cannot post messages")]
    NoToken,
    #[error("Slack refused the message: {0}")]
    Refused(String),
    #[error("Slack answered {0}")]
    Status(StatusCode),
    #[error("Slack could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
}

#[derive(Clone)]
pub struct WebApi {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for WebApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebApi").field("base", &self.base).field("token", &self.token.as_ref().map(|_| "***")).finish()
    }
}

impl WebApi {
    /// `base` is `SLACK_API_URL` (default Slack's); `token` is `SLACK_BOT_TOKEN`.
    pub fn new(base: Option<&str>, token: Option<String>) -> WebApi {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        WebApi { http, base: base.unwrap_or(DEFAULT_API_URL).trim_end_matches('/').to_string(), token }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Posts to a channel id, or to a user id (a DM from the bot). Returns the message's `ts`.
    pub async fn post_message(&self, channel: &str, message: &Message) -> Result<String, WebApiError> {
        Ok(self.post(channel, message).await?.ts)
    }

    /// Posts, and says where the message landed, so it can be updated later (a user id's DM
    /// has a channel id of its own).
    pub async fn post(&self, channel: &str, message: &Message) -> Result<Posted, WebApiError> {
        let answer = self.call("chat.postMessage", body(channel, message, None)).await?;
        let text = |k: &str| answer[k].as_str().unwrap_or_default().to_string();
        Ok(Posted { channel: if answer["channel"].is_string() { text("channel") } else { channel.to_string() }, ts: text("ts") })
    }

    /// Replaces a message the bot posted.
    pub async fn update(&self, posted: &Posted, message: &Message) -> Result<(), WebApiError> {
        self.call("chat.update", body(&posted.channel, message, Some(&posted.ts))).await.map(|_| ())
    }

    async fn call(&self, method: &str, body: Value) -> Result<Value, WebApiError> {
        let token = self.token.as_deref().ok_or(WebApiError::NoToken)?;
        let url = format!("{}/{method}", self.base);
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            let delay = match self.http.post(&url).bearer_auth(token).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => {
                    let answer: Value = resp.json().await?;
                    return match answer["ok"].as_bool() {
                        Some(true) => Ok(answer),
                        _ => Err(WebApiError::Refused(answer["error"].as_str().unwrap_or("unknown error").to_string())),
                    };
                }
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS || resp.status().is_server_error() => {
                    let wait = resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
                    last = Some(WebApiError::Status(resp.status()));
                    Duration::from_secs(wait.unwrap_or(u64::from(attempt)))
                }
                Ok(resp) => return Err(WebApiError::Status(resp.status())),
                Err(e) => {
                    last = Some(WebApiError::Transport(e));
                    Duration::from_millis(200 * u64::from(attempt))
                }
            };
            if attempt < ATTEMPTS {
                tokio::time::sleep(delay.min(Duration::from_secs(10))).await;
            }
        }
        Err(last.unwrap_or(WebApiError::Status(StatusCode::INTERNAL_SERVER_ERROR)))
    }
}

/// Where a posted message is: what `chat.update` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// A Web API body: the message without the response_url-only fields.
fn body(channel: &str, message: &Message, ts: Option<&str>) -> Value {
    let mut body = serde_json::to_value(message).unwrap_or_default();
    body["channel"] = channel.into();
    if let Some(ts) = ts {
        body["ts"] = ts.into();
    }
    if let Some(map) = body.as_object_mut() {
        map.remove("response_type");
        map.remove("replace_original");
    }
    body
}
