//! Sliding-window rate limits per person and per person + command.
//!
//! Each window remembers the instants of the requests it let through during the last 60 s
//! (at most `limit` of them), so memory per key is bounded by the limit; keys whose newest
//! request is older than the window are swept at most once per window (and whenever the number
//! of keys reaches [`MAX_KEYS`]). A refused request is not counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Bound on remembered keys per map. Past it (after a sweep) a request from a *new* key is
/// refused: failing closed beats growing without bound.
pub(crate) const MAX_KEYS: usize = 50_000;

#[derive(Default)]
struct Window {
    hits: VecDeque<Instant>,
}

impl Window {
    fn prune(&mut self, now: Instant) {
        while let Some(&t) = self.hits.front() {
            if now.saturating_duration_since(t) >= WINDOW {
                self.hits.pop_front();
            } else {
                break;
            }
        }
    }

    /// `Some(seconds)` until a slot frees when `limit` is reached.
    fn blocked(&self, limit: u32, now: Instant) -> Option<u64> {
        if self.hits.len() < limit as usize {
            return None;
        }
        let oldest = *self.hits.front()?;
        let wait = (oldest + WINDOW).saturating_duration_since(now);
        Some(ceil_secs(wait))
    }

    fn idle(&self, now: Instant) -> bool {
        self.hits.back().is_none_or(|&t| now.saturating_duration_since(t) >= WINDOW)
    }
}

pub(crate) struct Limiter {
    per_user: u32,
    per_command: BTreeMap<String, u32>,
    users: HashMap<String, Window>,
    commands: HashMap<(String, String), Window>,
    last_sweep: Option<Instant>,
}

impl Limiter {
    /// `per_command` keys must already be normalized.
    pub(crate) fn new(per_user: u32, per_command: BTreeMap<String, u32>) -> Limiter {
        Limiter { per_user, per_command, users: HashMap::new(), commands: HashMap::new(), last_sweep: None }
    }

    /// `command` must already be normalized.
    pub(crate) fn check(&mut self, who: &str, command: &str, now: Instant) -> Result<(), u64> {
        let due = self.last_sweep.is_none_or(|t| now.saturating_duration_since(t) >= WINDOW);
        if due || self.users.len() >= MAX_KEYS || self.commands.len() >= MAX_KEYS {
            self.sweep(now);
        }
        let cmd_limit = self.per_command.get(command).copied();
        let user_key_new = !self.users.contains_key(who);
        let cmd_key = (who.to_owned(), command.to_owned());
        let cmd_key_new = cmd_limit.is_some() && !self.commands.contains_key(&cmd_key);
        if (user_key_new && self.users.len() >= MAX_KEYS) || (cmd_key_new && self.commands.len() >= MAX_KEYS) {
            tracing::warn!(keys = self.users.len(), "rate limiter is full of active keys; refusing a new one");
            return Err(WINDOW.as_secs());
        }

        let mut retry = None;
        let user = self.users.entry(who.to_owned()).or_default();
        user.prune(now);
        retry = retry.max(user.blocked(self.per_user, now));
        if let Some(limit) = cmd_limit {
            let cmd = self.commands.entry(cmd_key.clone()).or_default();
            cmd.prune(now);
            retry = retry.max(cmd.blocked(limit, now));
        }
        if let Some(secs) = retry {
            return Err(secs);
        }
        if let Some(w) = self.users.get_mut(who) {
            w.hits.push_back(now);
        }
        if cmd_limit.is_some() {
            if let Some(w) = self.commands.get_mut(&cmd_key) {
                w.hits.push_back(now);
            }
        }
        Ok(())
    }

    fn sweep(&mut self, now: Instant) {
        self.users.retain(|_, w| !w.idle(now));
        self.commands.retain(|_, w| !w.idle(now));
        self.last_sweep = Some(now);
    }

    #[cfg(test)]
    pub(crate) fn keys(&self) -> (usize, usize) {
        (self.users.len(), self.commands.len())
    }
}

fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_keys_are_swept() {
        let mut l = Limiter::new(3, BTreeMap::from([("create".to_owned(), 1)]));
        let t0 = Instant::now();
        for i in 0..100 {
            l.check(&format!("U{i}"), "create", t0).unwrap();
        }
        assert_eq!(l.keys(), (100, 100));
        // A minute later the next call sweeps everybody else away.
        l.check("UNEW", "power", t0 + WINDOW).unwrap();
        assert_eq!(l.keys(), (1, 0));
    }

    #[test]
    fn retry_is_until_the_oldest_hit_leaves_the_window() {
        let mut l = Limiter::new(2, BTreeMap::new());
        let t0 = Instant::now();
        l.check("U1", "power", t0).unwrap();
        l.check("U1", "power", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(l.check("U1", "power", t0 + Duration::from_secs(20)), Err(40));
        assert_eq!(l.check("U1", "power", t0 + Duration::from_millis(59_500)), Err(1));
        // The first hit leaves; one slot, then blocked until the second leaves.
        l.check("U1", "power", t0 + WINDOW).unwrap();
        assert_eq!(l.check("U1", "power", t0 + WINDOW), Err(10));
    }

    #[test]
    fn refused_requests_do_not_count_and_time_going_backwards_is_harmless() {
        let mut l = Limiter::new(1, BTreeMap::new());
        let t0 = Instant::now() + Duration::from_secs(3600);
        l.check("U1", "x", t0).unwrap();
        for s in 1..50 {
            assert!(l.check("U1", "x", t0 + Duration::from_secs(s)).is_err());
        }
        l.check("U1", "x", t0 + WINDOW).unwrap();
        // An earlier `now` than recorded hits: still limited, no panic.
        assert!(l.check("U1", "x", t0).is_err());
    }
}
