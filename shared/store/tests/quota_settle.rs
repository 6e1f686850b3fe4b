//! A deleted VM's quota share is given back once, with its record (and, for the lease sweep,
//! with the lease's change to deleted), on both backends.

#[macro_use]
mod common;

use common::Db;
use iaas_store::{LeaseState, Store, Usage, VmRecord};
use iaas_store::{Moref, UserId, VmRef};

test_both_backends!(a_deleted_vm_gives_its_share_back_once, the_lease_sweep_settles_with_the_lease_once);

const SHARE: Usage = Usage { vms: 1, cpus: 2, memory_mb: 2048 };
const LIMIT: Usage = Usage { vms: 10, cpus: 100, memory_mb: 1 << 20 };

/// U1 owns two bot-made VMs of SHARE each; vm-1 has a lease.
async fn two_vms(s: &Store) {
    for (moref, name) in [("vm-1", "web-1"), ("vm-2", "web-2")] {
        s.record_vm(&VmRecord {
            vm_moref: moref.into(),
            vm_name: name.into(),
            owner_user: "U1".into(),
            owner_email: None,
            created_at_ms: 1,
            expires_at_ms: Some(1000),
            source: "create".into(),
            invocation_id: format!("inv-{moref}").into(),
            deleted_at_ms: None,
        })
        .await
        .unwrap();
        assert!(s.reserve_quota(&UserId::from("U1"), SHARE, LIMIT).await.unwrap());
    }
    s.open_lease(&VmRef::new("vm-1", "web-1"), &UserId::from("U1"), 1, 1000, LeaseState::Active).await.unwrap();
}

async fn a_deleted_vm_gives_its_share_back_once(db: Db) {
    let s = &db.store;
    two_vms(s).await;
    // Two deleters at once (a delete press and a decommission, say): one gives back.
    let vm1 = Moref::from("vm-1");
    let (a, b) = tokio::join!(s.vm_deleted(&vm1, SHARE), s.vm_deleted(&vm1, SHARE));
    assert!(a.unwrap() ^ b.unwrap(), "exactly one settles");
    assert_eq!(s.quota_usage(&UserId::from("U1")).await.unwrap(), SHARE);
    assert!(!s.vm_deleted(&Moref::from("vm-1"), SHARE).await.unwrap());
    assert_eq!(s.quota_usage(&UserId::from("U1")).await.unwrap(), SHARE, "not twice");
    assert!(s.vm_record(&Moref::from("vm-1")).await.unwrap().unwrap().deleted_at_ms.is_some());
    // A VM the bot did not make holds no quota.
    assert!(!s.vm_deleted(&Moref::from("vm-99"), SHARE).await.unwrap());
    assert_eq!(s.quota_usage(&UserId::from("U1")).await.unwrap(), SHARE);
}

async fn the_lease_sweep_settles_with_the_lease_once(db: Db) {
    let s = &db.store;
    two_vms(s).await;
    assert!(!s.begin_lease_delete(&Moref::from("vm-1"), SHARE, 5).await.unwrap(), "only a powered-off lease is deleted");
    s.set_lease_state(&Moref::from("vm-1"), LeaseState::PoweredOff, "expired", 2).await.unwrap();
    assert!(!s.finish_lease_delete(&Moref::from("vm-1"), "gone", 6).await.unwrap(), "nothing begun");
    assert!(s.begin_lease_delete(&Moref::from("vm-1"), SHARE, 5).await.unwrap());
    assert!(!s.begin_lease_delete(&Moref::from("vm-1"), SHARE, 5).await.unwrap(), "begun once");
    assert_eq!(s.lease(&Moref::from("vm-1")).await.unwrap().unwrap().state, LeaseState::Deleting);
    assert_eq!(s.quota_usage(&UserId::from("U1")).await.unwrap().vms, 2, "charged until the VM is gone");

    let vm1 = Moref::from("vm-1");
    let (a, b) = tokio::join!(s.finish_lease_delete(&vm1, "gone", 6), s.finish_lease_delete(&vm1, "gone", 6));
    assert!(a.unwrap() ^ b.unwrap(), "exactly one finishes");
    let lease = s.lease(&Moref::from("vm-1")).await.unwrap().unwrap();
    assert_eq!((lease.state, lease.state_reason.as_str()), (LeaseState::Deleted, "gone"));
    assert_eq!(s.quota_usage(&UserId::from("U1")).await.unwrap(), SHARE);
    assert!(s.vm_record(&Moref::from("vm-1")).await.unwrap().unwrap().deleted_at_ms.is_some());
    // Another path deleting the same VM afterwards gives nothing more back.
    assert!(!s.vm_deleted(&Moref::from("vm-1"), SHARE).await.unwrap());
    assert_eq!(s.quota_usage(&UserId::from("U1")).await.unwrap(), SHARE);
}
