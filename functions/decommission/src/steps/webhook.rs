//! `webhook`: calls a CMDB / ticketing webhook (`iaas_steps::webhook::WebhookStep`).
//!
//! Keys: `url` (may hold `{{name}} {{moref}} {{uuid}} {{ip}} {{os}} {{owner}} {{ticket}}
//! {{reason}}`), `method` (default POST), `headers` (a table), `body` (a template, JSON-escaped
//! when JSON), `secret_env` (optional: the variable holding a bearer token),
//! `expected_statuses` (default any 2xx), `already_done_statuses` (default [404]),
//! `timeout_secs` (default 10), `retries` (default 3), `backoff_ms` (default 500).

use std::time::Duration;

use async_trait::async_trait;
use iaas_config::StepKind;
use iaas_steps::webhook::WebhookStep;
use tokio_util::sync::CancellationToken;

use super::external::{self, Settings};
use super::{Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

pub struct Webhook(WebhookStep);

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

pub fn build(settings: &serde_json::Value) -> Result<Webhook, String> {
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
    Ok(Webhook(w))
}

#[async_trait]
impl Step for Webhook {
    fn kind(&self) -> StepKind {
        StepKind::Webhook
    }

    async fn run(&self, _sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let facts = external::facts(vm);
        external::run(cancel, self.0.run(&facts)).await
    }
}
