//! The bot's state: idempotency claims and the audit trail of invocations.
//!
//! One SQL dialect serves both backends through `sqlx::AnyPool`: every query uses `$N`
//! placeholders (SQLite accepts them too) and only i64 / TEXT columns. Where a later query
//! needs backend-specific SQL, branch on [`Store::backend`]. Schemas live in
//! `migrations/sqlite` and `migrations/postgres`.

mod alarms;
mod capacity;
mod confirmations;
mod decommissions;
mod dispatches;
mod guard_rails;
mod invocations;
mod leases;
mod replays;
mod sessions;
mod vms;

use std::fmt;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

pub use alarms::PendingChange;
pub use capacity::SpaceRequest;
pub use confirmations::{ConfirmRefusal, Confirmation, Press};
pub use decommissions::{
    CancelOutcome, Decommission, DecommissionDetail, DecommissionFilter, DecommissionStep, DecommissionStepState, DecommissionVm,
    DecommissionVmState, NewDecommission, NewDecommissionStep, NewDecommissionVm,
};
pub use dispatches::{ClaimState, PendingDispatch};
pub use guard_rails::{AuditEntry, AuditFilter, LockHeld, Usage};
/// Declared beside the decommission policy (the command grammar needs it too).
pub use iaas_config::DecommissionState;
pub use iaas_ids::{InvocationId, Moref, RequestId, UserId, VmName, VmRef};
pub use invocations::{Begin, InvocationFilter, InvocationRecord, NewInvocation, Outcome};
pub use leases::{Lease, LeaseFilter, LeaseState};
pub use sessions::ConsoleSession;
pub use vms::VmRecord;

/// How long `connect` waits for a connection before giving up, so a wrong URL fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement may run (or wait for a lock) before it fails, so a stalled database
/// gets users the "database unreachable" sentence in seconds (`DATABASE_STATEMENT_TIMEOUT_SECS`).
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// `DATABASE_STATEMENT_TIMEOUT_SECS` (a positive whole number), else [`DEFAULT_STATEMENT_TIMEOUT`]:
/// read once by each process's settings and passed to [`Store::connect_with`].
pub fn statement_timeout_setting() -> Result<Duration, iaas_config::ConfigError> {
    Ok(iaas_config::parse_var::<u64>("DATABASE_STATEMENT_TIMEOUT_SECS", "a whole number of seconds")?
        .filter(|secs| *secs > 0)
        .map_or(DEFAULT_STATEMENT_TIMEOUT, Duration::from_secs))
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Handle to the state database. Cheap to clone: the connection pool is shared.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// Every message is a sentence an operator can act on; URLs are shown with the password hidden.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Cannot open the state database {url}: {reason}. {hint}")]
    Connect { url: String, reason: String, hint: &'static str },
    #[error(
        "Cannot bring the schema of the state database {url} up to date: {reason}. Check that the \
         account may create tables and that no newer iaas version has migrated this database."
    )]
    Migrate { url: String, reason: String },
    #[error("The state database failed while {doing}: {reason}. Retry; if it persists, check the database server.")]
    Query { doing: &'static str, reason: String },
    #[error("Invocation {id} was never begun, so its outcome cannot be recorded.")]
    UnknownInvocation { id: iaas_ids::InvocationId },
    #[error("The stored outcome of invocation {id} is unreadable: {reason}.")]
    BadOutcome { id: iaas_ids::InvocationId, reason: String },
    #[error("The state database holds a {column} this version cannot read ({reason}); is a newer iaas version writing to it?")]
    Unreadable { column: &'static str, reason: String },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Migrate {
    Yes,
    No,
}

impl Store {
    /// A transaction that will write. SQLite's default (deferred) transaction takes the write
    /// lock only at its first write, and if another writer committed since its first read it
    /// fails at once with SQLITE_BUSY_SNAPSHOT, past busy_timeout; `BEGIN IMMEDIATE` queues for
    /// the lock up front instead. PostgreSQL's row locks need nothing extra.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// "sqlite://path/to/iaas.db" (created if missing, WAL, foreign keys on),
    /// "sqlite::memory:" for tests, or "postgres://…". Runs migrations. Statements time out after
    /// [`DEFAULT_STATEMENT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, DEFAULT_STATEMENT_TIMEOUT).await
    }

    /// [`Store::connect`] with a statement time-out of its own: PostgreSQL's `statement_timeout`
    /// (lock waits included), SQLite's `busy_timeout`.
    pub async fn connect_with(url: &str, statement_timeout: Duration) -> Result<Store, StoreError> {
        let store = Store::open(url, statement_timeout, Migrate::Yes).await?;
        tracing::info!(backend = %store.backend, url = %redact(url), "state store ready");
        Ok(store)
    }

    /// What `iaas doctor` asks of a database, changing nothing: it answers, every migration this
    /// build knows is applied (`Ok` lists those that are not), and a write can be read back in a
    /// transaction that is then rolled back.
    pub async fn inspect(url: &str, statement_timeout: Duration) -> Result<Vec<String>, StoreError> {
        let store = Store::open(url, statement_timeout, Migrate::No).await?;
        let err = || query_err("inspecting the schema");
        let applied: Vec<i64> = match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(&store.pool).await {
            Ok(rows) => rows.iter().map(|r| sqlx::Row::get(r, "version")).collect(),
            Err(_) => Vec::new(), // no migrations table: none applied
        };
        let pending: Vec<String> =
            store.migrator().iter().filter(|m| !applied.contains(&m.version)).map(|m| format!("{} {}", m.version, m.description)).collect();
        if pending.is_empty() {
            let mut tx = store.write_tx().await.map_err(err())?;
            sqlx::query("INSERT INTO seen_requests (key, expires_at_ms) VALUES ('iaas-doctor', 0)")
                .execute(&mut *tx)
                .await
                .map_err(err())?;
            let back = sqlx::query("SELECT expires_at_ms FROM seen_requests WHERE key = 'iaas-doctor'")
                .fetch_optional(&mut *tx)
                .await
                .map_err(err())?;
            tx.rollback().await.map_err(err())?;
            if back.is_none() {
                return Err(StoreError::Query { doing: "reading back a write", reason: "the row was not there".into() });
            }
        }
        Ok(pending)
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    async fn open(url: &str, statement_timeout: Duration, migrate: Migrate) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let connect_err = |reason: String, hint| StoreError::Connect { url: shown.clone(), reason, hint };

        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(connect_err(
                "the URL scheme is not supported".into(),
                "Use sqlite://path/to/iaas.db or postgres://user@host/database.",
            ));
        };
        let hint = match backend {
            Backend::Sqlite => "Check that the directory exists and is writable, or point DATABASE_URL elsewhere.",
            Backend::Postgres => {
                "Check that PostgreSQL is running and reachable, and that the user, password and database in DATABASE_URL are right."
            }
        };

        let memory = backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let mut options = AnyPoolOptions::new().acquire_timeout(CONNECT_TIMEOUT);
        let timeout_ms = statement_timeout.as_millis().max(1);
        options = match backend {
            // In WAL mode NORMAL still survives a crash of the process (only a power loss can lose
            // the last commits), and it saves an fsync on every write: the audit trail writes one
            // row per decision.
            Backend::Sqlite => options.after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    sqlx::query(&format!("PRAGMA busy_timeout = {timeout_ms}")).execute(&mut *conn).await?;
                    Ok(())
                })
            }),
            // Every new connection also checks the schema: after the database was restored, or
            // dropped and created again, the first new connection brings it up to date, so the
            // bot recovers without a restart (one read of the migrations table otherwise).
            Backend::Postgres => options.after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::query(&format!("SET statement_timeout = {timeout_ms}")).execute(&mut *conn).await?;
                    if migrate == Migrate::Yes {
                        POSTGRES_MIGRATIONS.run_direct(&mut *conn).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
                    }
                    Ok(())
                })
            }),
        };
        if memory {
            // Each new connection to ":memory:" is a new empty database: keep exactly one, forever.
            options = options.max_connections(1).idle_timeout(None).max_lifetime(None);
        }
        // Any passes options to the driver only through the URL; mode=rwc creates the file.
        let url_with_options = match backend {
            Backend::Sqlite if !memory && !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let pool = options.connect(&url_with_options).await.map_err(|e| {
            let reason = match e {
                sqlx::Error::PoolTimedOut => {
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())
                }
                e => e.to_string(),
            };
            connect_err(reason, hint)
        })?;

        if backend == Backend::Sqlite && !memory {
            // WAL lets readers run beside the writer; it is stored in the file, so once is enough.
            // busy_timeout (5 s) and foreign_keys (on) are already sqlx's per-connection defaults.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.map_err(|e| connect_err(e.to_string(), hint))?;
        }

        let store = Store { pool, backend };
        if migrate == Migrate::Yes {
            store.migrator().run(&store.pool).await.map_err(|e| StoreError::Migrate { url: shown.clone(), reason: e.to_string() })?;
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One cheap round trip (`SELECT 1`), for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.execute(sqlx::query("SELECT 1"), "answering a readiness probe").await.map(|_| ())
    }

    // One statement on the pool, its failure named by `doing` ([`query_err`]): how every
    // method outside a transaction runs its SQL.

    async fn execute(&self, q: Query<'_>, doing: &'static str) -> Result<AnyQueryResult, StoreError> {
        q.execute(&self.pool).await.map_err(query_err(doing))
    }

    async fn fetch_optional(&self, q: Query<'_>, doing: &'static str) -> Result<Option<AnyRow>, StoreError> {
        q.fetch_optional(&self.pool).await.map_err(query_err(doing))
    }

    async fn fetch_all(&self, q: Query<'_>, doing: &'static str) -> Result<Vec<AnyRow>, StoreError> {
        q.fetch_all(&self.pool).await.map_err(query_err(doing))
    }

    async fn fetch_one(&self, q: Query<'_>, doing: &'static str) -> Result<AnyRow, StoreError> {
        q.fetch_one(&self.pool).await.map_err(query_err(doing))
    }
}

/// A statement with its arguments bound, ready for one of the [`Store`] runners above.
type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Maps a driver error to a [`StoreError::Query`] naming what we were doing.
/// Every failed statement passes here, so it is also where they are counted.
fn query_err(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        metrics::counter!("iaas_store_errors_total", "operation" => doing).increment(1);
        StoreError::Query { doing, reason: e.to_string() }
    }
}

/// A text column read as one of its enum's values.
fn text_col<T>(r: &sqlx::any::AnyRow, column: &'static str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = iaas_config::UnknownValue>,
{
    use sqlx::Row;
    let text: String = r.try_get(column).map_err(|e| StoreError::Unreadable { column, reason: e.to_string() })?;
    text.parse().map_err(|e: iaas_config::UnknownValue| StoreError::Unreadable { column, reason: e.to_string() })
}

/// `('a', 'b')` for an SQL `IN`: the texts come from the enums' declarations, never from input.
fn sql_list<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = texts.into_iter().map(|t| format!("'{t}'")).collect();
    format!("({})", quoted.join(", "))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Hides the password in `scheme://user:password@host/…` and in a `password=` query parameter.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let authority_end = out[start..].find(['/', '?', '#']).map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@') {
            if let Some(colon) = out[start..start + at].find(':') {
                out.replace_range(start + colon + 1..start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let query: Vec<String> = out[q + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.replace_range(q + 1.., &query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:s3cret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db?password=s3cret&sslmode=require"), "postgres://u@h/db?password=***&sslmode=require");
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(redact("sqlite://data/iaas.db"), "sqlite://data/iaas.db");
    }
}
