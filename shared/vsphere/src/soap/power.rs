//! Power operations: the `*_Task` methods (waited for by polling the task's `info`, see
//! tasks.rs) and the guest operations ShutdownGuest / RebootGuest, which vCenter answers
//! without a task.

use super::fault::Error;
use super::xml::MoRef;
use super::Core;
use crate::{PowerOp, VcError, VcResult, VmRef};

impl Core {
    pub(crate) async fn run_power_op(&self, vm: &VmRef, op: PowerOp) -> VcResult<()> {
        let target = MoRef::new("VirtualMachine", &vm.moref);
        let result = match op {
            PowerOp::On => self.run_task(&target, "PowerOnVM_Task", "").await.map(drop),
            PowerOp::Off => self.run_task(&target, "PowerOffVM_Task", "").await.map(drop),
            PowerOp::Reset => self.run_task(&target, "ResetVM_Task", "").await.map(drop),
            PowerOp::Suspend => self.run_task(&target, "SuspendVM_Task", "").await.map(drop),
            PowerOp::Shutdown => self.call_vm(&target, "ShutdownGuest").await,
            PowerOp::Reboot => self.call_vm(&target, "RebootGuest").await,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.vm_error(vm, &target, operation_label(op), e).await),
        }
    }

    /// Calls a method on the VM that returns nothing worth reading.
    pub(crate) async fn call_vm(&self, vm: &MoRef, method: &str) -> Result<(), Error> {
        self.with_session(|s| async move { self.invoke(&s, method, vm, "").await }).await.map(drop)
    }

    /// Gives a failed operation on a VM its user-facing meaning. InvalidPowerState without an
    /// `existingState` costs one more read, so the message can say what state the VM is in.
    pub(crate) async fn vm_error(&self, vm: &VmRef, target: &MoRef, operation: &str, e: Error) -> VcError {
        if let Some(fault) = e.fault() {
            if fault.is("InvalidPowerState") && fault.existing_state().is_none() {
                if let Ok(Some(current)) = self.power_state(target).await {
                    return VcError::InvalidPowerState { vm: vm.name.to_string(), current };
                }
            }
        }
        e.into_vc(&vm.name, operation)
    }
}

/// How an operation is named in "This vCenter does not support …".
fn operation_label(op: PowerOp) -> &'static str {
    match op {
        PowerOp::On => "power on",
        PowerOp::Off => "power off",
        PowerOp::Shutdown => "guest shutdown",
        PowerOp::Reboot => "guest reboot",
        PowerOp::Reset => "reset",
        PowerOp::Suspend => "suspend",
    }
}
