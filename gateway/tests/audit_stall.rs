//! A stalled audit table never holds acks: with the table locked by another session and the
//! queue full, each decision waits a bounded time, then is written directly or logged.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::audit_entry;
use iaas_gateway::audit::AuditLog;
use iaas_store::Store;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_audit_table_does_not_hold_decisions() {
    let db = iaas_tests::postgres::Database::create("audit_stall").await;
    let url = db.url.clone();
    // A long statement time-out: the writer task stays stuck behind the lock.
    let store = Store::connect_with(&url, Duration::from_secs(120)).await.unwrap();
    let log = Arc::new(AuditLog::with_queue(store.clone(), 2));

    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE audit IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();

    let records: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn({
                let log = log.clone();
                async move { log.record(audit_entry(i)).await }
            })
        })
        .collect();
    // Guard only: before the bound, decisions past the queue's room waited for the lock.
    let all = async {
        for r in records {
            r.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all).await.expect("decisions were held while the audit table was locked");

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    log.flush().await;
    let written = store.audit_entries(&iaas_store::AuditFilter::default(), 100).await.unwrap();
    assert!(!written.is_empty(), "the queued decisions are written once the table is free");
    drop((log, store, locker));
    db.drop().await;
}
