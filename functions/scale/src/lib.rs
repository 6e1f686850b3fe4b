//! `iaas-scale`: vertical scaling driven by vCenter alarms. A CPU or memory alarm from the
//! policy turning red adds one step (up to the policy's maximum, per VM folder) — live when
//! the VM has hot-add, at once when it is off, otherwise recorded and made on the VM's next
//! `VmPoweredOffEvent` (or only reported, per `scale.when_cold`). Each resource of each VM
//! then cools down, so one noisy alarm cannot grow a VM step after step.

use std::sync::Arc;

use axum::Router;
use iaas_config::WhenCold;
use iaas_events::{AlarmStatus, EventSettings, Outcome, VcEvent};
use iaas_function::lock::{with_lock_for, Lockable};
use iaas_function::Context;
use iaas_store::PendingChange;
use iaas_vsphere::{PowerState, VcError, VmDetails, VmRef};

pub const NAME: &str = "iaas-scale";

/// How long this function holds a VM's change lock at most.
const LOCK_LEASE_MS: i64 = 10 * 60 * 1000;

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_events::router(NAME, ctx, handle)
}

/// The same router with explicit settings (tests).
pub fn router_with(ctx: Arc<Context>, settings: EventSettings) -> Router {
    iaas_events::router_with(NAME, ctx, settings, handle)
}

async fn handle(ctx: Arc<Context>, event: VcEvent) -> Outcome {
    match event.class.as_str() {
        "AlarmStatusChangedEvent" => on_alarm(&ctx, &event).await,
        "VmPoweredOffEvent" => on_powered_off(&ctx, &event).await,
        other => Outcome::ignored(format!("{NAME} does not act on {other}.")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Cpu,
    Memory,
}

impl Resource {
    fn key(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        }
    }
}

/// One step for one VM: from what to what, in vCPUs or MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    resource: Resource,
    current: u64,
    target: u64,
}

impl Step {
    /// "1 vCPU (2 → 3)" / "2 GB of memory (4 → 6 GB)".
    fn describe(&self) -> String {
        match self.resource {
            Resource::Cpu => {
                let n = self.target - self.current;
                format!("{n} vCPU{} ({} → {})", if n == 1 { "" } else { "s" }, self.current, self.target)
            }
            Resource::Memory => format!("{} of memory ({} → {})", gb(self.target - self.current), gb(self.current), gb(self.target)),
        }
    }
}

// `is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn gb(mb: u64) -> String {
    if mb % 1024 == 0 {
        format!("{} GB", mb / 1024)
    } else {
        format!("{mb} MB")
    }
}

/// The next step for this VM under the policy, or `Err(max)` when it is already at the max.
fn next_step(ctx: &Context, d: &VmDetails, resource: Resource) -> Result<Step, u64> {
    let limits = ctx.policy.scale.limits_for(d.folder.as_deref());
    let (current, step, max) = match resource {
        Resource::Cpu => (u64::from(d.summary.cpus), u64::from(limits.cpu_step), u64::from(limits.max_cpus)),
        Resource::Memory => (d.summary.memory_mb, u64::from(limits.memory_step_gb) * 1024, u64::from(limits.max_memory_gb) * 1024),
    };
    if current >= max {
        return Err(max);
    }
    Ok(Step { resource, current, target: current.saturating_add(step).min(max) })
}

async fn on_alarm(ctx: &Context, event: &VcEvent) -> Outcome {
    let policy = &ctx.policy.scale;
    let Some(alarm) = event.alarm_name() else {
        return Outcome::ignored("The alarm event names no alarm.");
    };
    let resource = if policy.cpu_alarms.iter().any(|a| a == alarm) {
        Resource::Cpu
    } else if policy.memory_alarms.iter().any(|a| a == alarm) {
        Resource::Memory
    } else {
        return Outcome::ignored(format!("Alarm '{alarm}' is not one of the scaling alarms."));
    };
    if event.to_status() != Some(AlarmStatus::Red) {
        return Outcome::ignored(format!(
            "Alarm '{alarm}' changed to {}; only red scales.",
            event.to_status().map_or("an unknown status", AlarmStatus::as_str)
        ));
    }
    let Some(target) = event.vm().or_else(|| event.entity().filter(|e| e.ty == "VirtualMachine")) else {
        return Outcome::ignored(format!("Alarm '{alarm}' is not on a VM."));
    };
    let vm = match ctx.vcenter.vm_by_moref(&target.moref).await {
        Ok(vm) => vm,
        Err(VcError::NotFound { .. }) => {
            return Outcome::ignored(format!("vCenter has no VM {} ({}) any more; nothing to scale.", target.name, target.moref))
        }
        Err(e) => return e.into(),
    };
    let details = match ctx.vcenter.vm_details(&vm).await {
        Ok(d) => d,
        Err(e) => return Outcome::from(e).on(&vm.name),
    };
    let step = match next_step(ctx, &details, resource) {
        Ok(step) => step,
        Err(max) => {
            let (what, limit) = match resource {
                Resource::Cpu => ("vCPUs", max.to_string()),
                Resource::Memory => ("memory", gb(max)),
            };
            return Outcome::skipped(format!(
                "Alarm '{alarm}' is red on {}, but it already has the most {what} the policy allows ({limit}); nothing was changed. Look at the workload, or ask IT to raise the limit.",
                vm.name
            ))
            .on(&vm.name);
        }
    };

    let cooldown = format!("scale:{}:{}", resource.key(), vm.moref);
    match ctx.store.start_cooldown(&cooldown, policy.cooldown_secs).await {
        Ok(Ok(())) => {}
        Ok(Err(until_ms)) => {
            let until = chrono::DateTime::from_timestamp_millis(until_ms).map_or_else(String::new, |t| t.format("%H:%M UTC").to_string());
            return Outcome::skipped(format!(
                "Alarm '{alarm}' is red on {}, but it was scaled up recently; nothing was changed. The next automatic {} change may happen after {until}.",
                vm.name,
                resource.key()
            ))
            .on(&vm.name);
        }
        Err(e) => return Outcome::retry(e.to_string()),
    }

    let hot_add = match resource {
        Resource::Cpu => details.cpu_hot_add,
        Resource::Memory => details.memory_hot_add,
    };
    let power = details.summary.power_state;
    let outcome = if power == PowerState::PoweredOff || (power == PowerState::PoweredOn && hot_add && policy.hot_add) {
        let how = if power == PowerState::PoweredOff { "it is powered off" } else { "live, with hot-add" };
        apply(ctx, event, &vm, &[step])
            .await
            .map(|()| Outcome::acted(format!("Alarm '{alarm}' is red on {}: added {} ({how}).", vm.name, step.describe())))
    } else {
        cold(ctx, alarm, &vm, power, step).await
    };
    match outcome {
        Ok(done) => done.on(&vm.name),
        Err(not_done) => {
            // Nothing happened, so there is nothing to cool down from.
            if let Err(e) = ctx.store.clear_cooldown(&cooldown).await {
                tracing::error!(error = %e, "could not clear a cooldown; it lapses by itself");
            }
            not_done.on(&vm.name)
        }
    }
}

/// A running (or suspended) VM that cannot take the change live.
async fn cold(ctx: &Context, alarm: &str, vm: &VmRef, power: PowerState, step: Step) -> Result<Outcome, Outcome> {
    let why = match power {
        PowerState::PoweredOn if ctx.policy.scale.hot_add => {
            format!("runs without {} hot-add", if step.resource == Resource::Cpu { "CPU" } else { "memory" })
        }
        PowerState::PoweredOn => "runs, and the policy does not use hot-add".to_string(),
        _ => format!("is {power}"),
    };
    match ctx.policy.scale.when_cold {
        WhenCold::Notify => Ok(Outcome::skipped(format!(
            "Alarm '{alarm}' is red on {}, which {why}; the policy says to only report this. Nothing was changed: add {} with `/iaas resize` at a convenient time.",
            vm.name,
            step.describe()
        ))),
        WhenCold::Pending => {
            let (cpus, memory_mb) = match step.resource {
                Resource::Cpu => (Some(step.target as i64), None),
                Resource::Memory => (None, Some(step.target as i64)),
            };
            let change = PendingChange {
                vm_moref: vm.moref.clone(),
                vm_name: vm.name.clone(),
                cpus,
                memory_mb,
                reason: format!("alarm '{alarm}' red"),
                created_at_ms: chrono::Utc::now().timestamp_millis(),
            };
            match ctx.store.put_pending_change(&change).await {
                Ok(()) => Ok(Outcome::acted(format!(
                    "Alarm '{alarm}' is red on {}, which {why}: {} will be added the next time it is powered off.",
                    vm.name,
                    step.describe()
                ))),
                Err(e) => Err(Outcome::retry(e.to_string())),
            }
        }
    }
}

/// Reconfigures under the VM's change lock (shared with `/iaas` commands).
async fn apply(ctx: &Context, event: &VcEvent, vm: &VmRef, steps: &[Step]) -> Result<(), Outcome> {
    let holder = event.claim_key(NAME);
    let cpus = steps.iter().find(|s| s.resource == Resource::Cpu).map(|s| s.target as u32);
    let memory_mb = steps.iter().find(|s| s.resource == Resource::Memory).map(|s| s.target);
    let reconfigure = ctx.vcenter.reconfigure(vm, cpus, memory_mb);
    match with_lock_for(&ctx.store, Lockable::Vm(&vm.name), &holder, &event.describe(), "veba", LOCK_LEASE_MS, reconfigure).await {
        Ok(Ok(result)) => result.map_err(Outcome::from),
        Ok(Err(held)) => {
            Err(Outcome::skipped(format!("{} has a change in flight (`{}`), so the alarm's change was not made.", vm.name, held.command)))
        }
        Err(e) => Err(Outcome::retry(e.to_string())),
    }
}

/// A VM went down: make the change that was waiting for that.
async fn on_powered_off(ctx: &Context, event: &VcEvent) -> Outcome {
    let Some(target) = event.vm() else {
        return Outcome::ignored("The power-off event names no VM.");
    };
    let change = match ctx.store.pending_change(&target.moref).await {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::ignored(format!("No change is waiting for {}.", target.name)),
        Err(e) => return Outcome::retry(e.to_string()),
    };
    let clear = |c: PendingChange| async move {
        if let Err(e) = ctx.store.clear_pending_change(&c).await {
            tracing::error!(error = %e, "could not clear a pending change");
        }
    };
    let vm = match ctx.vcenter.vm_by_moref(&change.vm_moref).await {
        Ok(vm) => vm,
        Err(VcError::NotFound { .. }) => {
            clear(change.clone()).await;
            return Outcome::ignored(format!("{} is gone; its waiting change was dropped.", change.vm_name));
        }
        Err(e) => return e.into(),
    };
    let details = match ctx.vcenter.vm_details(&vm).await {
        Ok(d) => d,
        Err(e) => return Outcome::from(e).on(&vm.name),
    };
    if details.summary.power_state == PowerState::PoweredOn {
        return Outcome::skipped(format!("{} is running again; its waiting change stays for the next power-off.", vm.name)).on(&vm.name);
    }
    // Limits may have changed since; never shrink, never pass the maximum.
    let limits = ctx.policy.scale.limits_for(details.folder.as_deref());
    let mut steps = Vec::new();
    if let Some(cpus) = change.cpus {
        let target = (cpus.max(0) as u64).min(u64::from(limits.max_cpus));
        if target > u64::from(details.summary.cpus) {
            steps.push(Step { resource: Resource::Cpu, current: u64::from(details.summary.cpus), target });
        }
    }
    if let Some(mb) = change.memory_mb {
        let target = (mb.max(0) as u64).min(u64::from(limits.max_memory_gb) * 1024);
        if target > details.summary.memory_mb {
            steps.push(Step { resource: Resource::Memory, current: details.summary.memory_mb, target });
        }
    }
    if steps.is_empty() {
        clear(change).await;
        return Outcome::ignored(format!("{} already has what its waiting change asked for.", vm.name));
    }
    match apply(ctx, event, &vm, &steps).await {
        Ok(()) => {
            clear(change.clone()).await;
            let done: Vec<String> = steps.iter().map(Step::describe).collect();
            Outcome::acted(format!(
                "{} was powered off, so the change waiting since {} was made: added {}.",
                vm.name,
                change.reason,
                done.join(" and ")
            ))
            .on(&vm.name)
        }
        Err(outcome) => outcome.on(&vm.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_naturally() {
        let cpu = Step { resource: Resource::Cpu, current: 2, target: 3 };
        assert_eq!(cpu.describe(), "1 vCPU (2 → 3)");
        let mem = Step { resource: Resource::Memory, current: 4096, target: 6144 };
        assert_eq!(mem.describe(), "2 GB of memory (4 GB → 6 GB)");
        assert_eq!(gb(1536), "1536 MB");
    }
}
