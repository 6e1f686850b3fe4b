//! Finding the VM a user named, with a "did you mean" when there is none.

use iaas_slack::UserText;
use iaas_vsphere::{VcError, VmDetails, VmName, VmRef};

use crate::{Context, Reply};

/// The VM with exactly this name, or an error reply that suggests the closest name.
pub async fn find_vm(ctx: &Context, name: &VmName) -> Result<VmRef, Reply> {
    match ctx.vcenter.find_vm(name).await {
        Ok(vm) => Ok(vm),
        Err(VcError::NotFound { .. }) => {
            // From the VM index where the client keeps one: no vCenter call.
            let names: Vec<String> = ctx.vcenter.vm_names().await.unwrap_or_default();
            Err(Reply::error(match closest_name(name, &names) {
                Some(guess) => format!("No VM named {} — did you mean {}?", UserText(name), UserText(guess)),
                None => format!("No VM named {}. Try `/iaas vm list` to see the names.", UserText(name)),
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// [`find_vm`], then everything vCenter says about it (the VM is `summary.vm`).
pub async fn find_vm_details(ctx: &Context, name: &VmName) -> Result<VmDetails, Reply> {
    let vm = find_vm(ctx, name).await?;
    ctx.vcenter.vm_details(&vm).await.map_err(Reply::from)
}

/// The candidate most like `name`, if any is close enough to be a plausible typo.
pub fn closest_name<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::closest_name;

    #[test]
    fn suggests_only_plausible_typos() {
        let names: Vec<String> = ["app-web-01", "app-web-02", "app-db-01"].map(String::from).to_vec();
        assert_eq!(closest_name("app-web-1", &names), Some("app-web-01"));
        assert_eq!(closest_name("APP-DB-01", &names), Some("app-db-01"));
        assert_eq!(closest_name("mailserver", &names), None);
        assert_eq!(closest_name("x", &[]), None);
    }
}
