//! Decommission step kinds that reach systems other than vCenter.
//!
//! Each step takes the VM's facts ([`VmFacts`]) and answers a [`StepOutcome`] or a
//! [`StepError`]:
//! - [`dns::DnsStep`]: RFC 2136 dynamic update signed with TSIG (HMAC-SHA256) — deletes the
//!   VM's A rrset and the PTR of its address.
//! - [`directory::ComputerStep`]: deletes the VM's computer object from AD / LDAP.
//! - [`webhook::WebhookStep`]: calls a CMDB / ticketing webhook with a templated body.
//!
//! Invariants shared by every step:
//! - Idempotent: something already gone is [`StepOutcome::AlreadyDone`], never an error, so a
//!   decommission can be resumed or redelivered.
//! - Every network call is bounded by the step's `timeout`; retries (webhook only) are bounded,
//!   back off exponentially and honour `Retry-After`.
//! - No panics on any input; errors are sentences an operator can act on and never carry a
//!   secret (TSIG key, bind password, bearer token).

use serde::{Deserialize, Serialize};

pub mod directory;
pub mod dns;
pub mod settings;
pub mod webhook;

/// What every step gets to work with: the VM's facts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmFacts {
    pub name: String,
    pub moref: String,
    pub uuid: Option<String>,
    pub ip: Option<String>,
    /// `linux`, `windows` or `other`.
    pub os_family: String,
    pub owner: Option<String>,
    pub ticket: Option<String>,
    pub reason: Option<String>,
}

/// How a step ended when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The step changed something; the text says what.
    Done(String),
    /// Nothing to do: the thing was already gone (NXDOMAIN, 404, no such entry).
    AlreadyDone(String),
    /// The step does not apply to this VM (e.g. it has no IP address); the text says why.
    Skipped(String),
}

/// A step failed. The text is a sentence saying what happened and what to check; it never
/// contains a secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StepError(pub String);

impl StepError {
    pub(crate) fn new(msg: impl Into<String>) -> StepError {
        StepError(msg.into())
    }
}
