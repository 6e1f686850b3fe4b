//! In-memory demo inventory, used when no vCenter is configured.
//!
//! It holds the same seed as the vcsim launcher (`tests/vcsim/main.go`) and answers every
//! operation the way that simulator does, errors included, so the contract suite can hold both
//! to one behaviour. Power semantics mirror govmomi's vcsim 0.24 (Debian's), state by state:
//!
//! | op       | poweredOn          | poweredOff                  | suspended          |
//! |----------|--------------------|-----------------------------|--------------------|
//! | on       | InvalidPowerState  | → poweredOn                 | → poweredOn        |
//! | off      | → poweredOff       | InvalidPowerState           | → poweredOff       |
//! | suspend  | → suspended        | → suspended (vcsim allows)  | InvalidPowerState  |
//! | reset    | → poweredOn        | InvalidPowerState           | → poweredOn        |
//! | shutdown | → poweredOff, or ToolsUnavailable without Tools | InvalidPowerState | → poweredOff |
//! | reboot   | → poweredOn, or ToolsUnavailable without Tools | InvalidPowerState | InvalidPowerState |
//!
//! Reboot is vCenter's RebootGuest, which the command table offers; Debian's vcsim lacks it
//! (NotSupported), so here the demo follows vCenter and the contract suite checks each apart.
//!
//! The ToolsUnavailable check is the launcher's addition (real vCenter makes it, vcsim 0.24
//! does not). Like vcsim, power operations never change Tools status, IPs or guest OS.
//!
//! Lifecycle, as vcsim 0.24 does it (checks marked * are the SOAP client's, made before any
//! task because vcsim lacks them):
//! - create/clone: tasks finish at once; the new VM is powered off, without Tools, IP, hot-add
//!   or attributes; a clone copies CPU, memory and guest id. *A name any VM or template has
//!   → DuplicateName. *Unknown placement names → PlacementNotFound (shared resolver).
//! - reconfigure: applied in any power state, hot-add or not (real vCenter refuses CPU or
//!   memory changes on a running VM without hot-add); a template → NotSupported.
//! - destroy: a powered-on VM → InvalidPowerState; suspended or off → gone.
//! - move_and_unregister: the VM leaves the inventory (its files would stay on the datastore);
//!   checked first, nothing changed when refused: a powered-on VM → InvalidPowerState*, a
//!   folder its datacenter lacks → PlacementNotFound* (shared resolver). Suspended is fine.
//! - set_attribute: replaces the value (vcsim appends; the reader takes the last one).
//! - relocate: the VM's files move to the datastore (an unknown one is refused before any
//!   task*); like vcsim, the datastores' free space does not change. A create takes its disk's
//!   full size off its datastore's free space and a destroy gives it back, as vcsim does; a
//!   clone takes nothing (vcsim copies no disk). Capacity, free space and
//!   each VM's committed storage are the launcher's seed (vcsim itself reports the temp
//!   directory's file system for every datastore).

use super::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::placement::{Target, Topology};

mod seed;

/// One VM (or template) as the demo keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DemoVm {
    moref: String,
    name: String,
    power: PowerState,
    tools_running: bool,
    ip: Option<String>,
    guest_id: String,
    guest_os: String,
    cpus: u32,
    memory_mb: u64,
    host: String,
    datastore: String,
    /// Name of the parent folder (`vm` for the datacenter's root vm folder).
    folder: String,
    attributes: BTreeMap<String, String>,
    template: bool,
    cpu_hot_add: bool,
    memory_hot_add: bool,
    uuid: String,
    /// `summary.storage.committed`.
    used_bytes: u64,
    /// What a VM made by a create takes off its datastore's free space: its disk's full size,
    /// as vcsim 0.24 charges it (a clone's copy it does not charge).
    #[serde(default)]
    disk_bytes: u64,
}

impl DemoVm {
    fn summary(&self) -> VmSummary {
        VmSummary {
            vm: self.vm_ref(),
            power_state: self.power,
            ip: self.ip.clone(),
            guest_os: Some(self.guest_os.clone()),
            cpus: self.cpus,
            memory_mb: self.memory_mb,
        }
    }

    fn vm_ref(&self) -> VmRef {
        VmRef::new(self.moref.clone(), self.name.clone())
    }
}

/// Everything the demo changes, behind one lock so each operation is atomic.
struct State {
    vms: Vec<DemoVm>,
    /// Finished tasks by moref; the demo's tasks finish as they start, like vcsim's.
    tasks: BTreeMap<String, TaskStatus>,
    /// How often each task was read, for [`DemoInventory::with_slow_tasks`].
    task_reads: BTreeMap<String, u32>,
    next_vm: u32,
    next_task: u32,
}

impl State {
    /// Records a task that has already finished and returns its reference.
    fn finished_task(&mut self, status: TaskStatus) -> TaskRef {
        self.next_task += 1;
        let moref = format!("task-{}", self.next_task);
        self.tasks.insert(moref.clone(), status);
        TaskRef { moref }
    }

    /// vCenter (checked by the SOAP client, as vcsim allows duplicates) refuses a second VM
    /// or template of the same name.
    fn check_unique(&self, name: &str) -> VcResult<()> {
        if self.vms.iter().any(|v| v.name == name) {
            return Err(VcError::DuplicateName { name: name.into() });
        }
        Ok(())
    }

    /// A new powered-off VM as vcsim makes one: no Tools, no IP, no attributes, no hot-add.
    fn add_vm(&mut self, name: &str, guest_id: &str, cpus: u32, memory_mb: u64, at: &Target) -> VmRef {
        let n = self.next_vm;
        self.next_vm += 1;
        let vm = DemoVm {
            moref: format!("vm-{n}"),
            name: name.to_owned(),
            power: PowerState::PoweredOff,
            tools_running: false,
            ip: None,
            guest_id: guest_id.to_owned(),
            guest_os: seed::guest_full_name(guest_id),
            cpus,
            memory_mb,
            host: at.chosen_host.name.clone(),
            datastore: at.datastore.name.clone(),
            folder: at.folder.name.clone(),
            attributes: BTreeMap::new(),
            template: false,
            cpu_hot_add: false,
            memory_hot_add: false,
            uuid: seed::uuid_for(n),
            used_bytes: 0,
            disk_bytes: 0,
        };
        let r = vm.vm_ref();
        self.vms.push(vm);
        r
    }
}

pub struct DemoInventory {
    state: Mutex<State>,
    topology: Topology,
    /// Reads of a task that still say "running" before its real result shows.
    slow_task_reads: u32,
    /// Where the VMs are kept across restarts ([`DemoInventory::persisted`]), if anywhere.
    file: Option<PathBuf>,
}

/// What the demo keeps across restarts: the VMs and the next moref. Tasks are not kept; like
/// vCenter's, they are forgotten after a while.
#[derive(Serialize, Deserialize)]
struct Saved {
    vms: Vec<DemoVm>,
    next_vm: u32,
}

impl Default for DemoInventory {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoInventory {
    pub fn new() -> Self {
        let vms = seed::vms();
        let next_vm = 101 + vms.len() as u32;
        DemoInventory {
            state: Mutex::new(State { vms, tasks: BTreeMap::new(), task_reads: BTreeMap::new(), next_vm, next_task: 0 }),
            topology: seed::topology(),
            slow_task_reads: 0,
            file: None,
        }
    }

    /// The demo kept in `file`: loaded from it when it exists, written after every change. It
    /// lives next to the state database so the two stay in step across restarts (a deleted VM
    /// stays deleted, as its records say); delete both to start afresh.
    pub fn persisted(file: &Path) -> Result<Self, String> {
        let mut demo = DemoInventory::new();
        demo.file = Some(file.to_path_buf());
        match std::fs::read(file) {
            Ok(bytes) => {
                let saved: Saved =
                    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a demo inventory ({e})", file.display()))?;
                let mut state = demo.state();
                state.vms = saved.vms;
                state.next_vm = saved.next_vm;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => demo.save(&demo.state())?,
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        }
        Ok(demo)
    }

    /// Writes the VMs to the file, if there is one: to a temporary file renamed over it, so a
    /// crash mid-write leaves the previous state rather than half of one.
    fn save(&self, state: &State) -> Result<(), String> {
        let Some(file) = &self.file else { return Ok(()) };
        let saved = Saved { vms: state.vms.clone(), next_vm: state.next_vm };
        let json = serde_json::to_vec_pretty(&saved).map_err(|e| e.to_string())?;
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, file)).map_err(|e| format!("cannot write {}: {e}", file.display()))
    }

    /// Saves after a change; a failure is logged, not the change's failure (the change is made).
    fn saved(&self, state: &State) {
        if let Err(e) = self.save(state) {
            tracing::warn!(error = %e, "the demo inventory could not be saved; changes since are lost on restart");
        }
    }

    /// Tasks report `Running` for their first `reads` reads, like a long clone on a real
    /// vCenter (vcsim finishes every task inside the call). For trying follow-ups.
    pub fn with_slow_tasks(mut self, reads: u32) -> Self {
        self.slow_task_reads = reads;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another caller panicked mid-update; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The datastore with this moref, as the storage functions see it.
    fn datastore_info(&self, moref: &str) -> Option<DatastoreInfo> {
        let ds = self.topology.datastores.iter().find(|d| d.id == moref)?;
        let (capacity_gb, free_gb) = seed::datastore_space(&ds.name);
        let taken: u64 = self.state().vms.iter().filter(|v| v.datastore == ds.name).map(|v| v.disk_bytes).sum();
        Some(DatastoreInfo {
            moref: ds.id.clone().into(),
            name: ds.name.clone(),
            capacity_bytes: capacity_gb * seed::GIB,
            free_bytes: (free_gb * seed::GIB).saturating_sub(taken),
            maintenance: false,
            accessible: true,
        })
    }

    /// Runs `f` on the (non-template) VM `vm` refers to.
    fn with_vm<T>(&self, vm: &VmRef, f: impl FnOnce(&mut DemoVm) -> VcResult<T>) -> VcResult<T> {
        self.apply(vm, false, f)
    }

    /// [`with_vm`](Self::with_vm) for a change: saved when it succeeds.
    fn change_vm<T>(&self, vm: &VmRef, f: impl FnOnce(&mut DemoVm) -> VcResult<T>) -> VcResult<T> {
        self.apply(vm, true, f)
    }

    /// Runs `f` on the VM or template `vm` refers to (vCenter's morefs cover both).
    fn with_any<T>(&self, vm: &VmRef, f: impl FnOnce(&mut DemoVm) -> VcResult<T>) -> VcResult<T> {
        self.apply_any(vm, false, f)
    }

    /// [`with_any`](Self::with_any) for a change: saved when it succeeds.
    fn change_any<T>(&self, vm: &VmRef, f: impl FnOnce(&mut DemoVm) -> VcResult<T>) -> VcResult<T> {
        self.apply_any(vm, true, f)
    }

    fn apply<T>(&self, vm: &VmRef, save: bool, f: impl FnOnce(&mut DemoVm) -> VcResult<T>) -> VcResult<T> {
        self.apply_any(vm, save, |v| {
            if v.template {
                return Err(VcError::NotFound { name: vm.name.to_string() });
            }
            f(v)
        })
    }

    fn apply_any<T>(&self, vm: &VmRef, save: bool, f: impl FnOnce(&mut DemoVm) -> VcResult<T>) -> VcResult<T> {
        let mut state = self.state();
        let result = match state.vms.iter_mut().find(|v| v.moref == vm.moref) {
            Some(found) => f(found),
            None => Err(VcError::NotFound { name: vm.name.to_string() }),
        };
        if save && result.is_ok() {
            self.saved(&state);
        }
        result
    }
}

#[async_trait]
impl Vcenter for DemoInventory {
    fn describe(&self) -> String {
        "demo inventory".into()
    }

    async fn list_vms(&self) -> VcResult<Vec<VmSummary>> {
        let state = self.state();
        let mut out: Vec<VmSummary> = state.vms.iter().filter(|v| !v.template).map(DemoVm::summary).collect();
        out.sort_by(|a, b| a.vm.name.cmp(&b.vm.name));
        Ok(out)
    }

    async fn find_vm(&self, name: &str) -> VcResult<VmRef> {
        let state = self.state();
        state
            .vms
            .iter()
            .find(|v| !v.template && v.name == name)
            .map(DemoVm::vm_ref)
            .ok_or_else(|| VcError::NotFound { name: name.to_owned() })
    }

    async fn vm_details(&self, vm: &VmRef) -> VcResult<VmDetails> {
        self.with_vm(vm, |v| {
            Ok(VmDetails {
                summary: v.summary(),
                host: Some(v.host.clone()),
                datastores: vec![v.datastore.clone()],
                folder: Some(v.folder.clone()),
                tools_running: v.tools_running,
                attributes: v.attributes.clone(),
                cpu_hot_add: v.cpu_hot_add,
                memory_hot_add: v.memory_hot_add,
                uuid: Some(v.uuid.clone()),
            })
        })
    }

    async fn power(&self, vm: &VmRef, op: PowerOp) -> VcResult<()> {
        self.change_vm(vm, |v| {
            v.power = next_state(v, op)?;
            Ok(())
        })
    }

    async fn list_templates(&self) -> VcResult<Vec<VmRef>> {
        let state = self.state();
        let mut out: Vec<VmRef> = state.vms.iter().filter(|v| v.template).map(DemoVm::vm_ref).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn find_template(&self, name: &str) -> VcResult<VmRef> {
        let state = self.state();
        state
            .vms
            .iter()
            .find(|v| v.template && v.name == name)
            .map(DemoVm::vm_ref)
            .ok_or_else(|| VcError::NotFound { name: name.to_owned() })
    }

    async fn begin_create(&self, spec: &CreateSpec) -> VcResult<TaskRef> {
        spec.check()?;
        let target = self.topology.resolve(&spec.placement)?;
        let mut state = self.state();
        state.check_unique(&spec.name)?;
        let vm = state.add_vm(&spec.name, &spec.guest_id, spec.cpus, spec.memory_mb, &target);
        if let Some(made) = state.vms.iter_mut().find(|v| v.moref == vm.moref) {
            made.disk_bytes = spec.disk_gb.saturating_mul(seed::GIB);
        }
        self.saved(&state);
        Ok(state.finished_task(TaskStatus::Succeeded { vm: Some(vm) }))
    }

    async fn begin_clone(&self, source: &VmRef, spec: &CloneSpec) -> VcResult<TaskRef> {
        check_name(&spec.name)?;
        let target = self.topology.resolve(&spec.placement)?;
        let mut state = self.state();
        state.check_unique(&spec.name)?;
        let Some(src) = state.vms.iter().find(|v| v.moref == source.moref) else {
            return Err(VcError::NotFound { name: source.name.to_string() });
        };
        // vcsim copies CPU, memory and guest id only (not hot-add, attributes or Tools).
        let (guest_id, cpus, memory_mb) = (src.guest_id.clone(), src.cpus, src.memory_mb);
        let vm = state.add_vm(&spec.name, &guest_id, cpus, memory_mb, &target);
        self.saved(&state);
        Ok(state.finished_task(TaskStatus::Succeeded { vm: Some(vm) }))
    }

    async fn task_status(&self, task: &TaskRef) -> VcResult<TaskStatus> {
        let mut state = self.state();
        let reads = state.task_reads.entry(task.moref.clone()).or_insert(0);
        *reads += 1;
        if *reads <= self.slow_task_reads && state.tasks.contains_key(&task.moref) {
            return Ok(TaskStatus::Running { percent: Some(50) });
        }
        match state.tasks.get(&task.moref) {
            // Like the SOAP client, a VM that has gone since is no result any more.
            Some(TaskStatus::Succeeded { vm: Some(vm) }) if !state.vms.iter().any(|v| v.moref == vm.moref) => {
                Ok(TaskStatus::Succeeded { vm: None })
            }
            Some(status) => Ok(status.clone()),
            None => Err(unknown_task(&task.moref)),
        }
    }

    async fn reconfigure(&self, vm: &VmRef, cpus: Option<u32>, memory_mb: Option<u64>) -> VcResult<()> {
        check_size(cpus, memory_mb)?;
        if cpus.is_none() && memory_mb.is_none() {
            return Ok(());
        }
        self.change_any(vm, |v| {
            if v.template {
                return Err(VcError::NotSupported { operation: RECONFIGURE_LABEL.into() });
            }
            // vcsim applies the change in any power state, hot-add or not.
            v.cpus = cpus.unwrap_or(v.cpus);
            v.memory_mb = memory_mb.unwrap_or(v.memory_mb);
            Ok(())
        })
    }

    async fn destroy(&self, vm: &VmRef) -> VcResult<()> {
        let mut state = self.state();
        let Some(i) = state.vms.iter().position(|v| v.moref == vm.moref) else {
            return Err(VcError::NotFound { name: vm.name.to_string() });
        };
        // vcsim (like vCenter) refuses only a powered-on VM; a suspended one is deleted.
        if state.vms[i].power == PowerState::PoweredOn {
            return Err(VcError::InvalidPowerState { vm: vm.name.to_string(), current: PowerState::PoweredOn });
        }
        state.vms.remove(i);
        self.saved(&state);
        Ok(())
    }

    async fn move_and_unregister(&self, vm: &VmRef, folder: &str) -> VcResult<()> {
        let mut state = self.state();
        let Some(i) = state.vms.iter().position(|v| v.moref == vm.moref) else {
            return Err(VcError::NotFound { name: vm.name.to_string() });
        };
        let v = &state.vms[i];
        if v.power == PowerState::PoweredOn {
            return Err(VcError::InvalidPowerState { vm: vm.name.to_string(), current: PowerState::PoweredOn });
        }
        // The demo keeps a VM's folder by name; its folder names are unique.
        let parent = self
            .topology
            .folders
            .iter()
            .find(|f| f.obj.name == v.folder)
            .map(|f| f.obj.id.clone())
            .ok_or_else(|| VcError::Protocol(format!("demo folder {} is unknown", v.folder)))?;
        self.topology.vm_folder_near(&parent, folder)?;
        state.vms.remove(i);
        self.saved(&state);
        Ok(())
    }

    async fn set_attribute(&self, vm: &VmRef, name: &str, value: &str) -> VcResult<()> {
        self.change_any(vm, |v| {
            if value.is_empty() {
                v.attributes.remove(name);
            } else {
                v.attributes.insert(name.to_owned(), value.to_owned());
            }
            Ok(())
        })
    }

    async fn vm_used_bytes(&self, vm: &VmRef) -> VcResult<u64> {
        self.with_any(vm, |v| Ok(v.used_bytes))
    }

    async fn datastores_for(&self, vm: &VmRef) -> VcResult<Vec<DatastoreInfo>> {
        let host = self.with_any(vm, |v| Ok(v.host.clone()))?;
        let ids = self.topology.hosts.iter().find(|h| h.obj.name == host).map(|h| h.datastores.clone()).unwrap_or_default();
        let mut out: Vec<DatastoreInfo> = ids.iter().filter_map(|id| self.datastore_info(id)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn placement_storage(&self, placement: &Placement) -> VcResult<PlacementStorage> {
        let (target, reachable) = self.topology.storage(placement)?;
        let target = self.datastore_info(&target).ok_or_else(|| VcError::Protocol(format!("datastore {target} has no summary")))?;
        let mut reachable: Vec<DatastoreInfo> = reachable.iter().filter_map(|id| self.datastore_info(id)).collect();
        reachable.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(PlacementStorage { target, reachable })
    }

    async fn vms_on_datastore(&self, datastore: &Moref) -> VcResult<Vec<VmRef>> {
        let Some(ds) = self.datastore_info(datastore) else {
            return Ok(Vec::new());
        };
        let state = self.state();
        let mut out: Vec<VmRef> = state.vms.iter().filter(|v| !v.template && v.datastore == ds.name).map(DemoVm::vm_ref).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn relocate(&self, vm: &VmRef, datastore: &Moref) -> VcResult<()> {
        let Some(ds) = self.datastore_info(datastore) else {
            return Err(VcError::Fault {
                fault: "ManagedObjectNotFound".into(),
                message: format!("vCenter has no datastore {datastore}."),
            });
        };
        self.change_any(vm, |v| {
            v.datastore = ds.name;
            Ok(())
        })
    }
}

/// The state `op` leaves the VM in, or the fault vcsim answers (see the table above).
fn next_state(vm: &DemoVm, op: PowerOp) -> VcResult<PowerState> {
    use PowerState::*;
    let refuse = || VcError::InvalidPowerState { vm: vm.name.to_string(), current: vm.power };
    match (op, vm.power) {
        (PowerOp::Reboot, PoweredOn) if !vm.tools_running => Err(VcError::ToolsUnavailable { vm: vm.name.clone() }),
        (PowerOp::Reboot, PoweredOn) => Ok(PoweredOn),
        (PowerOp::Reboot, _) => Err(refuse()),
        (PowerOp::On, PoweredOn) | (PowerOp::Off, PoweredOff) | (PowerOp::Suspend, Suspended) => Err(refuse()),
        (PowerOp::Reset | PowerOp::Shutdown, PoweredOff) => Err(refuse()),
        (PowerOp::Shutdown, PoweredOn) if !vm.tools_running => Err(VcError::ToolsUnavailable { vm: vm.name.clone() }),
        (PowerOp::On | PowerOp::Reset, _) => Ok(PoweredOn),
        (PowerOp::Off | PowerOp::Shutdown, _) => Ok(PoweredOff),
        (PowerOp::Suspend, _) => Ok(Suspended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn template_is_hidden_everywhere() {
        let demo = DemoInventory::new();
        assert!(demo.list_vms().await.unwrap().iter().all(|v| v.vm.name != "tmpl-ubuntu-22"));
        assert_eq!(demo.find_vm("tmpl-ubuntu-22").await, Err(VcError::NotFound { name: "tmpl-ubuntu-22".into() }));
    }

    #[tokio::test]
    async fn unknown_moref_is_not_found_by_name() {
        let demo = DemoInventory::new();
        let ghost = VmRef::new("vm-999", "ghost");
        assert_eq!(demo.power(&ghost, PowerOp::On).await, Err(VcError::NotFound { name: "ghost".into() }));
        assert_eq!(demo.vm_details(&ghost).await, Err(VcError::NotFound { name: "ghost".into() }));
    }

    #[tokio::test]
    async fn reboot_is_vcenters_reboot_guest() {
        let demo = DemoInventory::new();
        let vm = |name: &str| VmRef::new(seed::vms().into_iter().find(|v| v.name == name).unwrap().moref, name);
        // Running with Tools: rebooted, still on.
        assert_eq!(demo.power(&vm("app-web-01"), PowerOp::Reboot).await, Ok(()));
        assert_eq!(demo.vm_details(&vm("app-web-01")).await.unwrap().summary.power_state, PowerState::PoweredOn);
        // Running without Tools, off, suspended: refused as vCenter does.
        assert_eq!(demo.power(&vm("app-db-01"), PowerOp::Reboot).await, Err(VcError::ToolsUnavailable { vm: "app-db-01".into() }));
        let off = VcError::InvalidPowerState { vm: "win-app-01".into(), current: PowerState::PoweredOff };
        assert_eq!(demo.power(&vm("win-app-01"), PowerOp::Reboot).await, Err(off));
        let suspended = VcError::InvalidPowerState { vm: "build-agent-07".into(), current: PowerState::Suspended };
        assert_eq!(demo.power(&vm("build-agent-07"), PowerOp::Reboot).await, Err(suspended));
    }

    #[tokio::test]
    async fn a_persisted_demo_keeps_its_changes_across_restarts() {
        let dir = std::env::temp_dir().join(format!(
            "iaas-demo-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("iaas.db-demo.json");
        let demo = DemoInventory::persisted(&file).unwrap();
        assert!(file.exists(), "the seed is written at once");
        let web = demo.find_vm("app-web-01").await.unwrap();
        demo.power(&web, PowerOp::Off).await.unwrap();
        let agent = demo.find_vm("build-agent-07").await.unwrap();
        demo.destroy(&agent).await.unwrap();
        let spec = CreateSpec {
            name: "new-vm".into(),
            cpus: 1,
            memory_mb: 1024,
            disk_gb: 1,
            guest_id: "ubuntu64Guest".into(),
            placement: Default::default(),
        };
        demo.begin_create(&spec).await.unwrap();
        drop(demo);

        let again = DemoInventory::persisted(&file).unwrap();
        assert_eq!(again.vm_details(&web).await.unwrap().summary.power_state, PowerState::PoweredOff);
        assert_eq!(again.find_vm("build-agent-07").await, Err(VcError::NotFound { name: "build-agent-07".into() }));
        let created = again.find_vm("new-vm").await.unwrap();
        // New morefs do not reuse old ones.
        let next = again.begin_create(&CreateSpec { name: "newer-vm".into(), ..spec }).await.unwrap();
        let TaskStatus::Succeeded { vm: Some(newer) } = again.task_status(&next).await.unwrap() else { panic!("create failed") };
        assert_ne!(created.moref, newer.moref);

        std::fs::write(&file, "not json").unwrap();
        assert!(DemoInventory::persisted(&file).err().unwrap().contains("is not a demo inventory"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
