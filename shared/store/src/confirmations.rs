//! Single-use confirmations for destructive commands, bound to the user who asked, the VM, the
//! action and the function that asked for it, expiring.

use sqlx::Row;

use iaas_ids::{Moref, UserId, VmName};

use crate::{now_ms, Store, StoreError};

/// What a confirmation button stands for, as asked for and as read back on the press.
#[derive(Clone, Debug, PartialEq)]
pub struct Confirmation {
    pub token: String,
    pub function: String,
    /// What the press will do (`delete`, `resize`, `decommission`): a press of another kind is refused.
    pub action: String,
    pub slack_user: UserId,
    pub vm_moref: Moref,
    pub vm_name: VmName,
    pub args_json: String,
    pub expires_at_ms: i64,
}

/// A press: who pressed, and what the button they pressed claims to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Press<'a> {
    pub user: &'a str,
    pub function: &'a str,
    pub action: &'a str,
    /// `confirm` or `cancel`.
    pub used_as: &'a str,
}

/// Why a press was refused. Each is said to the presser as a sentence by the function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmRefusal {
    Unknown,
    /// The token was asked for by another function or for another action (a resize's token
    /// sent as a delete press): never used, whoever sends it.
    OtherAction {
        action: String,
    },
    OtherUser {
        owner: String,
    },
    Expired,
    AlreadyUsed {
        used_as: String,
    },
}

impl Store {
    pub async fn create_confirmation(&self, c: &Confirmation) -> Result<(), StoreError> {
        self.execute(sqlx::query(
            "INSERT INTO confirmations (token, function, action, slack_user, vm_moref, vm_name, args_json, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.token)
        .bind(&c.function)
        .bind(&c.action)
        .bind(&c.slack_user)
        .bind(&c.vm_moref)
        .bind(&c.vm_name)
        .bind(&c.args_json)
        .bind(now_ms())
        .bind(c.expires_at_ms), "recording a confirmation").await?;
        Ok(())
    }

    /// Uses the confirmation once, for this press, at `now_ms`. The conditional UPDATE makes a
    /// double press (or two deliveries) succeed exactly once, and only for the user, function
    /// and action it was asked for; a refused press leaves it untouched.
    pub async fn use_confirmation(
        &self,
        token: &str,
        press: &Press<'_>,
        now_ms: i64,
    ) -> Result<Result<Confirmation, ConfirmRefusal>, StoreError> {
        let used = self
            .execute(
                sqlx::query(
                    "UPDATE confirmations SET used_at_ms = $1, used_as = $2 \
                     WHERE token = $3 AND slack_user = $4 AND function = $5 AND action = $6 AND used_at_ms IS NULL AND expires_at_ms > $1",
                )
                .bind(now_ms)
                .bind(press.used_as)
                .bind(token)
                .bind(press.user)
                .bind(press.function)
                .bind(press.action),
                "using a confirmation",
            )
            .await?;
        let row = self
            .fetch_optional(
                sqlx::query(
                    "SELECT token, function, action, slack_user, vm_moref, vm_name, args_json, expires_at_ms, used_at_ms, used_as \
                     FROM confirmations WHERE token = $1",
                )
                .bind(token),
                "reading a confirmation",
            )
            .await?;
        let Some(row) = row else { return Ok(Err(ConfirmRefusal::Unknown)) };
        let c = Confirmation {
            token: row.get("token"),
            function: row.get("function"),
            action: row.get("action"),
            slack_user: row.get("slack_user"),
            vm_moref: row.get("vm_moref"),
            vm_name: row.get("vm_name"),
            args_json: row.get("args_json"),
            expires_at_ms: row.get("expires_at_ms"),
        };
        if used.rows_affected() == 1 {
            return Ok(Ok(c));
        }
        // Refused: say why, most specific first.
        Ok(Err(if c.function != press.function || c.action != press.action {
            ConfirmRefusal::OtherAction { action: c.action }
        } else if c.slack_user != press.user {
            ConfirmRefusal::OtherUser { owner: c.slack_user.into_string() }
        } else if let Some(used_as) = row.get::<Option<String>, _>("used_as") {
            ConfirmRefusal::AlreadyUsed { used_as }
        } else {
            ConfirmRefusal::Expired
        }))
    }
}
