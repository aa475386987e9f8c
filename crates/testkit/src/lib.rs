//! What authgate's integration tests (`tests/api`, `tests/aarch64.rs`) and benchmarks
//! (`benches/micro`, `benches/load/loadkit`) share, written once.
//!
//! # Layout
//! * [`tokens`]: the fixture keys of `tests/fixtures/`, their JWKS, and token minting.
//! * [`idp`]: a static OpenID Provider on loopback (discovery and a JWKS), optionally holding
//!   its discovery document back, for tests of requests in flight.
//! * [`nginx`]: the auth location as ingress-nginx renders it.
//! * [`config`]: config directories and the workspace files most tests and benchmarks write.
//! * [`session`]: a config loaded as `authgate serve` loads it, and the test user's session
//!   cookie sealed with its keys.
//! * [`client`]: a browser-like client (cookie jar per host, the test provider's forms).
//! * [`raw`]: HTTP/1.1 clients on raw sockets, for what an HTTP library never sends and for
//!   readiness probes without a runtime.
//! * [`guard`]: child processes and tasks stopped when their handle drops.
//! * Here: the test cookie secret, free ports, the clock.
//!
//! Test support: a failure to bind, write or connect where a test cannot go on panics with what
//! failed. Functions a benchmark calls outside a test return the error instead.

pub mod client;
pub mod config;
pub mod guard;
pub mod idp;
pub mod nginx;
pub mod raw;
pub mod session;
pub mod tokens;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use config::ConfigDir;
pub use guard::{ChildGuard, TaskGuard};
pub use session::env_with;

/// The master cookie secret of every test and benchmark (`AUTHGATE_COOKIE_SECRETS`); it
/// protects nothing.
pub const COOKIE_SECRET: &str = "dGVzdC1vbmx5LWNvb2tpZS1zZWNyZXQtMzItYnl0ZXMtbG9uZw";

/// A port free right now on 127.0.0.1, for servers that must be told their port.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`), each port once per
/// process: between this pick and the server's own bind, no outgoing connection of any test
/// (which gets its source port from that range) and no other pick can take it. A port the
/// kernel hands out for `:0` could be, and was (Traefik: "address already in use").
pub fn try_free_port() -> Result<u16, String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    if let Some((low, high)) = below_ephemeral() {
        let span = u32::from(high - low) + 1;
        // Processes that run at once start apart.
        let start = std::process::id().wrapping_mul(7919) % span;
        for _ in 0..span.min(4096) {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = low + ((start + n) % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Ports from 10000 to just below the kernel's ephemeral range, when there are some.
fn below_ephemeral() -> Option<(u16, u16)> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let first: u16 = range.split_whitespace().next()?.parse().ok()?;
    (first > 11_000).then(|| (10_000, first - 1))
}

/// [`try_free_port`], panicking when none is free.
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until something accepts TCP connections on `port` (a readiness check, not a sleep);
/// panics after 20 s, naming `what`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
