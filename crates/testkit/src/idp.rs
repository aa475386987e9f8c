//! A static OpenID Provider: discovery and a JWKS (for the benchmarks and the tests, the test
//! keys of `tests/fixtures/`), nothing else. authgate needs discovered metadata and cached keys
//! before it verifies a bearer JWT; this serves them on loopback so no test or benchmark touches
//! a network. Its discovery document can be held back ([`Hold`]), so that a login started
//! against it is a request in flight for as long as a test wants.
//!
//! Tokens are minted locally with the same fixture keys ([`crate::tokens`]).

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::TaskGuard;

/// A running provider.
pub struct StaticIdp {
    /// Its issuer, `http://127.0.0.1:<port>`.
    pub issuer: String,
    /// The server task; aborted on drop.
    _task: TaskGuard,
}

/// When the discovery document is answered.
#[derive(Clone, Debug, Default)]
pub enum Hold {
    /// At once.
    #[default]
    No,
    /// This long after each request arrives.
    For(Duration),
    /// Once the receiver reads `true`.
    Until(tokio::sync::watch::Receiver<bool>),
}

impl Hold {
    async fn wait(&self) {
        match self {
            Hold::No => {}
            Hold::For(delay) => tokio::time::sleep(*delay).await,
            Hold::Until(open) => {
                let _ = open.clone().wait_for(|o| *o).await;
            }
        }
    }
}

/// Discovery metadata for `issuer`.
fn metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    })
}

/// Serves discovery and `jwks` on `listener` (bound by the caller, so it can pick the port).
pub fn serve(listener: tokio::net::TcpListener, jwks: Value) -> StaticIdp {
    serve_held(listener, jwks, Hold::No)
}

/// The same, discovery answered as `hold` says.
pub fn serve_held(listener: tokio::net::TcpListener, jwks: Value, hold: Hold) -> StaticIdp {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let issuer = format!("http://127.0.0.1:{port}");
    let discovery = metadata(&issuer);
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let (d, hold) = (discovery.clone(), hold.clone());
                async move {
                    hold.wait().await;
                    Json(d)
                }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let k = jwks.clone();
                async move { Json(k) }
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    StaticIdp {
        issuer,
        _task: task.into(),
    }
}

/// A provider on 127.0.0.1:`port` (0: any free port) publishing the fixture JWKS, served on
/// `rt`: for benchmarks and blocking tests that run their own runtime.
pub fn start(rt: &tokio::runtime::Runtime, port: u16) -> std::io::Result<StaticIdp> {
    let listener = rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))?;
    let _guard = rt.enter();
    Ok(serve(listener, crate::tokens::jwks()))
}

/// A provider on a free port of 127.0.0.1 publishing the fixture JWKS, discovery answered as
/// `hold` says.
pub async fn spawn(hold: Hold) -> StaticIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the static IdP");
    serve_held(listener, crate::tokens::jwks(), hold)
}
