//! vCenter: a session and one read, each `[placement]` name resolved (by the resolver creates
//! and clones use), the privileges the enabled commands need held by the bot's own session on
//! the objects placement resolves to, and the custom attributes the bot writes defined or
//! definable.

use iaas_config::{DeleteMode, Policy};
use iaas_invocation::COMMANDS;
use iaas_vsphere::{PlacedObject, Vcenter, ATTR_CREATED, ATTR_EXPIRES, ATTR_OWNER};

use crate::Check;

const PEER: &str = "vcenter";

/// Defining a custom attribute (`AddCustomFieldDef`), a global privilege.
const MANAGE_FIELDS: &str = "Global.ManageCustomFields";

/// The vSphere privileges a function needs, by the kind of object they are checked on
/// (`folder` stands for the VMs in it: VM privileges propagate from the placement folder).
pub fn privileges_for(function: &str, policy: &Policy) -> Vec<(&'static str, &'static str)> {
    let vm = |p: &'static str| ("folder", p);
    let mut out = match function {
        "iaas-inventory" => vec![vm("System.Read")],
        "iaas-power" => vec![
            vm("VirtualMachine.Interact.PowerOn"),
            vm("VirtualMachine.Interact.PowerOff"),
            vm("VirtualMachine.Interact.Reset"),
            vm("VirtualMachine.Interact.Suspend"),
        ],
        "iaas-create" => vec![
            vm("VirtualMachine.Inventory.Create"),
            vm("VirtualMachine.Config.AddNewDisk"),
            vm("Global.SetCustomField"),
            ("resource pool", "Resource.AssignVMToPool"),
            ("datastore", "Datastore.AllocateSpace"),
            ("network", "Network.Assign"),
        ],
        "iaas-clone" => vec![
            vm("VirtualMachine.Inventory.CreateFromExisting"),
            vm("VirtualMachine.Provisioning.Clone"),
            vm("VirtualMachine.Provisioning.DeployTemplate"),
            vm("Global.SetCustomField"),
            ("resource pool", "Resource.AssignVMToPool"),
            ("datastore", "Datastore.AllocateSpace"),
            ("network", "Network.Assign"),
        ],
        "iaas-resize" => vec![
            vm("VirtualMachine.Config.CPUCount"),
            vm("VirtualMachine.Config.Memory"),
            vm("VirtualMachine.Interact.PowerOff"),
            vm("VirtualMachine.Interact.PowerOn"),
        ],
        "iaas-delete" => vec![vm("VirtualMachine.Interact.PowerOff"), vm("VirtualMachine.Inventory.Delete")],
        "iaas-expire" => {
            vec![vm("Global.SetCustomField"), vm("VirtualMachine.Interact.PowerOff"), vm("VirtualMachine.Inventory.Delete")]
        }
        "iaas-decommission" => vec![vm("VirtualMachine.Interact.PowerOff"), vm("VirtualMachine.Inventory.Delete")],
        _ => Vec::new(),
    };
    if function == "iaas-decommission" && policy.decommission.delete_mode == DeleteMode::MoveAndUnregister {
        out.extend([vm("VirtualMachine.Inventory.Move"), vm("VirtualMachine.Inventory.Unregister")]);
    }
    out
}

/// The functions of the commands some role grants (every command when there are no roles).
fn enabled_functions(policy: &Policy) -> Vec<&'static str> {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let granted: Vec<String> = policy
        .roles
        .values()
        .filter_map(|r| r.get("commands").and_then(|c| c.as_array()))
        .flatten()
        .filter_map(|v| v.as_str())
        .map(norm)
        .collect();
    let everything = policy.roles.is_empty() || granted.iter().any(|g| g == "*");
    let mut functions: Vec<&'static str> =
        COMMANDS.iter().filter(|s| everything || granted.iter().any(|g| g == s.name)).map(|s| s.function).collect();
    functions.sort_unstable();
    functions.dedup();
    functions
}

pub(crate) async fn checks(policy: &Policy) -> Vec<Check> {
    if iaas_config::var("VCENTER_URL").is_none() {
        return vec![Check::skip(PEER, "no VCENTER_URL: the embedded demo inventory is used")];
    }
    let client = match iaas_function::vcenter_from_env(policy, None) {
        Ok(client) => client,
        Err(e) => return vec![Check::config(PEER, e)],
    };
    let checks = against(&*client, policy).await;
    client.logout().await;
    checks
}

async fn against(client: &dyn Vcenter, policy: &Policy) -> Vec<Check> {
    if let Err(e) = iaas_function::check_vcenter(client).await {
        // Nothing else can be asked without a session.
        return vec![Check::config(PEER, e)];
    }
    let version = client.api_version().await.map(|v| format!(" (vSphere API {v})")).unwrap_or_default();
    let mut checks = vec![Check::ok(PEER, format!("{}: logged in and answering{version}", client.describe()))];

    let placement = iaas_function::provision::placement(policy);
    let named: Vec<String> = [
        ("datacenter", &placement.datacenter),
        ("folder", &placement.folder),
        ("resource pool", &placement.resource_pool),
        ("datastore", &placement.datastore),
        ("network", &placement.network),
    ]
    .iter()
    .filter_map(|(what, name)| name.as_ref().map(|n| format!("{what} {n}")))
    .collect();
    let objects = match client.placement_objects(&placement).await {
        Ok(objects) => {
            let found: Vec<String> = objects.iter().map(|o| format!("{} {}", o.what, o.name)).collect();
            let asked = if named.is_empty() { "no names set, vCenter's defaults".to_string() } else { named.join(", ") };
            checks.push(Check::ok(PEER, format!("[placement] ({asked}) resolves to {}", found.join(", "))));
            objects
        }
        Err(e) => {
            checks.push(Check::fail(
                PEER,
                format!("[placement]: {}", e.to_string().trim_end_matches('.')),
                "Fix the name in the policy's [placement] to one vCenter has (names are case-sensitive).",
            ));
            Vec::new()
        }
    };

    if !objects.is_empty() {
        checks.extend(decommissioned_folder(client, policy, &placement).await);
    }
    checks.extend(privileges(client, policy, &objects).await);
    checks.push(attributes(client, policy).await);
    checks
}

/// With `delete_mode = "move_and_unregister"`, the folder retired VMs go to exists (looked for
/// in the placement's datacenter, as the runner looks in the VM's).
async fn decommissioned_folder(client: &dyn Vcenter, policy: &Policy, placement: &iaas_vsphere::Placement) -> Option<Check> {
    if policy.decommission.delete_mode != DeleteMode::MoveAndUnregister {
        return None;
    }
    let folder = policy.decommission.decommissioned_folder.clone()?;
    let there = iaas_vsphere::Placement { folder: Some(folder.clone()), ..placement.clone() };
    Some(match client.placement_objects(&there).await {
        Ok(_) => Check::ok(PEER, format!("decommission.decommissioned_folder {folder} exists")),
        Err(e) => Check::fail(
            PEER,
            format!("decommission.decommissioned_folder: {}", e.to_string().trim_end_matches('.')),
            "Create the folder under the datacenter's VM folder, or fix decommission.decommissioned_folder.",
        ),
    })
}

/// One line per object placement resolved to: every privilege the enabled commands need there.
async fn privileges(client: &dyn Vcenter, policy: &Policy, objects: &[PlacedObject]) -> Vec<Check> {
    if objects.is_empty() {
        return vec![Check::skip(PEER, "privileges not checked: [placement] does not resolve")];
    }
    let functions = enabled_functions(policy);
    let mut out = Vec::new();
    for object in objects {
        let mut wanted: Vec<&str> =
            functions.iter().flat_map(|f| privileges_for(f, policy)).filter(|(on, _)| *on == object.what).map(|(_, p)| p).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            continue;
        }
        out.push(match client.missing_privileges(Some(object), &wanted).await {
            Ok(missing) if missing.is_empty() => Check::ok(
                PEER,
                format!("the bot holds the {} privilege(s) the enabled commands need on {} {}", wanted.len(), object.what, object.name),
            ),
            Ok(missing) => Check::fail(
                PEER,
                format!("the bot's account lacks {} on {} {}", missing.join(", "), object.what, object.name),
                format!("Grant VCENTER_USER a role with these privileges on {} {} (propagated to its children).", object.what, object.name),
            ),
            Err(e) => Check::fail(PEER, format!("privileges on {} {} could not be read: {e}", object.what, object.name), ""),
        });
    }
    out
}

/// The attributes the bot writes exist, or it may define them; the protection attribute is
/// reported, not required.
async fn attributes(client: &dyn Vcenter, policy: &Policy) -> Check {
    let defined = match client.vm_custom_fields().await {
        Ok(d) => d,
        Err(e) => return Check::fail(PEER, format!("custom attributes could not be read: {e}"), ""),
    };
    let missing: Vec<&str> = [ATTR_OWNER, ATTR_CREATED, ATTR_EXPIRES].into_iter().filter(|a| !defined.iter().any(|d| d == a)).collect();
    let protection = &policy.protection.attribute;
    let note = if defined.iter().any(|d| d == protection) {
        String::new()
    } else {
        format!("; {protection} is not defined, so no VM is protected by that attribute yet")
    };
    if missing.is_empty() {
        return Check::ok(PEER, format!("custom attributes {ATTR_OWNER}, {ATTR_CREATED}, {ATTR_EXPIRES} exist{note}"));
    }
    match client.missing_privileges(None, &[MANAGE_FIELDS]).await {
        Ok(lacking) if lacking.is_empty() => Check::ok(
            PEER,
            format!("custom attribute(s) {} not defined yet; the bot may define them on first use{note}", missing.join(", ")),
        ),
        Ok(_) => Check::fail(
            PEER,
            format!("custom attribute(s) {} are not defined and the bot's account may not define them", missing.join(", ")),
            format!("Define them for virtual machines in vCenter, or grant VCENTER_USER {MANAGE_FIELDS} on the root."),
        ),
        Err(e) => Check::fail(PEER, format!("whether the bot may define custom attributes could not be read: {e}"), ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_functions_follow_the_roles() {
        let all = enabled_functions(&Policy::default());
        assert!(all.contains(&"iaas-create") && all.contains(&"iaas-power"), "{all:?}");
        let p = Policy::parse("[roles.users]\ncommands = [\"vm list\", \"power\"]\n").unwrap();
        assert_eq!(enabled_functions(&p), ["iaas-inventory", "iaas-power"]);
        let p = Policy::parse("[roles.admins]\ncommands = [\"*\"]\n").unwrap();
        assert_eq!(enabled_functions(&p), all);
    }

    #[test]
    fn move_and_unregister_needs_move_and_unregister() {
        let p = Policy::parse("[decommission]\ndelete_mode = \"move_and_unregister\"\ndecommissioned_folder = \"old\"").unwrap();
        let privs = privileges_for("iaas-decommission", &p);
        assert!(privs.contains(&("folder", "VirtualMachine.Inventory.Unregister")), "{privs:?}");
        assert!(!privileges_for("iaas-decommission", &Policy::default()).contains(&("folder", "VirtualMachine.Inventory.Unregister")));
    }
}
