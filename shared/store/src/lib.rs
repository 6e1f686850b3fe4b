//! The bot's state: idempotency claims and the audit trail of invocations.
//!
//! One SQL dialect serves both backends through `sqlx::AnyPool`: every query uses `$N`
//! placeholders (SQLite accepts them too) and only i64 / TEXT columns. Where a later query
//! needs backend-specific SQL, branch on [`Store::backend`]. Schemas live in
//! `migrations/sqlite` and `migrations/postgres`.

mod alarms;
mod confirmations;
mod decommissions;
mod dispatches;
mod guard_rails;
mod invocations;
mod leases;
mod replays;
mod vms;

use std::fmt;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

pub use alarms::PendingChange;
pub use confirmations::{ConfirmRefusal, Confirmation, NewConfirmation, Press};
pub use decommissions::{
    CancelOutcome, Decommission, DecommissionDetail, DecommissionFilter, DecommissionStep, DecommissionVm, NewDecommission,
    NewDecommissionStep, NewDecommissionVm,
};
pub use dispatches::{ClaimState, PendingDispatch};
pub use guard_rails::{AuditEntry, AuditFilter, LockHeld, Usage};
pub use invocations::{Begin, InvocationFilter, InvocationRecord, NewInvocation, Outcome};
pub use leases::{Lease, LeaseFilter, LeaseState};
pub use vms::VmRecord;

/// How long `connect` waits for a connection before giving up, so a wrong URL fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    UnknownInvocation { id: String },
    #[error("The stored outcome of invocation {id} is unreadable: {reason}.")]
    BadOutcome { id: String, reason: String },
}

impl Store {
    /// "sqlite://path/to/iaas.db" (created if missing, WAL, busy_timeout 5 s, foreign keys on),
    /// "sqlite::memory:" for tests, or "postgres://…". Runs migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
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
        if backend == Backend::Sqlite {
            // In WAL mode NORMAL still survives a crash of the process (only a power loss can lose
            // the last commits), and it saves an fsync on every write: the audit trail writes one
            // row per decision.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(conn).await?;
                    Ok(())
                })
            });
        }
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

        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(|e| StoreError::Migrate { url: shown.clone(), reason: e.to_string() })?;

        tracing::info!(%backend, url = %shown, "state store ready");
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// Maps a driver error to a [`StoreError::Query`] naming what we were doing.
fn query_err(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Query { doing, reason: e.to_string() }
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
