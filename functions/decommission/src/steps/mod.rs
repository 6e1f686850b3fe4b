//! Decommission steps. A [`Step`] acts on one VM's facts and says how it went; the registry
//! ([`build`]) turns a plan entry (kind + settings) into one. Every step is idempotent — what
//! is already gone is [`StepOutcome::AlreadyDone`] — so a resumed request may run again the
//! step that was interrupted. Steps that wait take the [`CancellationToken`] so a cancel
//! interrupts them.
//!
//! The kinds of crate `iaas-steps` (dns, directory_computer, webhook) plug in through one
//! adapter, [`external::External`]: each builds itself from its settings; the adapter converts
//! [`VmFacts`] field by field and maps their outcome one to one.

mod external;
mod notify;
mod vcenter;

use std::sync::Arc;

use async_trait::async_trait;
use iaas_config::StepKind;
use iaas_function::Context;
use iaas_slack::WebApi;
use iaas_store::Decommission;
use tokio_util::sync::CancellationToken;

use crate::VmFacts;
use external::{ComputerStep, DnsStep, External, WebhookStep};

/// How a step ended when it did not fail; the text is the sentence recorded with it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Done(String),
    /// Nothing to do: already powered off, already gone.
    AlreadyDone(String),
    /// The step does not apply to this VM (no bot token to post with, …).
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// A sentence saying what went wrong and what to check.
    Failed(String),
    /// A cancel interrupted it; vCenter may still finish what it was asked.
    Cancelled,
}

/// What a step may use besides the VM's facts.
#[derive(Clone)]
pub struct StepContext {
    pub ctx: Arc<Context>,
    pub slack: WebApi,
    pub request: Decommission,
}

#[async_trait]
pub trait Step: Send + Sync {
    fn kind(&self) -> StepKind;
    async fn run(&self, sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError>;
}

/// The step for a plan entry, or a sentence saying why its settings cannot work.
pub fn build(kind: StepKind, settings: &serde_json::Value) -> Result<Box<dyn Step>, String> {
    let text = |key: &str| settings.get(key).and_then(|v| v.as_str()).map(str::to_string);
    match kind {
        StepKind::GuestShutdown => Ok(Box::new(vcenter::GuestShutdown)),
        StepKind::PowerOff => Ok(Box::new(vcenter::PowerOff)),
        StepKind::DeleteVm => Ok(Box::new(vcenter::DeleteVm)),
        StepKind::SlackNotify => Ok(Box::new(notify::SlackNotify { channel: text("channel") })),
        StepKind::Dns => Ok(Box::new(External::Dns(DnsStep::from_settings(settings)?))),
        StepKind::DirectoryComputer => Ok(Box::new(External::DirectoryComputer(ComputerStep::from_settings(settings)?))),
        StepKind::Webhook => Ok(Box::new(External::Webhook(WebhookStep::from_settings(settings)?))),
    }
}

/// Runs `work` unless the token is cancelled first (the work's future is then dropped).
pub(crate) async fn cancellable<T>(cancel: &CancellationToken, work: impl std::future::Future<Output = T>) -> Result<T, StepError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(StepError::Cancelled),
        out = work => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use iaas_config::StepKind;
    use serde_json::json;

    use super::build;

    fn err(kind: &str, settings: serde_json::Value) -> String {
        build(kind.parse().unwrap(), &settings).err().expect("refused")
    }

    #[test]
    fn external_kinds_build_from_their_keys() {
        std::env::set_var("IAAS_UNIT_TSIG", "c2VjcmV0");
        std::env::set_var("IAAS_UNIT_LDAP", "pw");
        let dns = json!({"server": "127.0.0.1:5353", "zone": "example.test.", "key_name": "iaas", "secret_env": "IAAS_UNIT_TSIG"});
        assert_eq!(build(StepKind::Dns, &dns).unwrap().kind(), "dns");
        let dir = json!({"url": "ldaps://dc1", "bind_dn": "svc", "base_dn": "ou=c", "secret_env": "IAAS_UNIT_LDAP", "starttls": false});
        assert_eq!(build(StepKind::DirectoryComputer, &dir).unwrap().kind(), "directory_computer");
        let hook = json!({"url": "https://cmdb/{{name}}", "headers": {"X-A": "b"}, "expected_statuses": [200, 204], "retries": 0});
        assert_eq!(build(StepKind::Webhook, &hook).unwrap().kind(), "webhook");
    }

    #[test]
    fn bad_external_settings_are_sentences_without_secrets() {
        std::env::set_var("IAAS_UNIT_BAD_TSIG", "not base64!!");
        assert!(err("dns", json!({"zone": "z."})).contains("needs a server"));
        assert!(err("dns", json!({"server": "dns1", "zone": "z.", "key_name": "k", "secret_env": "IAAS_UNIT_TSIG"}))
            .contains("not an IP address"));
        let missing = err("dns", json!({"server": "127.0.0.1", "zone": "z.", "key_name": "k", "secret_env": "IAAS_UNIT_NOT_SET"}));
        assert!(missing.contains("IAAS_UNIT_NOT_SET") && missing.contains("not set"), "{missing}");
        let bad = err("dns", json!({"server": "127.0.0.1", "zone": "z.", "key_name": "k", "secret_env": "IAAS_UNIT_BAD_TSIG"}));
        assert!(bad.contains("base64") && !bad.contains("not base64!!"), "{bad}");
        assert!(err("directory_computer", json!({"url": "ldap://x", "bind_dn": "d", "base_dn": "b"})).contains("secret_env"));
        assert!(err("webhook", json!({"url": "https://x", "retry": 2})).contains("unknown key \"retry\""));
        assert!(err("webhook", json!({"url": "https://x", "expected_statuses": [1000]})).contains("status codes"));
        assert!(err("webhook", json!({"method": "POST"})).contains("needs a url"));
    }
}
