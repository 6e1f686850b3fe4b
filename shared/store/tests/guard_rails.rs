//! Audit trail, quota reservations under concurrency, and VM change locks, on both backends.

#[macro_use]
mod common;

use iaas_store::UserId;
use std::sync::Arc;

use common::Db;
use iaas_store::{AuditEntry, AuditFilter, Usage};

test_both_backends!(audit_is_filtered_newest_first, concurrent_reservations_never_exceed_the_limit, vm_lock_is_exclusive_and_lapses);

fn entry(at_ms: i64, actor: &str, vm: Option<&str>, decision: &str) -> AuditEntry {
    AuditEntry {
        at_ms,
        request_id: format!("r{at_ms}"),
        actor: actor.into(),
        command: "power off x".into(),
        vm: vm.map(String::from),
        stage: "gateway".into(),
        decision: decision.into(),
        reason: "because".into(),
        duration_ms: None,
    }
}

async fn audit_is_filtered_newest_first(db: Db) {
    let s = &db.store;
    s.audit(&entry(1, "U1", Some("app-web-01"), "allowed")).await.unwrap();
    s.audit(&entry(2, "U2", Some("app-db-01"), "denied")).await.unwrap();
    s.audit(&entry(3, "U1", None, "done")).await.unwrap();
    let all = s.audit_entries(&AuditFilter::default(), 10).await.unwrap();
    assert_eq!(all.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [3, 2, 1]);
    let u1 = s.audit_entries(&AuditFilter { actor: Some("U1".into()), ..Default::default() }, 10).await.unwrap();
    assert_eq!(u1.len(), 2);
    let vm = s.audit_entries(&AuditFilter { vm: Some("APP-DB-01".into()), ..Default::default() }, 10).await.unwrap();
    assert_eq!(vm, vec![entry(2, "U2", Some("app-db-01"), "denied")]);
    let since = s.audit_entries(&AuditFilter { since_ms: Some(2), ..Default::default() }, 1).await.unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].at_ms, 3);
}

async fn concurrent_reservations_never_exceed_the_limit(db: Db) {
    let store = Arc::new(db.store.clone());
    let limit = Usage { vms: 3, cpus: 100, memory_mb: 1_000_000 };
    let one = Usage { vms: 1, cpus: 2, memory_mb: 4096 };
    let tries = (0..12).map(|_| {
        let s = store.clone();
        tokio::spawn(async move { s.reserve_quota(&UserId::from("U1"), one, limit).await.unwrap() })
    });
    let mut granted = 0;
    for t in tries {
        granted += t.await.unwrap() as i64;
    }
    assert_eq!(granted, 3);
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap(), Usage { vms: 3, cpus: 6, memory_mb: 12288 });
    store.release_quota(&UserId::from("U1"), one).await.unwrap();
    assert!(store.reserve_quota(&UserId::from("U1"), one, limit).await.unwrap());
    assert!(!store.reserve_quota(&UserId::from("U1"), one, limit).await.unwrap());
    // Other users are not affected; releasing more than held floors at zero.
    assert_eq!(store.quota_usage(&UserId::from("U2")).await.unwrap(), Usage::default());
    store.release_quota(&UserId::from("U1"), Usage { vms: 10, cpus: 10, memory_mb: 100_000 }).await.unwrap();
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap(), Usage::default());
}

async fn vm_lock_is_exclusive_and_lapses(db: Db) {
    let s = &db.store;
    assert_eq!(s.lock_vm("App-Web-01", "inv-1", "power off app-web-01", "U1", 60_000).await.unwrap(), Ok(()));
    let held = s.lock_vm("app-web-01", "inv-2", "resize app-web-01", "U2", 60_000).await.unwrap().unwrap_err();
    assert_eq!((held.holder.as_str(), held.command.as_str(), held.actor.as_str()), ("inv-1", "power off app-web-01", "U1"));
    // The holder may take it again (a redelivery); others may lock other VMs.
    assert_eq!(s.lock_vm("app-web-01", "inv-1", "power off app-web-01", "U1", 60_000).await.unwrap(), Ok(()));
    assert_eq!(s.lock_vm("app-db-01", "inv-2", "resize app-db-01", "U2", 60_000).await.unwrap(), Ok(()));
    // Only the holder unlocks.
    s.unlock_vm("app-web-01", "inv-2").await.unwrap();
    assert!(s.lock_vm("app-web-01", "inv-3", "x", "U3", 60_000).await.unwrap().is_err());
    s.unlock_vm("app-web-01", "inv-1").await.unwrap();
    assert_eq!(s.lock_vm("app-web-01", "inv-3", "x", "U3", 0).await.unwrap(), Ok(()));
    // A lapsed lock (lease 0) is taken over.
    assert_eq!(s.lock_vm("app-web-01", "inv-4", "y", "U4", 60_000).await.unwrap(), Ok(()));
}
