//! A forging OpenID Provider: discovery, JWKS and a token endpoint whose answer each test sets.
//!
//! It exists for the negative cases a certified provider will never produce (wrong nonce,
//! `alg: none`, HS256 with the public key, unknown `kid`, …). The real-flow tests use the real
//! `oidc-provider` instead.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use testkit::TaskGuard;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};

pub use testkit::tokens;

/// Shared state of the forge.
#[derive(Default)]
pub struct Shared {
    /// Its base URL (= issuer).
    pub issuer: Mutex<String>,
    /// The JWKS it publishes.
    pub jwks: Mutex<Value>,
    /// How often the JWKS was fetched.
    pub jwks_hits: AtomicUsize,
    /// The next token endpoint answer.
    pub token_response: Mutex<Value>,
    /// The last token request's form.
    pub last_token_request: Mutex<Vec<(String, String)>>,
    /// Whether discovery advertises RFC 9207 support.
    pub iss_supported: Mutex<bool>,
    /// The `jwks_uri` discovery advertises instead of its own `/jwks`.
    pub jwks_uri: Mutex<Option<String>>,
    /// How often discovery was fetched.
    pub discovery_hits: AtomicUsize,
    /// While set, discovery and the JWKS answer 503 (still counted).
    pub outage: AtomicBool,
    /// Held for writing by a test to keep JWKS answers back (they are counted on arrival).
    pub jwks_gate: tokio::sync::RwLock<()>,
}

/// A running forge.
pub struct Forge {
    /// State.
    pub shared: Arc<Shared>,
    /// Issuer URL.
    pub issuer: String,
    _task: TaskGuard,
}

impl Forge {
    /// Sets the ID token the next code exchange returns.
    pub fn answer_id_token(&self, id_token: &str) {
        *self.shared.token_response.lock().unwrap() = json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": id_token});
    }

    /// Sets the raw next token endpoint answer.
    pub fn answer(&self, body: Value) {
        *self.shared.token_response.lock().unwrap() = body;
    }

    /// The number of JWKS fetches so far.
    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    /// The number of discovery fetches so far.
    pub fn discovery_hits(&self) -> usize {
        self.shared.discovery_hits.load(Ordering::SeqCst)
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Result<Json<Value>, StatusCode> {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if s.outage.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let iss = s.issuer.lock().unwrap().clone();
    let jwks_uri = s
        .jwks_uri
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| format!("{iss}/jwks"));
    Ok(Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": jwks_uri,
        "end_session_endpoint": format!("{iss}/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": *s.iss_supported.lock().unwrap(),
    })))
}

async fn jwks(State(s): State<Arc<Shared>>) -> Result<Json<Value>, StatusCode> {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let _open = s.jwks_gate.read().await;
    if s.outage.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(Json(s.jwks.lock().unwrap().clone()))
}

async fn token(
    State(s): State<Arc<Shared>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Json<Value> {
    *s.last_token_request.lock().unwrap() = form;
    Json(s.token_response.lock().unwrap().clone())
}

/// Starts a forge on a free port.
pub async fn spawn_forge() -> Forge {
    let shared = Arc::new(Shared::default());
    *shared.jwks.lock().unwrap() = tokens::jwks();
    *shared.iss_supported.lock().unwrap() = true;
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    *shared.issuer.lock().unwrap() = issuer.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Forge {
        shared,
        issuer,
        _task: task.into(),
    }
}
