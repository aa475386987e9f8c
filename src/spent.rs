//! The set of spent login `state` values: a callback's state is accepted once (RFC 9700 §4.7,
//! OAuth 2.0 `state` as a one-time CSRF token), for as long as a login may last.
//!
//! Owns single use. The set is bounded, and when it is full it refuses rather than forgets:
//! evicting an entry early would let that state be replayed, so a full set refuses new logins
//! until entries age out. Plain data behind a std mutex, held for one map operation, never
//! across I/O; only login routes touch it, never `/oauth2/auth`.

use std::collections::HashMap;
use std::sync::Mutex;

/// What happened to a state offered to [`SpentStates::spend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// First use: now spent.
    Fresh,
    /// Used before: a replay.
    Replayed,
    /// The set is full of unexpired states: it cannot be remembered, so it is refused.
    Full,
}

/// Spent states with their expiry, bounded.
#[derive(Debug)]
pub struct SpentStates {
    /// Key → expiry (seconds since the epoch).
    entries: Mutex<HashMap<String, u64>>,
    /// Most entries held at once.
    capacity: usize,
    /// How long an entry is kept (seconds): at least a login's lifetime.
    ttl: u64,
}

impl SpentStates {
    /// A set holding at most `capacity` states for `ttl` seconds each.
    pub fn new(capacity: usize, ttl: u64) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    /// Its capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a new state could be remembered now (expired entries are dropped first).
    pub fn has_room(&self, now: u64) -> bool {
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.retain(|_, exp| *exp > now);
        }
        map.len() < self.capacity
    }

    /// Spends `key` at `now`.
    pub fn spend(&self, key: String, now: u64) -> Spend {
        let mut map = self.lock();
        if let Some(exp) = map.get(&key) {
            if *exp > now {
                return Spend::Replayed;
            }
        }
        if map.len() >= self.capacity {
            map.retain(|_, exp| *exp > now);
            if map.len() >= self.capacity {
                return Spend::Full;
            }
        }
        map.insert(key, now + self.ttl);
        Spend::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_spent_once() {
        let s = SpentStates::new(10, 600);
        assert_eq!(s.spend("a".into(), 1_000), Spend::Fresh);
        assert_eq!(s.spend("a".into(), 1_001), Spend::Replayed);
        assert_eq!(s.spend("a".into(), 1_599), Spend::Replayed);
    }

    #[test]
    fn a_full_set_refuses_instead_of_forgetting() {
        let s = SpentStates::new(3, 600);
        for k in ["a", "b", "c"] {
            assert_eq!(s.spend(k.into(), 1_000), Spend::Fresh);
        }
        assert!(!s.has_room(1_100));
        assert_eq!(s.spend("d".into(), 1_100), Spend::Full);
        // Nothing was evicted to make room: every spent state is still a replay.
        for k in ["a", "b", "c"] {
            assert_eq!(s.spend(k.into(), 1_100), Spend::Replayed, "{k}");
        }
    }

    #[test]
    fn expired_entries_make_room() {
        let s = SpentStates::new(2, 600);
        assert_eq!(s.spend("a".into(), 1_000), Spend::Fresh);
        assert_eq!(s.spend("b".into(), 1_300), Spend::Fresh);
        assert_eq!(s.spend("c".into(), 1_500), Spend::Full);
        // At 1 600 `a` has aged out (a login cannot last that long): room for one.
        assert!(s.has_room(1_600));
        assert_eq!(s.spend("c".into(), 1_600), Spend::Fresh);
        assert_eq!(s.spend("b".into(), 1_600), Spend::Replayed);
    }
}
