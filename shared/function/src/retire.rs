//! What decommission and the lease sweep share: a VM's facts as the requester saw them (stored
//! with the request, so steps act on the managed-object id, not on whatever carries the name
//! later), and the policy's plan for its OS family as a request the store can hold.

use iaas_config::Policy;
use iaas_store::{NewDecommissionStep, NewDecommissionVm};
use iaas_vsphere::{Moref, VmDetails, VmName, ATTR_OWNER};
use serde::{Deserialize, Serialize};

/// A superset of `iaas_steps::VmFacts`, so the external step kinds adapt field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmFacts {
    pub name: VmName,
    pub moref: Moref,
    pub uuid: Option<String>,
    pub ip: Option<String>,
    /// `linux`, `windows` or `other`: which plan the VM gets.
    pub os_family: String,
    pub guest_os: Option<String>,
    pub owner: Option<String>,
    pub folder: Option<String>,
    pub power_state: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub ticket: Option<String>,
    pub reason: Option<String>,
}

impl VmFacts {
    pub fn from_details(d: &VmDetails, ticket: Option<String>, reason: Option<String>) -> VmFacts {
        let s = &d.summary;
        VmFacts {
            name: s.vm.name.clone(),
            moref: s.vm.moref.clone(),
            uuid: d.uuid.clone(),
            ip: s.ip.clone().filter(|ip| !ip.is_empty()),
            os_family: os_family(s.guest_os.as_deref()).to_string(),
            guest_os: s.guest_os.clone(),
            owner: d.attributes.get(ATTR_OWNER).cloned(),
            folder: d.folder.clone(),
            power_state: s.power_state.to_string(),
            cpus: s.cpus,
            memory_mb: s.memory_mb,
            ticket,
            reason,
        }
    }
}

/// The VM with its OS family's steps from the policy; `Err` says that the policy has none.
/// Step settings are checked by the decommission function's registry, which runs them.
pub fn plan(policy: &Policy, facts: &VmFacts) -> Result<NewDecommissionVm, String> {
    let plan = policy.decommission.plans.for_family(&facts.os_family);
    if plan.is_empty() {
        return Err(format!("IT's policy has no decommission steps for {} VMs like {}", facts.os_family, facts.name));
    }
    let steps = plan
        .iter()
        .map(|s| NewDecommissionStep {
            kind: s.kind,
            name: s.name.clone(),
            on_failure: s.on_failure,
            config_json: serde_json::to_value(&s.settings).unwrap_or_default().to_string(),
        })
        .collect();
    Ok(NewDecommissionVm {
        vm_moref: facts.moref.clone(),
        vm_name: facts.name.clone(),
        os_family: facts.os_family.clone(),
        facts_json: serde_json::to_string(facts).unwrap_or_default(),
        steps,
    })
}

/// The plan family from vCenter's guest OS name ("Ubuntu Linux (64-bit)", "Microsoft Windows
/// Server 2022 (64-bit)"); unknown or anything else is `other`.
pub fn os_family(guest_os: Option<&str>) -> &'static str {
    const LINUX: [&str; 12] =
        ["linux", "ubuntu", "debian", "red hat", "rhel", "centos", "suse", "rocky", "alma", "oracle", "fedora", "photon"];
    let Some(name) = guest_os.map(str::to_lowercase) else { return "other" };
    if name.contains("windows") {
        "windows"
    } else if LINUX.iter().any(|l| name.contains(l)) {
        "linux"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::os_family;

    #[test]
    fn families_from_guest_names() {
        assert_eq!(os_family(Some("Ubuntu Linux (64-bit)")), "linux");
        assert_eq!(os_family(Some("Red Hat Enterprise Linux 9 (64-bit)")), "linux");
        assert_eq!(os_family(Some("Debian GNU/Linux 12 (64-bit)")), "linux");
        assert_eq!(os_family(Some("Microsoft Windows Server 2022 (64-bit)")), "windows");
        assert_eq!(os_family(Some("FreeBSD 13 (64-bit)")), "other");
        assert_eq!(os_family(None), "other");
    }
}
