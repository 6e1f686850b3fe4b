//! Creating, cloning, resizing, deleting and retiring (move + unregister) VMs. Creates and
//! clones return their task at once (a clone can outlast a function invocation); resize,
//! delete and the move wait for theirs. Everything vCenter (or vcsim) would only reject
//! halfway is checked before a task starts.

use super::envelope::{self, PropSpec};
use super::fault::parse_power_state;
use super::spec;
use super::xml::{MoRef, Node};
use super::Core;
use crate::{check_name, check_size, CloneSpec, CreateSpec, PowerState, TaskRef, VcError, VcResult, VmRef, RECONFIGURE_LABEL};

/// How "This vCenter does not support …" names a refused retire.
const RETIRE_LABEL: &str = "moving a VM to a folder and unregistering it";

impl Core {
    pub(crate) async fn create(&self, spec: &CreateSpec) -> VcResult<TaskRef> {
        spec.check()?;
        let target = self.topology().await?.resolve(&spec.placement)?;
        self.check_unique(&spec.name).await?;
        let args = spec::create_args(spec, &target)?;
        let folder = MoRef::new(&target.folder.ty, &target.folder.id);
        let task = self.start_task(&folder, "CreateVM_Task", &args).await.map_err(|e| e.into_vc(&spec.name, "creating a VM"))?;
        tracing::info!(vm = %spec.name, task = %task.value, "CreateVM_Task started");
        Ok(TaskRef { moref: task.value })
    }

    pub(crate) async fn clone_vm(&self, source: &VmRef, spec: &CloneSpec) -> VcResult<TaskRef> {
        check_name(&spec.name)?;
        let target = self.topology().await?.resolve(&spec.placement)?;
        self.check_unique(&spec.name).await?;
        let src = MoRef::new("VirtualMachine", &source.moref);
        let nic = match &target.network {
            Some(net) => {
                let (devices, guest_id) = self.devices(source, &src).await?;
                Some(spec::nic_change(devices.as_ref(), &guest_id, net)?)
            }
            None => None,
        };
        let args = spec::clone_args(&spec.name, &target, nic.as_deref());
        let task = self.start_task(&src, "CloneVM_Task", &args).await.map_err(|e| e.into_vc(&source.name, "cloning a VM"))?;
        tracing::info!(vm = %spec.name, source = %source.name, task = %task.value, "CloneVM_Task started");
        Ok(TaskRef { moref: task.value })
    }

    /// The source's `config.hardware.device` and `config.guestId`, for rewiring its NIC.
    async fn devices(&self, source: &VmRef, src: &MoRef) -> VcResult<(Option<super::xml::Node>, String)> {
        let objects = self
            .with_session(|s| async move {
                let spec = PropSpec { ty: "VirtualMachine", paths: &["config.hardware.device", "config.guestId"] };
                self.retrieve_objects(&s, &[spec], std::slice::from_ref(src)).await
            })
            .await
            .map_err(|e| e.into_vc(&source.name, "reading a VM's devices"))?;
        let o = objects.into_iter().next().ok_or_else(|| VcError::NotFound { name: source.name.to_string() })?;
        let guest_id = o.text("config.guestId").unwrap_or("").to_owned();
        Ok((o.props.get("config.hardware.device").cloned(), guest_id))
    }

    pub(crate) async fn resize(&self, vm: &VmRef, cpus: Option<u32>, memory_mb: Option<u64>) -> VcResult<()> {
        check_size(cpus, memory_mb)?;
        if cpus.is_none() && memory_mb.is_none() {
            return Ok(());
        }
        let target = MoRef::new("VirtualMachine", &vm.moref);
        let args = spec::reconfigure_args(cpus, memory_mb);
        match self.run_task(&target, "ReconfigVM_Task", &args).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.vm_error(vm, &target, RECONFIGURE_LABEL, e).await),
        }
    }

    pub(crate) async fn delete(&self, vm: &VmRef) -> VcResult<()> {
        let target = MoRef::new("VirtualMachine", &vm.moref);
        match self.run_task(&target, "Destroy_Task", "").await {
            Ok(_) => {
                tracing::info!(vm = %vm.name, moref = %vm.moref, "VM destroyed");
                Ok(())
            }
            Err(e) => Err(self.vm_error(vm, &target, "deleting a VM", e).await),
        }
    }

    /// [`crate::Vcenter::move_and_unregister`]. Everything is checked before the move, so a
    /// refusal changes nothing: vcsim 0.24 would crash on MoveIntoFolder with an unknown VM,
    /// and a running VM moved first would stay registered in the new folder.
    pub(crate) async fn retire(&self, vm: &VmRef, folder: &str) -> VcResult<()> {
        let target = MoRef::new("VirtualMachine", &vm.moref);
        let this = self
            .read_one(&target, &["parent", "runtime.powerState"], RETIRE_LABEL)
            .await?
            .ok_or_else(|| VcError::NotFound { name: vm.name.to_string() })?;
        let power = this.text("runtime.powerState").and_then(parse_power_state);
        // Every VM has a power state; an object without one is not a VM vCenter still has.
        let Some(power) = power else { return Err(VcError::NotFound { name: vm.name.to_string() }) };
        if power == PowerState::PoweredOn {
            return Err(VcError::InvalidPowerState { vm: vm.name.to_string(), current: power });
        }
        let parent = this.props.get("parent").and_then(Node::moref);
        let Some(parent) = parent else {
            return Err(VcError::Fault {
                fault: "NotSupported".into(),
                message: format!("{} is not in a VM folder (a vApp?), so it cannot be moved to folder {folder}.", vm.name),
            });
        };
        let topology = self.topology().await?;
        let dest = topology.vm_folder_near(&parent.value, folder)?;

        if dest.id != parent.value {
            let dest = MoRef::new(&dest.ty, &dest.id);
            let args = envelope::moref("list", &target);
            if let Err(e) = self.run_task(&dest, "MoveIntoFolder_Task", &args).await {
                return Err(self.vm_error(vm, &target, RETIRE_LABEL, e).await);
            }
            tracing::info!(vm = %vm.name, moref = %vm.moref, folder, "VM moved");
        }
        if let Err(e) = self.call_vm(&target, "UnregisterVM").await {
            return Err(self.vm_error(vm, &target, RETIRE_LABEL, e).await);
        }
        tracing::info!(vm = %vm.name, moref = %vm.moref, folder, "VM unregistered; its files are kept");
        Ok(())
    }
}
