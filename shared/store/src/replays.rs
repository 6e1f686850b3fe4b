//! Signed requests seen inside their replay window, so each acts at most once.

use crate::{Store, StoreError};

impl Store {
    /// Remembers `key` until `expires_at_ms`. `true` the first time; `false` when it is already
    /// remembered (a replay). Forgets keys whose window closed before `now_ms`.
    pub async fn first_sight(&self, key: &str, expires_at_ms: i64, now_ms: i64) -> Result<bool, StoreError> {
        self.execute(
            sqlx::query("DELETE FROM seen_requests WHERE expires_at_ms < $1").bind(now_ms),
            "forgetting requests past their replay window",
        )
        .await?;
        let inserted = self
            .execute(
                sqlx::query("INSERT INTO seen_requests (key, expires_at_ms) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(expires_at_ms),
                "remembering a signed request",
            )
            .await?;
        Ok(inserted.rows_affected() == 1)
    }
}
