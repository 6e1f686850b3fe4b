//! The second access check, in the function: the command again, and the VM it is about to
//! touch, for the identity the gateway signed into the invocation.

use std::collections::BTreeSet;

use iaas_access::{Decision, Identity};
use iaas_invocation::Invocation;
use iaas_vsphere::{VmDetails, ATTR_OWNER};

use crate::{Context, Reply};

/// The caller as the gateway identified them.
pub fn identity(inv: &Invocation) -> Identity {
    Identity {
        slack_user: inv.user.id.clone(),
        email: inv.caller.email.clone(),
        dn: inv.caller.dn.clone(),
        roles: inv.caller.roles.iter().cloned().collect::<BTreeSet<_>>(),
        groups: BTreeSet::new(),
    }
}

/// May the caller run this command at all? (`Err` is the sentence.)
pub(crate) fn authorize_command(ctx: &Context, inv: &Invocation) -> Result<(), String> {
    match &ctx.access {
        Some(access) => match access.may_run(&identity(inv), inv.command.name()) {
            Decision::Allow => Ok(()),
            Decision::Deny(sentence) => {
                metrics::counter!("iaas_access_refusals_total", "stage" => "function", "reason" => "command_not_allowed").increment(1);
                Err(sentence)
            }
        },
        None => Ok(()),
    }
}

/// May the caller change this VM (their own, in an allowed folder, or any for admins)?
pub fn authorize_vm(ctx: &Context, inv: &Invocation, vm: &VmDetails) -> Result<(), Reply> {
    let Some(access) = &ctx.access else { return Ok(()) };
    let owner = vm.attributes.get(ATTR_OWNER).map(String::as_str);
    match access.may_touch(&identity(inv), owner, vm.folder.as_deref()) {
        Decision::Allow => Ok(()),
        Decision::Deny(sentence) => {
            metrics::counter!("iaas_access_refusals_total", "stage" => "function", "reason" => "vm_not_allowed").increment(1);
            Err(Reply::denied(format!("{} Nothing was changed on {}.", sentence, vm.summary.vm.name)))
        }
    }
}
