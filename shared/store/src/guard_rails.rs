//! The store side of the guard rails: the append-only audit trail, quota reservations, and
//! one change per VM at a time. Each check-and-change is one conditional statement, so it is
//! atomic on SQLite and PostgreSQL alike.

use sqlx::Row;

use iaas_ids::{Moref, UserId};

use crate::{now_ms, query_err, Store, StoreError};

#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub request_id: String,
    pub actor: String,
    pub command: String,
    pub vm: Option<String>,
    /// `gateway` for the decision before the ack, else the function's name.
    pub stage: String,
    /// `allowed`, `denied`, `done`, `failed`.
    pub decision: String,
    pub reason: String,
    pub duration_ms: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub vm: Option<String>,
    pub since_ms: Option<i64>,
}

/// Resources a request would add to its owner's usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub vms: i64,
    pub cpus: i64,
    pub memory_mb: i64,
}

/// A VM's change lock is held by another request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHeld {
    pub holder: String,
    pub command: String,
    pub actor: String,
}

/// Gives back ($1 VMs, $2 vCPUs, $3 MB) of user $4's usage, never below zero.
const RELEASE_QUOTA: &str = "UPDATE quota_usage SET vms = CASE WHEN vms > $1 THEN vms - $1 ELSE 0 END, \
                             cpus = CASE WHEN cpus > $2 THEN cpus - $2 ELSE 0 END, \
                             memory_mb = CASE WHEN memory_mb > $3 THEN memory_mb - $3 ELSE 0 END WHERE slack_user = $4";

/// Rows per INSERT in [`Store::audit_batch`]: 9 parameters each, 900 in all, under SQLite's
/// historical limit of 999 bound parameters per statement.
const AUDIT_ROWS_PER_INSERT: usize = 100;

/// Binds an entry's nine columns in the order the INSERTs name them.
fn bind_audit<'q>(query: AnyQuery<'q>, e: &'q AuditEntry) -> AnyQuery<'q> {
    query
        .bind(e.at_ms)
        .bind(&e.request_id)
        .bind(&e.actor)
        .bind(&e.command)
        .bind(&e.vm)
        .bind(&e.stage)
        .bind(&e.decision)
        .bind(&e.reason)
        .bind(e.duration_ms)
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl Store {
    /// Appends to the audit trail (never updated or deleted).
    pub async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let insert = sqlx::query(
            "INSERT INTO audit (at_ms, request_id, actor, command, vm, stage, decision, reason, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        );
        self.execute(bind_audit(insert, e), "appending to the audit trail").await?;
        Ok(())
    }

    /// Appends several entries in one transaction: all or none. The gateway's audit writer
    /// batches its decisions so a burst of commands costs one commit and a few statements, not
    /// one of each per command: rows go in multi-row INSERTs of up to [`AUDIT_ROWS_PER_INSERT`].
    pub async fn audit_batch(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let err = || query_err("appending to the audit trail");
        let mut tx = self.write_tx().await.map_err(err())?;
        for chunk in entries.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut sql = String::with_capacity(120 + chunk.len() * 48);
            sql.push_str("INSERT INTO audit (at_ms, request_id, actor, command, vm, stage, decision, reason, duration_ms) VALUES ");
            for row in 0..chunk.len() {
                let first = row * 9 + 1;
                sql.push_str(if row == 0 { "(" } else { ", (" });
                for col in 0..9 {
                    sql.push_str(if col == 0 { "$" } else { ", $" });
                    sql.push_str(&(first + col).to_string());
                }
                sql.push(')');
            }
            let mut query = sqlx::query(&sql);
            for e in chunk {
                query = bind_audit(query, e);
            }
            // One statement text per batch size: not worth a slot in the statement cache.
            query.persistent(false).execute(&mut *tx).await.map_err(err())?;
        }
        tx.commit().await.map_err(err())?;
        Ok(())
    }

    /// Newest first.
    pub async fn audit_entries(&self, f: &AuditFilter, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT at_ms, request_id, actor, command, vm, stage, decision, reason, duration_ms FROM audit \
                     WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR lower(vm) = lower($2)) AND ($3 IS NULL OR at_ms >= $3) \
                     ORDER BY at_ms DESC, seq DESC LIMIT $4",
                )
                .bind(&f.actor)
                .bind(&f.vm)
                .bind(f.since_ms)
                .bind(i64::from(limit)),
                "reading the audit trail",
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                at_ms: r.get("at_ms"),
                request_id: r.get("request_id"),
                actor: r.get("actor"),
                command: r.get("command"),
                vm: r.get("vm"),
                stage: r.get("stage"),
                decision: r.get("decision"),
                reason: r.get("reason"),
                duration_ms: r.get("duration_ms"),
            })
            .collect())
    }

    /// Adds `add` to the user's usage if the result stays within `limit`; `false` (and no change)
    /// otherwise. One conditional UPDATE: concurrent requests cannot both pass.
    pub async fn reserve_quota(&self, user: &UserId, add: Usage, limit: Usage) -> Result<bool, StoreError> {
        self.execute(
            sqlx::query("INSERT INTO quota_usage (slack_user) VALUES ($1) ON CONFLICT (slack_user) DO NOTHING").bind(user),
            "preparing a quota reservation",
        )
        .await?;
        let reserved = self
            .execute(
                sqlx::query(
                    "UPDATE quota_usage SET vms = vms + $1, cpus = cpus + $2, memory_mb = memory_mb + $3 \
                     WHERE slack_user = $4 AND vms + $1 <= $5 AND cpus + $2 <= $6 AND memory_mb + $3 <= $7",
                )
                .bind(add.vms)
                .bind(add.cpus)
                .bind(add.memory_mb)
                .bind(user)
                .bind(limit.vms)
                .bind(limit.cpus)
                .bind(limit.memory_mb),
                "reserving quota",
            )
            .await?;
        Ok(reserved.rows_affected() == 1)
    }

    /// Gives back what a failed request or a deleted VM held (never below zero).
    pub async fn release_quota(&self, user: &UserId, give_back: Usage) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(RELEASE_QUOTA).bind(give_back.vms).bind(give_back.cpus).bind(give_back.memory_mb).bind(user),
            "releasing quota",
        )
        .await?;
        Ok(())
    }

    /// A VM the bot made was deleted: its record is marked deleted and `share` given back to its
    /// owner, in one transaction and only once (true when this call did it). VMs the bot did
    /// not make hold no quota and change nothing.
    pub async fn vm_deleted(&self, vm_moref: &Moref, share: Usage) -> Result<bool, StoreError> {
        let err = || query_err("recording a deleted VM");
        let mut tx = self.write_tx().await.map_err(err())?;
        let settled = settle_deleted_vm(&mut tx, vm_moref, share, now_ms()).await?;
        tx.commit().await.map_err(err())?;
        Ok(settled)
    }

    pub async fn quota_usage(&self, user: &UserId) -> Result<Usage, StoreError> {
        let row = self
            .fetch_optional(
                sqlx::query("SELECT vms, cpus, memory_mb FROM quota_usage WHERE slack_user = $1").bind(user),
                "reading quota usage",
            )
            .await?;
        Ok(row.map(|r| Usage { vms: r.get("vms"), cpus: r.get("cpus"), memory_mb: r.get("memory_mb") }).unwrap_or_default())
    }

    /// Takes the VM's change lock for `holder` until `lease_ms` from now, or says who holds it.
    /// A lapsed lock (a crashed worker) is taken over; the holder may take it again.
    pub async fn lock_vm(
        &self,
        vm: &str,
        holder: &str,
        command: &str,
        actor: &str,
        lease_ms: i64,
    ) -> Result<Result<(), LockHeld>, StoreError> {
        let vm = vm.to_lowercase();
        let now = now_ms();
        let expires = now.saturating_add(lease_ms);
        let inserted = self.execute(sqlx::query(
            "INSERT INTO vm_locks (vm, holder, command, actor, expires_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (vm) DO NOTHING",
        )
        .bind(&vm)
        .bind(holder)
        .bind(command)
        .bind(actor)
        .bind(expires), "locking a VM").await?;
        if inserted.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let taken = self
            .execute(
                sqlx::query(
                    "UPDATE vm_locks SET holder = $1, command = $2, actor = $3, expires_at_ms = $4 \
                     WHERE vm = $5 AND (expires_at_ms <= $6 OR holder = $1)",
                )
                .bind(holder)
                .bind(command)
                .bind(actor)
                .bind(expires)
                .bind(&vm)
                .bind(now),
                "taking over a lapsed VM lock",
            )
            .await?;
        if taken.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let row = self
            .fetch_optional(sqlx::query("SELECT holder, command, actor FROM vm_locks WHERE vm = $1").bind(&vm), "reading a VM lock")
            .await?;
        Ok(Err(row.map(|r| LockHeld { holder: r.get("holder"), command: r.get("command"), actor: r.get("actor") }).unwrap_or(LockHeld {
            holder: String::new(),
            command: "another change".into(),
            actor: String::new(),
        })))
    }

    /// Releases the lock if `holder` still holds it.
    pub async fn unlock_vm(&self, vm: &str, holder: &str) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("DELETE FROM vm_locks WHERE vm = $1 AND holder = $2").bind(vm.to_lowercase()).bind(holder),
            "unlocking a VM",
        )
        .await?;
        Ok(())
    }
}

/// Inside `tx`: marks the bot's record of the VM deleted and gives `share` back to its owner,
/// unless the record was already marked (then nothing). The conditional UPDATE decides, so of
/// two concurrent settlements exactly one gives back.
pub(crate) async fn settle_deleted_vm(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    vm_moref: &Moref,
    share: Usage,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let err = || query_err("giving a deleted VM's quota back");
    let marked = sqlx::query("UPDATE vms SET deleted_at_ms = $1 WHERE vm_moref = $2 AND deleted_at_ms IS NULL")
        .bind(at_ms)
        .bind(vm_moref)
        .execute(&mut **tx)
        .await
        .map_err(err())?;
    if marked.rows_affected() != 1 {
        return Ok(false);
    }
    let owner: String =
        sqlx::query_scalar("SELECT owner_user FROM vms WHERE vm_moref = $1").bind(vm_moref).fetch_one(&mut **tx).await.map_err(err())?;
    sqlx::query(RELEASE_QUOTA).bind(share.vms).bind(share.cpus).bind(share.memory_mb).bind(owner).execute(&mut **tx).await.map_err(err())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// More rows than one INSERT takes, with and without the optional columns, and odd text.
    async fn batch_is_written_whole(store: Store) {
        let entries: Vec<AuditEntry> = (0..(AUDIT_ROWS_PER_INSERT * 2 + 37) as i64)
            .map(|i| AuditEntry {
                at_ms: 1_700_000_000_000 + i,
                request_id: format!("req-{i:04}"),
                actor: format!("U{}", i % 7),
                command: "power off 'app-web-01'; --".into(),
                vm: (i % 3 != 0).then(|| format!("vm-{i}")),
                stage: "gateway".into(),
                decision: if i % 2 == 0 { "allowed" } else { "denied" }.into(),
                reason: format!("handed to iaas-power \u{2713} {i}"),
                duration_ms: (i % 5 == 0).then_some(i),
            })
            .collect();
        store.audit_batch(&entries).await.unwrap();
        store.audit_batch(&[]).await.unwrap();
        let mut back = store.audit_entries(&AuditFilter::default(), 10_000).await.unwrap();
        back.reverse();
        assert_eq!(back, entries);
    }

    #[tokio::test]
    async fn audit_batch_on_sqlite() {
        batch_is_written_whole(Store::connect("sqlite::memory:").await.unwrap()).await;
    }

    /// Against PostgreSQL when it is there (IAAS_TEST_POSTGRES_URL, default as in tests/common).
    #[tokio::test]
    async fn audit_batch_on_postgres() {
        let admin_url = std::env::var("IAAS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await else {
            eprintln!("no PostgreSQL at {admin_url}; skipped");
            return;
        };
        let name = format!("iaas_audit_batch_{}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
        let result = tokio::spawn(batch_is_written_whole(store)).await;
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
        result.unwrap();
    }
}
