//! VMs the policy protects: the bot never deletes them, whichever command asks.

use iaas_config::Policy;
use iaas_vsphere::VmDetails;

/// Why the policy protects this VM, if it does.
pub fn protected(policy: &Policy, d: &VmDetails) -> Option<String> {
    let p = &policy.protection;
    let name = &d.summary.vm.name;
    if let Some(pattern) = p.name_patterns.iter().find(|pat| glob::Pattern::new(pat).is_ok_and(|g| g.matches(name))) {
        return Some(format!("its name matches `{pattern}`"));
    }
    if let Some(folder) = d.folder.as_ref().filter(|f| p.folders.contains(f)) {
        return Some(format!("it is in the {folder} folder"));
    }
    if d.attributes.get(&p.attribute).is_some_and(|v| !v.trim().is_empty()) {
        return Some(format!("it has the {} attribute", p.attribute));
    }
    None
}
