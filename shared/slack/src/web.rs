//! Slack's Web API, the two methods the bot posts with: `chat.postMessage` (DMs to a user id,
//! notices to a channel) and `chat.update` (a progress message edited in place), delivered
//! under [`crate::deliver`]'s policy (no redirects, no double posts, `Retry-After` honoured).

use serde_json::Value;

use crate::deliver::{self, DeliveryError, Limits};
use crate::Message;

pub const DEFAULT_API_URL: &str = "https://slack.com/api";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebApiError {
    #[error("no SLACK_BOT_TOKEN is set, so the bot cannot post messages")]
    NoToken,
    #[error("Slack refused the message: {0}")]
    Refused(String),
    #[error("Slack's answer could not be read, so the message may or may not have been delivered")]
    BadAnswer,
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

#[derive(Clone)]
pub struct WebApi {
    http: reqwest::Client,
    limits: Limits,
    base: String,
    host: String,
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
        WebApi::with_limits(base, token, Limits::default())
    }

    pub fn with_limits(base: Option<&str>, token: Option<String>, limits: Limits) -> WebApi {
        let base = base.unwrap_or(DEFAULT_API_URL).trim_end_matches('/').to_string();
        WebApi { http: limits.client(), limits, host: crate::respond::host_of(&base), base, token }
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
        let resp = deliver::send(&self.limits, &self.host, || self.http.post(&url).bearer_auth(token).json(&body)).await?;
        let answer: Value = resp.json().await.map_err(|e| {
            tracing::warn!(method, error = %e.without_url(), "Slack's answer could not be read");
            WebApiError::BadAnswer
        })?;
        match answer["ok"].as_bool() {
            Some(true) => Ok(answer),
            _ => Err(WebApiError::Refused(answer["error"].as_str().unwrap_or("unknown error").to_string())),
        }
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
