//! The state every micro-benchmark shares: a config directory with one login workspace and one
//! `auth = "none"` workspace, the application state and router built from it exactly as
//! `authgate serve` builds them (minus the listener), a session cookie sealed by the workspace's
//! own codec, and a provider whose discovery and JWKS came from a loopback [`StaticIdp`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use authgate::identity::Identity;
use authgate::state::{AppState, SystemClock};
use authgate::workspace::{Registry, Workspace};
use axum::Router;
use jsonwebtoken::Algorithm;

use testkit::config::{bench_workspace, open_workspace};
use testkit::idp::{self, StaticIdp};
use testkit::{env_with, session, tokens, ConfigDir};

/// Host of the workspace that needs a login.
pub(crate) const LOGIN_HOST: &str = "mcd.bench.test";
/// Host of the `auth = "none"` workspace.
pub(crate) const OPEN_HOST: &str = "perso.bench.test";
/// Client id the bearer tokens are issued for.
pub(crate) const CLIENT_ID: &str = "authgate-bench";
/// Session cookie name of the login workspace.
pub(crate) const COOKIE: &str = "authgate-mcd";

/// Everything the benchmarks need, alive for the whole run.
pub(crate) struct Fixture {
    /// Runs the IdP and provider warm-up; the router benchmarks block on it.
    pub(crate) rt: tokio::runtime::Runtime,
    /// The application state.
    pub(crate) state: AppState,
    /// The router over `state`.
    pub(crate) router: Router,
    /// `Cookie` header value carrying a valid session (with two unrelated cookies around it).
    pub(crate) cookie_header: String,
    /// The sealed session value alone.
    pub(crate) session_value: String,
    /// The provider's issuer.
    pub(crate) issuer: String,
    /// Kept alive: the provider the workspace discovered.
    _idp: StaticIdp,
    /// Kept alive: the config directory.
    _config: ConfigDir,
}

/// The login workspace's file: a realistic mapping (user, email, preferred username, groups).
fn login_workspace(issuer: &str) -> String {
    format!(
        "{}[authz]\nemail_domains = [\"example.test\"]\n",
        bench_workspace(LOGIN_HOST, issuer, CLIENT_ID, COOKIE)
    )
}

/// The identity a login at the test provider yields.
pub(crate) fn alice() -> Identity {
    session::alice("oidc")
}

pub(crate) use testkit::now;

/// Claims of a bearer token for the login workspace, unique by `jti`.
pub(crate) fn bearer_claims(issuer: &str, jti: &str) -> serde_json::Value {
    tokens::bearer_claims(issuer, CLIENT_ID, jti, now(), 3600)
}

impl Fixture {
    /// Builds the state and waits (polling, bounded) until the provider can verify bearer tokens.
    pub(crate) fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let idp = idp::start(&rt, 0).expect("start the IdP");
        let issuer = idp.issuer.clone();
        let config = ConfigDir::new("")
            .workspace("mcd", &login_workspace(&issuer))
            .workspace("perso", &open_workspace(OPEN_HOST));
        let env = env_with(&[("BENCH_CLIENT_SECRET", "bench-secret")]);
        let (ctx, registry) = session::load(config.path(), &env)
            .unwrap_or_else(|e| panic!("bench config rejected: {e}"));
        let state = AppState::new(registry, ctx, Arc::new(SystemClock));
        {
            let _guard = rt.enter();
            authgate::server::warm_up(&state);
        }
        let registry = state.registry();
        let ws = login_workspace_of(&registry);
        let session_value = ws
            .session
            .issue(&alice(), now())
            .expect("seal a session")
            .value()
            .to_string();
        let cookie_header =
            format!("_ga=GA1.2.1234567890.1700000000; {COOKIE}={session_value}; theme=dark");
        let fx = Self {
            router: authgate::http::app(state.clone()),
            rt,
            state,
            cookie_header,
            session_value,
            issuer,
            _idp: idp,
            _config: config,
        };
        fx.wait_for_discovery();
        fx
    }

    /// Polls until a fresh bearer token verifies: discovery and JWKS happen in the background.
    fn wait_for_discovery(&self) {
        let probe = tokens::sign(
            Algorithm::RS256,
            Some(tokens::RSA_KID),
            &bearer_claims(&self.issuer, "probe"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let registry = self.state.registry();
        let ws = login_workspace_of(&registry);
        loop {
            match ws.verify_bearer(&probe, now()) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    panic!("the provider never became ready for bearer tokens: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        ws.bearer_cache.invalidate_all();
    }

    /// The login workspace.
    pub(crate) fn workspace(&self) -> Arc<Workspace> {
        login_workspace_of(&self.state.registry()).clone()
    }
}

fn login_workspace_of(registry: &Registry) -> &Arc<Workspace> {
    registry
        .lookup(LOGIN_HOST)
        .expect("the login workspace is registered")
}
