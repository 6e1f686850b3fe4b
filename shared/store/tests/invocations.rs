//! Idempotency claims and the audit view, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use iaas_store::InvocationId;
use std::time::Duration;

use common::{invocation, now_ms, Db};
use iaas_store::{Begin, InvocationFilter, Outcome, StoreError};

const LONG_LEASE: Duration = Duration::from_secs(60);

test_both_backends!(
    fresh_then_in_progress_then_done,
    concurrent_first_claims_have_one_winner,
    expired_lease_is_reclaimed_by_one_caller,
    recent_invocations_filter_and_order,
    unknown_invocation,
);

async fn fresh_then_in_progress_then_done(db: Db) {
    let inv = invocation("inv-1", "U1", "power on", 1_000);
    let before = now_ms();
    assert_eq!(db.store.begin_invocation(&inv, LONG_LEASE).await.unwrap(), Begin::Fresh);
    let after = now_ms();

    match db.store.begin_invocation(&inv, LONG_LEASE).await.unwrap() {
        Begin::InProgress { claimed_at_ms } => assert!((before..=after).contains(&claimed_at_ms)),
        other => panic!("expected InProgress, got {other:?}"),
    }
    let running = db.store.invocation(&InvocationId::from("inv-1")).await.unwrap().expect("row exists");
    assert_eq!((running.finished_at_ms, running.outcome, running.attempts), (None, None, 1));

    let outcome = Outcome::new(true, "web-01 is powered on ✅");
    db.store.finish_invocation(&InvocationId::from("inv-1"), &outcome).await.unwrap();
    assert_eq!(db.store.begin_invocation(&inv, LONG_LEASE).await.unwrap(), Begin::Done(outcome.clone()));
    // A finished invocation stays done even after its lease would have expired.
    assert_eq!(db.store.begin_invocation(&inv, Duration::ZERO).await.unwrap(), Begin::Done(outcome.clone()));

    let rec = db.store.invocation(&InvocationId::from("inv-1")).await.unwrap().expect("row exists");
    assert_eq!(
        (rec.invocation.id.as_str(), rec.invocation.function.as_str(), rec.invocation.command.as_str(), rec.invocation.args_json.as_str()),
        ("inv-1", "power", "power on", r#"{"vm":"web-01"}"#)
    );
    assert_eq!((rec.invocation.slack_user.as_str(), rec.invocation.channel.as_str(), rec.invocation.issued_at_ms), ("U1", "C0123", 1_000));
    assert!((before..=after).contains(&rec.started_at_ms));
    assert!(rec.finished_at_ms.is_some_and(|f| f >= rec.started_at_ms));
    assert_eq!((rec.attempts, rec.outcome), (1, Some(outcome)));
}

async fn concurrent_first_claims_have_one_winner(db: Db) {
    let results = claim_concurrently(&db, "inv-race", LONG_LEASE).await;
    assert_eq!(results.iter().filter(|b| **b == Begin::Fresh).count(), 1, "{results:?}");
    assert!(results.iter().all(|b| matches!(b, Begin::Fresh | Begin::InProgress { .. })));
    assert_eq!(db.store.invocation(&InvocationId::from("inv-race")).await.unwrap().unwrap().attempts, 1);
}

async fn expired_lease_is_reclaimed_by_one_caller(db: Db) {
    let inv = invocation("inv-crash", "U1", "power off", 1_000);
    assert_eq!(db.store.begin_invocation(&inv, LONG_LEASE).await.unwrap(), Begin::Fresh);
    // The first worker "crashes": its claim ages past a 20 ms lease.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let results = claim_concurrently(&db, "inv-crash", Duration::from_millis(20)).await;
    assert_eq!(results.iter().filter(|b| **b == Begin::Fresh).count(), 1, "{results:?}");
    let rec = db.store.invocation(&InvocationId::from("inv-crash")).await.unwrap().unwrap();
    assert_eq!(rec.attempts, 2);
    assert!(rec.started_at_ms < now_ms() - 20, "started_at keeps the first claim");
    // The new claim is fresh, so a caller with a long lease waits for it.
    assert!(matches!(db.store.begin_invocation(&inv, LONG_LEASE).await.unwrap(), Begin::InProgress { .. }));
}

async fn recent_invocations_filter_and_order(db: Db) {
    let rows = [
        ("a", "U1", "power on", 1_000),
        ("b", "U2", "power on", 2_000),
        ("c", "U1", "vm list", 3_000),
        ("d", "U1", "power on", 4_000),
        ("e", "U2", "vm list", 4_000), // same time as d: ties break by id, descending
    ];
    for (id, user, command, issued) in rows {
        let begin = db.store.begin_invocation(&invocation(id, user, command, issued), LONG_LEASE).await;
        assert_eq!(begin.unwrap(), Begin::Fresh);
    }
    db.store.finish_invocation(&InvocationId::from("c"), &Outcome::new(false, "no such VM")).await.unwrap();

    let ids = |filter: InvocationFilter, limit| {
        let store = db.store.clone();
        async move {
            let recs = store.recent_invocations(&filter, limit).await.unwrap();
            recs.into_iter().map(|r| r.invocation.id).collect::<Vec<_>>().join("")
        }
    };
    let user = |u: &str| Some(u.to_string());
    assert_eq!(ids(InvocationFilter::default(), 100).await, "edcba");
    assert_eq!(ids(InvocationFilter::default(), 2).await, "ed");
    assert_eq!(ids(InvocationFilter { slack_user: user("U1"), ..Default::default() }, 100).await, "dca");
    assert_eq!(ids(InvocationFilter { command: user("vm list"), ..Default::default() }, 100).await, "ec");
    assert_eq!(ids(InvocationFilter { since_ms: Some(3_000), ..Default::default() }, 100).await, "edc");
    let all = InvocationFilter { slack_user: user("U1"), command: user("power on"), since_ms: Some(2_000) };
    assert_eq!(ids(all, 100).await, "d");
    assert_eq!(ids(InvocationFilter { slack_user: user("nobody"), ..Default::default() }, 100).await, "");

    let vm_list = InvocationFilter { command: user("vm list"), ..Default::default() };
    let c = db.store.recent_invocations(&vm_list, 10).await.unwrap().pop().expect("c is listed");
    assert_eq!(c.outcome, Some(Outcome::new(false, "no such VM")));
}

async fn unknown_invocation(db: Db) {
    assert_eq!(db.store.invocation(&InvocationId::from("nope")).await.unwrap(), None);
    let err = db.store.finish_invocation(&InvocationId::from("nope"), &Outcome::new(true, String::new())).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownInvocation { .. }), "{err}");
}

/// 16 callers race `begin_invocation` for the same id.
async fn claim_concurrently(db: &Db, id: &str, lease: Duration) -> Vec<Begin> {
    let inv = invocation(id, "U1", "power on", 1_000);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, inv) = (db.store.clone(), inv.clone());
            tokio::spawn(async move { store.begin_invocation(&inv, lease).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task ran").expect("begin_invocation"));
    }
    results
}
