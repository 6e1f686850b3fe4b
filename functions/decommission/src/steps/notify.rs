//! `slack_notify`: tells a channel (or, by default, the requester) that the VM was retired.

use async_trait::async_trait;
use iaas_config::StepKind;
use iaas_slack::Message;
use tokio_util::sync::CancellationToken;

use super::{cancellable, Step, StepContext, StepError, StepOutcome};
use crate::report::{is_slack_user, mention};
use crate::VmFacts;

pub struct SlackNotify {
    /// A channel id; None = a DM to the requester, or the request's channel when the
    /// requester is not a Slack user (the REST API, the lease sweep).
    pub channel: Option<String>,
}

#[async_trait]
impl Step for SlackNotify {
    fn kind(&self) -> StepKind {
        StepKind::SlackNotify
    }

    async fn run(&self, sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let r = &sc.request;
        let to_requester = is_slack_user(&r.requester);
        let channel = match (&self.channel, to_requester) {
            (Some(c), _) => c.clone(),
            (None, true) => r.requester.to_string(),
            (None, false) if !r.channel.is_empty() => r.channel.clone(),
            (None, false) => {
                return Ok(StepOutcome::Skipped(format!(
                    "{} is not a Slack user and the request has no channel, so nobody was told.",
                    r.requester
                )))
            }
        };
        if !sc.slack.has_token() {
            return Ok(StepOutcome::Skipped("No SLACK_BOT_TOKEN is set, so nobody was told.".into()));
        }
        let mut text = format!("*{}* was decommissioned at the request of {} (request `{}`", vm.name, mention(&r.requester), r.id);
        if !r.ticket.is_empty() {
            text.push_str(&format!(", ticket {}", iaas_slack::UserText(&r.ticket)));
        }
        text.push(')');
        if !r.reason.is_empty() {
            text.push_str(&format!(": {}", iaas_slack::UserText(&r.reason)));
        }
        text.push('.');
        match cancellable(cancel, sc.slack.post_message(&channel, &Message::new(text))).await? {
            Ok(_) => Ok(StepOutcome::Done(format!(
                "Told {}.",
                if is_slack_user(&channel) { format!("<@{channel}>") } else { format!("<#{channel}>") }
            ))),
            Err(e) => Err(StepError::Failed(format!("Slack could not be told: {e}."))),
        }
    }
}
