//! The built-in vCenter steps. Each re-reads the VM by managed-object id: a VM that is gone
//! counts as already done, so a resumed request can run an interrupted step again.

use std::time::Duration;

use async_trait::async_trait;
use iaas_config::{DeleteMode, StepKind};
use iaas_store::Usage;
use iaas_vsphere::{Moref, PowerOp, PowerState, VcError, VmDetails, VmRef};
use tokio_util::sync::CancellationToken;

use super::{cancellable, Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

/// How often a guest shutdown is checked on.
const SHUTDOWN_POLL: Duration = Duration::from_secs(1);

fn vm_ref(vm: &VmFacts) -> VmRef {
    VmRef::new(vm.moref.clone(), vm.name.clone())
}

/// The VM now, or None when it is gone.
async fn current(sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<Option<VmDetails>, StepError> {
    match cancellable(cancel, sc.ctx.vcenter.vm_details(&vm_ref(vm))).await? {
        Ok(d) => Ok(Some(d)),
        Err(VcError::NotFound { .. }) => Ok(None),
        Err(e) => Err(StepError::Failed(e.to_string())),
    }
}

async fn power_off(sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<(), StepError> {
    match cancellable(cancel, sc.ctx.vcenter.power(&vm_ref(vm), PowerOp::Off)).await? {
        Ok(()) | Err(VcError::InvalidPowerState { current: PowerState::PoweredOff, .. }) => Ok(()),
        Err(e) => Err(StepError::Failed(format!("{} could not be powered off: {e}", vm.name))),
    }
}

/// Asks the guest to shut down and waits up to the policy's timeout, then powers off.
pub struct GuestShutdown;

#[async_trait]
impl Step for GuestShutdown {
    fn kind(&self) -> StepKind {
        StepKind::GuestShutdown
    }

    async fn run(&self, sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let Some(d) = current(sc, vm, cancel).await? else { return Ok(StepOutcome::AlreadyDone(format!("{} was already gone.", vm.name))) };
        match d.summary.power_state {
            PowerState::PoweredOff => return Ok(StepOutcome::AlreadyDone(format!("{} was already powered off.", vm.name))),
            PowerState::Suspended => {
                // A suspended guest cannot be asked anything.
                power_off(sc, vm, cancel).await?;
                return Ok(StepOutcome::Done(format!("{} was suspended, so it was powered off.", vm.name)));
            }
            PowerState::PoweredOn => {}
        }
        let timeout = Duration::from_secs(sc.ctx.policy.decommission.shutdown_timeout_secs);
        if let Err(e) = cancellable(cancel, sc.ctx.vcenter.power(&vm_ref(vm), PowerOp::Shutdown)).await? {
            power_off(sc, vm, cancel).await?;
            return Ok(StepOutcome::Done(format!("The guest could not be asked to shut down ({e}), so {} was powered off.", vm.name)));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match current(sc, vm, cancel).await? {
                None => return Ok(StepOutcome::AlreadyDone(format!("{} is gone.", vm.name))),
                Some(d) if d.summary.power_state == PowerState::PoweredOff => {
                    return Ok(StepOutcome::Done(format!("{} shut down.", vm.name)))
                }
                Some(_) if tokio::time::Instant::now() >= deadline => break,
                Some(_) => cancellable(cancel, tokio::time::sleep(SHUTDOWN_POLL)).await?,
            }
        }
        power_off(sc, vm, cancel).await?;
        Ok(StepOutcome::Done(format!("{} did not shut down within {} s, so it was powered off.", vm.name, timeout.as_secs())))
    }
}

/// A hard power off.
pub struct PowerOff;

#[async_trait]
impl Step for PowerOff {
    fn kind(&self) -> StepKind {
        StepKind::PowerOff
    }

    async fn run(&self, sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let Some(d) = current(sc, vm, cancel).await? else { return Ok(StepOutcome::AlreadyDone(format!("{} was already gone.", vm.name))) };
        if d.summary.power_state == PowerState::PoweredOff {
            return Ok(StepOutcome::AlreadyDone(format!("{} was already powered off.", vm.name)));
        }
        power_off(sc, vm, cancel).await?;
        Ok(StepOutcome::Done(format!("{} was powered off.", vm.name)))
    }
}

/// Retires the VM as the policy's `delete_mode` says: deletes it with its disks, or moves it
/// to `decommissioned_folder` and unregisters it (its files stay on the datastore). Never a
/// protected VM, never a running one; either way the owner's quota is given back — also when
/// the VM is already gone (a worker that died after retiring it), with the size confirmed.
pub struct DeleteVm;

#[async_trait]
impl Step for DeleteVm {
    fn kind(&self) -> StepKind {
        StepKind::DeleteVm
    }

    async fn run(&self, sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let Some(d) = current(sc, vm, cancel).await? else { return Ok(gone(sc, vm).await) };
        if let Some(why) = iaas_function::protected(&sc.ctx.policy, &d) {
            return Err(StepError::Failed(format!("{} is protected ({why}); the bot never deletes it.", vm.name)));
        }
        if d.summary.power_state != PowerState::PoweredOff {
            return Err(StepError::Failed(format!(
                "{} is {}; the plan must shut it down or power it off before deleting it.",
                vm.name, d.summary.power_state
            )));
        }
        let policy = &sc.ctx.policy.decommission;
        let done = match policy.delete_mode {
            DeleteMode::Delete => {
                match cancellable(cancel, sc.ctx.vcenter.destroy(&vm_ref(vm))).await? {
                    Ok(()) => {}
                    Err(VcError::NotFound { .. }) => return Ok(gone(sc, vm).await),
                    Err(e) => return Err(StepError::Failed(format!("{} could not be deleted: {e}", vm.name))),
                }
                format!("{} was deleted with its disks.", vm.name)
            }
            DeleteMode::MoveAndUnregister => {
                // The policy refuses this mode without a folder when it is loaded.
                let Some(folder) = policy.decommissioned_folder.as_deref() else {
                    return Err(StepError::Failed(format!(
                        "The policy asks to move {} to a decommissioned folder but names none; nothing was changed.",
                        vm.name
                    )));
                };
                match cancellable(cancel, sc.ctx.vcenter.move_and_unregister(&vm_ref(vm), folder)).await? {
                    Ok(()) => {}
                    Err(VcError::NotFound { .. }) => return Ok(gone(sc, vm).await),
                    Err(e) => {
                        return Err(StepError::Failed(format!("{} could not be moved to folder {folder} and unregistered: {e}", vm.name)))
                    }
                }
                format!("{} was moved to folder {folder} and unregistered; its files are kept.", vm.name)
            }
        };
        let share = Usage { vms: 1, cpus: i64::from(d.summary.cpus), memory_mb: d.summary.memory_mb as i64 };
        forget(sc, &vm.moref, share).await;
        Ok(StepOutcome::Done(done))
    }
}

/// The VM left vCenter before this step retired it: its share (as confirmed) is given back if
/// that has not happened yet.
async fn gone(sc: &StepContext, vm: &VmFacts) -> StepOutcome {
    let share = Usage { vms: 1, cpus: i64::from(vm.cpus), memory_mb: i64::try_from(vm.memory_mb).unwrap_or(i64::MAX) };
    forget(sc, &vm.moref, share).await;
    StepOutcome::AlreadyDone(format!("{} was already gone.", vm.name))
}

/// A VM the bot made gives its share of its owner's quota back, once, with its record (as
/// `/iaas delete` and the lease sweep do).
async fn forget(sc: &StepContext, moref: &Moref, share: Usage) {
    if let Err(e) = sc.ctx.store.vm_deleted(moref, share).await {
        tracing::error!(error = %e, "could not record the deletion and give the quota back");
    }
}
