//! vCenter events as VEBA delivers them (CloudEvents), and the kit for functions that act on
//! them: [`router`] authenticates the caller, parses the event, acts once per event id +
//! source, tells Slack what it did (or deliberately did not do), and audits it.

mod auth;
mod endpoint;
mod event;

pub use auth::EventAuth;
pub use endpoint::{router, router_with, EventSettings, Notifier, Outcome, OutcomeKind};
pub use event::{AlarmStatus, EntityRef, ParseError, VcEvent};
