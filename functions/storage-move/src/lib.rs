//! `iaas-storage-move`: when a datastore's usage alarm (or a VM storage alarm) turns red,
//! move VMs off that datastore — powered-off ones and the largest first, per policy — each to
//! the datastore with the most free space among those its host reaches, and only if that one
//! keeps the policy's headroom afterwards. Excluded and in-maintenance datastores are never
//! chosen; one move at a time per datastore (a store lock on `ds:<moref>`).

use std::sync::Arc;

use axum::Router;
use iaas_events::{AlarmStatus, EntityRef, EventSettings, Outcome, VcEvent};
use iaas_function::lock::{with_lock_for, Lockable};
use iaas_function::Context;
use iaas_vsphere::{DatastoreInfo, Moref, PowerState, VcError, VmName, VmRef};

pub const NAME: &str = "iaas-storage-move";

/// Storage vMotion can take long; the locks lapse only after this.
const LOCK_LEASE_MS: i64 = 60 * 60 * 1000;
const GIB: u64 = 1024 * 1024 * 1024;

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_events::router(NAME, ctx, handle)
}

/// The same router with explicit settings (tests).
pub fn router_with(ctx: Arc<Context>, settings: EventSettings) -> Router {
    iaas_events::router_with(NAME, ctx, settings, handle)
}

async fn handle(ctx: Arc<Context>, event: VcEvent) -> Outcome {
    if event.class != "AlarmStatusChangedEvent" {
        return Outcome::ignored(format!("{NAME} does not act on {}.", event.class));
    }
    let policy = &ctx.policy.storage_move;
    let Some(alarm) = event.alarm_name().map(str::to_owned) else {
        return Outcome::ignored("The alarm event names no alarm.");
    };
    let entity = event.entity();
    let on_datastore = policy.datastore_alarms.contains(&alarm) && entity.as_ref().is_some_and(|e| e.ty == "Datastore");
    let on_vm = policy.vm_alarms.contains(&alarm);
    if !on_datastore && !on_vm {
        return Outcome::ignored(format!("Alarm '{alarm}' is not one of the storage alarms."));
    }
    if event.to_status() != Some(AlarmStatus::Red) {
        return Outcome::ignored(format!(
            "Alarm '{alarm}' changed to {}; only red moves VMs.",
            event.to_status().map_or("an unknown status", AlarmStatus::as_str)
        ));
    }
    let source = match (on_datastore, entity) {
        (true, Some(e)) => e,
        _ => match vm_datastore(&ctx, &event).await {
            Ok(Some(e)) => e,
            Ok(None) => return Outcome::ignored(format!("Alarm '{alarm}' names no VM vCenter knows; nothing to move.")),
            Err(e) => return e.into(),
        },
    };

    // One move at a time per datastore, across replicas.
    let holder = event.claim_key(NAME);
    let moving = move_off(&ctx, &alarm, &source, &holder);
    match with_lock_for(&ctx.store, Lockable::Datastore(&source.moref), &holder, &event.describe(), "veba", LOCK_LEASE_MS, moving).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Outcome::skipped(format!(
            "Alarm '{alarm}' is red on {}, but a move off it is already in flight; nothing more was started.",
            source.name
        )),
        Err(e) => Outcome::retry(e.to_string()),
    }
}

/// For a VM alarm: the VM's datastore with the least free space.
async fn vm_datastore(ctx: &Context, event: &VcEvent) -> Result<Option<EntityRef>, VcError> {
    let Some(target) = event.vm().or_else(|| event.entity().filter(|e| e.ty == "VirtualMachine")) else {
        return Ok(None);
    };
    let vm = match ctx.vcenter.vm_by_moref(&target.moref).await {
        Ok(vm) => vm,
        Err(VcError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let details = ctx.vcenter.vm_details(&vm).await?;
    let reachable = ctx.vcenter.datastores_for(&vm).await?;
    Ok(reachable
        .into_iter()
        .filter(|d| details.datastores.contains(&d.name))
        .min_by(|a, b| free_share(a).total_cmp(&free_share(b)))
        .map(|d| EntityRef { ty: "Datastore".into(), moref: d.moref, name: d.name }))
}

fn free_share(d: &DatastoreInfo) -> f64 {
    if d.capacity_bytes == 0 {
        0.0
    } else {
        d.free_bytes as f64 / d.capacity_bytes as f64
    }
}

/// A VM that may be moved, with what decides the order.
struct Candidate {
    vm: VmRef,
    running: bool,
    used_bytes: u64,
}

async fn move_off(ctx: &Context, alarm: &str, source: &EntityRef, holder: &str) -> Outcome {
    let policy = &ctx.policy.storage_move;
    let vms = match ctx.vcenter.vms_on_datastore(&source.moref).await {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    let mut reasons: Vec<String> = Vec::new();
    let mut candidates = Vec::new();
    for vm in vms {
        let details = match ctx.vcenter.vm_details(&vm).await {
            Ok(d) => d,
            Err(VcError::NotFound { .. }) => continue,
            Err(e) => return e.into(),
        };
        if let Some(why) = iaas_function::protected(&ctx.policy, &details) {
            reasons.push(format!("{} is protected ({why})", vm.name));
            continue;
        }
        let running = details.summary.power_state == PowerState::PoweredOn;
        if running && policy.only_powered_off {
            continue;
        }
        let used_bytes = match ctx.vcenter.vm_used_bytes(&vm).await {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        candidates.push(Candidate { vm, running, used_bytes });
    }
    // Powered-off (and suspended) first when the policy says so; the largest first within each.
    candidates.sort_by(|a, b| {
        let off_first = if policy.powered_off_first { a.running.cmp(&b.running) } else { std::cmp::Ordering::Equal };
        off_first.then(b.used_bytes.cmp(&a.used_bytes)).then(a.vm.name.cmp(&b.vm.name))
    });
    if candidates.is_empty() {
        reasons.push("no VM on it may be moved automatically".into());
    }

    let mut moved: Vec<String> = Vec::new();
    let mut first_vm: Option<VmName> = None;
    // Space taken by this run's moves, per target moref.
    let mut taken: Vec<(Moref, u64)> = Vec::new();
    for c in candidates {
        if moved.len() >= policy.max_moves {
            break;
        }
        let reachable = match ctx.vcenter.datastores_for(&c.vm).await {
            Ok(d) => d,
            Err(e) => return e.into(),
        };
        let target = match pick_target(ctx, source, &reachable, c.used_bytes, &taken) {
            Ok(t) => t,
            Err(why) => {
                reasons.push(format!("{} ({}): {why}", c.vm.name, gib(c.used_bytes)));
                continue;
            }
        };
        match relocate_locked(ctx, &c.vm, &target, holder).await {
            Ok(()) => {
                let used_before: u64 = taken.iter().filter(|(m, _)| *m == target.moref).map(|(_, b)| b).sum();
                let free_after = target.free_bytes.saturating_sub(used_before + c.used_bytes);
                moved.push(format!("{} ({}) to {} ({} free after the move)", c.vm.name, gib(c.used_bytes), target.name, gib(free_after)));
                first_vm.get_or_insert(c.vm.name.clone());
                taken.push((target.moref.clone(), c.used_bytes));
            }
            Err(Err(e @ VcError::Unreachable { .. })) if moved.is_empty() => return e.into(),
            Err(Err(e)) => reasons.push(format!("moving {} failed: {e}", c.vm.name)),
            Err(Ok(busy)) => reasons.push(busy),
        }
    }
    if moved.is_empty() {
        return Outcome::skipped(format!(
            "Alarm '{alarm}' is red on datastore {}, but no VM was moved: {}.",
            source.name,
            reasons.join("; ")
        ));
    }
    let mut text = format!("Alarm '{alarm}' is red on datastore {}: moved {}.", source.name, moved.join(", "));
    if !reasons.is_empty() {
        text.push_str(&format!(" Not moved: {}.", reasons.join("; ")));
    }
    let outcome = Outcome::acted(text);
    match first_vm {
        Some(vm) => outcome.on(&vm),
        None => outcome,
    }
}

/// The reachable datastore with the most free space that keeps the headroom after taking
/// `used` more bytes, or why there is none.
fn pick_target(
    ctx: &Context,
    source: &EntityRef,
    reachable: &[DatastoreInfo],
    used: u64,
    taken: &[(Moref, u64)],
) -> Result<DatastoreInfo, String> {
    let policy = &ctx.policy.storage_move;
    let excluded = |name: &str| policy.exclude_datastores.iter().any(|p| glob::Pattern::new(p).is_ok_and(|g| g.matches(name)));
    let mut skipped = Vec::new();
    let mut usable: Vec<DatastoreInfo> = Vec::new();
    for d in reachable.iter().filter(|d| d.moref != source.moref) {
        if excluded(&d.name) {
            skipped.push(format!("{} is excluded by policy", d.name));
        } else if d.maintenance || !d.accessible {
            skipped.push(format!("{} is in maintenance or inaccessible", d.name));
        } else {
            let already: u64 = taken.iter().filter(|(m, _)| *m == d.moref).map(|(_, b)| b).sum();
            let mut d = d.clone();
            d.free_bytes = d.free_bytes.saturating_sub(already);
            usable.push(d);
        }
    }
    let Some(best) = usable.into_iter().max_by(|a, b| a.free_bytes.cmp(&b.free_bytes).then(b.name.cmp(&a.name))) else {
        skipped.insert(0, "no other datastore its host reaches may take it".into());
        return Err(skipped.join(", "));
    };
    let need = best.capacity_bytes as u128 * u128::from(policy.headroom_percent) / 100;
    let left = (best.free_bytes as u128).saturating_sub(used as u128);
    if best.free_bytes < used || left < need {
        return Err(format!("{}, the roomiest target, would keep less than {}% free", best.name, policy.headroom_percent));
    }
    Ok(best)
}

/// Relocates under the VM's change lock. `Err(Ok(sentence))` when another change holds it.
async fn relocate_locked(ctx: &Context, vm: &VmRef, target: &DatastoreInfo, holder: &str) -> Result<(), Result<String, VcError>> {
    let relocate = ctx.vcenter.relocate(vm, &target.moref);
    match with_lock_for(&ctx.store, Lockable::Vm(&vm.name), holder, &format!("move to {}", target.name), "veba", LOCK_LEASE_MS, relocate)
        .await
    {
        Ok(Ok(result)) => result.map_err(Err),
        Ok(Err(held)) => Err(Ok(format!("{} has a change in flight (`{}`)", vm.name, held.command))),
        Err(e) => Err(Ok(format!("{} could not be locked ({e})", vm.name))),
    }
}

fn gib(bytes: u64) -> String {
    format!("{} GB", bytes.div_ceil(GIB))
}
