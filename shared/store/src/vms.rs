//! The bot's record of the VMs it created, cloned or deployed.

use sqlx::Row;

use iaas_ids::{InvocationId, Moref, UserId, VmName};

use crate::{now_ms, Store, StoreError};

#[derive(Clone, Debug, PartialEq)]
pub struct VmRecord {
    pub vm_moref: Moref,
    pub vm_name: VmName,
    pub owner_user: UserId,
    pub owner_email: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub source: String,
    pub invocation_id: InvocationId,
    pub deleted_at_ms: Option<i64>,
}

impl Store {
    /// Records a new VM; a redelivered invocation recording the same moref changes nothing.
    pub async fn record_vm(&self, vm: &VmRecord) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "INSERT INTO vms (vm_moref, vm_name, owner_user, owner_email, created_at_ms, expires_at_ms, source, invocation_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (vm_moref) DO NOTHING",
            )
            .bind(&vm.vm_moref)
            .bind(&vm.vm_name)
            .bind(&vm.owner_user)
            .bind(&vm.owner_email)
            .bind(vm.created_at_ms)
            .bind(vm.expires_at_ms)
            .bind(&vm.source)
            .bind(&vm.invocation_id),
            "recording a new VM",
        )
        .await?;
        Ok(())
    }

    pub async fn mark_vm_deleted(&self, vm_moref: &Moref) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE vms SET deleted_at_ms = $1 WHERE vm_moref = $2 AND deleted_at_ms IS NULL").bind(now_ms()).bind(vm_moref),
            "marking a VM deleted",
        )
        .await?;
        Ok(())
    }

    pub async fn vm_record(&self, vm_moref: &Moref) -> Result<Option<VmRecord>, StoreError> {
        let row = self.fetch_optional(sqlx::query(
            "SELECT vm_moref, vm_name, owner_user, owner_email, created_at_ms, expires_at_ms, source, invocation_id, deleted_at_ms \
             FROM vms WHERE vm_moref = $1",
        )
        .bind(vm_moref), "reading a VM record").await?;
        Ok(row.map(|r| VmRecord {
            vm_moref: r.get("vm_moref"),
            vm_name: r.get("vm_name"),
            owner_user: r.get("owner_user"),
            owner_email: r.get("owner_email"),
            created_at_ms: r.get("created_at_ms"),
            expires_at_ms: r.get("expires_at_ms"),
            source: r.get("source"),
            invocation_id: r.get("invocation_id"),
            deleted_at_ms: r.get("deleted_at_ms"),
        }))
    }
}
