//! Quotas: what a request would add is reserved atomically in the store before vCenter is
//! asked, given back if the request fails, and when the bot deletes the VM. Usage counts the
//! VMs the bot made; limits are the caller's roles' (none when the policy has no roles).

use iaas_invocation::{Invocation, UserId};
use iaas_store::Usage;

use crate::{identity, Context, Reply};

/// The caller's limits; `i64::MAX` where their roles set none.
pub fn limits(ctx: &Context, inv: &Invocation) -> Usage {
    let Some(access) = &ctx.access else { return Usage { vms: i64::MAX, cpus: i64::MAX, memory_mb: i64::MAX } };
    let q = access.quota(&identity(inv));
    let cap = |v: Option<u32>, scale: i64| v.map_or(i64::MAX, |v| i64::from(v) * scale);
    Usage { vms: cap(q.vms, 1), cpus: cap(q.cpus, 1), memory_mb: cap(q.memory_gb, 1024) }
}

/// Reserves `add` against `user`'s quota, or refuses with a sentence showing usage and limits.
pub async fn reserve(ctx: &Context, inv: &Invocation, user: &UserId, add: Usage) -> Result<(), Reply> {
    let limit = limits(ctx, inv);
    match ctx.store.reserve_quota(user, add, limit).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            metrics::counter!("iaas_quota_refusals_total").increment(1);
            let used = ctx.store.quota_usage(user).await.unwrap_or_default();
            Err(Reply::denied(format!(
                "That would take you over your quota ({}); nothing was changed. Delete a VM you no longer need, or ask IT for more.",
                describe(used, limit)
            )))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not reserve quota");
            Err(Reply::error(
                "The bot's database is unreachable, so your quota cannot be checked; nothing was changed. Please try again later.",
            ))
        }
    }
}

/// Gives back a reservation (failure) or a deleted VM's share. Errors are logged: usage is
/// then too high, which refuses too much rather than too little.
pub async fn release(ctx: &Context, user: &UserId, usage: Usage) {
    if let Err(e) = ctx.store.release_quota(user, usage).await {
        tracing::error!(error = %e, %user, "could not release quota");
    }
}

/// "2 of 5 VMs, 4 of 16 vCPUs, 8 of 64 GB memory" (no cap → "no limit").
pub fn describe(used: Usage, limit: Usage) -> String {
    let part = |used: i64, limit: i64, unit: &str, scale: i64| {
        if limit == i64::MAX {
            format!("{} {unit} (no limit)", used / scale)
        } else {
            format!("{} of {} {unit}", used / scale, limit / scale)
        }
    };
    format!(
        "{}, {}, {}",
        part(used.vms, limit.vms, "VMs", 1),
        part(used.cpus, limit.cpus, "vCPUs", 1),
        part(used.memory_mb, limit.memory_mb, "GB memory", 1024)
    )
}
