//! The identity cache: Slack user id → outcome of identifying them, until a deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::{AccessError, Identity};

/// Bound on remembered people; past it expired entries go first, then the soonest to expire.
pub(crate) const MAX_ENTRIES: usize = 10_000;

struct Entry {
    value: Result<Identity, AccessError>,
    expires: Instant,
}

#[derive(Default)]
pub(crate) struct Cache {
    map: HashMap<String, Entry>,
}

impl Cache {
    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<Result<Identity, AccessError>> {
        match self.map.get(key) {
            Some(e) if now < e.expires => Some(e.value.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(&mut self, key: &str, value: Result<Identity, AccessError>, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            return;
        }
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(key) {
            self.map.retain(|_, e| now < e.expires);
            if self.map.len() >= MAX_ENTRIES {
                if let Some(victim) = self.map.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| k.clone()) {
                    self.map.remove(&victim);
                }
            }
        }
        // A TTL past what Instant can hold (a policy's cache_ttl_secs near u64::MAX) is not
        // remembered rather than a panic.
        let Some(expires) = now.checked_add(ttl) else { return };
        self.map.insert(key.to_owned(), Entry { value, expires });
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(u: &str) -> Result<Identity, AccessError> {
        Ok(Identity { slack_user: u.into(), email: None, dn: None, roles: Default::default(), groups: Default::default() })
    }

    #[test]
    fn entries_expire_and_memory_is_bounded() {
        let mut c = Cache::default();
        let t0 = Instant::now();
        c.put("U1", id("U1"), Duration::from_secs(10), t0);
        assert!(c.get("U1", t0 + Duration::from_secs(9)).is_some());
        assert!(c.get("U1", t0 + Duration::from_secs(10)).is_none());
        assert_eq!(c.len(), 0);
        c.put("U1", id("U1"), Duration::ZERO, t0);
        assert_eq!(c.len(), 0);
        for i in 0..MAX_ENTRIES + 50 {
            c.put(&format!("U{i}"), id("x"), Duration::from_secs(100 + i as u64), t0);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        // The soonest to expire were the ones dropped.
        assert!(c.get("U0", t0).is_none());
        assert!(c.get(&format!("U{}", MAX_ENTRIES + 49), t0).is_some());
    }

    #[test]
    fn an_absurd_ttl_is_not_a_panic() {
        let mut c = Cache::default();
        let t0 = Instant::now();
        c.put("U1", id("U1"), Duration::from_secs(u64::MAX), t0);
        assert!(c.get("U1", t0).is_none(), "not remembered");
    }
}
