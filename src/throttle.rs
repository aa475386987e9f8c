//! A bound on the login requests one client address has in flight at once.
//!
//! Owns the count. `/oauth2/start` and `/oauth2/callback` call the identity provider (discovery,
//! the code exchange, Graph or the GitHub API): a client opening many of them at once could tie
//! up outbound connections and memory for everyone. Each such request holds a [`Slot`] for its
//! client address until it ends; beyond [`LoginThrottle::per_client`] the request is refused at
//! once. A std mutex held for one map operation, never across I/O; the map holds only
//! addresses with a request in flight, so it is bounded by the connections served at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Login requests in flight, by client address.
#[derive(Debug)]
pub struct LoginThrottle {
    /// Address → requests in flight.
    in_flight: Mutex<HashMap<IpAddr, u32>>,
    /// Most requests one address may have in flight.
    per_client: u32,
}

/// A login request in flight; the count drops with it.
#[derive(Debug)]
pub struct Slot {
    throttle: Arc<LoginThrottle>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.throttle.lock();
        if let Some(n) = map.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

impl LoginThrottle {
    /// At most `per_client` login requests in flight per address.
    pub fn new(per_client: u32) -> Arc<Self> {
        Arc::new(Self {
            in_flight: Mutex::new(HashMap::new()),
            per_client,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `client`, or `None` when it has `per_client` requests in flight already.
    pub fn enter(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let mut map = self.lock();
        let n = map.entry(client).or_insert(0);
        if *n >= self.per_client {
            return None;
        }
        *n += 1;
        Some(Slot {
            throttle: self.clone(),
            client,
        })
    }

    /// The bound.
    pub fn per_client(&self) -> u32 {
        self.per_client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_bound_and_slots_come_back_when_requests_end() {
        let t = LoginThrottle::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = t.enter(a).unwrap();
        let _s2 = t.enter(a).unwrap();
        assert!(t.enter(a).is_none(), "a third at once is refused");
        assert!(t.enter(b).is_some(), "another client is not affected");
        drop(s1);
        assert!(t.enter(a).is_some(), "a slot came back");
    }

    #[test]
    fn addresses_without_requests_leave_the_map() {
        let t = LoginThrottle::new(1);
        for i in 0..100u8 {
            let _slot = t.enter(IpAddr::from([10, 0, 0, i])).unwrap();
        }
        assert!(t.lock().is_empty());
    }
}
