//! Pending changes, cooldowns and released claims of the alarm functions, on both backends.

#[macro_use]
mod common;

use iaas_store::{Moref, UserId};
use std::time::Duration;

use common::Db;
use iaas_store::{Begin, NewInvocation, PendingChange};

test_both_backends!(pending_changes_merge_and_clear, cooldowns_are_exclusive_until_they_lapse, released_claims_run_again);

fn change(cpus: Option<i64>, memory_mb: Option<i64>, at: i64) -> PendingChange {
    PendingChange { vm_moref: "vm-7".into(), vm_name: "app-web-02".into(), cpus, memory_mb, reason: "alarm".into(), created_at_ms: at }
}

async fn pending_changes_merge_and_clear(db: Db) {
    let s = &db.store;
    assert_eq!(s.pending_change(&Moref::from("vm-7")).await.unwrap(), None);
    s.put_pending_change(&change(Some(3), None, 1)).await.unwrap();
    s.put_pending_change(&change(None, Some(6144), 2)).await.unwrap();
    let merged = s.pending_change(&Moref::from("vm-7")).await.unwrap().unwrap();
    assert_eq!((merged.cpus, merged.memory_mb, merged.created_at_ms), (Some(3), Some(6144), 2));
    // An older read does not clear a newer change.
    s.clear_pending_change(&change(Some(3), None, 1)).await.unwrap();
    assert!(s.pending_change(&Moref::from("vm-7")).await.unwrap().is_some());
    s.clear_pending_change(&merged).await.unwrap();
    assert_eq!(s.pending_change(&Moref::from("vm-7")).await.unwrap(), None);
}

async fn cooldowns_are_exclusive_until_they_lapse(db: Db) {
    let s = &db.store;
    assert_eq!(s.start_cooldown("scale:cpu:vm-7", 600).await.unwrap(), Ok(()));
    let until = s.start_cooldown("scale:cpu:vm-7", 600).await.unwrap().unwrap_err();
    assert!(until > chrono::Utc::now().timestamp_millis() + 500_000);
    assert_eq!(s.start_cooldown("scale:memory:vm-7", 600).await.unwrap(), Ok(()), "keys are independent");
    s.clear_cooldown("scale:cpu:vm-7").await.unwrap();
    assert_eq!(s.start_cooldown("scale:cpu:vm-7", 0).await.unwrap(), Ok(()));
    // A zero-length cooldown has lapsed by the next call.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(s.start_cooldown("scale:cpu:vm-7", 600).await.unwrap(), Ok(()));
}

async fn released_claims_run_again(db: Db) {
    let s = &db.store;
    let inv = NewInvocation {
        id: "https://vc/sdk#e1".into(),
        function: "iaas-scale".into(),
        command: "event".into(),
        args_json: "{}".into(),
        slack_user: UserId::from(String::new()),
        channel: String::new(),
        issued_at_ms: 1,
    };
    let lease = Duration::from_secs(600);
    assert_eq!(s.begin_invocation(&inv, lease).await.unwrap(), Begin::Fresh);
    assert!(matches!(s.begin_invocation(&inv, lease).await.unwrap(), Begin::InProgress { .. }));
    s.release_invocation(&inv.id).await.unwrap();
    assert_eq!(s.begin_invocation(&inv, lease).await.unwrap(), Begin::Fresh);
    s.finish_invocation(&inv.id, &iaas_store::Outcome::new(true, "done")).await.unwrap();
    s.release_invocation(&inv.id).await.unwrap();
    assert!(matches!(s.begin_invocation(&inv, lease).await.unwrap(), Begin::Done(_)), "a finished claim is kept");
}
