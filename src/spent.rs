//! The set of spent login `state` values: a callback's state completes a login once (RFC 9700
//! §4.7, OAuth 2.0 `state` as a one-time CSRF token), for as long as a login may last.
//!
//! Owns single use, and that no client can make it fail for others. Only a callback that could
//! complete a login is recorded: its login-state cookie opened (so the state is one
//! `/oauth2/start` issued), and it carries a `code`, not an `error` (the caller checks both
//! first). Two bounds, each O(1) to check:
//!
//! - **Per client** (the address `http::Incoming::client` resolves, an IPv6 client by its
//!   /64): at most [`SpentStates::per_client`] entries. A client at its bound is refused new
//!   logins, at `/oauth2/start` and at the callback, until its entries age out; no one else is.
//! - **For the process**: at most [`SpentStates::capacity`] entries. A full set never refuses:
//!   it forgets its oldest entry and raises a *floor* to that login's start time, and a
//!   callback for a login started at or before the floor is refused as a replay. Every
//!   forgotten state stays refused that way, so the guarantee of a set that refuses when full
//!   holds; what a flood can cost others is only a login in flight for longer than the flood
//!   takes to turn the whole set over, never a new one.
//!
//! Plain data behind a std mutex, held for a few map operations, never across I/O; expired
//! entries are dropped a few at a time by each call ([`PURGE_PER_CALL`]), never by a scan. Only
//! login routes touch it, never `/oauth2/auth`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Expired entries dropped at most per call: more than the one a call adds, so the set keeps up.
pub const PURGE_PER_CALL: usize = 8;

/// What happened to a state offered to [`SpentStates::spend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// First use: now spent.
    Fresh,
    /// Used before: a replay.
    Replayed,
    /// Started at or before the floor: it may have been spent and forgotten, so it is refused.
    BelowFloor,
    /// The client holds its bound of spent states already.
    ClientFull,
}

/// Whose share an entry counts against: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber's network; a single address of it costs nothing to change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey(u128);

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => Self((u128::from(v6) & !0u128 << 64) | 1),
        }
    }
}

/// One spent state, in the order spent.
#[derive(Debug)]
struct Entry {
    /// Digest of workspace and state.
    key: [u8; 16],
    /// Whose share it counts against.
    client: ClientKey,
    /// When its login started (seconds since the epoch), for the floor.
    created: u64,
    /// When it may be forgotten: its login can no longer complete.
    expires: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Spent states by digest → expiry.
    by_key: HashMap<[u8; 16], u64>,
    /// The same entries, oldest first.
    order: VecDeque<Entry>,
    /// Entries held per client; a client without any has no entry here.
    per_client: HashMap<ClientKey, u32>,
    /// Logins started at or before this (seconds since the epoch) are refused: the set forgot
    /// states of that age to make room.
    floor: u64,
}

impl Inner {
    /// Drops up to [`PURGE_PER_CALL`] expired entries from the front.
    fn purge(&mut self, now: u64) {
        for _ in 0..PURGE_PER_CALL {
            match self.order.front() {
                Some(e) if e.expires <= now => {
                    self.pop_oldest();
                }
                _ => return,
            }
        }
    }

    /// Removes the oldest entry from every index.
    fn pop_oldest(&mut self) -> Option<Entry> {
        let e = self.order.pop_front()?;
        if self.by_key.get(&e.key) == Some(&e.expires) {
            self.by_key.remove(&e.key);
        }
        if let Some(n) = self.per_client.get_mut(&e.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&e.client);
            }
        }
        Some(e)
    }

    fn held_by(&self, client: ClientKey) -> u32 {
        self.per_client.get(&client).copied().unwrap_or(0)
    }

    /// Whether `client` holds `bound` entries that have not expired. When its count says so,
    /// up to `bound` more expired entries are dropped first (a bounded few, whatever the set's
    /// size), so that a client is rarely refused for entries that have already expired.
    fn is_full(&mut self, client: ClientKey, bound: u32, now: u64) -> bool {
        if self.held_by(client) < bound {
            return false;
        }
        for _ in 0..bound {
            match self.order.front() {
                Some(e) if e.expires <= now => {
                    self.pop_oldest();
                }
                _ => break,
            }
        }
        self.held_by(client) >= bound
    }
}

/// Spent states with their expiry, bounded per client and in all.
#[derive(Debug)]
pub struct SpentStates {
    inner: Mutex<Inner>,
    /// Most entries held at once.
    capacity: usize,
    /// Most entries one client holds at once.
    per_client: u32,
    /// How long an entry is kept (seconds): at least a login's lifetime.
    ttl: u64,
}

impl SpentStates {
    /// A set holding at most `capacity` states, `per_client` of them for one client, `ttl`
    /// seconds each.
    pub fn new(capacity: usize, per_client: u32, ttl: u64) -> Self {
        Self {
            inner: Mutex::default(),
            capacity: capacity.max(1),
            per_client: per_client.max(1),
            ttl,
        }
    }

    /// Its capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most entries one client holds.
    pub fn per_client(&self) -> u32 {
        self.per_client
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The digest a state is remembered by, per workspace.
    fn key(workspace: &str, state: &str) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(workspace.as_bytes());
        h.update([0]);
        h.update(state.as_bytes());
        let mut key = [0; 16];
        key.copy_from_slice(&h.finalize()[..16]);
        key
    }

    /// Whether `client` may start a login now: `false` when it holds its bound of spent states
    /// (its callback would be refused). O(1): a few expired entries are dropped first.
    pub fn has_room_for(&self, client: IpAddr, now: u64) -> bool {
        let mut inner = self.lock();
        inner.purge(now);
        !inner.is_full(client.into(), self.per_client, now)
    }

    /// Spends the `state` of a login of `workspace` started at `created`, whose callback came
    /// from `client`, at `now`.
    pub fn spend(
        &self,
        workspace: &str,
        state: &str,
        client: IpAddr,
        created: u64,
        now: u64,
    ) -> Spend {
        let key = Self::key(workspace, state);
        let client = ClientKey::from(client);
        let mut inner = self.lock();
        inner.purge(now);
        if inner.by_key.get(&key).is_some_and(|exp| *exp > now) {
            return Spend::Replayed;
        }
        if created <= inner.floor {
            return Spend::BelowFloor;
        }
        if inner.is_full(client, self.per_client, now) {
            return Spend::ClientFull;
        }
        if inner.order.len() >= self.capacity {
            if let Some(oldest) = inner.pop_oldest() {
                if oldest.expires > now {
                    // Forgotten before it expired: every login as old is refused from now on.
                    inner.floor = inner.floor.max(oldest.created);
                }
            }
        }
        let expires = now + self.ttl;
        inner.by_key.insert(key, expires);
        inner.order.push_back(Entry {
            key,
            client,
            created,
            expires,
        });
        *inner.per_client.entry(client).or_insert(0) += 1;
        Spend::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "192.0.2.1";
    const B: &str = "192.0.2.2";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_state_is_spent_once_per_workspace() {
        let s = SpentStates::new(10, 10, 600);
        assert_eq!(s.spend("mcd", "a", ip(A), 990, 1_000), Spend::Fresh);
        assert_eq!(s.spend("mcd", "a", ip(A), 990, 1_001), Spend::Replayed);
        // From another address too: the state is what is spent.
        assert_eq!(s.spend("mcd", "a", ip(B), 990, 1_599), Spend::Replayed);
        assert_eq!(s.spend("perso", "a", ip(A), 990, 1_002), Spend::Fresh);
    }

    #[test]
    fn a_client_at_its_bound_is_refused_and_no_one_else() {
        let s = SpentStates::new(100, 3, 600);
        for st in ["a", "b", "c"] {
            assert_eq!(s.spend("mcd", st, ip(A), 990, 1_000), Spend::Fresh);
        }
        assert!(!s.has_room_for(ip(A), 1_000));
        assert_eq!(s.spend("mcd", "d", ip(A), 990, 1_000), Spend::ClientFull);
        assert!(s.has_room_for(ip(B), 1_000));
        assert_eq!(s.spend("mcd", "d", ip(B), 990, 1_000), Spend::Fresh);
        // Its entries age out: room again.
        assert!(s.has_room_for(ip(A), 1_600));
        assert_eq!(s.spend("mcd", "e", ip(A), 1_590, 1_600), Spend::Fresh);
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let s = SpentStates::new(100, 2, 600);
        assert_eq!(
            s.spend("mcd", "a", ip("2001:db8:1:2::1"), 990, 1_000),
            Spend::Fresh
        );
        assert_eq!(
            s.spend("mcd", "b", ip("2001:db8:1:2::ffff"), 990, 1_000),
            Spend::Fresh
        );
        assert!(!s.has_room_for(ip("2001:db8:1:2:aaaa::1"), 1_000));
        assert!(s.has_room_for(ip("2001:db8:1:3::1"), 1_000));
        // An IPv4-mapped address is the IPv4 client.
        assert_eq!(
            s.spend("mcd", "c", ip("::ffff:192.0.2.1"), 990, 1_000),
            Spend::Fresh
        );
        assert_eq!(s.spend("mcd", "d", ip(A), 990, 1_000), Spend::Fresh);
        assert!(!s.has_room_for(ip(A), 1_000));
    }

    /// Many clients fill the set: new logins still complete, and no spent state becomes
    /// usable again, because every forgotten one is below the floor.
    #[test]
    fn a_full_set_forgets_its_oldest_behind_a_floor_and_refuses_no_new_login() {
        let s = SpentStates::new(3, 10, 600);
        let clients = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
        for (i, (st, c)) in ["a", "b", "c"].iter().zip(clients).enumerate() {
            let created = 900 + i as u64;
            assert_eq!(s.spend("mcd", st, ip(c), created, 1_000), Spend::Fresh);
        }
        // Full. A new client's login completes; `a` is forgotten behind the floor.
        assert!(s.has_room_for(ip("203.0.113.9"), 1_010));
        assert_eq!(
            s.spend("mcd", "d", ip("203.0.113.9"), 1_005, 1_010),
            Spend::Fresh
        );
        assert_eq!(s.spend("mcd", "a", ip(A), 900, 1_011), Spend::BelowFloor);
        for st in ["b", "c", "d"] {
            assert_eq!(
                s.spend("mcd", st, ip(A), 1_000, 1_011),
                Spend::Replayed,
                "{st}"
            );
        }
        // A login started after the floor is not touched by it.
        assert_eq!(s.spend("mcd", "e", ip(B), 1_008, 1_012), Spend::Fresh);
        assert_eq!(s.spend("mcd", "b", ip(B), 901, 1_013), Spend::BelowFloor);
    }

    #[test]
    fn expired_entries_leave_a_few_per_call_and_never_raise_the_floor() {
        let s = SpentStates::new(2, 10, 600);
        assert_eq!(s.spend("mcd", "a", ip(A), 990, 1_000), Spend::Fresh);
        assert_eq!(s.spend("mcd", "b", ip(B), 1_290, 1_300), Spend::Fresh);
        // At 1 600 `a` has expired: it makes room without a floor.
        assert_eq!(s.spend("mcd", "c", ip(A), 1_590, 1_600), Spend::Fresh);
        assert_eq!(s.lock().floor, 0);
        assert_eq!(s.spend("mcd", "b", ip(B), 1_290, 1_601), Spend::Replayed);
        // Many expired at once: each call drops a bounded few.
        let big = SpentStates::new(1_000, 1_000, 10);
        for i in 0..100 {
            assert_eq!(
                big.spend("mcd", &format!("s{i}"), ip(A), 1, 5),
                Spend::Fresh
            );
        }
        big.has_room_for(ip(B), 100);
        assert_eq!(big.lock().order.len(), 100 - PURGE_PER_CALL);
        assert_eq!(
            big.lock().held_by(ip(A).into()),
            (100 - PURGE_PER_CALL) as u32
        );
    }
}
