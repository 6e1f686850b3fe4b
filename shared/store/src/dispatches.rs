//! Hand-overs accepted by the in-process dispatch, kept until the function has run them.

use sqlx::Row;

use iaas_ids::InvocationId;

use crate::{now_ms, Store, StoreError};

#[derive(Clone, Debug, PartialEq)]
pub struct PendingDispatch {
    pub id: InvocationId,
    pub function: String,
    /// The invocation's JSON.
    pub body: String,
    pub accepted_at_ms: i64,
}

/// Where a pending hand-over's invocation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimState {
    /// No function has claimed it: it never started.
    Unclaimed,
    /// A function holds the claim, last renewed at this time.
    Running {
        claimed_at_ms: i64,
    },
    Done,
}

impl Store {
    /// Records a hand-over before it is acknowledged.
    pub async fn record_dispatch(&self, id: &InvocationId, function: &str, body: &str) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "INSERT INTO pending_dispatches (id, function, body, accepted_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(function)
            .bind(body)
            .bind(now_ms()),
            "recording a hand-over",
        )
        .await?;
        Ok(())
    }

    /// Forgets a hand-over the function has run (or refused for good).
    pub async fn forget_dispatch(&self, id: &InvocationId) -> Result<(), StoreError> {
        self.execute(sqlx::query("DELETE FROM pending_dispatches WHERE id = $1").bind(id), "forgetting a hand-over").await?;
        Ok(())
    }

    /// Hand-overs accepted before `before_ms` and not yet forgotten, oldest first.
    pub async fn pending_dispatches(&self, before_ms: i64) -> Result<Vec<PendingDispatch>, StoreError> {
        let rows = self.fetch_all(sqlx::query(
            "SELECT id, function, body, accepted_at_ms FROM pending_dispatches WHERE accepted_at_ms < $1 ORDER BY accepted_at_ms LIMIT 100",
        )
        .bind(before_ms), "listing pending hand-overs").await?;
        Ok(rows
            .iter()
            .map(|r| PendingDispatch {
                id: r.get("id"),
                function: r.get("function"),
                body: r.get("body"),
                accepted_at_ms: r.get("accepted_at_ms"),
            })
            .collect())
    }

    /// Where the invocation `id` stands.
    pub async fn claim_state(&self, id: &InvocationId) -> Result<ClaimState, StoreError> {
        let row = self
            .fetch_optional(
                sqlx::query("SELECT state, claimed_at_ms FROM invocations WHERE id = $1").bind(id),
                "reading an invocation's claim",
            )
            .await?;
        Ok(match row {
            None => ClaimState::Unclaimed,
            Some(r) if r.get::<String, _>("state") == "done" => ClaimState::Done,
            Some(r) => ClaimState::Running { claimed_at_ms: r.get("claimed_at_ms") },
        })
    }
}
