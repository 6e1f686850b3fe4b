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
//! | reboot   | NotSupported: Debian's vcsim has no RebootGuest, and the demo mirrors that |
//!
//! The ToolsUnavailable check is the launcher's addition (real vCenter makes it, vcsim 0.24
//! does not). Like vcsim, power operations never change Tools status, IPs or guest OS.

use super::*;
use std::sync::Mutex;

/// One VM as the demo keeps it.
#[derive(Debug, Clone)]
struct DemoVm {
    moref: String,
    name: String,
    power: PowerState,
    tools_running: bool,
    ip: Option<&'static str>,
    guest_os: &'static str,
    cpus: u32,
    memory_mb: u64,
    host: &'static str,
    datastore: &'static str,
    attributes: BTreeMap<String, String>,
    template: bool,
}

impl DemoVm {
    fn summary(&self) -> VmSummary {
        VmSummary {
            vm: self.vm_ref(),
            power_state: self.power,
            ip: self.ip.map(str::to_owned),
            guest_os: Some(self.guest_os.to_owned()),
            cpus: self.cpus,
            memory_mb: self.memory_mb,
        }
    }

    fn vm_ref(&self) -> VmRef {
        VmRef {
            moref: self.moref.clone(),
            name: self.name.clone(),
        }
    }
}

/// The folder every seeded VM lives in (same as the launcher's).
const FOLDER: &str = "iaas";

pub struct DemoInventory {
    vms: Mutex<Vec<DemoVm>>,
}

impl Default for DemoInventory {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoInventory {
    pub fn new() -> Self {
        DemoInventory {
            vms: Mutex::new(seed()),
        }
    }

    /// Runs `f` on the (non-template) VM `vm` refers to.
    fn with_vm<T>(&self, vm: &VmRef, f: impl FnOnce(&mut DemoVm) -> VcResult<T>) -> VcResult<T> {
        // A poisoned lock only means another caller panicked mid-update; the data is still usable.
        let mut vms = self.vms.lock().unwrap_or_else(|e| e.into_inner());
        match vms.iter_mut().find(|v| v.moref == vm.moref && !v.template) {
            Some(found) => f(found),
            None => Err(VcError::NotFound {
                name: vm.name.clone(),
            }),
        }
    }
}

#[async_trait]
impl Vcenter for DemoInventory {
    fn describe(&self) -> String {
        "demo inventory".into()
    }

    async fn list_vms(&self) -> VcResult<Vec<VmSummary>> {
        let vms = self.vms.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<VmSummary> = vms
            .iter()
            .filter(|v| !v.template)
            .map(DemoVm::summary)
            .collect();
        out.sort_by(|a, b| a.vm.name.cmp(&b.vm.name));
        Ok(out)
    }

    async fn find_vm(&self, name: &str) -> VcResult<VmRef> {
        let vms = self.vms.lock().unwrap_or_else(|e| e.into_inner());
        vms.iter()
            .find(|v| !v.template && v.name == name)
            .map(DemoVm::vm_ref)
            .ok_or_else(|| VcError::NotFound {
                name: name.to_owned(),
            })
    }

    async fn vm_details(&self, vm: &VmRef) -> VcResult<VmDetails> {
        self.with_vm(vm, |v| {
            Ok(VmDetails {
                summary: v.summary(),
                host: Some(v.host.to_owned()),
                datastores: vec![v.datastore.to_owned()],
                folder: Some(FOLDER.to_owned()),
                tools_running: v.tools_running,
                attributes: v.attributes.clone(),
            })
        })
    }

    async fn power(&self, vm: &VmRef, op: PowerOp) -> VcResult<()> {
        self.with_vm(vm, |v| {
            v.power = next_state(v, op)?;
            Ok(())
        })
    }
}

/// The state `op` leaves the VM in, or the fault vcsim answers (see the table above).
fn next_state(vm: &DemoVm, op: PowerOp) -> VcResult<PowerState> {
    use PowerState::*;
    let refuse = || VcError::InvalidPowerState {
        vm: vm.name.clone(),
        current: vm.power,
    };
    match (op, vm.power) {
        (PowerOp::Reboot, _) => Err(VcError::NotSupported {
            operation: "guest reboot".into(),
        }),
        (PowerOp::On, PoweredOn) | (PowerOp::Off, PoweredOff) | (PowerOp::Suspend, Suspended) => {
            Err(refuse())
        }
        (PowerOp::Reset | PowerOp::Shutdown, PoweredOff) => Err(refuse()),
        (PowerOp::Shutdown, PoweredOn) if !vm.tools_running => Err(VcError::ToolsUnavailable {
            vm: vm.name.clone(),
        }),
        (PowerOp::On | PowerOp::Reset, _) => Ok(PoweredOn),
        (PowerOp::Off | PowerOp::Shutdown, _) => Ok(PoweredOff),
        (PowerOp::Suspend, _) => Ok(Suspended),
    }
}

/// The shared seed; keep in sync with `seed` in tests/vcsim/main.go.
fn seed() -> Vec<DemoVm> {
    let attrs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    #[rustfmt::skip]
    let rows = [
        // name, power, tools, ip, guest OS, cpus, MB, host, datastore, attributes, template
        ("app-web-01", PowerState::PoweredOn, true, Some("10.20.0.11"), "Ubuntu Linux (64-bit)", 2, 4096, "DC0_C0_H0", "LocalDS_0",
            attrs(&[(ATTR_OWNER, "U0USER1"), (ATTR_CREATED, "2026-01-15")]), false),
        ("app-web-02", PowerState::PoweredOn, true, Some("10.20.0.12"), "Ubuntu Linux (64-bit)", 2, 4096, "DC0_C0_H1", "LocalDS_0",
            attrs(&[]), false),
        ("app-db-01", PowerState::PoweredOn, false, Some("10.20.0.21"), "Red Hat Enterprise Linux 9 (64-bit)", 4, 16384, "DC0_C0_H2", "LocalDS_1",
            attrs(&[(ATTR_OWNER, "U0ADMIN")]), false),
        ("win-app-01", PowerState::PoweredOff, false, None, "Microsoft Windows Server 2022 (64-bit)", 2, 8192, "DC0_C0_H0", "LocalDS_1",
            attrs(&[]), false),
        ("build-agent-07", PowerState::Suspended, false, Some("10.20.0.70"), "Debian GNU/Linux 12 (64-bit)", 1, 2048, "DC0_C0_H1", "LocalDS_0",
            attrs(&[]), false),
        ("tmpl-ubuntu-22", PowerState::PoweredOff, false, None, "Ubuntu Linux (64-bit)", 2, 4096, "DC0_C0_H2", "LocalDS_0",
            attrs(&[]), true),
    ];
    rows.into_iter()
        .enumerate()
        .map(
            |(
                i,
                (
                    name,
                    power,
                    tools_running,
                    ip,
                    guest_os,
                    cpus,
                    memory_mb,
                    host,
                    datastore,
                    attributes,
                    template,
                ),
            )| DemoVm {
                moref: format!("vm-{}", 101 + i),
                name: name.to_owned(),
                power,
                tools_running,
                ip,
                guest_os,
                cpus,
                memory_mb,
                host,
                datastore,
                attributes,
                template,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn template_is_hidden_everywhere() {
        let demo = DemoInventory::new();
        assert!(demo
            .list_vms()
            .await
            .unwrap()
            .iter()
            .all(|v| v.vm.name != "tmpl-ubuntu-22"));
        assert_eq!(
            demo.find_vm("tmpl-ubuntu-22").await,
            Err(VcError::NotFound {
                name: "tmpl-ubuntu-22".into()
            })
        );
    }

    #[tokio::test]
    async fn unknown_moref_is_not_found_by_name() {
        let demo = DemoInventory::new();
        let ghost = VmRef {
            moref: "vm-999".into(),
            name: "ghost".into(),
        };
        assert_eq!(
            demo.power(&ghost, PowerOp::On).await,
            Err(VcError::NotFound {
                name: "ghost".into()
            })
        );
        assert_eq!(
            demo.vm_details(&ghost).await,
            Err(VcError::NotFound {
                name: "ghost".into()
            })
        );
    }

    #[test]
    fn reboot_is_unsupported_in_every_state() {
        for vm in seed() {
            assert_eq!(
                next_state(&vm, PowerOp::Reboot),
                Err(VcError::NotSupported {
                    operation: "guest reboot".into()
                })
            );
        }
    }
}
