//! The function kit: everything a deployable function shares, so each function is only its
//! handler. [`router`] turns `async fn(Arc<Context>, Invocation) -> Reply` into an axum
//! `Router` that verifies the gateway's signature, acts once per invocation id (at-least-once
//! delivery), answers in Slack, and records the outcome.

pub mod capacity;
pub mod confirm;
mod context;
mod endpoint;
pub mod lock;
pub mod once;
mod protection;
pub mod provision;
pub mod quota;
mod reply;
pub mod retire;
mod run;
mod scheduled;
mod scope;
mod vm;

pub use context::{check_vcenter, sqlite_file, vcenter_from_env, Context, StartupError, DEFAULT_CLAIM_LEASE, DEFAULT_DATABASE_URL};
pub use endpoint::{locked, progress, router};
pub use protection::protected;
pub use reply::{Reply, ReplyKind};
pub use run::run;
pub use scheduled::scheduled;
pub use scope::{authorize_vm, identity};
pub use vm::{closest_name, find_vm, find_vm_details};
