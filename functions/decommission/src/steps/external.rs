//! What the three `iaas-steps` adapters (dns, directory_computer, webhook) share: converting
//! the VM's facts and the step's answer (each step reads its plan entry itself, with
//! `iaas_steps::settings::Settings`).

use tokio_util::sync::CancellationToken;

use super::{cancellable, StepError, StepOutcome};
use crate::VmFacts;

/// The VM's recorded facts as `iaas-steps` knows them.
pub(super) fn facts(vm: &VmFacts) -> iaas_steps::VmFacts {
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

/// Runs an `iaas-steps` step unless cancelled; its outcome maps one to one, its error to
/// [`StepError::Failed`].
pub(super) async fn run(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<iaas_steps::StepOutcome, iaas_steps::StepError>>,
) -> Result<StepOutcome, StepError> {
    match cancellable(cancel, work).await? {
        Ok(iaas_steps::StepOutcome::Done(m)) => Ok(StepOutcome::Done(m)),
        Ok(iaas_steps::StepOutcome::AlreadyDone(m)) => Ok(StepOutcome::AlreadyDone(m)),
        Ok(iaas_steps::StepOutcome::Skipped(m)) => Ok(StepOutcome::Skipped(m)),
        Err(iaas_steps::StepError(m)) => Err(StepError::Failed(m)),
    }
}
