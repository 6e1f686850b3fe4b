//! The Slack side: request signature verification (v0), the slash-command form, Block Kit
//! messages, and posting answers to a `response_url` that is guaranteed to be Slack's.

pub mod deliver;
pub mod interaction;
pub mod message;
pub mod respond;
pub mod signature;
pub mod slash;
pub mod web;

pub use deliver::{DeliveryError, Limits};
pub use interaction::{BlockActions, Interaction, Press};
pub use message::{escape, neutralize, Message, UserText};
pub use respond::{host_of, Answer, RespondError, Responder, OUTCOME_HEADER};
pub use signature::{sign, verify, VerifyError, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use slash::SlashCommand;
pub use web::{Posted, WebApi, WebApiError};
