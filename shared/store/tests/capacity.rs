//! Datastore space reservations under concurrency, lapsing and release, on both backends.

#[macro_use]
mod common;

use std::sync::Arc;

use common::Db;
use iaas_store::SpaceRequest;

test_both_backends!(concurrent_reservations_fit_the_allowance_once, reservations_lapse_release_and_are_per_datastore);

const GB: u64 = 1 << 30;

fn request<'a>(holder: &'a str, datastore: &'a str, gb: u64, allowance_gb: i64, lease_ms: i64) -> SpaceRequest<'a> {
    SpaceRequest { holder, datastore, bytes: gb * GB, allowance: allowance_gb * GB as i64, lease_ms }
}

async fn concurrent_reservations_fit_the_allowance_once(db: Db) {
    let store = Arc::new(db.store.clone());
    // 30 GB may still go; each request wants 20: of twelve at once, exactly one fits. Twenty
    // rounds on fresh datastores, each started together, so a race has its chances.
    for round in 0..20 {
        // The datastore has been reserved on before (its first reservation is ordered by the
        // insert of its row alone).
        let datastore = format!("datastore-r{round}");
        assert!(store.reserve_space(&request("warm", &datastore, 1, 30, 60_000)).await.unwrap());
        store.release_space("warm").await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(12));
        let tries: Vec<_> = (0..12)
            .map(|i| {
                let (s, start) = (store.clone(), start.clone());
                tokio::spawn(async move {
                    let (holder, datastore) = (format!("r{round}-{i}"), format!("datastore-r{round}"));
                    start.wait().await;
                    s.reserve_space(&request(&holder, &datastore, 20, 30, 60_000)).await.unwrap()
                })
            })
            .collect();
        let mut granted = 0;
        for t in tries {
            granted += t.await.unwrap() as u32;
        }
        assert_eq!(granted, 1, "round {round}");
    }
    assert!(store.reserve_space(&request("inv-0", "datastore-1", 20, 30, 60_000)).await.unwrap());
    assert_eq!(store.space_reserved().await.unwrap().get("datastore-1"), Some(&(20 * GB)));

    // Ten of 5 GB into what is left (10 GB): two fit.
    let tries = (0..10).map(|i| {
        let s = store.clone();
        tokio::spawn(async move {
            let holder = format!("small-{i}");
            s.reserve_space(&request(&holder, "datastore-1", 5, 30, 60_000)).await.unwrap()
        })
    });
    let mut granted = 0;
    for t in tries {
        granted += t.await.unwrap() as u32;
    }
    assert_eq!(granted, 2);
    assert_eq!(store.space_reserved().await.unwrap().get("datastore-1"), Some(&(30 * GB)));
}

async fn reservations_lapse_release_and_are_per_datastore(db: Db) {
    let s = &db.store;
    assert!(s.reserve_space(&request("a", "datastore-1", 20, 30, 60_000)).await.unwrap());
    assert!(!s.reserve_space(&request("b", "datastore-1", 20, 30, 60_000)).await.unwrap(), "20 + 20 > 30");
    // Another datastore has its own allowance.
    assert!(s.reserve_space(&request("b", "datastore-2", 20, 30, 60_000)).await.unwrap());
    // A datastore already below its headroom takes nothing, not even an empty disk.
    assert!(!s.reserve_space(&request("c", "datastore-3", 0, -1, 60_000)).await.unwrap());
    assert!(s.reserve_space(&request("c", "datastore-3", 0, 0, 60_000)).await.unwrap());
    // Released: the space is free again.
    s.release_space("a").await.unwrap();
    s.release_space("a").await.unwrap();
    assert!(s.reserve_space(&request("d", "datastore-1", 20, 30, 0)).await.unwrap());
    // d's lease was 0: it has lapsed, as a dead worker's does, and counts for nothing.
    assert!(s.reserve_space(&request("e", "datastore-1", 20, 30, 60_000)).await.unwrap());
    assert!(!s.space_reserved().await.unwrap().get("datastore-1").is_some_and(|b| *b > 20 * GB));
    // A holder's new reservation replaces its old one instead of adding to it.
    assert!(s.reserve_space(&request("e", "datastore-1", 25, 30, 60_000)).await.unwrap());
    assert_eq!(s.space_reserved().await.unwrap().get("datastore-1"), Some(&(25 * GB)));
    // Extending keeps a reservation alive past its first lease.
    assert!(s.reserve_space(&request("f", "datastore-4", 10, 10, 0)).await.unwrap());
    s.extend_space("f", 60_000).await.unwrap();
    assert!(!s.reserve_space(&request("g", "datastore-4", 10, 10, 60_000)).await.unwrap(), "f still holds it");
    let reserved = s.space_reserved().await.unwrap();
    assert_eq!(reserved.get("datastore-2"), Some(&(20 * GB)));
    assert_eq!(reserved.get("datastore-4"), Some(&(10 * GB)));
}
