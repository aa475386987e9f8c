//! A static OpenID Provider for benchmarks: discovery and a JWKS publishing the test keys of
//! `tests/fixtures/`, nothing else. authgate needs discovered metadata and cached keys before it
//! verifies a bearer JWT; this serves them on loopback so no benchmark touches a network.
//!
//! Tokens are minted locally with the same fixture keys (`tests/common/tokens.rs`).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// A running provider.
pub(crate) struct StaticIdp {
    /// Its issuer, `http://127.0.0.1:<port>`.
    pub(crate) issuer: String,
    /// The server task; aborted on drop.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StaticIdp {
    fn drop(&mut self) {
        self.task.abort();
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
pub(crate) fn serve(listener: tokio::net::TcpListener, jwks: Value) -> StaticIdp {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let issuer = format!("http://127.0.0.1:{port}");
    let discovery = metadata(&issuer);
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let d = discovery.clone();
                async move { Json(d) }
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
    StaticIdp { issuer, task }
}
