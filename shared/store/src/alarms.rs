//! State of the alarm-driven functions: pending changes for powered-on VMs without hot-add,
//! per-key cooldowns, and giving back an event's claim when a retry should run it again.

use sqlx::Row;

use iaas_ids::{InvocationId, Moref, VmName};

use crate::{now_ms, Store, StoreError};

/// A CPU/memory change waiting for the VM to be powered off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    pub vm_moref: Moref,
    pub vm_name: VmName,
    pub cpus: Option<i64>,
    pub memory_mb: Option<i64>,
    pub reason: String,
    pub created_at_ms: i64,
}

impl Store {
    /// Records a pending change; one already waiting for the VM keeps the values this one
    /// leaves unset (a CPU change and a memory change merge).
    pub async fn put_pending_change(&self, c: &PendingChange) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "INSERT INTO pending_changes (vm_moref, vm_name, cpus, memory_mb, reason, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vm_moref) DO UPDATE SET \
                 vm_name = excluded.vm_name, cpus = COALESCE(excluded.cpus, pending_changes.cpus), \
                 memory_mb = COALESCE(excluded.memory_mb, pending_changes.memory_mb), \
                 reason = excluded.reason, created_at_ms = excluded.created_at_ms",
            )
            .bind(&c.vm_moref)
            .bind(&c.vm_name)
            .bind(c.cpus)
            .bind(c.memory_mb)
            .bind(&c.reason)
            .bind(c.created_at_ms),
            "recording a pending change",
        )
        .await?;
        Ok(())
    }

    pub async fn pending_change(&self, vm_moref: &Moref) -> Result<Option<PendingChange>, StoreError> {
        let row = self
            .fetch_optional(
                sqlx::query("SELECT vm_moref, vm_name, cpus, memory_mb, reason, created_at_ms FROM pending_changes WHERE vm_moref = $1")
                    .bind(vm_moref),
                "reading a pending change",
            )
            .await?;
        Ok(row.map(|r| PendingChange {
            vm_moref: r.get("vm_moref"),
            vm_name: r.get("vm_name"),
            cpus: r.get("cpus"),
            memory_mb: r.get("memory_mb"),
            reason: r.get("reason"),
            created_at_ms: r.get("created_at_ms"),
        }))
    }

    /// Removes the change once applied, unless a newer one replaced it meanwhile.
    pub async fn clear_pending_change(&self, c: &PendingChange) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("DELETE FROM pending_changes WHERE vm_moref = $1 AND created_at_ms = $2").bind(&c.vm_moref).bind(c.created_at_ms),
            "clearing a pending change",
        )
        .await?;
        Ok(())
    }

    /// Starts a cooldown of `secs` on `key` unless one is running; `Err(until_ms)` says until
    /// when the running one lasts. One conditional statement each, so concurrent callers
    /// cannot both start one.
    pub async fn start_cooldown(&self, key: &str, secs: u64) -> Result<Result<(), i64>, StoreError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        let inserted = self
            .execute(
                sqlx::query("INSERT INTO cooldowns (key, until_ms) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING").bind(key).bind(until),
                "starting a cooldown",
            )
            .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let renewed = self
            .execute(
                sqlx::query("UPDATE cooldowns SET until_ms = $1 WHERE key = $2 AND until_ms <= $3").bind(until).bind(key).bind(now),
                "starting a cooldown",
            )
            .await?;
        if renewed.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let row = self.fetch_optional(sqlx::query("SELECT until_ms FROM cooldowns WHERE key = $1").bind(key), "reading a cooldown").await?;
        Ok(Err(row.map_or(now, |r| r.get("until_ms"))))
    }

    /// Ends a cooldown early (the action it guarded did not happen).
    pub async fn clear_cooldown(&self, key: &str) -> Result<(), StoreError> {
        self.execute(sqlx::query("DELETE FROM cooldowns WHERE key = $1").bind(key), "clearing a cooldown").await?;
        Ok(())
    }

    /// Gives up an unfinished claim so a redelivery runs the invocation again: for work that
    /// failed in a way a retry can fix (vCenter unreachable). A finished one is kept.
    pub async fn release_invocation(&self, id: &InvocationId) -> Result<(), StoreError> {
        self.execute(sqlx::query("DELETE FROM invocations WHERE id = $1 AND state = 'running'").bind(id), "releasing an invocation")
            .await?;
        Ok(())
    }
}
