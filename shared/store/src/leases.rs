//! VM leases: expiry dates, what the sweep did, reminders sent once per term, and claims so two
//! sweeps never act on the same lease.

use sqlx::any::AnyRow;
use sqlx::Row;

use iaas_ids::{Moref, UserId, VmName, VmRef};

use crate::guard_rails::settle_deleted_vm;
use crate::{now_ms, query_err, text_col, Store, StoreError, Usage};

#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub vm_moref: Moref,
    pub vm_name: VmName,
    pub owner_user: UserId,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub state: LeaseState,
    pub state_reason: String,
    pub powered_off_at_ms: Option<i64>,
}

iaas_config::text_enum! {
    /// Where a lease is: active → powered_off → deleted (or decommissioning), and the ends beside.
    pub enum LeaseState as "lease state" {
        Active = "active",
        /// Expired and powered off; deleted after the grace period unless extended.
        PoweredOff = "powered_off",
        Deleted = "deleted",
        /// A reminder could not be delivered, or the VM is protected: nothing happens until an admin looks.
        Held = "held",
        Excluded = "excluded",
        /// The VM is gone.
        Closed = "closed",
        /// Expired and handed to a decommission request (its id is the reason).
        Decommissioning = "decommissioning",
        /// The sweep is deleting the VM; its quota share is recorded with the lease until the
        /// change to deleted gives it back (a sweep that died midway is finished by the next).
        Deleting = "deleting",
    }
}

impl Lease {
    pub fn vm(&self) -> VmRef {
        VmRef { moref: self.vm_moref.clone(), name: self.vm_name.clone() }
    }
}

impl LeaseState {
    /// Still watched, so listed by default.
    pub fn is_live(self) -> bool {
        match self {
            LeaseState::Active | LeaseState::PoweredOff | LeaseState::Held | LeaseState::Decommissioning | LeaseState::Deleting => true,
            LeaseState::Deleted | LeaseState::Excluded | LeaseState::Closed => false,
        }
    }

    /// The sweep acts on it when it falls due.
    pub fn is_swept(self) -> bool {
        match self {
            LeaseState::Active | LeaseState::PoweredOff | LeaseState::Deleting => true,
            LeaseState::Deleted | LeaseState::Held | LeaseState::Excluded | LeaseState::Closed | LeaseState::Decommissioning => false,
        }
    }

    /// Its expiry may still be acted on: powered off, deleted, or handed to decommission.
    pub fn is_expirable(self) -> bool {
        match self {
            LeaseState::Active | LeaseState::PoweredOff => true,
            LeaseState::Deleting
            | LeaseState::Deleted
            | LeaseState::Held
            | LeaseState::Excluded
            | LeaseState::Closed
            | LeaseState::Decommissioning => false,
        }
    }

    /// A new expiry makes the lease active again (its VM still exists and nothing else owns it).
    pub fn reopened_by_new_expiry(self) -> bool {
        match self {
            LeaseState::Held | LeaseState::PoweredOff | LeaseState::Excluded => true,
            LeaseState::Active | LeaseState::Deleted | LeaseState::Closed | LeaseState::Decommissioning | LeaseState::Deleting => false,
        }
    }

    /// The SQL `IN` list of the states for which `which` holds.
    pub(crate) fn sql_where(which: fn(LeaseState) -> bool) -> String {
        crate::sql_list(LeaseState::ALL.iter().filter(|s| which(**s)).map(|s| s.as_str()))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaseFilter {
    pub owner: Option<UserId>,
    /// Only leases expiring before this time.
    pub expiring_before_ms: Option<i64>,
    /// Include deleted, closed and excluded leases.
    pub include_finished: bool,
}

const COLUMNS: &str = "vm_moref, vm_name, owner_user, created_at_ms, expires_at_ms, state, state_reason, powered_off_at_ms";

fn lease(r: AnyRow) -> Result<Lease, StoreError> {
    Ok(Lease {
        vm_moref: r.get("vm_moref"),
        vm_name: r.get("vm_name"),
        owner_user: r.get("owner_user"),
        created_at_ms: r.get("created_at_ms"),
        expires_at_ms: r.get("expires_at_ms"),
        state: text_col(&r, "state")?,
        state_reason: r.get("state_reason"),
        powered_off_at_ms: r.get("powered_off_at_ms"),
    })
}

impl Store {
    /// Starts a lease unless the VM has one (a redelivered event or invocation changes nothing),
    /// except that a lease opened without an owner (from a vCenter event that raced the bot's own
    /// create) takes the owner given now. Returns whether anything changed.
    pub async fn open_lease(
        &self,
        vm: &VmRef,
        owner: &UserId,
        created_at_ms: i64,
        expires_at_ms: i64,
        state: LeaseState,
    ) -> Result<bool, StoreError> {
        let done = self.execute(sqlx::query(
            "INSERT INTO leases (vm_moref, vm_name, owner_user, created_at_ms, expires_at_ms, state, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (vm_moref) DO UPDATE SET owner_user = excluded.owner_user WHERE leases.owner_user = '' AND excluded.owner_user <> ''",
        )
        .bind(&vm.moref)
        .bind(&vm.name)
        .bind(owner)
        .bind(created_at_ms)
        .bind(expires_at_ms)
        .bind(state.as_str())
        .bind(now_ms()), "opening a lease").await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn lease(&self, vm_moref: &Moref) -> Result<Option<Lease>, StoreError> {
        let row = self
            .fetch_optional(sqlx::query(&format!("SELECT {COLUMNS} FROM leases WHERE vm_moref = $1")).bind(vm_moref), "reading a lease")
            .await?;
        row.map(lease).transpose()
    }

    /// Soonest expiry first.
    pub async fn leases(&self, f: &LeaseFilter, limit: u32) -> Result<Vec<Lease>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM leases WHERE ($1 IS NULL OR owner_user = $1) AND ($2 IS NULL OR expires_at_ms < $2) \
                     AND ($3 = 1 OR state IN {}) ORDER BY expires_at_ms, vm_name LIMIT $4",
                    LeaseState::sql_where(LeaseState::is_live)
                ))
                .bind(&f.owner)
                .bind(f.expiring_before_ms)
                .bind(i64::from(f.include_finished))
                .bind(i64::from(limit)),
                "listing leases",
            )
            .await?;
        rows.into_iter().map(lease).collect()
    }

    /// Leases the sweep must look at by `horizon_ms` (now + the earliest reminder), whose claim
    /// has lapsed. One indexed range query: a sweep with nothing due reads nothing else.
    pub async fn leases_due(&self, horizon_ms: i64, now_ms: i64, limit: u32) -> Result<Vec<Lease>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM leases WHERE state IN {} AND expires_at_ms <= $1 \
                     AND claimed_until_ms < $2 ORDER BY expires_at_ms LIMIT $3",
                    LeaseState::sql_where(LeaseState::is_swept)
                ))
                .bind(horizon_ms)
                .bind(now_ms)
                .bind(i64::from(limit)),
                "finding leases due",
            )
            .await?;
        rows.into_iter().map(lease).collect()
    }

    /// Claims a lease for one sweep until `until_ms`; of concurrent sweeps exactly one wins.
    pub async fn claim_lease(&self, vm_moref: &Moref, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        let done = self
            .execute(
                sqlx::query("UPDATE leases SET claimed_by = $1, claimed_until_ms = $2 WHERE vm_moref = $3 AND claimed_until_ms < $4")
                    .bind(holder)
                    .bind(until_ms)
                    .bind(vm_moref)
                    .bind(now_ms),
                "claiming a lease",
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn release_lease(&self, vm_moref: &Moref, holder: &str) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE leases SET claimed_by = NULL, claimed_until_ms = 0 WHERE vm_moref = $1 AND claimed_by = $2")
                .bind(vm_moref)
                .bind(holder),
            "releasing a lease claim",
        )
        .await?;
        Ok(())
    }

    pub async fn set_lease_expiry(&self, vm_moref: &Moref, expires_at_ms: i64) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(&format!(
                "UPDATE leases SET expires_at_ms = $1, state = CASE WHEN state IN {} THEN $4 ELSE state END, state_reason = '', \
                 updated_at_ms = $2 WHERE vm_moref = $3",
                LeaseState::sql_where(LeaseState::reopened_by_new_expiry)
            ))
            .bind(expires_at_ms)
            .bind(now_ms())
            .bind(vm_moref)
            .bind(LeaseState::Active.as_str()),
            "changing a lease's expiry",
        )
        .await?;
        Ok(())
    }

    pub async fn set_lease_state(&self, vm_moref: &Moref, state: LeaseState, reason: &str, at_ms: i64) -> Result<(), StoreError> {
        let powered_off = (state == LeaseState::PoweredOff).then_some(at_ms);
        self.execute(sqlx::query(
            "UPDATE leases SET state = $1, state_reason = $2, powered_off_at_ms = COALESCE($3, powered_off_at_ms), updated_at_ms = $4 WHERE vm_moref = $5",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(powered_off)
        .bind(at_ms)
        .bind(vm_moref), "changing a lease's state").await?;
        Ok(())
    }

    /// The sweep is about to delete the lease's VM: powered_off → deleting, with the VM's quota
    /// share recorded. False (nothing changed) when the lease is no longer powered off.
    pub async fn begin_lease_delete(&self, vm_moref: &Moref, share: Usage, at_ms: i64) -> Result<bool, StoreError> {
        let done = self.execute(sqlx::query(
            "UPDATE leases SET state = $1, share_cpus = $2, share_memory_mb = $3, updated_at_ms = $4 WHERE vm_moref = $5 AND state = $6",
        )
        .bind(LeaseState::Deleting.as_str())
        .bind(share.cpus)
        .bind(share.memory_mb)
        .bind(at_ms)
        .bind(vm_moref)
        .bind(LeaseState::PoweredOff.as_str()), "recording a lease's deletion").await?;
        Ok(done.rows_affected() == 1)
    }

    /// The VM is gone: deleting → deleted and, in the same transaction, the bot's record of the
    /// VM marked deleted and its owner's quota share given back. Only the call that moves the
    /// lease does this, so a repeated or resumed sweep never gives the share back twice.
    pub async fn finish_lease_delete(&self, vm_moref: &Moref, reason: &str, at_ms: i64) -> Result<bool, StoreError> {
        let err = || query_err("recording a lease's deletion");
        let mut tx = self.write_tx().await.map_err(err())?;
        let Some(row) = sqlx::query("SELECT share_cpus, share_memory_mb FROM leases WHERE vm_moref = $1 AND state = $2")
            .bind(vm_moref)
            .bind(LeaseState::Deleting.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err())?
        else {
            return Ok(false);
        };
        let share = Usage {
            vms: 1,
            cpus: row.get::<Option<i64>, _>("share_cpus").unwrap_or(0),
            memory_mb: row.get::<Option<i64>, _>("share_memory_mb").unwrap_or(0),
        };
        let moved = sqlx::query(
            "UPDATE leases SET state = $1, state_reason = $2, share_cpus = NULL, share_memory_mb = NULL, updated_at_ms = $3 \
             WHERE vm_moref = $4 AND state = $5",
        )
        .bind(LeaseState::Deleted.as_str())
        .bind(reason)
        .bind(at_ms)
        .bind(vm_moref)
        .bind(LeaseState::Deleting.as_str())
        .execute(&mut *tx)
        .await
        .map_err(err())?;
        if moved.rows_affected() != 1 {
            return Ok(false); // another sweep finished it meanwhile
        }
        settle_deleted_vm(&mut tx, vm_moref, share, at_ms).await?;
        tx.commit().await.map_err(err())?;
        Ok(true)
    }

    /// Whether this reminder (days before this term's expiry) was already sent.
    pub async fn reminder_sent(&self, vm_moref: &Moref, expires_at_ms: i64, days_before: i64) -> Result<bool, StoreError> {
        let row = self
            .fetch_optional(
                sqlx::query("SELECT 1 AS one FROM lease_reminders WHERE vm_moref = $1 AND expires_at_ms = $2 AND days_before = $3")
                    .bind(vm_moref)
                    .bind(expires_at_ms)
                    .bind(days_before),
                "reading reminders",
            )
            .await?;
        Ok(row.is_some())
    }

    /// Records a delivered reminder (the first one of a term starts the notice period).
    pub async fn record_reminder(&self, vm_moref: &Moref, expires_at_ms: i64, days_before: i64, sent_at_ms: i64) -> Result<(), StoreError> {
        self.execute(sqlx::query(
            "INSERT INTO lease_reminders (vm_moref, expires_at_ms, days_before, sent_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(vm_moref)
        .bind(expires_at_ms)
        .bind(days_before)
        .bind(sent_at_ms), "recording a reminder").await?;
        Ok(())
    }

    /// The earliest reminder delivered for this term, if any.
    pub async fn first_reminder(&self, vm_moref: &Moref, expires_at_ms: i64) -> Result<Option<i64>, StoreError> {
        let row = self
            .fetch_one(
                sqlx::query("SELECT MIN(sent_at_ms) AS first FROM lease_reminders WHERE vm_moref = $1 AND expires_at_ms = $2")
                    .bind(vm_moref)
                    .bind(expires_at_ms),
                "reading reminders",
            )
            .await?;
        Ok(row.get::<Option<i64>, _>("first"))
    }
}
