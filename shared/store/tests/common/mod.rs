//! Runs a test body against a fresh SQLite file and a fresh PostgreSQL database, cleaning up
//! afterwards even when the body panics.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use iaas_store::{NewInvocation, Store};
use sqlx::Connection;

/// Where to create throw-away databases; override with IAAS_TEST_POSTGRES_URL.
const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `test_both_backends!(name, …)` makes `name::sqlite` and `name::postgres` tests that run `async fn name(Db)`.
macro_rules! test_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::common::on_sqlite(super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::common::on_postgres(super::$name).await
            }
        }
    )*};
}

#[derive(Clone)]
pub struct Db {
    pub store: Store,
    pub url: String,
}

/// A name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{nanos}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = std::env::temp_dir().join(unique("iaas_store"));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    let url = format!("sqlite://{}", dir.join("iaas.db").display());
    let store = Store::connect(&url).await.expect("connect to SQLite");
    let result = tokio::spawn(test(Db { store, url })).await;
    let _ = std::fs::remove_dir_all(&dir);
    rethrow(result);
}

pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var("IAAS_TEST_POSTGRES_URL").unwrap_or_else(|_| ADMIN_URL.into());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("tests need PostgreSQL at {admin_url} (or set IAAS_TEST_POSTGRES_URL): {e}"));
    let name = unique("iaas_test");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");

    let result = match Store::connect(&url).await {
        Ok(store) => tokio::spawn(test(Db { store, url })).await,
        Err(e) => tokio::spawn(async move { panic!("connect to PostgreSQL: {e}") }).await,
    };
    // FORCE closes the store's pooled connections; best-effort.
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
    rethrow(result);
}

fn rethrow(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

pub fn invocation(id: &str, slack_user: &str, command: &str, issued_at_ms: i64) -> NewInvocation {
    NewInvocation {
        id: id.into(),
        function: "power".into(),
        command: command.into(),
        args_json: r#"{"vm":"web-01"}"#.into(),
        slack_user: slack_user.into(),
        channel: "C0123".into(),
        issued_at_ms,
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
