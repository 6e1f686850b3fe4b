//! One change per VM at a time, for any caller: Slack commands (through [`crate::locked`]),
//! and work that has no invocation, such as the lease sweep.

use std::future::Future;

use iaas_store::{LockHeld, Store, StoreError};
use iaas_vsphere::{Moref, VmName};

/// A lock lapses after this long, so a crashed holder cannot block its VM for good.
pub const LOCK_LEASE_MS: i64 = 30 * 60 * 1000;

/// What a change lock guards; the store keeps one key per lock, spelled here and nowhere else.
#[derive(Clone, Copy, Debug)]
pub enum Lockable<'a> {
    /// One change per VM at a time, by name (case-insensitive, as vCenter's lookups).
    Vm(&'a VmName),
    /// One storage move off a datastore at a time.
    Datastore(&'a Moref),
}

impl Lockable<'_> {
    fn key(self) -> String {
        match self {
            Lockable::Vm(name) => name.to_lowercase(),
            Lockable::Datastore(moref) => format!("ds:{moref}"),
        }
    }
}

/// Runs `work` holding `vm`'s change lock as `holder` (`what` and `actor` tell others who has
/// it), then releases it. `Ok(Err(held))` when another change holds it: `work` did not run.
/// The lock lapses after [`LOCK_LEASE_MS`].
pub async fn with_vm_lock<T>(
    store: &Store,
    vm: &VmName,
    holder: &str,
    what: &str,
    actor: &str,
    work: impl Future<Output = T>,
) -> Result<Result<T, LockHeld>, StoreError> {
    with_lock_for(store, Lockable::Vm(vm), holder, what, actor, LOCK_LEASE_MS, work).await
}

/// [`with_vm_lock`] with a lease of its own, for work whose longest run is known (an alarm's
/// reconfigure, a storage move) and for locks on other objects (a datastore).
pub async fn with_lock_for<T>(
    store: &Store,
    what_is_locked: Lockable<'_>,
    holder: &str,
    what: &str,
    actor: &str,
    lease_ms: i64,
    work: impl Future<Output = T>,
) -> Result<Result<T, LockHeld>, StoreError> {
    let key = what_is_locked.key();
    if let Err(held) = store.lock_vm(&key, holder, what, actor, lease_ms).await? {
        return Ok(Err(held));
    }
    let out = work.await;
    if let Err(e) = store.unlock_vm(&key, holder).await {
        tracing::error!(error = %e, %key, "could not release the lock; it lapses by itself");
    }
    Ok(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_datastore_and_a_vm_lock_apart_and_each_is_held_once() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ds = Moref::from("datastore-12");
        // A VM named like the datastore's moref: a lock of another kind.
        let vm = VmName::from("Datastore-12");
        let inner = with_lock_for(&store, Lockable::Datastore(&ds), "move-1", "move off", "veba", 60_000, async {
            let second_move = with_lock_for(&store, Lockable::Datastore(&ds), "move-2", "move off", "veba", 60_000, async {}).await;
            let vm_change = with_vm_lock(&store, &vm, "inv-1", "power off", "U1", async {}).await;
            (second_move.unwrap().map_err(|held| held.holder), vm_change.unwrap().is_ok())
        })
        .await;
        assert_eq!(inner.unwrap().unwrap(), (Err("move-1".to_string()), true));
        // Released: the next move takes it.
        assert!(with_lock_for(&store, Lockable::Datastore(&ds), "move-3", "move off", "veba", 60_000, async {}).await.unwrap().is_ok());
    }
}
