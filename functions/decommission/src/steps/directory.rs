//! `directory_computer`: deletes the VM's computer object from Active Directory / LDAP
//! (`iaas_steps::directory::ComputerStep`).
//!
//! Keys: `url` (`ldap://` or `ldaps://`), `bind_dn`, `secret_env` (the variable holding the
//! bind password), `base_dn` (the computers OU, searched as a subtree), `object_class`
//! (default `computer`), `ca_file`, `starttls` (default false), `timeout_secs` (connect and
//! each operation; default 10).

use async_trait::async_trait;
use iaas_config::StepKind;
use iaas_directory::DirectoryConfig;
use iaas_steps::directory::ComputerStep;
use tokio_util::sync::CancellationToken;

use super::external::{self, Settings};
use super::{Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

pub struct DirectoryComputer(ComputerStep);

const KEYS: [&str; 8] = ["url", "bind_dn", "secret_env", "base_dn", "object_class", "ca_file", "starttls", "timeout_secs"];

pub fn build(settings: &serde_json::Value) -> Result<DirectoryComputer, String> {
    let s = Settings::new("directory_computer", settings, &KEYS)?;
    let password = s.secret(true)?.expect("required");
    let mut cfg = DirectoryConfig::new(s.required("url")?, s.required("bind_dn")?, password.expose(), s.required("base_dn")?);
    cfg.ca_file = s.text("ca_file")?.map(Into::into);
    cfg.starttls = s.bool("starttls", false)?;
    let timeout = s.timeout(10)?;
    cfg.connect_timeout = timeout;
    cfg.op_timeout = timeout;
    Ok(DirectoryComputer(ComputerStep { directory: cfg, object_class: s.text("object_class")?.unwrap_or_else(|| "computer".into()) }))
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
