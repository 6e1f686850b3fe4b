//! The step kinds of crate `iaas-steps`, as decommission steps: each reads its own plan entry
//! (`from_settings`), gets the VM's facts converted field by field, and has its outcome mapped
//! one to one and its `StepError(sentence)` to [`StepError::Failed`].
//!
//! - `dns` ([`DnsStep`]): removes the VM's A record and the PTR of its address by a TSIG-signed
//!   dynamic update. Keys: `server` (`ip[:port]`, the zones' primary; port 53 by default),
//!   `zone`, `reverse_zone` (optional; without it PTR records are left alone), `key_name`,
//!   `secret_env` (the variable holding the base64 TSIG secret, as `tsig-keygen` prints it),
//!   `timeout_secs` (default 5).
//! - `directory_computer` ([`ComputerStep`]): deletes the VM's computer object from Active
//!   Directory / LDAP. Keys: `url` (`ldap://` or `ldaps://`), `bind_dn`, `secret_env` (the
//!   variable holding the bind password), `base_dn` (the computers OU, searched as a subtree),
//!   `object_class` (default `computer`), `ca_file`, `starttls` (default false), `timeout_secs`
//!   (connect and each operation; default 10).
//! - `webhook` ([`WebhookStep`]): calls a CMDB / ticketing webhook. Keys: `url` (may hold
//!   `{{name}} {{moref}} {{uuid}} {{ip}} {{os}} {{owner}} {{ticket}} {{reason}}`), `method`
//!   (default POST), `headers` (a table), `body` (a template, JSON-escaped when JSON),
//!   `secret_env` (optional: the variable holding a bearer token), `expected_statuses` (default
//!   any 2xx), `already_done_statuses` (default [404]), `timeout_secs` (default 10), `retries`
//!   (default 3), `backoff_ms` (default 500).

use async_trait::async_trait;
use iaas_config::StepKind;
pub use iaas_steps::directory::ComputerStep;
pub use iaas_steps::dns::DnsStep;
pub use iaas_steps::webhook::WebhookStep;
use tokio_util::sync::CancellationToken;

use super::{cancellable, Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

/// One of them, built by [`super::build`] from its plan entry.
pub enum External {
    Dns(DnsStep),
    DirectoryComputer(ComputerStep),
    Webhook(WebhookStep),
}

#[async_trait]
impl Step for External {
    fn kind(&self) -> StepKind {
        match self {
            External::Dns(_) => StepKind::Dns,
            External::DirectoryComputer(_) => StepKind::DirectoryComputer,
            External::Webhook(_) => StepKind::Webhook,
        }
    }

    async fn run(&self, _sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let facts = facts(vm);
        let outcome = match self {
            External::Dns(step) => cancellable(cancel, step.run(&facts)).await?,
            External::DirectoryComputer(step) => cancellable(cancel, step.run(&facts)).await?,
            External::Webhook(step) => cancellable(cancel, step.run(&facts)).await?,
        };
        match outcome {
            Ok(iaas_steps::StepOutcome::Done(m)) => Ok(StepOutcome::Done(m)),
            Ok(iaas_steps::StepOutcome::AlreadyDone(m)) => Ok(StepOutcome::AlreadyDone(m)),
            Ok(iaas_steps::StepOutcome::Skipped(m)) => Ok(StepOutcome::Skipped(m)),
            Err(iaas_steps::StepError(m)) => Err(StepError::Failed(m)),
        }
    }
}

/// The VM's recorded facts as `iaas-steps` knows them.
fn facts(vm: &VmFacts) -> iaas_steps::VmFacts {
    iaas_steps::VmFacts {
        name: vm.name.to_string(),
        moref: vm.moref.to_string(),
        uuid: vm.uuid.clone(),
        ip: vm.ip.clone(),
        os_family: vm.os_family.clone(),
        owner: vm.owner.clone(),
        ticket: vm.ticket.clone(),
        reason: vm.reason.clone(),
    }
}
