//! Handler tests through the router itself (`app(state).oneshot(…)`): the paths that need no
//! IdP. The state is built as `authgate serve` builds it, from a config directory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use tower::ServiceExt;

use super::app;
use crate::identity::Identity;
use crate::oidc::JwksCache;
use crate::provider::ProviderContext;
use crate::server::{http_client, load_registry};
use crate::session::MasterSecrets;
use crate::state::{AppState, Clock};

const NOW: u64 = 1_800_000_000;

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> u64 {
        NOW
    }
}

/// Two workspaces: `mcd` (login, one provider that is never reached here, a public health
/// check) and `perso` (no login).
fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("authgate.toml"),
        "[secrets]\ncookie_secrets_env = \"SECRETS\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("workspaces")).unwrap();
    std::fs::write(
        dir.path().join("workspaces/mcd.toml"),
        r#"hosts = ["mcd.test"]
auth = "oidc"
insecure_http = true
[[provider]]
id = "sso"
issuer = "http://127.0.0.1:9/"
client_id = "authgate"
client_secret_env = "CLIENT_SECRET"
[session]
cookie_name = "ag"
[authz]
allow_any_account = true
[headers]
user = "sub"
groups = "groups"
[[public]]
path = "/healthz"
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("workspaces/perso.toml"),
        "hosts = [\"perso.test\"]\nauth = \"none\"\n",
    )
    .unwrap();
    let env: HashMap<String, String> = [
        ("SECRETS", MasterSecrets::generate().to_string()),
        ("CLIENT_SECRET", "s".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let http = http_client().unwrap();
    let ctx = ProviderContext::new(
        http.clone(),
        JwksCache::new(http, std::time::Duration::from_secs(30)),
    );
    let (_, registry) = load_registry(dir.path(), &env, &ctx).unwrap();
    (AppState::new(registry, ctx, Arc::new(Fixed)), dir)
}

async fn get(state: &AppState, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    app(state.clone()).oneshot(req).await.unwrap()
}

/// A session cookie for `mcd`, sealed with its own codec.
fn session(state: &AppState) -> String {
    let registry = state.registry();
    let ws = registry.by_name("mcd").unwrap();
    let id = Identity {
        user: "alice".into(),
        subject: "alice".into(),
        provider: "sso".into(),
        groups: vec!["admins".into()],
        ..Identity::default()
    };
    let c = ws.session.issue(&id, NOW).unwrap();
    format!("{}={}", c.name(), c.value())
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn auth_answers_from_the_session_and_refuses_without_one() {
    let (s, _dir) = state();
    let url = ("x-original-url", "http://mcd.test/app");
    let ok = get(&s, "/oauth2/auth/mcd", &[url, ("cookie", &session(&s))]).await;
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&ok, "x-auth-request-user"), Some("alice"));
    assert_eq!(header(&ok, "x-auth-request-groups"), Some("admins"));
    for cookie in ["", "ag=garbage", "ag=", "other=1"] {
        let r = get(&s, "/oauth2/auth/mcd", &[url, ("cookie", cookie)]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{cookie:?}");
        assert!(r.extensions().get::<super::error::Logged>().is_some());
    }
    // Narrowed by the Ingress to a group alice is not in.
    let r = get(
        &s,
        "/oauth2/auth/mcd?allowed_groups=staff",
        &[url, ("cookie", &session(&s))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_tenant_comes_from_the_route_never_from_the_host_alone() {
    let (s, _dir) = state();
    let cookie = session(&s);
    // mcd's session, a route naming perso (no login) with mcd's host: refused.
    let r = get(
        &s,
        "/oauth2/auth/perso",
        &[("x-original-url", "http://mcd.test/"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Several workspaces: the short route names none.
    let r = get(
        &s,
        "/oauth2/auth",
        &[("x-original-url", "http://mcd.test/"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A workspace the config does not have.
    let r = get(
        &s,
        "/oauth2/auth/nope",
        &[("x-original-url", "http://mcd.test/")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // perso passes everyone, with no identity.
    let r = get(
        &s,
        "/oauth2/auth/perso",
        &[("x-original-url", "http://perso.test/")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "x-auth-request-user"), None);
}

#[tokio::test]
async fn a_public_route_passes_without_identity_even_with_a_session() {
    let (s, _dir) = state();
    let r = get(
        &s,
        "/oauth2/auth/mcd",
        &[
            ("x-original-url", "http://mcd.test/healthz"),
            ("x-original-method", "GET"),
            ("cookie", &session(&s)),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "x-auth-request-user"), None);
    let r = get(
        &s,
        "/oauth2/auth/mcd",
        &[("x-original-url", "http://mcd.test/healthz/x")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_sign_out_and_a_callback_without_state() {
    let (s, _dir) = state();
    let host = ("host", "mcd.test");
    let r = get(&s, "/oauth2/userinfo/mcd", &[host]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = get(
        &s,
        "/oauth2/userinfo/mcd",
        &[host, ("cookie", &session(&s))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["user"], "alice");

    let r = get(
        &s,
        "/oauth2/sign_out/mcd?rd=%2Fbye",
        &[host, ("cookie", &session(&s))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(header(&r, "location"), Some("/bye"));
    assert!(header(&r, "set-cookie").unwrap().starts_with("ag=;"));
    let r = get(&s, "/oauth2/sign_out/mcd?rd=%2F%2Fevil.example", &[host]).await;
    assert_eq!(header(&r, "location"), Some("/"));

    let r = get(&s, "/oauth2/callback/mcd?code=x", &[host]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
