//! A function's answer: what the user reads, and whether it changed something.

use iaas_config::Policy;
use iaas_invocation::Invocation;
use iaas_slack::{Message, RespondError};
use iaas_store::AuditEntry;
use iaas_vsphere::VcError;

use crate::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// Something changed: shown in the channel by default.
    Change,
    /// A read: shown to the asker by default.
    Query,
    /// Nothing changed because of a problem: always shown to the asker only.
    Error,
    /// A question to the asker (confirmation buttons): always shown to the asker only.
    Prompt,
    /// Refused by a guard rail (scope, quota): nothing changed; audited as a denial.
    Denied,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub kind: ReplyKind,
    pub message: Message,
}

impl Reply {
    pub fn changed(message: Message) -> Self {
        Reply { kind: ReplyKind::Change, message }
    }
    pub fn query(message: Message) -> Self {
        Reply { kind: ReplyKind::Query, message }
    }
    pub fn error(text: impl Into<String>) -> Self {
        Reply { kind: ReplyKind::Error, message: Message::new(text) }
    }
    pub fn denied(text: impl Into<String>) -> Self {
        Reply { kind: ReplyKind::Denied, message: Message::new(text) }
    }
    pub fn prompt(message: Message) -> Self {
        Reply { kind: ReplyKind::Prompt, message }
    }

    /// Answers to a button press replace the message with the buttons, unless this is said:
    /// a refused press (another user's, a stale one) must leave the buttons for their owner.
    pub fn not_replacing(mut self) -> Self {
        self.message.replace_original = Some(false);
        self
    }

    pub fn ok(&self) -> bool {
        !matches!(self.kind, ReplyKind::Error | ReplyKind::Denied)
    }

    /// The message with the response type the policy asks for.
    pub fn into_message(self, policy: &Policy) -> Message {
        let kind = match self.kind {
            ReplyKind::Change => policy.slack.response_type_changes.as_str(),
            ReplyKind::Query => policy.slack.response_type_queries.as_str(),
            ReplyKind::Error | ReplyKind::Denied | ReplyKind::Prompt => "ephemeral",
        };
        self.message.response_type(kind)
    }
}

impl From<VcError> for Reply {
    /// vCenter errors are already sentences; the raw detail goes to the log.
    fn from(err: VcError) -> Self {
        tracing::warn!(error = ?err, "vCenter call failed");
        Reply::error(err.to_string())
    }
}

/// An answer Slack did not take, after the delivery policy's attempts, goes to the audit trail
/// (stage `slack`, decision `failed`, the reason starting "Answer not delivered"): the admins
/// see it with `/iaas audit`, and the asker's request is not silently lost in a log.
pub(crate) async fn undelivered(ctx: &Context, inv: &Invocation, error: &RespondError) {
    tracing::error!(error = %error, request = %inv.id, "could not answer in Slack");
    let entry = AuditEntry {
        at_ms: chrono::Utc::now().timestamp_millis(),
        request_id: inv.id.clone(),
        actor: inv.user.id.clone(),
        command: inv.command.describe(),
        vm: inv.command.target_vm().map(str::to_string),
        stage: "slack".to_string(),
        decision: "failed".to_string(),
        reason: format!("Answer not delivered: {error}."),
        duration_ms: None,
    };
    if let Err(e) = ctx.store.audit(&entry).await {
        tracing::error!(error = %e, request = %inv.id, "could not record an undelivered answer in the audit trail");
    }
}
