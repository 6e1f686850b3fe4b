//! Web console sessions. The store keeps the SHA-256 of each session's cookie token, never the
//! token, with who signed in and the CSRF token of the session's forms.

use sqlx::Row;

use crate::{Store, StoreError};

/// A session as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleSession {
    pub token_sha256: String,
    pub login: String,
    pub identity_json: String,
    pub csrf: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
    /// When the directory last vouched for the account (standing, groups, roles).
    pub checked_at_ms: i64,
    pub expires_at_ms: i64,
}

impl Store {
    /// Records a new session; sessions already over (idle or expired) are pruned first.
    pub async fn create_console_session(&self, s: &ConsoleSession, idle_ms: i64) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("DELETE FROM console_sessions WHERE expires_at_ms <= $1 OR last_seen_ms <= $2")
                .bind(s.created_at_ms)
                .bind(s.created_at_ms - idle_ms),
            "pruning console sessions",
        )
        .await?;
        self.execute(sqlx::query(
            "INSERT INTO console_sessions (token_sha256, login, identity_json, csrf, created_at_ms, last_seen_ms, checked_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.token_sha256)
        .bind(&s.login)
        .bind(&s.identity_json)
        .bind(&s.csrf)
        .bind(s.created_at_ms)
        .bind(s.last_seen_ms)
        .bind(s.checked_at_ms)
        .bind(s.expires_at_ms), "recording a console session").await?;
        Ok(())
    }

    /// The live session with this token hash, its idle clock restarted; `None` when there is
    /// none, or it has been idle `idle_ms` or passed its absolute end (such a row is removed).
    pub async fn console_session(&self, token_sha256: &str, now_ms: i64, idle_ms: i64) -> Result<Option<ConsoleSession>, StoreError> {
        let touched = self
            .execute(
                sqlx::query(
                    "UPDATE console_sessions SET last_seen_ms = $2 WHERE token_sha256 = $1 AND expires_at_ms > $2 AND last_seen_ms > $3",
                )
                .bind(token_sha256)
                .bind(now_ms)
                .bind(now_ms - idle_ms),
                "reading a console session",
            )
            .await?;
        if touched.rows_affected() == 0 {
            self.end_console_session(token_sha256).await?;
            return Ok(None);
        }
        let row = self
            .fetch_optional(
                sqlx::query(
                    "SELECT token_sha256, login, identity_json, csrf, created_at_ms, last_seen_ms, checked_at_ms, expires_at_ms \
                     FROM console_sessions WHERE token_sha256 = $1",
                )
                .bind(token_sha256),
                "reading a console session",
            )
            .await?;
        Ok(row.map(|r| ConsoleSession {
            token_sha256: r.get("token_sha256"),
            login: r.get("login"),
            identity_json: r.get("identity_json"),
            csrf: r.get("csrf"),
            created_at_ms: r.get("created_at_ms"),
            last_seen_ms: r.get("last_seen_ms"),
            checked_at_ms: r.get("checked_at_ms"),
            expires_at_ms: r.get("expires_at_ms"),
        }))
    }

    /// Records who the directory says the session's person is now, checked at `at_ms`.
    pub async fn recheck_console_session(&self, token_sha256: &str, identity_json: &str, at_ms: i64) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE console_sessions SET identity_json = $2, checked_at_ms = $3 WHERE token_sha256 = $1")
                .bind(token_sha256)
                .bind(identity_json)
                .bind(at_ms),
            "updating a console session",
        )
        .await?;
        Ok(())
    }

    /// Ends a session (logout); ending one that is gone is not an error.
    pub async fn end_console_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        self.execute(sqlx::query("DELETE FROM console_sessions WHERE token_sha256 = $1").bind(token_sha256), "ending a console session")
            .await?;
        Ok(())
    }
}
