//! A real Redis (Debian's `redis-server`) on a free port, without persistence, stopped on drop:
//! plain, over TLS (`tests/fixtures/redis-*.pem`), with passwords and ACL users, as a replica,
//! and as a sentinel.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::ChildGuard;

use super::{free_port, repo, wait_for_port};

/// A running Redis (or sentinel).
pub struct Redis {
    /// Its port.
    pub port: u16,
    /// Whether it speaks TLS only.
    tls: bool,
    child: ChildGuard,
    /// Its working directory (a sentinel's config file, which it rewrites, is there).
    _dir: Option<tempfile::TempDir>,
}

impl Redis {
    /// `redis://127.0.0.1:<port>`, or `rediss://` for a TLS Redis.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A connection to it.
    pub async fn connect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// The keys of every session record it holds.
    pub async fn session_keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg("authgate:session:*")
            .query_async(&mut self.connect().await)
            .await
            .unwrap()
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

/// A file of `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// Starts `redis-server` on a free port and waits for it to listen.
pub fn spawn_redis() -> Redis {
    spawn_redis_at(free_port())
}

/// Starts `redis-server` on `port` (a Redis that comes up where authgate already looks) and
/// waits for it to listen.
pub fn spawn_redis_at(port: u16) -> Redis {
    spawn_redis_with(port, &[])
}

/// Starts `redis-server` on `port` with `more` arguments (`--requirepass`, `--user`,
/// `--replicaof`…) and waits for it to listen.
pub fn spawn_redis_with(port: u16, more: &[&str]) -> Redis {
    let port_text = port.to_string();
    let mut args = vec!["--port", &port_text];
    args.extend_from_slice(more);
    start(port, &args, false)
}

/// Starts a TLS-only `redis-server` with the fixture certificate signed by
/// `redis-ca.pem`; `client_certs` makes it ask clients for a certificate of that CA.
pub fn spawn_redis_tls(client_certs: bool) -> Redis {
    let port = free_port();
    let (port_text, cert, key, ca) = (
        port.to_string(),
        fixture("redis-server.pem"),
        fixture("redis-server-key.pem"),
        fixture("redis-ca.pem"),
    );
    let args = [
        "--port",
        "0",
        "--tls-port",
        &port_text,
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca.to_str().unwrap(),
        "--tls-auth-clients",
        if client_certs { "yes" } else { "no" },
    ];
    start(port, &args, true)
}

/// Starts a sentinel watching the master `master` at `127.0.0.1:<master_port>` (quorum 1,
/// down after 1 s), and waits for it to listen.
pub fn spawn_sentinel(master: &str, master_port: u16) -> Redis {
    spawn_sentinel_with(master, master_port, "")
}

/// Same, with more lines of sentinel config (`requirepass`, `sentinel auth-pass …`).
pub fn spawn_sentinel_with(master: &str, master_port: u16, more: &str) -> Redis {
    sentinel(master, master_port, false, |_| more.to_string())
}

/// A TLS-only sentinel (the fixture certificate, no client certificates asked) watching a TLS
/// master.
pub fn spawn_sentinel_tls(master: &str, master_port: u16) -> Redis {
    let (cert, key, ca) = (
        fixture("redis-server.pem"),
        fixture("redis-server-key.pem"),
        fixture("redis-ca.pem"),
    );
    sentinel(master, master_port, true, |port| {
        format!(
            "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\n\
             tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes",
            cert.display(),
            key.display(),
            ca.display()
        )
    })
}

/// A sentinel on a free port, `more(port)` appended to its config.
fn sentinel(master: &str, master_port: u16, tls: bool, more: impl FnOnce(u16) -> String) -> Redis {
    let port = free_port();
    let more = more(port);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor {master} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {master} 1000\n\
             sentinel failover-timeout {master} 10000\n{more}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start redis-server --sentinel: {e}"));
    let r = Redis {
        port,
        tls,
        child: child.into(),
        _dir: Some(dir),
    };
    wait_for_port(port, "redis sentinel");
    r
}

fn start(port: u16, args: &[&str], tls: bool) -> Redis {
    // Its own directory: a master still writes an RDB file to feed a replica.
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("redis-server")
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server (apt-get install redis-server): {e}")
        });
    let r = Redis {
        port,
        tls,
        child: child.into(),
        _dir: Some(dir),
    };
    wait_for_port(port, "redis-server");
    r
}

/// A connection to a plain Redis, as the test's own client (`password` for the default user).
pub async fn connect(port: u16, password: Option<&str>) -> redis::aio::MultiplexedConnection {
    let url = match password {
        Some(p) => format!("redis://:{p}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    };
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `limit`; panics naming `what`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until authgate on `port` says at `/ready` that its Redis store is connected: a login
/// right after start would otherwise race the background connection.
pub async fn until_store_connected(port: u16) {
    eventually(
        Duration::from_secs(15),
        "the store connects",
        || async move {
            let r = super::Client::new()
                .get(&format!("http://127.0.0.1:{port}/ready"), &[])
                .await;
            r.body.contains("redis: connected").then_some(())
        },
    )
    .await;
}
