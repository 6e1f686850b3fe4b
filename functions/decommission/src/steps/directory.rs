//! `directory_computer`: deletes the VM's computer object from Active Directory / LDAP
//! (`iaas_steps::directory::ComputerStep`).
//!
//! Keys: `url` (`ldap://` or `ldaps://`), `bind_dn`, `secret_env` (the variable holding the
//! bind password), `base_dn` (the computers OU, searched as a subtree), `object_class`
//! (default `computer`), `ca_file`, `starttls` (default false), `timeout_secs` (connect and
//! each operation; default 10).

use async_trait::async_trait;
use iaas_config::StepKind;
use iaas_steps::directory::ComputerStep;
use tokio_util::sync::CancellationToken;

use super::external;
use super::{Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

pub struct DirectoryComputer(ComputerStep);

/// The step for a plan entry; its keys are read by [`ComputerStep::from_settings`].
pub fn build(settings: &serde_json::Value) -> Result<DirectoryComputer, String> {
    ComputerStep::from_settings(settings).map(DirectoryComputer)
}

#[async_trait]
impl Step for DirectoryComputer {
    fn kind(&self) -> StepKind {
        StepKind::DirectoryComputer
    }

    async fn run(&self, _sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let facts = external::facts(vm);
        external::run(cancel, self.0.run(&facts)).await
    }
}
