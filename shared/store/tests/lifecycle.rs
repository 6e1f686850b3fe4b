//! Confirmations (single use, bound to user, expiring) and VM records, on both backends.

#[macro_use]
mod common;

use iaas_store::Moref;
use std::sync::Arc;

use common::Db;
use iaas_store::{ConfirmRefusal, Confirmation, Press, VmRecord};

test_both_backends!(confirmation_is_single_use_and_bound, concurrent_presses_confirm_once, vm_records_are_idempotent);

fn confirmation(token: &str, expires_at_ms: i64) -> Confirmation {
    Confirmation {
        token: token.into(),
        function: "iaas-delete".into(),
        action: "delete".into(),
        slack_user: "U1".into(),
        vm_moref: "vm-42".into(),
        vm_name: "app-web-02".into(),
        args_json: "{}".into(),
        expires_at_ms,
    }
}

fn press<'a>(user: &'a str, used_as: &'a str) -> Press<'a> {
    Press { user, function: "iaas-delete", action: "delete", used_as }
}

async fn confirmation_is_single_use_and_bound(db: Db) {
    let s = &db.store;
    s.create_confirmation(&confirmation("t1", 10_000)).await.unwrap();
    s.create_confirmation(&confirmation("t2", 10_000)).await.unwrap();

    assert_eq!(s.use_confirmation("nope", &press("U1", "confirm"), 1).await.unwrap(), Err(ConfirmRefusal::Unknown));
    assert_eq!(s.use_confirmation("t1", &press("U2", "confirm"), 1).await.unwrap(), Err(ConfirmRefusal::OtherUser { owner: "U1".into() }));
    assert_eq!(s.use_confirmation("t1", &press("U1", "confirm"), 10_000).await.unwrap(), Err(ConfirmRefusal::Expired));
    // The asker's own press of another kind (a resize's token sent as a delete press, or to
    // another function) is refused and does not use the token up.
    for (function, action) in [("iaas-delete", "resize"), ("iaas-resize", "delete"), ("iaas-resize", "resize")] {
        let other = Press { function, action, ..press("U1", "confirm") };
        assert_eq!(s.use_confirmation("t1", &other, 1).await.unwrap(), Err(ConfirmRefusal::OtherAction { action: "delete".into() }));
    }
    let ok = s.use_confirmation("t1", &press("U1", "confirm"), 9_999).await.unwrap().unwrap();
    assert_eq!((ok.vm_moref.as_str(), ok.vm_name.as_str(), ok.function.as_str()), ("vm-42", "app-web-02", "iaas-delete"));
    assert_eq!(
        s.use_confirmation("t1", &press("U1", "confirm"), 9_999).await.unwrap(),
        Err(ConfirmRefusal::AlreadyUsed { used_as: "confirm".into() })
    );
    // Another user's press did not use it up; a cancel uses it too.
    assert!(s.use_confirmation("t2", &press("U1", "cancel"), 5).await.unwrap().is_ok());
    assert_eq!(
        s.use_confirmation("t2", &press("U1", "confirm"), 6).await.unwrap(),
        Err(ConfirmRefusal::AlreadyUsed { used_as: "cancel".into() })
    );
}

async fn concurrent_presses_confirm_once(db: Db) {
    let store = Arc::new(db.store.clone());
    store.create_confirmation(&confirmation("race", i64::MAX)).await.unwrap();
    let presses = (0..16).map(|_| {
        let s = store.clone();
        tokio::spawn(async move { s.use_confirmation("race", &press("U1", "confirm"), 1).await.unwrap().is_ok() })
    });
    let mut wins = 0;
    for p in presses {
        wins += p.await.unwrap() as u32;
    }
    assert_eq!(wins, 1);
}

async fn vm_records_are_idempotent(db: Db) {
    let s = &db.store;
    let rec = VmRecord {
        vm_moref: "vm-7".into(),
        vm_name: "new-vm".into(),
        owner_user: "U1".into(),
        owner_email: Some("ann@example.test".into()),
        created_at_ms: 1,
        expires_at_ms: Some(2),
        source: "create".into(),
        invocation_id: "inv-1".into(),
        deleted_at_ms: None,
    };
    s.record_vm(&rec).await.unwrap();
    s.record_vm(&VmRecord { owner_user: "U2".into(), ..rec.clone() }).await.unwrap();
    assert_eq!(s.vm_record(&Moref::from("vm-7")).await.unwrap(), Some(rec));
    s.mark_vm_deleted(&Moref::from("vm-7")).await.unwrap();
    assert!(s.vm_record(&Moref::from("vm-7")).await.unwrap().unwrap().deleted_at_ms.is_some());
    assert_eq!(s.vm_record(&Moref::from("vm-8")).await.unwrap(), None);
}
