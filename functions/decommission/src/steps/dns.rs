//! `dns`: removes the VM's A record and the PTR of its address by a TSIG-signed dynamic
//! update (`iaas_steps::dns::DnsStep`).
//!
//! Keys: `server` (`ip[:port]`, the zones' primary; port 53 by default), `zone`,
//! `reverse_zone` (optional; without it PTR records are left alone), `key_name`, `secret_env`
//! (the variable holding the base64 TSIG secret, as `tsig-keygen` prints it), `timeout_secs`
//! (default 5).

use async_trait::async_trait;
use iaas_config::StepKind;
use iaas_steps::dns::DnsStep;
use tokio_util::sync::CancellationToken;

use super::external;
use super::{Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

pub struct Dns(DnsStep);

/// The step for a plan entry; its keys are read by [`DnsStep::from_settings`].
pub fn build(settings: &serde_json::Value) -> Result<Dns, String> {
    DnsStep::from_settings(settings).map(Dns)
}

#[async_trait]
impl Step for Dns {
    fn kind(&self) -> StepKind {
        StepKind::Dns
    }

    async fn run(&self, _sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let facts = external::facts(vm);
        external::run(cancel, self.0.run(&facts)).await
    }
}
