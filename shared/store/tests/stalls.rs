//! A stalled or replaced PostgreSQL database gets answers in seconds, not never: statements
//! time out (a table locked by another session), and a database dropped and created again is
//! brought up to date by the next connection, without a restart.

#[allow(unused_macros)]
mod common;

use std::time::Duration;

use common::invocation;
use iaas_store::Store;
use sqlx::Connection;

async fn admin() -> (sqlx::PgConnection, String) {
    let admin_url = std::env::var("IAAS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL for the tests");
    (admin, admin_url)
}

fn url_of(admin_url: &str, name: &str) -> String {
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
    format!("{base}/{name}")
}

#[tokio::test]
async fn a_locked_table_times_out_instead_of_hanging() {
    let (mut admin, admin_url) = admin().await;
    let name = common::unique("iaas_stall");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let url = url_of(&admin_url, &name);
    let store = Store::connect_with(&url, Duration::from_secs(1)).await.unwrap();

    // Another session holds the claims table.
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE invocations IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();

    // Guard only: without a statement time-out the claim waits for the lock forever.
    let stalled = invocation("inv-stalled", "U1", "power off x", 1);
    let claim = store.begin_invocation(&stalled, Duration::from_secs(60));
    let result = tokio::time::timeout(Duration::from_secs(60), claim).await.expect("the claim never gave up");
    let err = result.expect_err("a locked table cannot be claimed in");
    assert!(err.to_string().contains("claiming an invocation"), "{err}");

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    drop(locker);
    store.begin_invocation(&invocation("inv-after", "U1", "power off x", 1), Duration::from_secs(60)).await.unwrap();
    drop(store);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
}

#[tokio::test]
async fn a_database_dropped_and_created_again_is_usable_without_a_restart() {
    let (mut admin, admin_url) = admin().await;
    let name = common::unique("iaas_recreated");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let store = Store::connect(&url_of(&admin_url, &name)).await.unwrap();
    store.begin_invocation(&invocation("inv-1", "U1", "vm list", 1), Duration::from_secs(60)).await.unwrap();

    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();

    // The pool's old connections died with the database; a request may meet one of them.
    let mut last = None;
    for attempt in 0..3 {
        match store.begin_invocation(&invocation(&format!("inv-2-{attempt}"), "U1", "vm list", 1), Duration::from_secs(60)).await {
            Ok(_) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    assert!(last.is_none(), "the recreated database never got its schema back: {last:?}");
    drop(store);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
}
