//! `iaas-power`: `/iaas power on|off|shutdown|reboot|reset|suspend|status <vm>`.

use std::sync::Arc;

use axum::Router;
use iaas_function::{authorize_vm, find_vm, Context, Reply};
use iaas_invocation::{Command, Invocation, PowerAction};
use iaas_slack::Message;
use iaas_vsphere::{PowerOp, PowerState, VcError};

pub const NAME: &str = "iaas-power";

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, handle)
}

async fn handle(ctx: Arc<Context>, inv: Invocation) -> Reply {
    let Command::Power { action, vm } = inv.command.clone() else {
        return Reply::error("iaas-power received a command it does not run.");
    };
    let vm = match find_vm(&ctx, &vm).await {
        Ok(vm) => vm,
        Err(reply) => return reply,
    };
    let Some(op) = power_op(action) else {
        return match ctx.vcenter.vm_details(&vm).await {
            Ok(d) => {
                let tools = if d.tools_running { "VMware Tools running" } else { "VMware Tools not running" };
                Reply::query(Message::new(format!("*{}* is {} ({tools}).", vm.name, d.summary.power_state)))
            }
            Err(e) => e.into(),
        };
    };
    // Scope: only the caller's own VMs (or allowed folders) unless a role grants all.
    if ctx.access.is_some() {
        match ctx.vcenter.vm_details(&vm).await {
            Ok(d) => {
                if let Err(reply) = authorize_vm(&ctx, &inv, &d) {
                    return reply;
                }
            }
            Err(e) => return e.into(),
        }
    }
    match ctx.vcenter.power(&vm, op).await {
        Ok(()) => Reply::changed(Message::new(format!("*{}* {}", vm.name, done_text(op)))),
        Err(VcError::InvalidPowerState { current, .. }) => Reply::error(wrong_state_text(&vm.name, op, current)),
        Err(e) => e.into(),
    }
}

fn power_op(action: PowerAction) -> Option<PowerOp> {
    Some(match action {
        PowerAction::On => PowerOp::On,
        PowerAction::Off => PowerOp::Off,
        PowerAction::Shutdown => PowerOp::Shutdown,
        PowerAction::Reboot => PowerOp::Reboot,
        PowerAction::Reset => PowerOp::Reset,
        PowerAction::Suspend => PowerOp::Suspend,
        PowerAction::Status => return None,
    })
}

fn done_text(op: PowerOp) -> &'static str {
    match op {
        PowerOp::On => "is now powered on.",
        PowerOp::Off => "is now powered off (hard power-off).",
        PowerOp::Shutdown => "was asked to shut down through VMware Tools; it powers off when the guest is done.",
        PowerOp::Reboot => "was asked to restart through VMware Tools.",
        PowerOp::Reset => "was reset (hard restart).",
        PowerOp::Suspend => "is now suspended.",
    }
}

/// vCenter's InvalidPowerState, said the way a person would.
fn wrong_state_text(vm: &str, op: PowerOp, current: PowerState) -> String {
    match (op, current) {
        (PowerOp::On, PowerState::PoweredOn) => format!("{vm} is already powered on; nothing was changed."),
        (PowerOp::Off | PowerOp::Shutdown, PowerState::PoweredOff) => format!("{vm} is already powered off; nothing was changed."),
        (PowerOp::Suspend, PowerState::Suspended) => format!("{vm} is already suspended; nothing was changed."),
        _ => format!("{vm} is {current}, so `power {}` cannot run; nothing was changed.", op.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_state_reads_naturally() {
        assert_eq!(wrong_state_text("a", PowerOp::Off, PowerState::PoweredOff), "a is already powered off; nothing was changed.");
        assert_eq!(
            wrong_state_text("a", PowerOp::Reset, PowerState::PoweredOff),
            "a is powered off, so `power reset` cannot run; nothing was changed."
        );
    }
}
