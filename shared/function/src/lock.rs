//! One change per VM at a time, for any caller: Slack commands (through [`crate::locked`]),
//! and work that has no invocation, such as the lease sweep.

use std::future::Future;

use iaas_store::{LockHeld, Store, StoreError};

/// A lock lapses after this long, so a crashed holder cannot block its VM for good.
pub const LOCK_LEASE_MS: i64 = 30 * 60 * 1000;

/// Runs `work` holding `vm`'s change lock as `holder` (`what` and `actor` tell others who has
/// it), then releases it. `Ok(Err(held))` when another change holds it: `work` did not run.
pub async fn with_vm_lock<T>(
    store: &Store,
    vm: &str,
    holder: &str,
    what: &str,
    actor: &str,
    work: impl Future<Output = T>,
) -> Result<Result<T, LockHeld>, StoreError> {
    if let Err(held) = store.lock_vm(vm, holder, what, actor, LOCK_LEASE_MS).await? {
        return Ok(Err(held));
    }
    let out = work.await;
    if let Err(e) = store.unlock_vm(vm, holder).await {
        tracing::error!(error = %e, vm, "could not release the VM lock; it lapses by itself");
    }
    Ok(Ok(out))
}
