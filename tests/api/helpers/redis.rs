//! A real Redis (Debian's `redis-server`) on a free port, without persistence, stopped on drop.

use std::process::{Child, Command, Stdio};

use super::{free_port, wait_for_port};

/// A running Redis.
pub struct Redis {
    /// Its port.
    pub port: u16,
    child: Child,
}

impl Redis {
    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it now (the "Redis is down" cases).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `redis-server` on a free port and waits for it to listen.
pub fn spawn_redis() -> Redis {
    spawn_redis_at(free_port())
}

/// Starts `redis-server` on `port` (a Redis that comes up where authgate already looks) and
/// waits for it to listen.
pub fn spawn_redis_at(port: u16) -> Redis {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server (apt-get install redis-server): {e}")
        });
    let r = Redis { port, child };
    wait_for_port(port, "redis-server");
    r
}
