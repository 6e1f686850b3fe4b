//! Idempotency on the invocation id (delivery is at-least-once, acting must happen once) and
//! the audit trail: one `invocations` row per id.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use iaas_ids::{InvocationId, UserId};

use crate::{now_ms, query_err, Store, StoreError};

#[derive(Clone, Debug, PartialEq)]
pub struct NewInvocation {
    pub id: InvocationId,
    pub function: String,
    pub command: String,
    pub args_json: String,
    pub slack_user: UserId,
    pub channel: String,
    pub issued_at_ms: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub text: String,
    /// Refused by access rules rather than failed (the REST API answers 403, not 422).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
}

impl Outcome {
    /// Done (`ok`) or failed, not denied.
    pub fn new(ok: bool, text: impl Into<String>) -> Outcome {
        Outcome { ok, text: text.into(), denied: false }
    }
}

/// What the caller should do with an invocation it has just received.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// This caller holds the claim: do the work, then `finish_invocation`.
    Fresh,
    /// Another worker holds an unexpired claim: do nothing.
    InProgress { claimed_at_ms: i64 },
    /// Already done: report this outcome again instead of acting twice.
    Done(Outcome),
}

#[derive(Clone, Debug, PartialEq)]
pub struct InvocationRecord {
    /// What was claimed.
    pub invocation: NewInvocation,
    /// When the first claim was made.
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// 1 + the number of re-claims after an expired lease.
    pub attempts: i64,
    pub outcome: Option<Outcome>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct InvocationFilter {
    pub slack_user: Option<String>,
    pub command: Option<String>,
    /// Only invocations issued at or after this time.
    pub since_ms: Option<i64>,
}

const RECORD_COLUMNS: &str = "id, function, command, args_json, slack_user, channel, issued_at_ms, \
                              started_at_ms, finished_at_ms, attempts, outcome_json";

impl Store {
    /// Claims `inv.id` for processing. A claim older than `lease` is taken to belong to a crashed
    /// worker and may be re-claimed. Of several concurrent callers exactly one gets `Fresh`.
    pub async fn begin_invocation(&self, inv: &NewInvocation, lease: Duration) -> Result<Begin, StoreError> {
        let now = now_ms();
        // The primary key decides the race for a new id.
        let inserted = self
            .execute(
                sqlx::query(
                    "INSERT INTO invocations (id, function, command, args_json, slack_user, channel, \
                     issued_at_ms, state, started_at_ms, claimed_at_ms, attempts) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $8, 1) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&inv.id)
                .bind(&inv.function)
                .bind(&inv.command)
                .bind(&inv.args_json)
                .bind(&inv.slack_user)
                .bind(&inv.channel)
                .bind(inv.issued_at_ms)
                .bind(now),
                "claiming an invocation",
            )
            .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Begin::Fresh);
        }

        // An expired lease: the condition on claimed_at lets only one re-claimer through.
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let reclaimed = self
            .execute(
                sqlx::query(
                    "UPDATE invocations SET claimed_at_ms = $1, attempts = attempts + 1 \
                     WHERE id = $2 AND state = 'running' AND claimed_at_ms < $3",
                )
                .bind(now)
                .bind(&inv.id)
                .bind(now.saturating_sub(lease_ms)),
                "re-claiming an invocation",
            )
            .await?;
        if reclaimed.rows_affected() == 1 {
            return Ok(Begin::Fresh);
        }

        // Rows are never deleted and claims only move forward, so this read cannot mislead.
        let row = self
            .fetch_one(
                sqlx::query("SELECT state, claimed_at_ms, outcome_json FROM invocations WHERE id = $1").bind(&inv.id),
                "reading an invocation",
            )
            .await?;
        if get::<String>(&row, "state")? == "done" {
            // finish_invocation always writes the outcome with state = 'done'.
            return match parse_outcome(&inv.id, get(&row, "outcome_json")?)? {
                Some(outcome) => Ok(Begin::Done(outcome)),
                None => Err(StoreError::BadOutcome { id: inv.id.clone(), reason: "it is missing".into() }),
            };
        }
        Ok(Begin::InProgress { claimed_at_ms: get(&row, "claimed_at_ms")? })
    }

    /// Records the outcome; later `begin_invocation` calls for this id return `Begin::Done`.
    pub async fn finish_invocation(&self, id: &InvocationId, outcome: &Outcome) -> Result<(), StoreError> {
        let json = serde_json::to_string(outcome).map_err(|e| StoreError::BadOutcome { id: id.clone(), reason: e.to_string() })?;
        let done = self
            .execute(
                sqlx::query("UPDATE invocations SET state = 'done', finished_at_ms = $1, outcome_json = $2 WHERE id = $3")
                    .bind(now_ms())
                    .bind(json)
                    .bind(id),
                "recording an outcome",
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownInvocation { id: id.clone() });
        }
        Ok(())
    }

    /// Renews a running claim's lease: the worker holding it is alive.
    pub async fn renew_invocation(&self, id: &InvocationId) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE invocations SET claimed_at_ms = $1 WHERE id = $2 AND state = 'running'").bind(now_ms()).bind(id),
            "renewing an invocation's claim",
        )
        .await?;
        Ok(())
    }

    /// Ends a claim whose worker died (its lease lapsed unrenewed) with `outcome`, and releases
    /// the VM locks it held, in one transaction. `false` when the claim is not (or no longer)
    /// abandoned: renewed, finished, or ended by another caller first.
    pub async fn abandon_invocation(&self, id: &InvocationId, outcome: &Outcome, lease: Duration) -> Result<bool, StoreError> {
        let json = serde_json::to_string(outcome).map_err(|e| StoreError::BadOutcome { id: id.clone(), reason: e.to_string() })?;
        let now = now_ms();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let err = || query_err("ending an abandoned invocation");
        let mut tx = self.write_tx().await.map_err(err())?;
        let ended = sqlx::query(
            "UPDATE invocations SET state = 'done', finished_at_ms = $1, outcome_json = $2              WHERE id = $3 AND state = 'running' AND claimed_at_ms < $4",
        )
        .bind(now)
        .bind(json)
        .bind(id)
        .bind(now.saturating_sub(lease_ms))
        .execute(&mut *tx)
        .await
        .map_err(err())?;
        if ended.rows_affected() == 1 {
            sqlx::query("DELETE FROM vm_locks WHERE holder = $1").bind(id).execute(&mut *tx).await.map_err(err())?;
        }
        tx.commit().await.map_err(err())?;
        Ok(ended.rows_affected() == 1)
    }

    pub async fn invocation(&self, id: &InvocationId) -> Result<Option<InvocationRecord>, StoreError> {
        let row = self
            .fetch_optional(
                sqlx::query(&format!("SELECT {RECORD_COLUMNS} FROM invocations WHERE id = $1")).bind(id),
                "reading an invocation",
            )
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Most recent (by issue time) first; unset filters match everything.
    pub async fn recent_invocations(&self, filter: &InvocationFilter, limit: u32) -> Result<Vec<InvocationRecord>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(&format!(
                    "SELECT {RECORD_COLUMNS} FROM invocations \
                     WHERE ($1 IS NULL OR slack_user = $1) AND ($2 IS NULL OR command = $2) \
                     AND ($3 IS NULL OR issued_at_ms >= $3) \
                     ORDER BY issued_at_ms DESC, id DESC LIMIT $4"
                ))
                .bind(&filter.slack_user)
                .bind(&filter.command)
                .bind(filter.since_ms)
                .bind(i64::from(limit)),
                "listing invocations",
            )
            .await?;
        rows.iter().map(record).collect()
    }
}

fn record(row: &AnyRow) -> Result<InvocationRecord, StoreError> {
    let id: InvocationId = get(row, "id")?;
    let outcome = parse_outcome(&id, get(row, "outcome_json")?)?;
    Ok(InvocationRecord {
        invocation: NewInvocation {
            function: get(row, "function")?,
            command: get(row, "command")?,
            args_json: get(row, "args_json")?,
            slack_user: get(row, "slack_user")?,
            channel: get(row, "channel")?,
            issued_at_ms: get(row, "issued_at_ms")?,
            id,
        },
        started_at_ms: get(row, "started_at_ms")?,
        finished_at_ms: get(row, "finished_at_ms")?,
        attempts: get(row, "attempts")?,
        outcome,
    })
}

fn get<'r, T: sqlx::Decode<'r, Any> + sqlx::Type<Any>>(row: &'r AnyRow, column: &str) -> Result<T, StoreError> {
    row.try_get(column).map_err(query_err("reading an invocation"))
}

fn parse_outcome(id: &InvocationId, json: Option<String>) -> Result<Option<Outcome>, StoreError> {
    json.map(|j| serde_json::from_str(&j)).transpose().map_err(|e| StoreError::BadOutcome { id: id.clone(), reason: e.to_string() })
}
