//! Replay protection: a signed Slack request (slash command or button press) acts at most once
//! inside Slack's 5-minute window. Slack does not retry either, so a repeated signature is
//! always a replay. (Events API retries, `X-Slack-Retry-Num`, are not used by this bot.)

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use iaas_slack::signature::MAX_SKEW_SECS;
use iaas_store::{Store, StoreError};

/// Where seen requests are remembered: the store (shared by every replica), or this process's
/// memory when the gateway has no database.
pub enum Replays {
    Store(Store),
    Memory(Mutex<Seen>),
}

/// Requests seen in this process, with their expiry in a min-heap so that forgetting the
/// expired ones costs only what expires. (Sweeping the whole map on every request, as before,
/// made each request cost the number of requests of the last five minutes: at a few thousand
/// commands a second the gateway spent its time in that sweep; bench/README.md.)
#[derive(Default)]
pub struct Seen {
    expires: HashMap<String, i64>,
    by_expiry: BinaryHeap<Reverse<(i64, String)>>,
}

impl Seen {
    /// Forgets what expired before `now_ms`, then `true` if `key` was not seen (and remembers it).
    fn first_sight(&mut self, key: &str, expires_at_ms: i64, now_ms: i64) -> bool {
        while let Some(Reverse((at, _))) = self.by_expiry.peek() {
            if *at >= now_ms {
                break;
            }
            if let Some(Reverse((at, k))) = self.by_expiry.pop() {
                // A key leaves the map only here, so its entry is this one; checked all the same.
                if self.expires.get(&k) == Some(&at) {
                    self.expires.remove(&k);
                }
            }
        }
        if self.expires.contains_key(key) {
            return false;
        }
        self.expires.insert(key.to_string(), expires_at_ms);
        self.by_expiry.push(Reverse((expires_at_ms, key.to_string())));
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.expires.len()
    }
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
                Ok(seen.first_sight(signature, expires_at_ms, now_ms))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_until_it_expires_and_only_expired_keys_are_forgotten() {
        let mut seen = Seen::default();
        assert!(seen.first_sight("a", 2_000, 0));
        assert!(seen.first_sight("b", 1_000, 0));
        assert!(!seen.first_sight("a", 2_000, 500));
        assert!(!seen.first_sight("b", 1_000, 1_000), "still inside its window at its expiry");
        // At 1,001 "b" has expired, "a" has not.
        assert!(seen.first_sight("b", 3_000, 1_001));
        assert!(!seen.first_sight("a", 2_000, 1_001));
        assert_eq!(seen.len(), 2);
        // At 2,500 "a" expired and is forgotten; "b" (again, until 3,000) is not.
        assert!(!seen.first_sight("b", 3_000, 2_500));
        assert!(seen.first_sight("a", 4_000, 2_500));
        assert_eq!(seen.len(), 2);
    }
}
