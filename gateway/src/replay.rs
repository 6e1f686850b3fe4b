//! Replay protection: a signed Slack request (slash command or button press) acts at most once
//! inside Slack's 5-minute window. Slack does not retry either, so a repeated signature is
//! always a replay. (Events API retries, `X-Slack-Retry-Num`, are not used by this bot.)

use std::collections::HashMap;
use std::sync::Mutex;

use iaas_slack::signature::MAX_SKEW_SECS;
use iaas_store::{Store, StoreError};

/// Where seen requests are remembered: the store (shared by every replica), or this process's
/// memory when the gateway has no database.
pub enum Replays {
    Store(Store),
    Memory(Mutex<HashMap<String, i64>>),
}

impl Replays {
    pub fn new(store: Option<Store>) -> Replays {
        match store {
            Some(store) => Replays::Store(store),
            None => Replays::Memory(Mutex::default()),
        }
    }

    /// `true` the first time the request signed `signature` at `timestamp` is seen. `now` is
    /// the gateway's clock; both in Unix seconds.
    pub async fn first_sight(&self, signature: &str, timestamp: i64, now: i64) -> Result<bool, StoreError> {
        // The signature check refuses the request once `timestamp` leaves the window.
        let expires_at_ms = timestamp.saturating_add(MAX_SKEW_SECS + 1).saturating_mul(1000);
        let now_ms = now.saturating_mul(1000);
        match self {
            Replays::Store(store) => store.first_sight(signature, expires_at_ms, now_ms).await,
            Replays::Memory(seen) => {
                let mut seen = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                seen.retain(|_, expires| *expires >= now_ms);
                Ok(seen.insert(signature.to_string(), expires_at_ms).is_none())
            }
        }
    }
}
