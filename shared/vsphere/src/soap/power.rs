//! Power operations: the `*_Task` methods (waited for by polling the task's `info`) and the
//! guest operations ShutdownGuest / RebootGuest, which vCenter answers without a task.

use std::time::Duration;

use tokio::time::Instant;

use super::envelope::PropSpec;
use super::fault::{Error, Fault};
use super::xml::{MoRef, Node};
use super::SoapClient;
use crate::{PowerOp, VcError, VcResult, VmRef};

const FIRST_POLL_DELAY: Duration = Duration::from_millis(50);
const MAX_POLL_DELAY: Duration = Duration::from_secs(1);

impl SoapClient {
    pub(crate) async fn run_power_op(&self, vm: &VmRef, op: PowerOp) -> VcResult<()> {
        let target = MoRef::new("VirtualMachine", &vm.moref);
        let result = match op {
            PowerOp::On => self.run_task(&target, "PowerOnVM_Task").await,
            PowerOp::Off => self.run_task(&target, "PowerOffVM_Task").await,
            PowerOp::Reset => self.run_task(&target, "ResetVM_Task").await,
            PowerOp::Suspend => self.run_task(&target, "SuspendVM_Task").await,
            PowerOp::Shutdown => self.call_vm(&target, "ShutdownGuest").await,
            PowerOp::Reboot => self.call_vm(&target, "RebootGuest").await,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.power_error(vm, &target, op, e).await),
        }
    }

    /// Calls a method on the VM that returns nothing worth reading.
    async fn call_vm(&self, vm: &MoRef, method: &str) -> Result<(), Error> {
        self.with_session(|s| async move { self.invoke(&s, method, vm, "").await })
            .await
            .map(drop)
    }

    /// Starts a task and waits for it, all within the configured timeout.
    async fn run_task(&self, vm: &MoRef, method: &str) -> Result<(), Error> {
        let deadline = Instant::now() + self.cfg.timeout;
        let reply = self
            .with_session(|s| async move { self.invoke(&s, method, vm, "").await })
            .await?;
        let task = reply
            .child("returnval")
            .and_then(Node::moref)
            .ok_or_else(|| Error::Vc(VcError::Protocol(format!("{method} returned no task"))))?;
        self.wait_task(&task, deadline).await
    }

    /// Polls `info.state` with a growing pause until the task succeeds or fails.
    async fn wait_task(&self, task: &MoRef, deadline: Instant) -> Result<(), Error> {
        let mut pause = FIRST_POLL_DELAY;
        loop {
            let info = self
                .with_session(|s| async move {
                    let spec = PropSpec {
                        ty: "Task",
                        paths: &["info.state", "info.error"],
                    };
                    self.retrieve_objects(&s, &[spec], std::slice::from_ref(task))
                        .await
                })
                .await?;
            let info = info.into_iter().next().ok_or_else(|| {
                Error::Vc(VcError::Protocol(format!("task {} vanished", task.value)))
            })?;
            match info.props.get("info.state").map(|s| s.text.as_str()) {
                Some("success") => return Ok(()),
                Some("error") => {
                    let fault = info
                        .props
                        .get("info.error")
                        .map(Fault::from_localized)
                        .unwrap_or_else(|| Fault {
                            kind: "VimFault".into(),
                            message: "the task failed without saying why".into(),
                            detail: Node::default(),
                        });
                    return Err(fault.into());
                }
                _ => {}
            }
            if Instant::now() + pause > deadline {
                return Err(VcError::Timeout {
                    secs: self.timeout_secs(),
                }
                .into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL_DELAY);
        }
    }

    /// Gives a failed power operation its user-facing meaning. InvalidPowerState without an
    /// `existingState` costs one more read, so the message can say what state the VM is in.
    async fn power_error(&self, vm: &VmRef, target: &MoRef, op: PowerOp, e: Error) -> VcError {
        let operation = operation_label(op);
        if let Some(fault) = e.fault() {
            if fault.is("InvalidPowerState") && fault.existing_state().is_none() {
                if let Ok(Some(current)) = self.power_state(target).await {
                    return VcError::InvalidPowerState {
                        vm: vm.name.clone(),
                        current,
                    };
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
