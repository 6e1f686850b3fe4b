//! Request bodies for CreateVM_Task, CloneVM_Task and ReconfigVM_Task: config specs and
//! device changes, in WSDL order (vCenter validates element order; see envelope.rs).

use std::fmt::Write;

use super::envelope::{escape, moref, text};
use super::xml::{MoRef, Node};
use crate::placement::{Network, NetworkBacking, Obj, Target};
use crate::{CreateSpec, VcError, VcResult};

/// Temporary keys for devices being added; vCenter assigns real ones. The disk refers to
/// the controller by its temporary key.
const CONTROLLER_KEY: i32 = -100;
const DISK_KEY: i32 = -101;
const NIC_KEY: i32 = -102;

/// Card types a NIC can be (`xsi:type` of a VirtualEthernetCard).
const NIC_TYPES: &[&str] = &[
    "VirtualE1000",
    "VirtualE1000e",
    "VirtualPCNet32",
    "VirtualVmxnet",
    "VirtualVmxnet2",
    "VirtualVmxnet3",
    "VirtualVmxnet3Vrdma",
    "VirtualSriovEthernetCard",
];

fn mo(element: &str, o: &Obj) -> String {
    moref(element, &MoRef::new(&o.ty, &o.id))
}

/// Windows has no inbox driver for VMware's paravirtual SCSI and NIC: a blank Windows VM
/// gets the emulated LSI Logic SAS controller and E1000e card, as vSphere's own wizard does.
fn is_windows(guest_id: &str) -> bool {
    guest_id.starts_with("win")
}

/// Arguments of CreateVM_Task (after `_this`, the folder): config, pool, host.
pub(crate) fn create_args(spec: &CreateSpec, t: &Target) -> VcResult<String> {
    let windows = is_windows(&spec.guest_id);
    let mut changes = device_add(
        &format!(
            "<device xsi:type=\"{}\"><key>{CONTROLLER_KEY}</key><busNumber>0</busNumber><sharedBus>noSharing</sharedBus></device>",
            if windows { "VirtualLsiLogicSASController" } else { "ParaVirtualSCSIController" }
        ),
        false,
    );
    if spec.disk_gb > 0 {
        let kb = spec.disk_gb.checked_mul(1024 * 1024).ok_or_else(|| VcError::Protocol("disk size overflows".into()))?;
        changes += &device_add(
            &format!(
                concat!(
                    "<device xsi:type=\"VirtualDisk\"><key>{key}</key>",
                    "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\">{file}<diskMode>persistent</diskMode>",
                    "<thinProvisioned>true</thinProvisioned></backing>",
                    "<controllerKey>{controller}</controllerKey><unitNumber>0</unitNumber>",
                    "<capacityInKB>{kb}</capacityInKB></device>"
                ),
                key = DISK_KEY,
                file = text("fileName", &datastore_path(&t.datastore)),
                controller = CONTROLLER_KEY,
                kb = kb,
            ),
            true,
        );
    }
    if let Some(net) = &t.network {
        let card = if windows { "VirtualE1000e" } else { "VirtualVmxnet3" };
        changes += &device_add(&new_nic(card, net)?, false);
    }

    let config = format!(
        "<config>{}{}<files>{}</files><numCPUs>{}</numCPUs><memoryMB>{}</memoryMB>{changes}</config>",
        text("name", &spec.name),
        text("guestId", &spec.guest_id),
        text("vmPathName", &datastore_path(&t.datastore)),
        spec.cpus,
        spec.memory_mb,
    );
    Ok(config + &mo("pool", &t.pool) + &t.host.as_ref().map(|h| mo("host", h)).unwrap_or_default())
}

/// Arguments of CloneVM_Task (after `_this`, the source): folder, name, spec. The clone is
/// a powered-off VM, never a template; `nic_change` is a `<deviceChange>` for its NIC.
pub(crate) fn clone_args(name: &str, t: &Target, nic_change: Option<&str>) -> String {
    let location = format!(
        "<location>{}{}{}</location>",
        mo("datastore", &t.datastore),
        mo("pool", &t.pool),
        t.host.as_ref().map(|h| mo("host", h)).unwrap_or_default()
    );
    let config = nic_change.map(|c| format!("<config>{c}</config>")).unwrap_or_default();
    format!(
        "{}{}<spec>{location}<template>false</template>{config}<powerOn>false</powerOn></spec>",
        mo("folder", &t.folder),
        text("name", name),
    )
}

/// Arguments of ReconfigVM_Task for a CPU and/or memory change.
pub(crate) fn reconfigure_args(cpus: Option<u32>, memory_mb: Option<u64>) -> String {
    let mut spec = String::from("<spec>");
    if let Some(c) = cpus {
        let _ = write!(spec, "<numCPUs>{c}</numCPUs>");
    }
    if let Some(m) = memory_mb {
        let _ = write!(spec, "<memoryMB>{m}</memoryMB>");
    }
    spec + "</spec>"
}

/// `[LocalDS_0]`: the datastore's root; vCenter makes the VM's own directory in it.
fn datastore_path(ds: &Obj) -> String {
    format!("[{}]", ds.name)
}

fn device_add(device: &str, create_file: bool) -> String {
    let file = if create_file { "<fileOperation>create</fileOperation>" } else { "" };
    format!("<deviceChange><operation>add</operation>{file}{device}</deviceChange>")
}

/// A NIC's `<backing>` on `net`.
fn nic_backing(net: &Network) -> VcResult<String> {
    match &net.backing {
        NetworkBacking::Standard => Ok(format!(
            "<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">{}{}</backing>",
            text("deviceName", &net.obj.name),
            mo("network", &net.obj)
        )),
        NetworkBacking::Distributed { portgroup_key, switch_uuid } => Ok(format!(
            "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\"><port>{}{}</port></backing>",
            text("switchUuid", switch_uuid),
            text("portgroupKey", portgroup_key)
        )),
        NetworkBacking::Other => {
            Err(VcError::NotSupported { operation: format!("attaching a VM to network {} (an NSX or unreadable network)", net.obj.name) })
        }
    }
}

fn new_nic(card: &str, net: &Network) -> VcResult<String> {
    Ok(format!(
        concat!(
            "<device xsi:type=\"{card}\"><key>{key}</key>{backing}",
            "<connectable><startConnected>true</startConnected><allowGuestControl>true</allowGuestControl>",
            "<connected>false</connected></connectable><addressType>generated</addressType></device>"
        ),
        card = escape(card),
        key = NIC_KEY,
        backing = nic_backing(net)?,
    ))
}

/// The deviceChange that puts a clone's NIC on `net`: the source's first NIC, re-sent whole
/// with only its backing replaced (vCenter edits the device it is given; a partial device
/// would lose its MAC and settings), or a new NIC when the source has none.
pub(crate) fn nic_change(devices: Option<&Node>, guest_id: &str, net: &Network) -> VcResult<String> {
    let existing = devices.and_then(|d| d.children.iter().find(|dev| dev.xsi_type.as_deref().is_some_and(|t| NIC_TYPES.contains(&t))));
    let Some(nic) = existing else {
        let card = if is_windows(guest_id) { "VirtualE1000e" } else { "VirtualVmxnet3" };
        return Ok(device_add(&new_nic(card, net)?, false));
    };
    let backing = nic_backing(net)?;
    let mut edited = nic.clone();
    edited.children.retain(|c| c.name != "backing");
    // Schema order: key, deviceInfo, backing, ...; the backing goes after whichever of the
    // first two is present.
    let at = edited.children.iter().rposition(|c| c.name == "key" || c.name == "deviceInfo").map_or(0, |i| i + 1);
    let mut xml = String::new();
    let _ = write!(xml, "<device xsi:type=\"{}\">", escape(nic.xsi_type.as_deref().unwrap_or("VirtualEthernetCard")));
    for (i, child) in edited.children.iter().enumerate() {
        if i == at {
            xml.push_str(&backing);
        }
        xml.push_str(&child.to_xml(&child.name));
    }
    if at >= edited.children.len() {
        xml.push_str(&backing);
    }
    xml.push_str("</device>");
    Ok(format!("<deviceChange><operation>edit</operation>{xml}</deviceChange>"))
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse_body;
    use super::*;
    use crate::Placement;

    fn target(network: Option<Network>, host: bool) -> Target {
        let h = Obj::new("HostSystem", "host-1", "h1");
        Target {
            folder: Obj::new("Folder", "group-v4", "iaas"),
            pool: Obj::new("ResourcePool", "resgroup-8", "Resources"),
            host: host.then(|| h.clone()),
            chosen_host: h,
            datastore: Obj::new("Datastore", "datastore-1", "LocalDS_1"),
            network,
        }
    }

    fn standard() -> Network {
        Network { obj: Obj::new("Network", "network-7", "VM Network"), backing: NetworkBacking::Standard }
    }

    fn spec(guest: &str, disk_gb: u64) -> CreateSpec {
        CreateSpec { name: "web<1>".into(), guest_id: guest.into(), cpus: 2, memory_mb: 2048, disk_gb, placement: Placement::default() }
    }

    fn in_order(body: &str, parts: &[&str]) {
        let mut from = 0;
        for p in parts {
            match body[from..].find(p) {
                Some(i) => from += i + p.len(),
                None => panic!("{p} missing or out of order in {body}"),
            }
        }
    }

    #[test]
    fn create_config_is_in_schema_order() {
        let body = create_args(&spec("ubuntu64Guest", 10), &target(Some(standard()), true)).unwrap();
        in_order(
            &body,
            &[
                "<config><name>web&lt;1&gt;</name>",
                "<guestId>ubuntu64Guest</guestId>",
                "<files><vmPathName>[LocalDS_1]</vmPathName></files>",
                "<numCPUs>2</numCPUs><memoryMB>2048</memoryMB>",
                r#"<device xsi:type="ParaVirtualSCSIController"><key>-100</key>"#,
                "<fileOperation>create</fileOperation>",
                r#"<device xsi:type="VirtualDisk"><key>-101</key>"#,
                "<thinProvisioned>true</thinProvisioned>",
                "<controllerKey>-100</controllerKey><unitNumber>0</unitNumber><capacityInKB>10485760</capacityInKB>",
                r#"<device xsi:type="VirtualVmxnet3"><key>-102</key><backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName><network type="Network">network-7</network></backing><connectable>"#,
                "</config>",
                r#"<pool type="ResourcePool">resgroup-8</pool><host type="HostSystem">host-1</host>"#,
            ],
        );
    }

    #[test]
    fn windows_gets_emulated_devices_and_no_disk_means_none() {
        let body = create_args(&spec("windows2019srvNext_64Guest", 0), &target(Some(standard()), false)).unwrap();
        assert!(body.contains("VirtualLsiLogicSASController"), "{body}");
        assert!(body.contains("VirtualE1000e"), "{body}");
        assert!(!body.contains("VirtualDisk"), "{body}");
        assert!(!body.contains("<host"), "DRS: no host: {body}");
    }

    #[test]
    fn clone_spec_is_in_schema_order() {
        let body = clone_args("c1", &target(None, true), Some("<deviceChange/>"));
        in_order(
            &body,
            &[
                r#"<folder type="Folder">group-v4</folder><name>c1</name><spec><location>"#,
                r#"<datastore type="Datastore">datastore-1</datastore>"#,
                r#"<pool type="ResourcePool">resgroup-8</pool>"#,
                r#"<host type="HostSystem">host-1</host></location>"#,
                "<template>false</template><config><deviceChange/></config><powerOn>false</powerOn></spec>",
            ],
        );
    }

    #[test]
    fn existing_nic_is_edited_whole_with_a_new_backing() {
        let text = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:X="http://www.w3.org/2001/XMLSchema-instance"><e:Body><val><VirtualDevice X:type="VirtualIDEController"><key>200</key></VirtualDevice><VirtualDevice X:type="VirtualVmxnet3"><key>4000</key><deviceInfo><label>Network adapter 1</label></deviceInfo><backing X:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>old</deviceName></backing><connectable><connected>true</connected></connectable><macAddress>00:50:56:aa:bb:cc</macAddress></VirtualDevice></val></e:Body></e:Envelope>"#;
        let devices = parse_body(text).unwrap();
        let dvpg = Network {
            obj: Obj::new("DistributedVirtualPortgroup", "dvportgroup-9", "web-pg"),
            backing: NetworkBacking::Distributed { portgroup_key: "dvportgroup-9".into(), switch_uuid: "50 1a".into() },
        };
        let change = nic_change(Some(&devices), "ubuntu64Guest", &dvpg).unwrap();
        assert_eq!(
            change,
            concat!(
                r#"<deviceChange><operation>edit</operation><device xsi:type="VirtualVmxnet3"><key>4000</key>"#,
                "<deviceInfo><label>Network adapter 1</label></deviceInfo>",
                r#"<backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>50 1a</switchUuid><portgroupKey>dvportgroup-9</portgroupKey></port></backing>"#,
                "<connectable><connected>true</connected></connectable><macAddress>00:50:56:aa:bb:cc</macAddress></device></deviceChange>"
            )
        );
        let none = nic_change(None, "windows2019srv_64Guest", &standard()).unwrap();
        assert!(none.starts_with(r#"<deviceChange><operation>add</operation><device xsi:type="VirtualE1000e">"#), "{none}");
    }

    #[test]
    fn reconfigure_sends_only_what_changes() {
        assert_eq!(reconfigure_args(Some(4), None), "<spec><numCPUs>4</numCPUs></spec>");
        assert_eq!(reconfigure_args(Some(4), Some(8192)), "<spec><numCPUs>4</numCPUs><memoryMB>8192</memoryMB></spec>");
    }
}
