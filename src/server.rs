//! Building and running the application: config → registry → bound listener → serve.
//!
//! Owns start-up order (validate everything before binding a port), what a reload is (a new
//! config replaces the old only when it validates completely; [`crate::watch`] decides when,
//! on SIGHUP or a change of the files), and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::{self, Config, ConfigErrors, Env, Secrets};
use crate::http::Limits;
use crate::oidc::JwksCache;
use crate::provider::ProviderContext;
use crate::session::MasterSecrets;
use crate::state::{AppState, SystemClock};
use crate::watch::{self, Watched};
use crate::workspace::Registry;

/// Why the application cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The outbound HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The outbound HTTP client: rustls, no redirects (RFC 9700 §4.11), short timeouts.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("authgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Loads the config directory and builds a registry from it, reading every secret.
pub fn load_registry(
    dir: &Path,
    env: &dyn Env,
    ctx: &ProviderContext,
) -> Result<(Config, Registry), ConfigErrors> {
    let config = config::load(dir, env)?;
    let secrets = Secrets::read(&config, env)?;
    let master = MasterSecrets::parse(&secrets.cookie_secrets).map_err(|e| {
        ConfigErrors(vec![config::ConfigError {
            file: PathBuf::from(config::SERVER_FILE),
            field: "secrets.cookie_secrets".into(),
            problem: e.to_string(),
        }])
    })?;
    let registry = Registry::build(&config, &master, &secrets, ctx)?;
    Ok((config, registry))
}

/// How the process stops on SIGTERM or Ctrl-C, so a rolling update loses no request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// How long requests are still accepted after the signal, with `/ready` answering 503,
    /// while Kubernetes and NGINX stop sending new ones.
    pub delay: Duration,
    /// The most in-flight requests get to finish once no new connection is accepted.
    pub timeout: Duration,
}

impl Default for Drain {
    /// 3 s of accepting and 10 s of finishing: with the manifests' 5 s `preStop` sleep, inside
    /// their 30 s `terminationGracePeriodSeconds`.
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A built application with its listener bound.
pub struct Application {
    /// The bound listener.
    listener: TcpListener,
    /// The state handlers share.
    state: AppState,
    /// The environment, for reloads.
    env: Arc<dyn Env>,
    /// How it stops.
    drain: Drain,
    /// What one process serves at once.
    limits: Limits,
    /// How often the config files are compared for a reload.
    watch: watch::Interval,
    /// The files the loaded config reads, for the watcher.
    watched: Watched,
    /// The SIGHUP handler, installed before the port is bound.
    hangup: watch::Hangup,
}

impl Application {
    /// Validates the whole config, then binds. `listen` overrides the server file.
    pub async fn build(
        dir: &Path,
        listen: Option<SocketAddr>,
        env: Arc<dyn Env>,
    ) -> Result<Self, StartError> {
        let http = http_client()?;
        let ctx = ProviderContext::new(http.clone(), JwksCache::new(http, Duration::from_secs(30)));
        Self::build_with_context(dir, listen, env, ctx).await
    }

    /// Same, with the providers' HTTP client and key cache given (tests shorten how often
    /// metadata and keys are refreshed).
    pub async fn build_with_context(
        dir: &Path,
        listen: Option<SocketAddr>,
        env: Arc<dyn Env>,
        ctx: ProviderContext,
    ) -> Result<Self, StartError> {
        // Before the port is bound: a SIGHUP sent as soon as it listens must find a handler.
        let hangup = watch::Hangup::new();
        let before = watch::ConfigDigest::of(dir);
        let (config, registry) = load_registry(dir, env.as_ref(), &ctx)?;
        let addr = listen.unwrap_or(config.server.listen);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let state = AppState::new(registry, ctx, Arc::new(SystemClock));
        Ok(Self {
            listener,
            state,
            env,
            drain: Drain::default(),
            limits: Limits::default(),
            watch: watch::Interval::default(),
            watched: Watched::new(dir, &config, before),
            hangup,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (for reload tests).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Sets the clock (tests that move time on instead of waiting for it).
    pub fn with_clock(mut self, clock: Arc<dyn crate::state::Clock>) -> Self {
        self.state = self.state.with_clock(clock);
        self
    }

    /// Sets the connection limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how the process stops.
    pub fn with_drain(mut self, drain: Drain) -> Self {
        self.drain = drain;
        self
    }

    /// Sets how often the config files are compared ([`watch::Interval::Off`]: SIGHUP only).
    pub fn with_watch(mut self, interval: watch::Interval) -> Self {
        self.watch = interval;
        self
    }

    /// Serves until SIGTERM or Ctrl-C; reloads on SIGHUP and when the config files change. Providers warm up in the background.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then drains: `/ready` answers 503 and requests are still
    /// served for [`Drain::delay`], then no new connection is accepted and in-flight requests
    /// get [`Drain::timeout`] to finish. Returns `Ok` either way: a stop is not a failure.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        warm_up(&self.state);
        // Stops with the server (a drop guard), so an in-process server leaves no poller behind.
        let _watcher = AbortOnDrop(tokio::spawn(watch::run(
            self.state.clone(),
            self.watched.clone(),
            self.env.clone(),
            self.watch,
            self.hangup,
        )));
        let app = crate::http::app(self.state.clone());
        tracing::info!(addr = ?self.listener.local_addr().ok(), "serving");
        let drain = self.drain;
        let state = self.state;
        let stopped = Arc::new(tokio::sync::Notify::new());
        let accepting_ends = {
            let stopped = stopped.clone();
            async move {
                stop.await;
                state.begin_drain();
                tracing::info!(
                    delay = ?drain.delay,
                    timeout = ?drain.timeout,
                    "stopping: /ready answers 503; in-flight requests finish"
                );
                tokio::time::sleep(drain.delay).await;
                stopped.notify_one();
            }
        };
        let serve = crate::http::serve(self.listener, app, self.limits, accepting_ends);
        tokio::select! {
            r = serve => {
                tracing::info!("stopped");
                r
            }
            () = async {
                stopped.notified().await;
                tokio::time::sleep(drain.timeout).await;
            } => {
                tracing::warn!(timeout = ?drain.timeout, "stopped with requests still in flight");
                Ok(())
            }
        }
    }
}

/// Discovery and JWKS for every provider and JWT machine client, in the background; failures
/// only log.
pub fn warm_up(state: &AppState) {
    for ws in state.registry().workspaces.iter() {
        for p in &ws.providers {
            let p = p.clone();
            tokio::spawn(async move { p.warm_up().await });
        }
        for c in &ws.jwt_clients {
            let c = c.clone();
            tokio::spawn(async move { c.warm_up().await });
        }
    }
}

/// Re-reads the config directory; the new registry replaces the old only if it is complete.
pub fn reload(state: &AppState, dir: &Path, env: &dyn Env) -> Result<(), ConfigErrors> {
    reload_config(state, dir, env).map(drop)
}

/// Same, returning the config now serving (the watcher learns which secret files it names).
///
/// Requests already running keep the registry they started with: `http::Incoming` holds an
/// `Arc<Registry>` for the whole request, and the old registry is dropped with the last one.
pub fn reload_config(state: &AppState, dir: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let (config, registry) = load_registry(dir, env, state.provider_context())
        .inspect_err(|_| state.metrics().reloaded(false))?;
    state.replace_registry(registry);
    state.metrics().reloaded(true);
    warm_up(state);
    Ok(config)
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
