//! `iaas-clone`: `/iaas clone <source-vm> <new-name>` and `/iaas deploy <template> <new-name>`,
//! templates restricted to the policy's list, placement from the policy.

use std::sync::Arc;

use axum::Router;
use iaas_function::provision::{self, NewVm};
use iaas_function::{capacity, find_vm, quota, Context, Reply};
use iaas_invocation::{Command, Invocation};
use iaas_store::Usage;
use iaas_vsphere::{CloneSpec, VcError, VmRef};

pub const NAME: &str = "iaas-clone";

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, handle)
}

async fn handle(ctx: Arc<Context>, inv: Invocation) -> Reply {
    let (source, name, kind) = match &inv.command {
        Command::Clone { source, name } => match find_vm(&ctx, source).await {
            Ok(vm) => (vm, name, "clone"),
            Err(reply) => return reply,
        },
        Command::Deploy { template, name } => match allowed_template(&ctx, template).await {
            Ok(vm) => (vm, name, "deploy"),
            Err(reply) => return reply,
        },
        _ => return Reply::error("iaas-clone received a command it does not run."),
    };
    if let Err(reply) = provision::check_new_name(&ctx, name).await {
        return reply;
    }
    let lease_days = ctx.policy.lease.default_days;
    // The new VM is the source's size: that is what counts against the quota.
    let size = match ctx.vcenter.vm_details(&source).await {
        Ok(d) => Usage { vms: 1, cpus: i64::from(d.summary.cpus), memory_mb: d.summary.memory_mb as i64 },
        Err(e) => return e.into(),
    };
    // Its disks take what the source's files take (vCenter's committed storage).
    let disks = match ctx.vcenter.vm_used_bytes(&source).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into(),
    };
    if let Err(reply) = quota::reserve(&ctx, &inv, &inv.user.id, size).await {
        return reply;
    }
    let placement = match capacity::reserve(&ctx, &inv, disks).await {
        Ok(placement) => placement,
        Err(reply) => {
            quota::release(&ctx, &inv.user.id, size).await;
            return reply;
        }
    };
    let spec = CloneSpec { name: name.clone(), placement };
    let doing = match kind {
        "clone" => format!("Cloning {} into {name}", source.name),
        _ => format!("Deploying {name} from {}", source.name),
    };
    let new = NewVm { name: name.clone(), source: format!("{kind}:{}", source.name), doing, lease_days, reserved: size };
    provision::started(&ctx, &inv, new, ctx.vcenter.begin_clone(&source, &spec).await).await
}

/// The template, if IT's policy allows it and vCenter has it.
async fn allowed_template(ctx: &Context, name: &str) -> Result<VmRef, Reply> {
    let allowed = |n: &str| ctx.policy.templates.allowed.iter().any(|p| glob::Pattern::new(p).is_ok_and(|p| p.matches(n)));
    let offer = || async {
        match ctx.vcenter.list_templates().await {
            Ok(ts) => ts.into_iter().map(|t| t.name).filter(|n| allowed(n)).collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        }
    };
    if !allowed(name) {
        let names = offer().await;
        let choices = if names.is_empty() { "IT allows none here".to_string() } else { format!("choose one of {}", names.join(", ")) };
        return Err(Reply::error(format!("`{name}` is not a template IT allows for deploy; {choices}. Nothing was created.")));
    }
    match ctx.vcenter.find_template(name).await {
        Ok(t) => Ok(t),
        Err(VcError::NotFound { .. }) => {
            let names = offer().await;
            Err(Reply::error(format!(
                "There is no template named {name}. Templates you can deploy: {}.",
                if names.is_empty() { "none".into() } else { names.join(", ") }
            )))
        }
        Err(e) => Err(e.into()),
    }
}
