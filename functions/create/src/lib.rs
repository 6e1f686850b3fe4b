//! `iaas-create`: `/iaas create <name> [--size <size>] [--os <family>] [--days <n>]`. The user
//! names the VM and a size; IT's policy decides what the size means and where the VM goes.

use std::sync::Arc;

use axum::Router;
use iaas_function::provision::{self, NewVm};
use iaas_function::{capacity, quota, Context, Reply};
use iaas_invocation::{Command, Invocation};
use iaas_store::Usage;
use iaas_vsphere::CreateSpec;

pub const NAME: &str = "iaas-create";

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, handle)
}

async fn handle(ctx: Arc<Context>, inv: Invocation) -> Reply {
    let Command::Create { name, size, os, days } = &inv.command else {
        return Reply::error("iaas-create received a command it does not run.");
    };
    let policy = &ctx.policy;
    let size_name = size.clone().unwrap_or_else(|| policy.create.default_size.clone());
    let Some(size) = policy.sizes.get(&size_name) else {
        let known: Vec<&str> = policy.sizes.keys().map(String::as_str).collect();
        return Reply::error(format!("`{size_name}` is not a size IT offers; choose one of {}. Nothing was created.", known.join(", ")));
    };
    let os_name = os.clone().unwrap_or_else(|| policy.create.default_os.clone());
    let Some(family) = policy.os.get(&os_name) else {
        let known: Vec<&str> = policy.os.keys().map(String::as_str).collect();
        return Reply::error(format!(
            "`{os_name}` is not an OS family IT offers; choose one of {}. Nothing was created.",
            known.join(", ")
        ));
    };
    let lease_days = match provision::lease_days(policy, *days) {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    if let Err(reply) = provision::check_new_name(&ctx, name).await {
        return reply;
    }
    let reserved = Usage { vms: 1, cpus: i64::from(size.cpus), memory_mb: i64::from(size.memory_gb) * 1024 };
    if let Err(reply) = quota::reserve(&ctx, &inv, &inv.user.id, reserved).await {
        return reply;
    }
    // The size's disk goes on a datastore that keeps IT's headroom; its space is held until
    // the VM exists or the create fails.
    let placement = match capacity::reserve(&ctx, &inv, u64::from(size.disk_gb) << 30).await {
        Ok(placement) => placement,
        Err(reply) => {
            quota::release(&ctx, &inv.user.id, reserved).await;
            return reply;
        }
    };
    let spec = CreateSpec {
        name: name.clone(),
        guest_id: family.guest_id.clone(),
        cpus: size.cpus,
        memory_mb: u64::from(size.memory_gb) * 1024,
        disk_gb: u64::from(size.disk_gb),
        placement,
    };
    let doing = format!("Creating {name} ({size_name}, {os_name})");
    let new = NewVm { name: name.clone(), source: "create".into(), doing, lease_days, reserved };
    provision::started(&ctx, &inv, new, ctx.vcenter.begin_create(&spec).await).await
}
