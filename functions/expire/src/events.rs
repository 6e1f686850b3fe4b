//! Leases for VMs made outside the bot, from vCenter's events as VEBA delivers them:
//! `VmCreatedEvent`, `VmClonedEvent`, `VmDeployedEvent`, `VmRegisteredEvent` open a lease (the
//! policy's default length; excluded folders and names get none), `VmRemovedEvent` closes it.

use std::sync::Arc;

use axum::Router;
use chrono::{Duration, Utc};
use iaas_events::{Outcome, VcEvent};
use iaas_function::provision::lease_excluded;
use iaas_function::Context;
use iaas_store::{LeaseState, UserId};
use iaas_vsphere::{VcError, VmRef, ATTR_EXPIRES, ATTR_OWNER};

pub const NAME: &str = "iaas-expire-events";

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_events::router(NAME, ctx, handle)
}

async fn handle(ctx: Arc<Context>, event: VcEvent) -> Outcome {
    let Some(vm) = event.vm() else {
        return Outcome::ignored(format!("{} names no VM.", event.class));
    };
    let vm = VmRef::new(vm.moref, vm.name);
    match event.class.as_str() {
        "VmCreatedEvent" | "VmClonedEvent" | "VmDeployedEvent" | "VmRegisteredEvent" => open(&ctx, &vm).await,
        "VmRemovedEvent" => {
            match ctx.store.set_lease_state(&vm.moref, LeaseState::Closed, "removed from vCenter", Utc::now().timestamp_millis()).await {
                Ok(()) => Outcome::acted(format!("The lease of {} is closed: the VM was removed.", vm.name)).on(&vm.name),
                Err(e) => Outcome::retry(e.to_string()),
            }
        }
        other => Outcome::ignored(format!("{NAME} does not act on {other}.")),
    }
}

async fn open(ctx: &Context, vm: &VmRef) -> Outcome {
    let details = match ctx.vcenter.vm_details(vm).await {
        Ok(d) => d,
        Err(VcError::NotFound { .. }) => return Outcome::ignored(format!("{} no longer exists.", vm.name)),
        Err(e) => return e.into(),
    };
    if lease_excluded(&ctx.policy, &vm.name, details.folder.as_deref()) {
        return Outcome::skipped(format!("{} is excluded from leases by policy.", vm.name)).on(&vm.name);
    }
    // A VM the bot made carries its owner; one made in vCenter has none, and its reminders
    // will alert the admins until someone owns it.
    let owner: UserId = details.attributes.get(ATTR_OWNER).map(UserId::from).unwrap_or_default();
    let now = Utc::now();
    let expires = now + Duration::days(i64::from(ctx.policy.lease.default_days));
    match ctx.store.open_lease(vm, &owner, now.timestamp_millis(), expires.timestamp_millis(), LeaseState::Active).await {
        Ok(false) => return Outcome::ignored(format!("{} already has a lease.", vm.name)),
        Ok(true) => {}
        Err(e) => return Outcome::retry(e.to_string()),
    }
    let date = expires.format("%Y-%m-%d").to_string();
    if let Err(e) = ctx.vcenter.set_attribute(vm, ATTR_EXPIRES, &date).await {
        return Outcome::failed(format!("{}'s lease runs to {date}, but its {ATTR_EXPIRES} attribute could not be set ({e}).", vm.name));
    }
    Outcome::acted(format!("{} now has a lease until {date}.", vm.name)).on(&vm.name)
}
