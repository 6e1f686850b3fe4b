//! `webhook`: calls a CMDB / ticketing webhook (`iaas_steps::webhook::WebhookStep`).
//!
//! Keys: `url` (may hold `{{name}} {{moref}} {{uuid}} {{ip}} {{os}} {{owner}} {{ticket}}
//! {{reason}}`), `method` (default POST), `headers` (a table), `body` (a template, JSON-escaped
//! when JSON), `secret_env` (optional: the variable holding a bearer token),
//! `expected_statuses` (default any 2xx), `already_done_statuses` (default [404]),
//! `timeout_secs` (default 10), `retries` (default 3), `backoff_ms` (default 500).

use async_trait::async_trait;
use iaas_config::StepKind;
use iaas_steps::webhook::WebhookStep;
use tokio_util::sync::CancellationToken;

use super::external;
use super::{Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

pub struct Webhook(WebhookStep);

/// The step for a plan entry; its keys are read by [`WebhookStep::from_settings`].
pub fn build(settings: &serde_json::Value) -> Result<Webhook, String> {
    WebhookStep::from_settings(settings).map(Webhook)
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
