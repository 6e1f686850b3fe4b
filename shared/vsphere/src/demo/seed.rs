//! The demo's fixed inventory: the VMs and the topology the vcsim launcher
//! (`tests/vcsim/main.go`) builds, so the contract suite can hold both to one answer.

use std::collections::BTreeMap;

use super::DemoVm;
use crate::placement::{Child, Compute, Datacenter, Host, Network, NetworkBacking, Obj, Topology};
use crate::{PowerState, ATTR_CREATED, ATTR_OWNER};

/// What vCenter shows as the OS of a VM made with `guest_id` (before Tools reports one).
/// vcsim itself shows the id; the launcher patches in these names, so keep this table in
/// sync with `guestNames` in tests/vcsim/main.go. Unknown ids stay as they are.
pub(super) fn guest_full_name(guest_id: &str) -> String {
    let name = match guest_id {
        "ubuntu64Guest" => "Ubuntu Linux (64-bit)",
        "rhel8_64Guest" => "Red Hat Enterprise Linux 8 (64-bit)",
        "rhel9_64Guest" => "Red Hat Enterprise Linux 9 (64-bit)",
        "debian11_64Guest" => "Debian GNU/Linux 11 (64-bit)",
        "debian12_64Guest" => "Debian GNU/Linux 12 (64-bit)",
        "windows2019srv_64Guest" => "Microsoft Windows Server 2019 (64-bit)",
        "windows2019srvNext_64Guest" => "Microsoft Windows Server 2022 (64-bit)",
        "otherLinux64Guest" => "Other Linux (64-bit)",
        "otherGuest64" => "Other (64-bit)",
        other => other,
    };
    name.to_owned()
}

/// A BIOS UUID shaped like vCenter's, unique per moref number.
pub(super) fn uuid_for(n: u32) -> String {
    format!("4210{:04x}-5a5a-4e4e-8d8d-{:012x}", n & 0xffff, n)
}

pub(super) const GIB: u64 = 1024 * 1024 * 1024;

/// (capacity, free) in GiB per datastore, as the launcher sets them (`datastoreGB` in
/// tests/vcsim/main.go): LocalDS_0 nearly full, LocalDS_1 roomy.
pub(super) fn datastore_space(name: &str) -> (u64, u64) {
    match name {
        "LocalDS_0" => (500, 60),
        "LocalDS_1" => (1000, 700),
        _ => (0, 0),
    }
}

/// Committed storage per seed VM in GiB (`usedGB` in tests/vcsim/main.go).
fn used_gb(name: &str) -> u64 {
    match name {
        "app-web-01" | "app-web-02" => 20,
        "app-db-01" => 120,
        "win-app-01" => 60,
        "build-agent-07" => 10,
        "tmpl-ubuntu-22" => 8,
        "dc-01" => 60,
        "tmpl-win-2022" => 30,
        _ => 0,
    }
}

/// The shared seed; keep in sync with `seed` in tests/vcsim/main.go.
pub(super) fn vms() -> Vec<DemoVm> {
    let attrs =
        |pairs: &[(&str, &str)]| -> BTreeMap<String, String> { pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
    use PowerState::*;
    const WIN: &str = "windows2019srvNext_64Guest";
    const WIN_NAME: &str = "Microsoft Windows Server 2022 (64-bit)";
    #[rustfmt::skip]
    let rows = [
        // name, power, tools, ip, guest id, guest OS, cpus, MB, host, datastore, folder, attributes, template, hot add
        ("app-web-01", PoweredOn, true, Some("10.20.0.11"), "ubuntu64Guest", "Ubuntu Linux (64-bit)", 2, 4096, "DC0_C0_H0", "LocalDS_0", "iaas",
            attrs(&[(ATTR_OWNER, "U0USER1"), (ATTR_CREATED, "2026-01-15")]), false, true),
        ("app-web-02", PoweredOn, true, Some("10.20.0.12"), "ubuntu64Guest", "Ubuntu Linux (64-bit)", 2, 4096, "DC0_C0_H1", "LocalDS_0", "iaas",
            attrs(&[]), false, false),
        ("app-db-01", PoweredOn, false, Some("10.20.0.21"), "rhel9_64Guest", "Red Hat Enterprise Linux 9 (64-bit)", 4, 16384, "DC0_C0_H2", "LocalDS_1", "iaas",
            attrs(&[(ATTR_OWNER, "U0ADMIN")]), false, false),
        ("win-app-01", PoweredOff, false, None, WIN, WIN_NAME, 2, 8192, "DC0_C0_H0", "LocalDS_1", "iaas",
            attrs(&[]), false, false),
        ("build-agent-07", Suspended, false, Some("10.20.0.70"), "debian11_64Guest", "Debian GNU/Linux 12 (64-bit)", 1, 2048, "DC0_C0_H1", "LocalDS_0", "iaas",
            attrs(&[]), false, false),
        ("tmpl-ubuntu-22", PoweredOff, false, None, "ubuntu64Guest", "Ubuntu Linux (64-bit)", 2, 4096, "DC0_C0_H2", "LocalDS_0", "iaas",
            attrs(&[]), true, false),
        // A protected VM outside the bot's folder.
        ("dc-01", PoweredOn, true, Some("10.20.0.5"), WIN, WIN_NAME, 2, 4096, "DC0_C0_H2", "LocalDS_1", "Infrastructure",
            attrs(&[]), false, false),
        ("tmpl-win-2022", PoweredOff, false, None, WIN, WIN_NAME, 2, 8192, "DC0_C0_H0", "LocalDS_1", "iaas",
            attrs(&[]), true, false),
    ];
    rows.into_iter()
        .zip(101..)
        .map(
            |(
                (
                    name,
                    power,
                    tools_running,
                    ip,
                    guest_id,
                    guest_os,
                    cpus,
                    memory_mb,
                    host,
                    datastore,
                    folder,
                    attributes,
                    template,
                    hot_add,
                ),
                n,
            )| DemoVm {
                moref: format!("vm-{n}"),
                name: name.to_owned(),
                power,
                tools_running,
                ip: ip.map(str::to_owned),
                guest_id: guest_id.to_owned(),
                guest_os: guest_os.to_owned(),
                cpus,
                memory_mb,
                host: host.to_owned(),
                datastore: datastore.to_owned(),
                folder: folder.to_owned(),
                attributes,
                template,
                cpu_hot_add: hot_add,
                memory_hot_add: hot_add,
                uuid: uuid_for(n),
                used_bytes: used_gb(name) * GIB,
                disk_bytes: 0,
            },
        )
        .collect()
}

/// vcsim's VPX model as the launcher configures it: one datacenter, one DRS cluster of three
/// hosts that all mount both datastores, the `VM Network` and one distributed port group.
pub(super) fn topology() -> Topology {
    let folder = |id: &str, name: &str, parent: &str| Child { obj: Obj::new("Folder", id, name), parent: Some(parent.into()) };
    let datastores = vec![Obj::new("Datastore", "datastore-0", "LocalDS_0"), Obj::new("Datastore", "datastore-1", "LocalDS_1")];
    let ds_ids: Vec<String> = datastores.iter().map(|d| d.id.clone()).collect();
    let hosts: Vec<Host> = (0..3)
        .map(|i| Host {
            obj: Obj::new("HostSystem", &format!("host-{i}"), &format!("DC0_C0_H{i}")),
            datastores: ds_ids.clone(),
            usable: true,
        })
        .collect();
    Topology {
        datacenters: vec![Datacenter {
            name: "DC0".into(),
            vm_folder: "group-v1".into(),
            host_folder: "group-h1".into(),
            datastores: ds_ids,
            networks: vec!["network-0".into(), "dvportgroup-0".into()],
        }],
        folders: vec![
            folder("group-v1", "vm", "datacenter-0"),
            folder("group-h1", "host", "datacenter-0"),
            folder("group-v2", "iaas", "group-v1"),
            folder("group-v3", "Infrastructure", "group-v1"),
            // Where decommission's move_and_unregister puts VMs (empty in the seed).
            folder("group-v4", "decommissioned", "group-v1"),
        ],
        computes: vec![Compute {
            obj: Obj::new("ClusterComputeResource", "domain-c0", "DC0_C0"),
            parent: Some("group-h1".into()),
            root_pool: Some("resgroup-0".into()),
            hosts: hosts.iter().map(|h| h.obj.id.clone()).collect(),
            drs: true,
        }],
        pools: vec![Child { obj: Obj::new("ResourcePool", "resgroup-0", "Resources"), parent: Some("domain-c0".into()) }],
        hosts,
        datastores,
        networks: vec![
            Network { obj: Obj::new("Network", "network-0", "VM Network"), backing: NetworkBacking::Standard },
            Network {
                obj: Obj::new("DistributedVirtualPortgroup", "dvportgroup-0", "DC0_DVPG0"),
                backing: NetworkBacking::Distributed { portgroup_key: "dvportgroup-0".into(), switch_uuid: "demo".into() },
            },
        ],
    }
}
