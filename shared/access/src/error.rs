use thiserror::Error;

/// The sentence shown to a person whose access could not be checked because a peer (the
/// directory or Slack) was unavailable.
pub const FAIL_CLOSED_MESSAGE: &str = "Your access could not be checked right now, so nothing was run. Please try again in a minute.";

/// Why a person could not be identified, or why an [`crate::Access`] could not be built.
///
/// Every variant carries one or more complete sentences and `Display` prints them as they are.
/// The `*Unavailable` and `Config` sentences are for operators (logs): they may name hosts and
/// server diagnostics. What to show the person at the keyboard is
/// [`AccessError::fail_closed_message`]. No variant ever carries a token or password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccessError {
    /// The directory could not be reached, did not answer within the deadline, refused the
    /// service account, or answered something unexpected. Never cached.
    #[error("{0}")]
    DirectoryUnavailable(String),
    /// Slack's `users.info` could not be reached, did not answer within the deadline, kept
    /// rate-limiting, or answered with an error about our token or scopes. Never cached.
    #[error("{0}")]
    SlackUnavailable(String),
    /// Nobody matches: Slack does not know the user, shares no e-mail address for them, or no
    /// directory account has that address. User-facing sentence.
    #[error("{0}")]
    UnknownUser(String),
    /// The directory account is disabled, or the Slack account is deactivated. User-facing.
    #[error("{0}")]
    Disabled(String),
    /// Several directory accounts share the person's e-mail address. User-facing.
    #[error("{0}")]
    Ambiguous(String),
    /// The access policy (or the Slack client settings) cannot be used, e.g. a role names a
    /// group DN that does not exist. Returned by [`crate::Access::new`] and friends.
    #[error("{0}")]
    Config(String),
}

impl AccessError {
    /// What to tell the person whose command was refused because of this error. The
    /// `*Unavailable` variants give [`FAIL_CLOSED_MESSAGE`]; `Config` gives a sentence without
    /// the policy's details; the others are already sentences for the person and are returned
    /// as they are.
    pub fn fail_closed_message(&self) -> String {
        match self {
            AccessError::DirectoryUnavailable(_) | AccessError::SlackUnavailable(_) => FAIL_CLOSED_MESSAGE.to_owned(),
            AccessError::Config(_) => {
                "Your access could not be checked because IT's access policy has a problem, so nothing was run. Please tell IT.".to_owned()
            }
            AccessError::UnknownUser(s) | AccessError::Disabled(s) | AccessError::Ambiguous(s) => s.clone(),
        }
    }

    /// `true` for the errors that say nothing about the person, only about a peer being down
    /// (`DirectoryUnavailable`, `SlackUnavailable`): worth retrying later, never cached.
    pub fn is_transient(&self) -> bool {
        matches!(self, AccessError::DirectoryUnavailable(_) | AccessError::SlackUnavailable(_))
    }
}
