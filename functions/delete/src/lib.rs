//! `iaas-delete`: `/iaas delete <vm>` never deletes on the first message. It shows the VM's facts
//! with Confirm / Cancel buttons; the press (bound to the asker and the VM's managed-object id,
//! single use, expiring) comes back as a second invocation that deletes.

use std::sync::Arc;

use axum::Router;
use iaas_function::confirm::{self, Ask};
use iaas_function::{authorize_vm, find_vm_details, locked, Context, Reply};
use iaas_invocation::{Command, Confirmable, Invocation, VmName};
use iaas_slack::Message;
use iaas_store::Usage;
use iaas_vsphere::{PowerOp, PowerState, VcError, VmRef, ATTR_CREATED, ATTR_OWNER};

pub const NAME: &str = "iaas-delete";

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, handle)
}

async fn handle(ctx: Arc<Context>, inv: Invocation) -> Reply {
    match &inv.command {
        Command::Delete { vm } => ask(&ctx, &inv, vm).await,
        Command::Confirm { of: Confirmable::Delete, token, confirmed } => pressed(&ctx, &inv, token, *confirmed).await,
        _ => Reply::error("iaas-delete received a command it does not run."),
    }
}

async fn ask(ctx: &Context, inv: &Invocation, name: &VmName) -> Reply {
    let details = match find_vm_details(ctx, name).await {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    let vm = details.summary.vm.clone();
    if let Some(why) = iaas_function::protected(&ctx.policy, &details) {
        return Reply::error(format!("{} is protected ({why}); the bot never deletes it.", vm.name));
    }
    if let Err(reply) = authorize_vm(ctx, inv, &details) {
        return reply;
    }
    let s = &details.summary;
    let attr = |k: &str| details.attributes.get(k).cloned().unwrap_or_else(|| "unknown".into());
    let text = format!(
        "Delete *{}*? This cannot be undone.\n• IP: {}\n• OS: {}\n• Owner: {}\n• Power: {}{}\n• Created: {}",
        vm.name,
        s.ip.as_deref().unwrap_or("none"),
        s.guest_os.as_deref().unwrap_or("unknown"),
        attr(ATTR_OWNER),
        s.power_state,
        if s.power_state == PowerState::PoweredOn { " (it will be powered off first)" } else { "" },
        attr(ATTR_CREATED),
    );
    confirm::ask(
        ctx,
        inv,
        Ask {
            of: Confirmable::Delete,
            vm: &vm,
            args: serde_json::json!({}),
            text,
            confirm_label: format!("Delete {}", vm.name),
            dialog: format!("{} and its disks will be deleted from vCenter.", vm.name),
        },
    )
    .await
}

async fn pressed(ctx: &Context, inv: &Invocation, token: &str, confirmed: bool) -> Reply {
    let confirmation = match confirm::take_confirmed(ctx, inv, token, confirmed, "Deletion").await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let name = confirmation.vm_name;
    // The VM the user saw, by managed-object id: a VM with the same name created since is not it.
    let vm = VmRef::new(confirmation.vm_moref, name.clone());
    locked(ctx, inv, &name, delete(ctx, inv, vm)).await
}

async fn delete(ctx: &Context, inv: &Invocation, vm: VmRef) -> Reply {
    let name = vm.name.clone();
    let details = match ctx.vcenter.vm_details(&vm).await {
        Ok(d) => d,
        Err(VcError::NotFound { .. }) => return Reply::error(format!("{name} no longer exists; nothing was deleted.")),
        Err(e) => return e.into(),
    };
    if details.summary.vm.name != name {
        return Reply::error(format!(
            "The VM you confirmed was renamed to {} since you asked; nothing was deleted. Ask again if you still want it gone.",
            details.summary.vm.name
        ));
    }
    if let Some(why) = iaas_function::protected(&ctx.policy, &details) {
        return Reply::error(format!("{name} became protected ({why}) since you asked; nothing was deleted."));
    }
    if let Err(reply) = authorize_vm(ctx, inv, &details) {
        return reply;
    }
    if details.summary.power_state != PowerState::PoweredOff {
        if let Err(e) = ctx.vcenter.power(&vm, PowerOp::Off).await {
            return Reply::error(format!("{name} could not be powered off before deletion ({e}); nothing was deleted."));
        }
    }
    if let Err(e) = ctx.vcenter.destroy(&vm).await {
        return Reply::error(format!("{name} could not be deleted: {e}"));
    }
    // A VM the bot made gives its share of its owner's quota back, once, with its record.
    let share = Usage { vms: 1, cpus: i64::from(details.summary.cpus), memory_mb: details.summary.memory_mb as i64 };
    if let Err(e) = ctx.store.vm_deleted(&vm.moref, share).await {
        tracing::error!(error = %e, "could not record the deletion and give the quota back");
    }
    Reply::changed(Message::new(format!("*{name}* was deleted by <@{}>.", inv.user.id)))
}
