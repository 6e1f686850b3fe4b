//! Datastore space held for VMs being made: what create, clone and deploy reserve before vCenter
//! starts the task, so two requests in flight cannot both take the last space a datastore's
//! headroom leaves. A reservation lapses at its expiry (a worker that died holds nothing for long).

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{now_ms, query_err, Store, StoreError};

/// What [`Store::reserve_space`] reserves, for whom and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceRequest<'a> {
    /// The invocation making the VM; one reservation per holder (a new one replaces it).
    pub holder: &'a str,
    /// The datastore's moref.
    pub datastore: &'a str,
    pub bytes: u64,
    /// What the datastore may still give: its free space less its headroom, as vCenter said a
    /// moment ago. Negative when it is already below the headroom.
    pub allowance: i64,
    /// How long the reservation lasts unless released or extended.
    pub lease_ms: i64,
}

fn as_i64(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

impl Store {
    /// Reserves `bytes` on the datastore for `holder` when the live reservations there plus
    /// these stay within `allowance`; `false` (and nothing reserved) otherwise. A lapsed
    /// reservation counts for nothing, and `holder`'s own earlier one is replaced.
    ///
    /// One transaction: the datastore's row is written first (on PostgreSQL its row lock makes
    /// a second reservation on the same datastore wait for the first to commit, and its next
    /// statement then sees it; SQLite's `BEGIN IMMEDIATE` serializes all writers), then one
    /// conditional INSERT decides.
    pub async fn reserve_space(&self, r: &SpaceRequest<'_>) -> Result<bool, StoreError> {
        let err = || query_err("reserving datastore space");
        let now = now_ms();
        let mut tx = self.write_tx().await.map_err(err())?;
        sqlx::query("INSERT INTO space_datastores (datastore) VALUES ($1) ON CONFLICT (datastore) DO NOTHING")
            .bind(r.datastore)
            .execute(&mut *tx)
            .await
            .map_err(err())?;
        sqlx::query("UPDATE space_datastores SET reservations = reservations + 1 WHERE datastore = $1")
            .bind(r.datastore)
            .execute(&mut *tx)
            .await
            .map_err(err())?;
        sqlx::query("DELETE FROM space_reservations WHERE holder = $1 OR (datastore = $2 AND expires_at_ms <= $3)")
            .bind(r.holder)
            .bind(r.datastore)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(err())?;
        let inserted = sqlx::query(
            "INSERT INTO space_reservations (holder, datastore, bytes, expires_at_ms) SELECT $1, $2, $3, $4 \
             WHERE (SELECT COALESCE(SUM(bytes), 0) FROM space_reservations WHERE datastore = $2 AND expires_at_ms > $5) + $3 <= $6",
        )
        .bind(r.holder)
        .bind(r.datastore)
        .bind(as_i64(r.bytes))
        .bind(now.saturating_add(r.lease_ms))
        .bind(now)
        .bind(r.allowance)
        .execute(&mut *tx)
        .await
        .map_err(err())?;
        tx.commit().await.map_err(err())?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Gives back what `holder` reserved (the VM exists, or the request failed). Nothing held is fine.
    pub async fn release_space(&self, holder: &str) -> Result<(), StoreError> {
        self.execute(sqlx::query("DELETE FROM space_reservations WHERE holder = $1").bind(holder), "releasing datastore space").await?;
        Ok(())
    }

    /// Keeps `holder`'s reservation for `lease_ms` from now (a task that outlives the first wait).
    pub async fn extend_space(&self, holder: &str, lease_ms: i64) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE space_reservations SET expires_at_ms = $1 WHERE holder = $2")
                .bind(now_ms().saturating_add(lease_ms))
                .bind(holder),
            "extending a datastore space reservation",
        )
        .await?;
        Ok(())
    }

    /// Bytes reserved and not lapsed, by datastore moref (datastores with none are left out).
    pub async fn space_reserved(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = self.fetch_all(sqlx::query(
            "SELECT datastore, CAST(SUM(bytes) AS BIGINT) AS bytes FROM space_reservations WHERE expires_at_ms > $1 GROUP BY datastore",
        )
        .bind(now_ms()), "reading datastore space reservations").await?;
        Ok(rows.into_iter().map(|r| (r.get::<String, _>("datastore"), r.get::<i64, _>("bytes").max(0) as u64)).collect())
    }
}
