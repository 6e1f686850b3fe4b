//! Signed requests are remembered inside their replay window, on both backends.

#[macro_use]
mod common;

use common::Db;

test_both_backends!(a_request_is_seen_once_until_its_window_closes);

async fn a_request_is_seen_once_until_its_window_closes(db: Db) {
    let s = &db.store;
    assert!(s.first_sight("v0=aa", 2_000, 1_000).await.unwrap());
    assert!(!s.first_sight("v0=aa", 2_000, 1_500).await.unwrap(), "a replay inside the window");
    assert!(s.first_sight("v0=bb", 2_000, 1_500).await.unwrap(), "another request");
    // Past its window the row is pruned (and Slack's timestamp check refuses it anyway).
    assert!(s.first_sight("v0=aa", 9_000, 2_001).await.unwrap());
}
