//! `iaas-resize`: `/iaas resize <vm> [--cpu N] [--memory GB] [--restart]` within the policy's
//! limits. A running VM is changed live when hot-add allows it; otherwise the user is offered a
//! power off, resize and power on (a confirmation button), or asks for it with `--restart`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use iaas_function::confirm::{self, Ask};
use iaas_function::{authorize_vm, find_vm_details, locked, quota, Context, Reply};
use iaas_invocation::{Command, Confirmable, Invocation, VmName};
use iaas_slack::Message;
use iaas_store::Usage;
use iaas_vsphere::{PowerOp, PowerState, VcError, VmDetails, VmRef};

pub const NAME: &str = "iaas-resize";

/// How long a guest shutdown may take before the VM is powered off hard.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(120);

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, handle)
}

/// The change asked for, in vCenter's units.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Target {
    cpus: Option<u32>,
    memory_mb: Option<u64>,
}

async fn handle(ctx: Arc<Context>, inv: Invocation) -> Reply {
    match &inv.command {
        Command::Resize { vm, cpus, memory_gb, restart } => {
            let target = Target { cpus: *cpus, memory_mb: memory_gb.map(|g| u64::from(g) * 1024) };
            resize(&ctx, &inv, vm, target, *restart).await
        }
        Command::Confirm { of: Confirmable::Resize, token, confirmed } => pressed(&ctx, &inv, token, *confirmed).await,
        _ => Reply::error("iaas-resize received a command it does not run."),
    }
}

async fn resize(ctx: &Context, inv: &Invocation, name: &VmName, target: Target, restart: bool) -> Reply {
    let limits = &ctx.policy.resize;
    if target.cpus.is_some_and(|c| c > limits.max_cpus) || target.memory_mb.is_some_and(|m| m > u64::from(limits.max_memory_gb) * 1024) {
        return Reply::error(format!(
            "That is more than IT allows: at most {} vCPUs and {} GB of memory. Nothing was changed.",
            limits.max_cpus, limits.max_memory_gb
        ));
    }
    let details = match find_vm_details(ctx, name).await {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    let vm = details.summary.vm.clone();
    if let Err(reply) = authorize_vm(ctx, inv, &details) {
        return reply;
    }
    let target = Target {
        cpus: target.cpus.filter(|c| *c != details.summary.cpus),
        memory_mb: target.memory_mb.filter(|m| *m != details.summary.memory_mb),
    };
    if target.cpus.is_none() && target.memory_mb.is_none() {
        return Reply::error(format!("{} already has that size; nothing was changed.", vm.name));
    }
    match (details.summary.power_state, live_possible(&details, target)) {
        (PowerState::PoweredOn, Ok(())) | (PowerState::PoweredOff, _) => charged(ctx, inv, &details, target, apply(ctx, &vm, target)).await,
        _ if restart => charged(ctx, inv, &details, target, restart_and_apply(ctx, &vm, target)).await,
        (state, why) => {
            let why = why.err().unwrap_or_else(|| format!("it is {state}"));
            confirm::ask(
                ctx,
                inv,
                Ask {
                    of: Confirmable::Resize,
                    vm: &vm,
                    args: serde_json::json!({"cpus": target.cpus, "memory_mb": target.memory_mb}),
                    text: format!(
                        "*{}* cannot be resized while running because {why}. Power it off, resize it and power it on again?",
                        vm.name
                    ),
                    confirm_label: "Power off, resize, power on".into(),
                    dialog: format!(
                        "{} will be shut down (hard power-off if the guest does not stop in {} s), resized and powered on.",
                        vm.name,
                        SHUTDOWN_GRACE.as_secs()
                    ),
                },
            )
            .await
        }
    }
}

/// Runs the resize with its growth reserved against the VM owner's quota (VMs the bot made;
/// others are outside quotas), giving back the growth if it fails or the shrink if it works.
async fn charged(ctx: &Context, inv: &Invocation, d: &VmDetails, target: Target, work: impl std::future::Future<Output = Reply>) -> Reply {
    let owner = match ctx.store.vm_record(&d.summary.vm.moref).await {
        Ok(Some(record)) if record.deleted_at_ms.is_none() => record.owner_user,
        _ => return work.await,
    };
    let cpus = target.cpus.map_or(0, |c| i64::from(c) - i64::from(d.summary.cpus));
    let memory = target.memory_mb.map_or(0, |m| m as i64 - d.summary.memory_mb as i64);
    let grow = Usage { vms: 0, cpus: cpus.max(0), memory_mb: memory.max(0) };
    let shrink = Usage { vms: 0, cpus: (-cpus).max(0), memory_mb: (-memory).max(0) };
    if let Err(reply) = quota::reserve(ctx, inv, &owner, grow).await {
        return reply;
    }
    let reply = work.await;
    quota::release(ctx, &owner, if reply.ok() { shrink } else { grow }).await;
    reply
}

/// Whether vCenter can apply the change to the running VM; if not, why not.
fn live_possible(d: &VmDetails, target: Target) -> Result<(), String> {
    if let Some(c) = target.cpus {
        if c < d.summary.cpus {
            return Err("vCPUs cannot be removed from a running VM".into());
        }
        if !d.cpu_hot_add {
            return Err("CPU hot-add is not enabled on it".into());
        }
    }
    if let Some(m) = target.memory_mb {
        if m < d.summary.memory_mb {
            return Err("memory cannot be removed from a running VM".into());
        }
        if !d.memory_hot_add {
            return Err("memory hot-add is not enabled on it".into());
        }
    }
    Ok(())
}

async fn apply(ctx: &Context, vm: &VmRef, target: Target) -> Reply {
    match ctx.vcenter.reconfigure(vm, target.cpus, target.memory_mb).await {
        Ok(()) => done(ctx, vm, "").await,
        Err(e) => Reply::error(format!("{} could not be resized: {e}", vm.name)),
    }
}

async fn done(ctx: &Context, vm: &VmRef, how: &str) -> Reply {
    match ctx.vcenter.vm_details(vm).await {
        Ok(d) => Reply::changed(Message::new(format!(
            "*{}* now has {} vCPU and {} GB of memory{how}.",
            vm.name,
            d.summary.cpus,
            d.summary.memory_mb / 1024
        ))),
        Err(_) => Reply::changed(Message::new(format!("*{}* was resized{how}.", vm.name))),
    }
}

/// Shut down (guest first, hard after a grace period), resize, power on.
async fn restart_and_apply(ctx: &Context, vm: &VmRef, target: Target) -> Reply {
    let details = match ctx.vcenter.vm_details(vm).await {
        Ok(d) => d,
        Err(e) => return e.into(),
    };
    if details.summary.power_state == PowerState::PoweredOff {
        return apply(ctx, vm, target).await;
    }
    if let Err(e) = power_off(ctx, vm, details.tools_running && details.summary.power_state == PowerState::PoweredOn).await {
        return Reply::error(format!("{} could not be powered off ({e}); nothing was changed.", vm.name));
    }
    if let Err(e) = ctx.vcenter.reconfigure(vm, target.cpus, target.memory_mb).await {
        // Leave the VM as the user had it: running.
        let back_on = ctx.vcenter.power(vm, PowerOp::On).await;
        let state = if back_on.is_ok() { "it was powered on again" } else { "it is still powered off" };
        return Reply::error(format!("{} could not be resized: {e}; {state}.", vm.name));
    }
    if let Err(e) = ctx.vcenter.power(vm, PowerOp::On).await {
        return Reply::error(format!("{} was resized but could not be powered on again ({e}).", vm.name));
    }
    done(ctx, vm, " after a restart").await
}

async fn power_off(ctx: &Context, vm: &VmRef, graceful: bool) -> Result<(), VcError> {
    if graceful && ctx.vcenter.power(vm, PowerOp::Shutdown).await.is_ok() {
        let started = Instant::now();
        while started.elapsed() < SHUTDOWN_GRACE {
            if ctx.vcenter.vm_details(vm).await?.summary.power_state == PowerState::PoweredOff {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    match ctx.vcenter.power(vm, PowerOp::Off).await {
        Ok(()) | Err(VcError::InvalidPowerState { current: PowerState::PoweredOff, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn pressed(ctx: &Context, inv: &Invocation, token: &str, confirmed: bool) -> Reply {
    let confirmation = match confirm::take_confirmed(ctx, inv, token, confirmed, "Resize").await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let name = confirmation.vm_name;
    let args: serde_json::Value = serde_json::from_str(&confirmation.args_json).unwrap_or_default();
    let target = Target { cpus: args["cpus"].as_u64().and_then(|c| u32::try_from(c).ok()), memory_mb: args["memory_mb"].as_u64() };
    let vm = VmRef::new(confirmation.vm_moref, name.clone());
    match ctx.vcenter.vm_details(&vm).await {
        Ok(d) if d.summary.vm.name == name => {
            if let Err(reply) = authorize_vm(ctx, inv, &d) {
                return reply;
            }
            locked(ctx, inv, &name, charged(ctx, inv, &d, target, restart_and_apply(ctx, &vm, target))).await
        }
        Ok(d) => Reply::error(format!("The VM you confirmed was renamed to {} since you asked; nothing was changed.", d.summary.vm.name)),
        Err(VcError::NotFound { .. }) => Reply::error(format!("{name} no longer exists; nothing was changed.")),
        Err(e) => e.into(),
    }
}
