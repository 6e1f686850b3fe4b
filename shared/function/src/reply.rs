//! A function's answer: what the user reads, and whether it changed something.

use iaas_config::Policy;
use iaas_invocation::Invocation;
use iaas_slack::{Message, RespondError};
use iaas_vsphere::{TaskRef, VcError};

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
    /// A vCenter task that outlived the wait: the kit keeps waiting after this answer and tells
    /// the user how it ended (`VcError::StillRunning`).
    pub follow_up: Option<TaskRef>,
}

impl Reply {
    pub fn changed(message: Message) -> Self {
        Reply { kind: ReplyKind::Change, message, follow_up: None }
    }
    pub fn query(message: Message) -> Self {
        Reply { kind: ReplyKind::Query, message, follow_up: None }
    }
    pub fn error(text: impl Into<String>) -> Self {
        Reply { kind: ReplyKind::Error, message: Message::new(text), follow_up: None }
    }
    pub fn denied(text: impl Into<String>) -> Self {
        Reply { kind: ReplyKind::Denied, message: Message::new(text), follow_up: None }
    }
    pub fn prompt(message: Message) -> Self {
        Reply { kind: ReplyKind::Prompt, message, follow_up: None }
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
    /// vCenter errors as sentences; the raw detail goes to the log.
    fn from(err: VcError) -> Self {
        tracing::warn!(error = ?err, "vCenter call failed");
        match err {
            // Not an error (yet): the change is under way and is followed up.
            VcError::StillRunning { ref task, .. } => Reply {
                kind: ReplyKind::Change,
                message: Message::new(format!("⏳ {}", vc_sentence(&err))),
                follow_up: Some(TaskRef { moref: task.clone() }),
            },
            err => Reply::error(vc_sentence(&err)),
        }
    }
}

/// What a user reads about a vCenter error: its sentence without the transport's or parser's
/// own words ("Connection refused (os error 111)", rustls' close_notify with its docs.rs link),
/// which only an operator can use and which are in the log.
pub fn vc_sentence(err: &VcError) -> String {
    match err {
        VcError::Unreachable { .. } => {
            "vCenter could not be reached; nothing was changed. Try again in a few minutes, and tell IT if it persists.".to_string()
        }
        VcError::Protocol(_) => {
            "vCenter sent an answer the bot could not read. Check the VM before trying again, and tell IT if it persists.".to_string()
        }
        other => other.to_string(),
    }
}

/// An answer Slack did not take, after the delivery policy's attempts, goes to the audit trail
/// (stage `slack`, decision `failed`, the reason starting "Answer not delivered"): the admins
/// see it with `/iaas audit`, and the asker's request is not silently lost in a log.
pub(crate) async fn undelivered(ctx: &Context, inv: &Invocation, error: &RespondError) {
    tracing::error!(error = %error, request = %inv.id, "could not answer in Slack");
    metrics::counter!("iaas_slack_undelivered_total", "function" => inv.command.function()).increment(1);
    let entry = crate::once::invocation_entry(inv, "slack", "failed", format!("Answer not delivered: {error}."), None);
    if let Err(e) = ctx.store.audit(&entry).await {
        tracing::error!(error = %e, request = %inv.id, "could not record an undelivered answer in the audit trail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcenter_errors_reach_users_without_library_internals() {
        for (err, said) in [
            (
                VcError::Unreachable {
                    detail: "peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof".into(),
                },
                "vCenter could not be reached; nothing was changed.",
            ),
            (VcError::Unreachable { detail: "Connection refused (os error 111)".into() }, "vCenter could not be reached"),
            (VcError::Protocol("response is not XML: unexpected end of stream at 1:5".into()), "could not read"),
        ] {
            let text = Reply::from(err).message.readable();
            assert!(text.contains(said), "{text}");
            for internal in ["docs.rs", "os error", "close_notify", "XML", "1:5"] {
                assert!(!text.contains(internal), "{internal:?} reached the user: {text}");
            }
        }
        assert_eq!(vc_sentence(&VcError::NotFound { name: "x".into() }), "No VM named x.");
    }
}
