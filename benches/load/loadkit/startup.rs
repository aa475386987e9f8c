//! Time to first answer, and idle memory.
//!
//! The clock starts just before `spawn` and stops when a raw TCP client polling the port (every
//! 200 µs: connect, `GET /ping`, read the answer; `testkit::raw::get`) gets `200`. No curl: its own start-up would
//! be measured too. Run inside a network namespace holding only loopback, the provider is
//! unreachable and discovery fails at once, as on a node whose IdP is down.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::procfs;

/// What `loadkit startup` prints.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StartupResult {
    /// Spawn → first `200` from `/ping`, per run, milliseconds.
    pub(crate) runs_ms: Vec<f64>,
    pub(crate) median_ms: f64,
    pub(crate) max_ms: f64,
    /// `VmRSS` after the last run sat idle, bytes.
    pub(crate) idle_rss: u64,
    /// Of which anonymous memory (heap, stacks) and mapped files (the binary, libraries).
    pub(crate) idle_rss_anon: u64,
    pub(crate) idle_rss_file: u64,
    /// Seconds it sat idle first.
    pub(crate) idle_secs: u64,
}

/// One `GET /ping`; `true` on `200`.
fn ping(addr: SocketAddr) -> bool {
    testkit::raw::get::<&str, &str>(addr, "/ping", &[]).is_ok_and(|a| a.status == 200)
}

/// Starts `bin serve --config <config>` `runs` times; the last run idles `idle_secs` before
/// its resident set is read.
pub(crate) fn measure(
    bin: &Path,
    config: &Path,
    runs: u32,
    idle_secs: u64,
) -> Result<StartupResult, String> {
    let mut runs_ms = Vec::new();
    let (mut idle_rss, mut split) = (0, (0, 0));
    for i in 0..runs {
        let port = testkit::try_free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let t0 = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let deadline = t0 + Duration::from_secs(10);
        let mut up = false;
        while Instant::now() < deadline {
            if ping(addr) {
                up = true;
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("authgate exited during start-up: {status}"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let elapsed = t0.elapsed();
        if !up {
            let _ = child.kill();
            return Err("authgate did not answer /ping within 10 s".into());
        }
        runs_ms.push(elapsed.as_secs_f64() * 1000.0);
        if i + 1 == runs {
            std::thread::sleep(Duration::from_secs(idle_secs));
            idle_rss = procfs::rss_bytes(&[child.id()]);
            split = procfs::rss_split(child.id());
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut sorted = runs_ms.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(StartupResult {
        median_ms: sorted[sorted.len() / 2],
        max_ms: sorted.last().copied().unwrap_or(0.0),
        runs_ms,
        idle_rss,
        idle_rss_anon: split.0,
        idle_rss_file: split.1,
        idle_secs,
    })
}
