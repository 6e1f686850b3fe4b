//! Decommission steps. A [`Step`] acts on one VM's facts and says how it went; the registry
//! ([`build`]) turns a plan entry (kind + settings) into one. Every step is idempotent — what
//! is already gone is [`StepOutcome::AlreadyDone`] — so a resumed request may run again the
//! step that was interrupted. Steps that wait take the [`CancellationToken`] so a cancel
//! interrupts them.
//!
//! The kinds of crate `iaas-steps` (dns, directory_computer, webhook) plug in with one small
//! adapter each: build the step from the settings, convert [`VmFacts`] field by field, map
//! their `StepOutcome` one to one and `StepError(sentence)` to [`StepError::Failed`].

mod notify;
mod vcenter;

use std::sync::Arc;

use async_trait::async_trait;
use iaas_function::Context;
use iaas_slack::WebApi;
use iaas_store::Decommission;
use tokio_util::sync::CancellationToken;

use crate::facts::VmFacts;

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
    fn kind(&self) -> &str;
    async fn run(&self, sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError>;
}

/// The step for a plan entry, or a sentence saying why this bot cannot run it.
pub fn build(kind: &str, settings: &serde_json::Value) -> Result<Box<dyn Step>, String> {
    let text = |key: &str| settings.get(key).and_then(|v| v.as_str()).map(str::to_string);
    match kind {
        "guest_shutdown" => Ok(Box::new(vcenter::GuestShutdown)),
        "power_off" => Ok(Box::new(vcenter::PowerOff)),
        "delete_vm" => Ok(Box::new(vcenter::DeleteVm)),
        "slack_notify" => Ok(Box::new(notify::SlackNotify { channel: text("channel") })),
        "dns" | "directory_computer" | "webhook" => Err(format!("Step kind {kind} is not available in this version of the bot yet")),
        other => Err(format!("{other} is not a step kind the bot knows")),
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
