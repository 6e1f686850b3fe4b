use thiserror::Error;

/// Everything that can go wrong talking to the directory. `Display` is a sentence an operator
/// (or, for the user-facing variants, the person at the keyboard) can act on. No variant ever
/// carries a password; `detail` strings come from the transport or the server's diagnostic text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DirectoryError {
    /// TCP connect failed, the connection dropped, or TLS could not be established.
    #[error("The directory server could not be reached ({detail}). Check the directory URL, the network path, the TLS settings and that the server is running.")]
    Unreachable { detail: String },

    /// Connect or an operation did not finish in time.
    #[error("The directory server did not answer within {secs} s. It may be overloaded, or a firewall may be dropping the traffic.")]
    Timeout { secs: u64 },

    /// The service account's bind was rejected.
    #[error("The directory rejected the service account's bind ({detail}). Check the configured bind DN and bind password.")]
    BindFailed { detail: String },

    #[error("No directory account has the mail address {mail}. Ask your directory administrator to set it on your account.")]
    NoSuchUser { mail: String },

    #[error("{count} directory accounts share the mail address {mail}, so it cannot say who you are. Ask your directory administrator to make it unique.")]
    Ambiguous { mail: String, count: usize },

    #[error("The directory account for {mail} is disabled. Ask your directory administrator to enable it.")]
    Disabled { mail: String },

    #[error("The directory account for {mail} has expired. Ask your directory administrator to extend it.")]
    Expired { mail: String },

    #[error(
        "The directory account for {mail} is locked out. Ask your directory administrator to unlock it, or wait for the lockout to end."
    )]
    LockedOut { mail: String },

    /// A group DN (typically from the policy file) does not name an entry the service account
    /// can read.
    #[error("The group {dn} does not exist in the directory (or is not a valid DN). Check the policy file for a typo.")]
    NoSuchGroup { dn: String },

    /// Login or password wrong (also: unknown login, empty password).
    #[error("The login or password is wrong.")]
    BadCredentials,

    #[error("The directory configuration is not usable: {problem}.")]
    Config { problem: String },

    /// The server answered something we did not expect (result code, malformed entry, ...).
    #[error("The directory answered unexpectedly: {detail}.")]
    Protocol { detail: String },
}

impl DirectoryError {
    /// The directory answered, and its answer is "not this person" (unknown, ambiguous, disabled,
    /// expired, locked out, wrong password), as opposed to "could not check".
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DirectoryError::NoSuchUser { .. }
                | DirectoryError::Ambiguous { .. }
                | DirectoryError::Disabled { .. }
                | DirectoryError::Expired { .. }
                | DirectoryError::LockedOut { .. }
                | DirectoryError::BadCredentials
        )
    }
}
