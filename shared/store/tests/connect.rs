//! Connecting: migrations, SQLite settings, and the errors an operator sees.

#[macro_use]
mod common;

use common::{invocation, Db};
use iaas_store::InvocationId;
use iaas_store::{Backend, Begin, Outcome, Store, StoreError};
use sqlx::{Connection, Row};

test_both_backends!(migrations_are_idempotent);

async fn migrations_are_idempotent(db: Db) {
    let first = &db.store;
    first.begin_invocation(&invocation("m-1", "U1", "power on", 1), std::time::Duration::from_secs(60)).await.unwrap();
    // Connecting again re-runs the migrator against an up-to-date schema.
    let second = Store::connect(&db.url).await.expect("second connect");
    let third = Store::connect(&db.url).await.expect("third connect");
    assert!(third.invocation(&InvocationId::from("m-1")).await.unwrap().is_some());
    assert_eq!(second.backend(), first.backend());
    let expected = if db.url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
    assert_eq!(first.backend(), expected);
}

#[test]
fn backend_names() {
    assert_eq!(Backend::Sqlite.to_string(), "SQLite");
    assert_eq!(Backend::Postgres.to_string(), "PostgreSQL");
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    assert_eq!(store.backend(), Backend::Sqlite);
    let inv = invocation("mem-1", "U1", "vm list", 1);
    let lease = std::time::Duration::from_secs(60);
    assert_eq!(store.begin_invocation(&inv, lease).await.unwrap(), Begin::Fresh);
    let outcome = Outcome::new(true, "2 VMs");
    store.finish_invocation(&InvocationId::from("mem-1"), &outcome).await.unwrap();
    // Another pooled call must see the same in-memory database.
    assert_eq!(store.begin_invocation(&inv, lease).await.unwrap(), Begin::Done(outcome));
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let dir = std::env::temp_dir().join(common::unique("iaas_store_wal"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("iaas.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.expect("connect");
    assert!(path.exists());

    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap().get(0);
    assert_eq!(mode, "wal");
    drop((conn, store));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error_without_the_password() {
    let err = Store::connect("postgres://iaas:s3cret-pw@127.0.0.1:1/iaas").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "{msg}");
    assert!(msg.starts_with("Cannot open the state database postgres://iaas:***@127.0.0.1:1/iaas"), "{msg}");
    assert!(msg.contains("Check that PostgreSQL is running"), "{msg}");
    assert!(msg.ends_with('.'), "{msg}");
}

#[tokio::test]
async fn missing_sqlite_directory_is_a_clear_error() {
    let path = std::env::temp_dir().join(common::unique("no_such_dir")).join("iaas.db");
    let url = format!("sqlite://{}", path.display());
    let err = Store::connect(&url).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("Check that the directory exists"), "{msg}");
}

#[tokio::test]
async fn unsupported_scheme_is_a_clear_error() {
    let msg = Store::connect("mysql://root:pw@localhost/iaas").await.unwrap_err().to_string();
    assert!(msg.contains("not supported") && msg.contains("sqlite://") && !msg.contains(":pw@"), "{msg}");
}
