//! One `spawn_*` helper per real part: authgate itself, the real OpenID Provider (npm
//! `oidc-provider`), a forging OpenID Provider for negative cases, NGINX, an echoing upstream.
//! Every part binds its own free port on 127.0.0.1 and is stopped when its handle drops.

pub mod browser;
pub mod caddy;
pub mod client;
pub mod forge;
pub mod log;
pub mod nginx;
pub mod node;
pub mod platform;
pub mod redis;
pub mod traefik;
pub mod upstream;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authgate::server::Application;

pub use client::{Client, Resp};
pub use testkit::{env_with, free_port, wait_for_port, ConfigDir, COOKIE_SECRET};
use testkit::{ChildGuard, TaskGuard};

/// The system clock, moved on by the test: "later" without waiting.
#[derive(Default)]
pub struct MovedClock(std::sync::atomic::AtomicU64);

impl MovedClock {
    /// Moves it on by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl authgate::state::Clock for MovedClock {
    fn now(&self) -> u64 {
        authgate::state::SystemClock.now() + self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A proxy `scripts/install-proxies` installs (`name` in its virtualenv), or the one `$env`
/// names; missing, the test fails, naming `what`.
pub fn proxy_binary(what: &str, name: &str, env: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/tools/proxies-venv/bin").join(name));
    assert!(
        path.is_file(),
        "no {what} at {}: run scripts/install-proxies (or set {env})",
        path.display()
    );
    path
}

/// Where tests keep screenshots and logs worth looking at.
pub fn artifacts() -> PathBuf {
    let dir = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// authgate running in this test process on a free port.
pub struct InProcess {
    /// Its port.
    pub port: u16,
    /// Its state (reload tests).
    pub state: authgate::state::AppState,
    _task: TaskGuard,
    /// The config directory, when the app owns it (see [`InProcess::owning`]); removed after
    /// the app stops.
    config: Option<ConfigDir>,
}

impl InProcess {
    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Keeps `config` for as long as the app runs: for helpers that return the app alone.
    pub fn owning(mut self, config: ConfigDir) -> Self {
        self.config = Some(config);
        self
    }
}

/// Same, on a port picked beforehand (providers must know the callback URL first).
pub async fn spawn_in_process_at(
    config: &ConfigDir,
    env: std::collections::HashMap<String, String>,
    port: u16,
) -> InProcess {
    let app = Application::build(
        config.path(),
        Some(([127, 0, 0, 1], port).into()),
        Arc::new(env),
    )
    .await
    .unwrap_or_else(|e| panic!("authgate did not start: {e}"));
    serve_in_process(app)
}

/// Builds and serves authgate from `config` with `env`.
pub async fn spawn_in_process(
    config: &ConfigDir,
    env: std::collections::HashMap<String, String>,
) -> InProcess {
    spawn_in_process_at(config, env, 0).await
}

/// Serves an application built by the test (e.g. with a short watch interval).
pub fn serve_in_process(app: Application) -> InProcess {
    let port = app.port();
    let state = app.state();
    let task = tokio::spawn(async move {
        app.run_until_stopped().await.unwrap();
    });
    InProcess {
        port,
        state,
        _task: task.into(),
        config: None,
    }
}

/// Builds and serves authgate from `config` with `env`, its providers built from `ctx`.
pub async fn spawn_in_process_with_context(
    config: &ConfigDir,
    env: std::collections::HashMap<String, String>,
    ctx: authgate::provider::ProviderContext,
) -> InProcess {
    let app = Application::build_with_context(
        config.path(),
        Some("127.0.0.1:0".parse().unwrap()),
        Arc::new(env),
        ctx,
    )
    .await
    .unwrap_or_else(|e| panic!("authgate did not start: {e}"));
    serve_in_process(app)
}

/// The authgate binary running as a child process.
pub struct AuthgateProcess {
    /// Its port.
    pub port: u16,
    child: ChildGuard,
    /// Its log file.
    pub log: PathBuf,
}

impl AuthgateProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as the kubelet does to stop a pod.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Sends `sig` (`-HUP`, `-TERM`, …).
    pub fn signal(&self, sig: &str) {
        self.child.signal(sig);
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.child.wait_exit(limit, Duration::from_millis(10))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts the real binary on a free port and waits for it to listen.
pub fn spawn_authgate(config: &ConfigDir, env: &[(&str, &str)], name: &str) -> AuthgateProcess {
    let port = free_port();
    let log = artifacts().join(format!("authgate-{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"));
    cmd.args(["serve", "--config"])
        .arg(config.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("AUTHGATE_COOKIE_SECRETS", COOKIE_SECRET)
        .env("RUST_LOG", "authgate=debug,info")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let p = AuthgateProcess {
        port,
        child: child.into(),
        log,
    };
    wait_for_port(port, "authgate");
    p
}

/// Requests sent by [`steady_load`] and how many of them failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadFigures {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered otherwise than `ok` says, or not answered at all.
    pub failed: u64,
}

/// Sends `GET url` with `headers` from `clients` keep-alive clients, back to back, until `stop`
/// is set; `ok` judges each status. For tests that a reload or a drain loses no request.
pub fn steady_load(
    url: String,
    headers: Vec<(String, String)>,
    clients: usize,
    ok: fn(u16) -> bool,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<LoadFigures> {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (url, headers, stop) = (url.clone(), headers.clone(), stop.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut figures = LoadFigures::default();
                    while !stop.load(Ordering::Relaxed) {
                        let mut req = http.get(&url);
                        for (k, v) in &headers {
                            req = req.header(k.as_str(), v.as_str());
                        }
                        figures.sent += 1;
                        match req.send().await {
                            Ok(r) if ok(r.status().as_u16()) => {}
                            _ => figures.failed += 1,
                        }
                    }
                    figures
                })
            })
            .collect();
        let mut total = LoadFigures::default();
        for t in tasks {
            let f = t.await.unwrap();
            total.sent += f.sent;
            total.failed += f.failed;
        }
        total
    })
}
