//! vCenter access behind one trait, [`Vcenter`], with two implementations:
//! [`soap::SoapClient`] speaks vim25 SOAP at `/sdk` (real vCenter, govmomi's vcsim) and
//! [`demo::DemoInventory`] is the in-memory default used when no vCenter is configured.
//! One contract test suite (`tests/contract.rs`) runs against both, so the demo behaves like vCenter.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod demo;
mod placement;
pub mod soap;

/// Custom attribute names the bot owns on every VM it manages.
pub const ATTR_OWNER: &str = "iaas.owner";
pub const ATTR_CREATED: &str = "iaas.created";
pub const ATTR_EXPIRES: &str = "iaas.expires";

pub use iaas_ids::{Moref, VmName, VmRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PowerState {
    PoweredOn,
    PoweredOff,
    Suspended,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::PoweredOn => "powered on",
            PowerState::PoweredOff => "powered off",
            PowerState::Suspended => "suspended",
        })
    }
}

/// What `/iaas vm list` shows per row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSummary {
    pub vm: VmRef,
    pub power_state: PowerState,
    pub ip: Option<String>,
    pub guest_os: Option<String>,
    pub cpus: u32,
    pub memory_mb: u64,
}

/// Which VM names [`Vcenter::find_vms`] wants (the lifetime spelled out for async_trait).
pub type NameMatch = dyn for<'n> Fn(&'n str) -> bool + Send + Sync;

/// Some of the VMs whose names match, and how many matched in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmPage {
    /// At most the limit asked for, sorted by name.
    pub vms: Vec<VmSummary>,
    pub total: usize,
}

/// What `/iaas vm info` shows: the summary plus placement and the bot's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmDetails {
    pub summary: VmSummary,
    pub host: Option<String>,
    pub datastores: Vec<String>,
    pub folder: Option<String>,
    pub tools_running: bool,
    /// Custom attributes by name (e.g. `iaas.owner`), only those with a value.
    pub attributes: BTreeMap<String, String>,
    /// `config.cpuHotAddEnabled`: vCPUs can be added while the VM runs.
    pub cpu_hot_add: bool,
    /// `config.memoryHotAddEnabled`: memory can be added while the VM runs.
    pub memory_hot_add: bool,
    /// `config.uuid` (the BIOS UUID), when vCenter reports one.
    pub uuid: Option<String>,
}

/// A datastore as the storage-move function weighs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreInfo {
    pub moref: Moref,
    pub name: String,
    pub capacity_bytes: u64,
    pub free_bytes: u64,
    /// `summary.maintenanceMode` is anything but `normal` (entering or in maintenance).
    pub maintenance: bool,
    pub accessible: bool,
}

/// The datastores a [`Placement`] reaches, as create, clone, deploy and `/iaas capacity` weigh them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementStorage {
    /// Where a create or clone with this placement puts the VM's files: the datastore the
    /// placement names, or the one the default placement takes when it names none.
    pub target: DatastoreInfo,
    /// Every datastore of the placement's datacenter that a usable host (connected, not in
    /// maintenance) of its cluster or host mounts, sorted by name; the target among them.
    pub reachable: Vec<DatastoreInfo>,
}

/// Where a new VM goes. Each is a name (or a path for folder/pool) resolved by the client;
/// None = the datacenter's default (first datacenter, its vm folder root, the first cluster's
/// root resource pool, the first datastore of that cluster's first host, no NIC change).
/// "First" means first by name, so the choice does not depend on vCenter's listing order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub datacenter: Option<String>,
    /// e.g. `iaas` or `iaas/web`, under the datacenter's vm folder.
    pub folder: Option<String>,
    /// A cluster (or standalone host) name, `DC0_C0`, or a pool under it, `DC0_C0/pool-a`.
    pub resource_pool: Option<String>,
    pub datastore: Option<String>,
    /// A port group: a standard network or a distributed port group, by name.
    pub network: Option<String>,
}

/// An object a [`Placement`] resolves to, for `iaas doctor`: what it is to placement
/// (`folder`, `resource pool`, `datastore`, `network`), its name, and its moref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedObject {
    pub what: &'static str,
    pub name: String,
    pub moref_type: String,
    pub moref: String,
}

/// A blank VM: CPU, memory, one thin disk, and a NIC when the placement names a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSpec {
    pub name: VmName,
    /// vSphere's guest OS identifier, e.g. `ubuntu64Guest`.
    pub guest_id: String,
    pub cpus: u32,
    pub memory_mb: u64,
    /// 0 = no disk (the SCSI controller is still added).
    pub disk_gb: u64,
    pub placement: Placement,
}

/// A copy of a VM or template; CPU and memory come from the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneSpec {
    pub name: VmName,
    pub placement: Placement,
}

/// A running vCenter task (moref `task-NN`), so a long clone can be followed across function invocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    pub moref: String,
}

/// Where a task is. `Succeeded.vm` is the VM a create or clone made (None for other tasks,
/// or when that VM has already gone again).
#[derive(Debug, Clone, PartialEq)]
pub enum TaskStatus {
    Running { percent: Option<u8> },
    Succeeded { vm: Option<VmRef> },
    Failed(VcError),
}

/// The power operations `/iaas power` offers. `Off` and `Reset` are hard; `Shutdown` and
/// `Reboot` go through the guest and need VMware Tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerOp {
    On,
    Off,
    Shutdown,
    Reboot,
    Reset,
    Suspend,
}

impl PowerOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerOp::On => "on",
            PowerOp::Off => "off",
            PowerOp::Shutdown => "shutdown",
            PowerOp::Reboot => "reboot",
            PowerOp::Reset => "reset",
            PowerOp::Suspend => "suspend",
        }
    }
}

/// Errors from vCenter, typed so callers can turn them into sentences.
/// `Display` is already a sentence a user can read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VcError {
    #[error("No VM named {name}.")]
    NotFound { name: String },
    #[error("{vm} is {current}; that operation needs a different power state.")]
    InvalidPowerState { vm: String, current: PowerState },
    #[error("VMware Tools is not running in {vm}, so the guest cannot be asked to do that; use a hard power operation instead.")]
    ToolsUnavailable { vm: String },
    #[error("vCenter rejected the bot's credentials; an administrator must fix VCENTER_USER/VCENTER_PASSWORD.")]
    InvalidLogin,
    #[error("This vCenter does not support {operation}.")]
    NotSupported { operation: String },
    /// The request was sent and no answer came in time: vCenter may have acted on it.
    #[error("vCenter did not answer within {secs} s, so it is not known whether the request took effect. Check with `/iaas vm info` before trying again.")]
    Timeout { secs: u64 },
    /// No connection could be made (refused, no route, TLS refused), so nothing was sent.
    #[error("vCenter could not be reached ({detail}); nothing was changed.")]
    Unreachable { detail: String },
    /// The task started and had not ended when the wait did; it has not failed.
    #[error("vCenter is still working on it after {secs} s (task {task}); it has not failed, and I'll say here how it ends.")]
    StillRunning { task: String, secs: u64 },
    #[error("A VM named {name} already exists.")]
    DuplicateName { name: String },
    /// The name pointed at a VM that no longer had it when checked, twice: it is being
    /// renamed, or deleted and made again, right now.
    #[error("{name} changed in vCenter while I was looking it up (renamed, or deleted and made again); nothing was changed. Please try again in a moment.")]
    Changed { name: String },
    /// A name from the placement policy (`what` is `datacenter`, `folder`, `resource pool`,
    /// `datastore` or `network`) that vCenter does not have.
    #[error("The policy's {what} {name} does not exist in vCenter; an administrator must fix the policy.")]
    PlacementNotFound { what: String, name: String },
    /// Any other vSphere fault, with vCenter's own localized message.
    #[error("vCenter refused: {message}")]
    Fault { fault: String, message: String },
    /// vCenter answered something the client could not read.
    #[error("vCenter sent an answer the bot could not read ({0}).")]
    Protocol(String),
}

pub type VcResult<T> = Result<T, VcError>;

/// How [`Vcenter::wait_task`] paces its polls.
const WAIT_FIRST_PAUSE: Duration = Duration::from_millis(100);
const WAIT_MAX_PAUSE: Duration = Duration::from_secs(2);

/// vCenter's limit on a VM name.
const MAX_NAME_LEN: usize = 80;

/// A request vCenter would refuse (or quietly default) is refused before anything starts,
/// the same way by both implementations.
fn invalid(message: &str) -> VcError {
    VcError::Fault { fault: "InvalidArgument".into(), message: message.into() }
}

pub(crate) fn check_name(name: &str) -> VcResult<()> {
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN || name.trim() != name {
        return Err(invalid("a VM name must be 1 to 80 characters, without leading or trailing spaces."));
    }
    Ok(())
}

/// `Some(0)` would mean "unset" to vcsim and be rejected by vCenter; neither is what was asked.
pub(crate) fn check_size(cpus: Option<u32>, memory_mb: Option<u64>) -> VcResult<()> {
    if cpus == Some(0) {
        return Err(invalid("a VM needs at least one vCPU."));
    }
    if memory_mb == Some(0) {
        return Err(invalid("a VM needs some memory."));
    }
    if cpus.is_some_and(|c| c > i32::MAX as u32) || memory_mb.is_some_and(|m| m > i32::MAX as u64) {
        return Err(invalid("that is more vCPUs or memory than vSphere can describe."));
    }
    Ok(())
}

/// How "This vCenter does not support …" names a refused reconfigure (a template's hardware).
pub(crate) const RECONFIGURE_LABEL: &str = "changing CPU or memory";

/// A task vCenter no longer knows: finished tasks are forgotten after a while (about ten
/// minutes on vCenter), so a follow-up should then look for the VM by name.
pub(crate) fn unknown_task(moref: &str) -> VcError {
    VcError::Fault {
        fault: "ManagedObjectNotFound".into(),
        message: format!("vCenter no longer knows task {moref}; look for the VM by name instead."),
    }
}

/// vSphere's largest virtual disk, 62 TB.
const MAX_DISK_GB: u64 = 62 * 1024;

impl CreateSpec {
    pub(crate) fn check(&self) -> VcResult<()> {
        check_name(&self.name)?;
        check_size(Some(self.cpus), Some(self.memory_mb))?;
        if self.disk_gb > MAX_DISK_GB {
            return Err(invalid("a virtual disk can be at most 62 TB."));
        }
        Ok(())
    }
}

#[async_trait]
pub trait Vcenter: Send + Sync + 'static {
    /// A short label for logs and start-up messages, e.g. `demo inventory` or the vCenter URL.
    fn describe(&self) -> String;

    /// Every VM (templates excluded), sorted by name.
    async fn list_vms(&self) -> VcResult<Vec<VmSummary>>;

    /// The VM with exactly this name, or `VcError::NotFound`.
    async fn find_vm(&self, name: &str) -> VcResult<VmRef>;

    /// The VMs (templates excluded) whose name `matches`, sorted by name: the first `limit`
    /// with their summaries, and how many matched in all. What it costs grows with the rows
    /// returned, not with the inventory, where the implementation keeps an index.
    async fn find_vms(&self, matches: &NameMatch, limit: usize) -> VcResult<VmPage> {
        let all: Vec<VmSummary> = self.list_vms().await?.into_iter().filter(|s| matches(&s.vm.name)).collect();
        let total = all.len();
        Ok(VmPage { vms: all.into_iter().take(limit).collect(), total })
    }

    /// Every VM's name (templates excluded), sorted: what "did you mean" chooses from.
    async fn vm_names(&self) -> VcResult<Vec<String>> {
        Ok(self.list_vms().await?.into_iter().map(|s| s.vm.name.into_string()).collect())
    }

    async fn vm_details(&self, vm: &VmRef) -> VcResult<VmDetails>;

    /// Runs the power operation and waits for it to finish.
    async fn power(&self, vm: &VmRef, op: PowerOp) -> VcResult<()>;

    /// Every template, sorted by name.
    async fn list_templates(&self) -> VcResult<Vec<VmRef>>;

    /// The template with exactly this name; `VcError::NotFound` if absent or not a template.
    async fn find_template(&self, name: &str) -> VcResult<VmRef>;

    /// Starts creating a blank VM (CreateVM_Task) and returns the task without waiting.
    /// Refused before any task starts: a name any VM or template already has
    /// (`DuplicateName`), a placement name vCenter lacks (`PlacementNotFound`).
    async fn begin_create(&self, spec: &CreateSpec) -> VcResult<TaskRef>;

    /// Starts cloning a VM or template (CloneVM_Task) into a powered-off VM (never a template),
    /// with the same checks as [`Vcenter::begin_create`]. Callers power it on separately.
    async fn begin_clone(&self, source: &VmRef, spec: &CloneSpec) -> VcResult<TaskRef>;

    /// Reads the task once.
    async fn task_status(&self, task: &TaskRef) -> VcResult<TaskStatus>;

    /// Changes vCPUs and/or memory (ReconfigVM_Task) and waits. `None` leaves a value as it is.
    /// Like vcsim, this does not check hot-add for a powered-on VM; callers must (see
    /// [`VmDetails::cpu_hot_add`]), as real vCenter refuses.
    async fn reconfigure(&self, vm: &VmRef, cpus: Option<u32>, memory_mb: Option<u64>) -> VcResult<()>;

    /// Deletes the VM and its files (Destroy_Task) and waits. A powered-on VM is refused
    /// with `InvalidPowerState`; a VM that is already gone is `NotFound`.
    async fn destroy(&self, vm: &VmRef) -> VcResult<()>;

    /// Sets a custom attribute, defining it for VMs first if vCenter lacks it. The new value
    /// replaces the old one; an empty value clears it.
    async fn set_attribute(&self, vm: &VmRef, name: &str, value: &str) -> VcResult<()>;

    /// The VM with this managed-object id, or `VcError::NotFound` naming
    /// the moref. Works through [`Vcenter::vm_details`], which reads by moref only.
    async fn vm_by_moref(&self, moref: &Moref) -> VcResult<VmRef> {
        // The name is not known yet; vm_details reads by moref and answers the real one.
        let probe = VmRef::new(moref.clone(), moref.as_str());
        Ok(self.vm_details(&probe).await?.summary.vm)
    }

    /// `summary.storage.committed`: bytes the VM's files take on its datastores.
    async fn vm_used_bytes(&self, _vm: &VmRef) -> VcResult<u64> {
        Err(VcError::NotSupported { operation: "reading a VM's storage use".into() })
    }

    /// The datastores the VM's host mounts, sorted by name (the VM's own included).
    async fn datastores_for(&self, _vm: &VmRef) -> VcResult<Vec<DatastoreInfo>> {
        Err(VcError::NotSupported { operation: "listing datastores".into() })
    }

    /// The datastores `placement` reaches, with capacity and free space (`Datastore.summary`).
    /// Refused as [`Vcenter::begin_create`] refuses the placement (`PlacementNotFound`, …).
    async fn placement_storage(&self, _placement: &Placement) -> VcResult<PlacementStorage> {
        Err(VcError::NotSupported { operation: "reading datastores' free space".into() })
    }

    /// The VMs (templates excluded) with files on the datastore, sorted by name. Read from
    /// each VM's `datastore` property, which vcsim keeps right after a relocation (its
    /// `Datastore.vm` list it does not).
    async fn vms_on_datastore(&self, _datastore: &Moref) -> VcResult<Vec<VmRef>> {
        Err(VcError::NotSupported { operation: "listing a datastore's VMs".into() })
    }

    /// Moves the VM's files to the datastore (RelocateVM_Task, host unchanged) and waits.
    async fn relocate(&self, _vm: &VmRef, _datastore: &Moref) -> VcResult<()> {
        Err(VcError::NotSupported { operation: "moving a VM to another datastore".into() })
    }

    /// Retires a VM but keeps its files: moves it into `folder` (MoveIntoFolder_Task, skipped
    /// when it is already there), then removes it from the inventory (UnregisterVM). `folder`
    /// is a name or path under the vm folder of the VM's datacenter, as `Placement::folder`.
    /// Refused before anything changes: a powered-on VM (`InvalidPowerState`), a folder the
    /// datacenter lacks (`PlacementNotFound` naming it). A VM already gone is `NotFound`.
    async fn move_and_unregister(&self, _vm: &VmRef, _folder: &str) -> VcResult<()> {
        Err(VcError::NotSupported { operation: "moving a VM to a folder and unregistering it".into() })
    }

    /// Polls [`Vcenter::task_status`] with a growing pause until the task is no longer
    /// running or `timeout` has passed; then returns the last status read (still `Running`
    /// on timeout, so the caller can hand the task to a follow-up).
    async fn wait_task(&self, task: &TaskRef, timeout: Duration) -> VcResult<TaskStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = WAIT_FIRST_PAUSE;
        loop {
            let status = self.task_status(task).await?;
            if !matches!(status, TaskStatus::Running { .. }) || tokio::time::Instant::now() + pause > deadline {
                return Ok(status);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(WAIT_MAX_PAUSE);
        }
    }

    /// The objects `placement` resolves to (folder, resource pool, datastore, network when
    /// named), by the resolver creates and clones use; a name vCenter does not have is
    /// [`VcError::PlacementNotFound`]. For `iaas doctor`.
    async fn placement_objects(&self, _placement: &Placement) -> VcResult<Vec<PlacedObject>> {
        Err(VcError::NotSupported { operation: "checking placement".into() })
    }

    /// Which of `privileges` (vSphere privilege ids, e.g. `VirtualMachine.Inventory.Create`)
    /// the bot's own session does not hold on `on` (None: the root folder, for global
    /// privileges). For `iaas doctor`.
    async fn missing_privileges(&self, _on: Option<&PlacedObject>, _privileges: &[&str]) -> VcResult<Vec<String>> {
        Err(VcError::NotSupported { operation: "checking privileges".into() })
    }

    /// The vSphere API version vCenter reports (`about.apiVersion`). For `iaas doctor`.
    async fn api_version(&self) -> VcResult<String> {
        Err(VcError::NotSupported { operation: "reading the API version".into() })
    }

    /// The names of the custom attributes defined for VMs (or for every type). For `iaas doctor`.
    async fn vm_custom_fields(&self) -> VcResult<Vec<String>> {
        Err(VcError::NotSupported { operation: "listing custom attributes".into() })
    }

    /// Ends the session (called on shutdown). Never fails loudly.
    async fn logout(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A vCenter whose one task runs for `running_polls` reads, then succeeds.
    struct SlowTask {
        running_polls: u32,
        polls: AtomicU32,
    }

    #[async_trait]
    impl Vcenter for SlowTask {
        fn describe(&self) -> String {
            "slow task".into()
        }
        async fn list_vms(&self) -> VcResult<Vec<VmSummary>> {
            unreachable!()
        }
        async fn find_vm(&self, _: &str) -> VcResult<VmRef> {
            unreachable!()
        }
        async fn vm_details(&self, _: &VmRef) -> VcResult<VmDetails> {
            unreachable!()
        }
        async fn power(&self, _: &VmRef, _: PowerOp) -> VcResult<()> {
            unreachable!()
        }
        async fn list_templates(&self) -> VcResult<Vec<VmRef>> {
            unreachable!()
        }
        async fn find_template(&self, _: &str) -> VcResult<VmRef> {
            unreachable!()
        }
        async fn begin_create(&self, _: &CreateSpec) -> VcResult<TaskRef> {
            unreachable!()
        }
        async fn begin_clone(&self, _: &VmRef, _: &CloneSpec) -> VcResult<TaskRef> {
            unreachable!()
        }
        async fn task_status(&self, _: &TaskRef) -> VcResult<TaskStatus> {
            let n = self.polls.fetch_add(1, Ordering::SeqCst);
            Ok(if n < self.running_polls {
                TaskStatus::Running { percent: Some(n as u8 * 10) }
            } else {
                TaskStatus::Succeeded { vm: None }
            })
        }
        async fn reconfigure(&self, _: &VmRef, _: Option<u32>, _: Option<u64>) -> VcResult<()> {
            unreachable!()
        }
        async fn destroy(&self, _: &VmRef) -> VcResult<()> {
            unreachable!()
        }
        async fn set_attribute(&self, _: &VmRef, _: &str, _: &str) -> VcResult<()> {
            unreachable!()
        }
    }

    fn slow(running_polls: u32) -> SlowTask {
        SlowTask { running_polls, polls: AtomicU32::new(0) }
    }

    fn task() -> TaskRef {
        TaskRef { moref: "task-1".into() }
    }

    #[tokio::test]
    async fn wait_task_polls_until_the_end() {
        let vc = slow(2);
        let status = vc.wait_task(&task(), Duration::from_secs(5)).await;
        assert_eq!(status, Ok(TaskStatus::Succeeded { vm: None }));
        assert_eq!(vc.polls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn wait_task_returns_the_last_running_status_on_timeout() {
        let vc = slow(1000);
        // Polls at 0 and 100 ms; the next pause (200 ms) would pass the deadline.
        let status = vc.wait_task(&task(), Duration::from_millis(250)).await;
        assert_eq!(status, Ok(TaskStatus::Running { percent: Some(10) }));
        assert_eq!(vc.polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn sizes_and_names_are_checked() {
        assert!(check_name("web-01").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("web ").is_err());
        assert!(check_name(&"é".repeat(80)).is_ok());
        assert!(check_name(&"é".repeat(81)).is_err());
        assert!(check_size(None, None).is_ok());
        assert!(check_size(Some(0), None).is_err());
        assert!(check_size(None, Some(0)).is_err());
        assert!(check_size(Some(u32::MAX), None).is_err());
        let mut spec = CreateSpec {
            name: "a".into(),
            guest_id: "otherGuest64".into(),
            cpus: 1,
            memory_mb: 512,
            disk_gb: MAX_DISK_GB,
            placement: Placement::default(),
        };
        assert!(spec.check().is_ok());
        spec.disk_gb += 1;
        assert!(spec.check().is_err());
    }

    #[test]
    fn new_errors_read_as_sentences() {
        assert_eq!(VcError::DuplicateName { name: "web-01".into() }.to_string(), "A VM named web-01 already exists.");
        assert_eq!(
            VcError::PlacementNotFound { what: "folder".into(), name: "iaas/web".into() }.to_string(),
            "The policy's folder iaas/web does not exist in vCenter; an administrator must fix the policy."
        );
    }
}
