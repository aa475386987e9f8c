//! README's access-rule recipes end to end through each real proxy — NGINX (the subrequest),
//! Traefik and Caddy (the redirect form) — with the real authgate binary, real users signed in
//! at the real OpenID Provider, static API keys, a CI job's client-credentials token from a
//! second real OpenID Provider, and service-account tokens from an issuer the test starts: the admin area by group, a read-only API for a CI token, a webhook by API key
//! and source network, a public health check.

use serde_json::json;

use crate::helpers::caddy::spawn_caddy_at;
use crate::helpers::forge::{spawn_forge, tokens};
use crate::helpers::nginx::{spawn_nginx_at, Site};
use crate::helpers::node::spawn_oidc_provider;
use crate::helpers::platform::{spawn_workspaces_with, MCD};
use crate::helpers::redis::eventually;
use crate::helpers::traefik::{self, spawn_traefik_at};
use crate::helpers::{free_port, Client, Resp};

/// SHA-256 of `key`, as `[[client]] api_keys` holds it.
fn hash(key: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(key.as_bytes());
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The recipes, after mcd's provider: the test client comes from loopback (each proxy writes
/// the address it saw), so the deploy hook's network is loopback and the partner hook's is one
/// the client is not on.
fn recipes(sa_issuer: &str, ci_issuer: &str) -> String {
    format!(
        r#"
[[public]]
path = "/healthz"
[[rule]]
path = "/hooks/deploy"
methods = ["POST"]
networks = ["127.0.0.0/8", "::1/128"]
action = "allow"
clients = ["deploy-hook"]
[[rule]]
path = "/hooks/partner"
methods = ["POST"]
networks = ["203.0.113.0/24"]
action = "allow"
clients = ["deploy-hook"]
[[rule]]
prefix = "/hooks/"
action = "deny"
[[rule]]
prefix = "/api/"
methods = ["GET", "HEAD"]
action = "allow"
clients = ["ci", "ci-token", "deployer"]
[[rule]]
prefix = "/admin/"
action = "allow"
groups = ["g-admins"]
[[client]]
name = "ci"
api_keys = ["{ci}"]
[[client]]
name = "deploy-hook"
api_keys = ["{hook}"]
[[client]]
name = "ci-token"
issuer = "{ci_issuer}"
audience = "ci-runner"
claims = {{ client_id = "ci-runner" }}
[[client]]
name = "deployer"
issuer = "{sa_issuer}"
audience = "authgate-mcd"
claims = {{ sub = "system:serviceaccount:ci:deployer" }}
"#,
        ci = hash("ci-key"),
        hook = hash("hook-key"),
    )
}

#[derive(Clone, Copy, Debug)]
enum Proxy {
    Nginx,
    Traefik,
    Caddy,
}

#[tokio::test]
async fn the_recipes_through_nginx() {
    recipes_through(Proxy::Nginx).await;
}

#[tokio::test]
async fn the_recipes_through_traefik() {
    recipes_through(Proxy::Traefik).await;
}

#[tokio::test]
async fn the_recipes_through_caddy() {
    recipes_through(Proxy::Caddy).await;
}

async fn recipes_through(proxy: Proxy) {
    let cluster = spawn_forge().await;
    // The CI system's own OpenID Provider, issuing client-credentials tokens (Keycloak-shaped:
    // JWT access tokens, aud = the client id).
    let ci_idp = spawn_oidc_provider(
        "keycloak",
        "ci-runner",
        "ci-secret",
        &["http://127.0.0.1:9/unused".to_string()],
        json!({"client_credentials": true}),
    );
    let port = free_port();
    let ws = spawn_workspaces_with(
        &format!("recipes-{proxy:?}"),
        port,
        "generic",
        &recipes(&cluster.issuer, &ci_idp.issuer),
        "groups = \"groups\"\n",
    )
    .await;
    let (a, u) = (ws.authgate.port, ws.upstream.port);
    let _nginx;
    let _traefik;
    let _caddy;
    match proxy {
        Proxy::Nginx => _nginx = spawn_nginx_at(&[Site::protected(MCD, &["/"])], a, u, port),
        Proxy::Traefik => _traefik = spawn_traefik_at(&[traefik::Site::new(MCD)], a, u, port).await,
        Proxy::Caddy => _caddy = spawn_caddy_at(&[(MCD, "mcd")], a, u, port),
    }
    let base = format!("http://{MCD}:{port}");
    let reached = |r: &Resp| r.status == 200 && r.body.contains("path: ");
    // Unauthenticated: authgate's 401, which NGINX's `auth-signin` turns into the sign-in
    // redirect for every client.
    let needs_login =
        |r: &Resp| r.status == 401 || r.status == 302 && r.raw_location().contains("/oauth2/start");
    let user_of = |r: &Resp| {
        r.body
            .lines()
            .find_map(|l| l.strip_prefix("x-auth-request-user: "))
            .map(str::to_string)
    };

    // A health check, public: the app is reached without a login and sees no identity.
    let health = Client::new().get(&format!("{base}/healthz"), &[]).await;
    assert!(reached(&health), "{proxy:?}: {health:?}");
    assert_eq!(user_of(&health), None);

    // The admin area by group: alice (g-admins) passes, bob (g-staff) is refused with 403.
    let admin = format!("{base}/admin/users");
    let mut alice = Client::browser();
    let steps = alice.follow(&admin, "alice").await;
    let last = steps.last().unwrap();
    assert!(reached(last), "{proxy:?}: {}", last.body);
    assert!(last
        .body
        .contains("x-auth-request-email: alice@example.test"));
    let mut bob = Client::browser();
    let steps = bob.follow(&admin, "bob").await;
    assert_eq!(steps.last().unwrap().status, 403, "{proxy:?}: bob");
    // bob's session still opens what [authz] (empty: any user) leaves to everyone
    assert!(reached(&bob.get(&format!("{base}/landing"), &[]).await));

    // A read-only API for a CI token: GET passes as client:ci, a write does not.
    let api = format!("{base}/api/builds");
    let ci = [("authorization", "Bearer ci-key")];
    let r = Client::new().get(&api, &ci).await;
    assert!(reached(&r), "{proxy:?}: {r:?}");
    assert_eq!(user_of(&r).as_deref(), Some("client:ci"));
    let post = Client::new()
        .send("POST", &api, &ci, Some(String::new()))
        .await;
    assert_eq!(post.status, 403, "{proxy:?}: the CI key writes");
    let wrong = Client::new()
        .get(&api, &[("authorization", "Bearer ci-kex")])
        .await;
    assert!(needs_login(&wrong), "{proxy:?}: {wrong:?}");
    // alice's session is a user: the API rule names only machine clients
    assert_eq!(alice.get(&api, &[]).await.status, 403, "{proxy:?}");

    // The same API for a service account of the cluster, by its token: once the issuer's keys
    // are loaded (the warm-up at start), it passes as client:deployer.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sa = |sub: &str| {
        let claims = json!({
            "iss": cluster.issuer, "sub": sub, "iat": now, "exp": now + 600,
            "aud": ["https://kubernetes.default.svc.cluster.local", "authgate-mcd"],
        });
        format!(
            "Bearer {}",
            tokens::sign(
                jsonwebtoken::Algorithm::RS256,
                Some(tokens::RSA_KID),
                &claims
            )
        )
    };
    let deployer = sa("system:serviceaccount:ci:deployer");
    let r = eventually(
        std::time::Duration::from_secs(10),
        "the service-account issuer's keys are loaded",
        || {
            let (api, h) = (api.clone(), deployer.clone());
            async move {
                let r = Client::new().get(&api, &[("authorization", &h)]).await;
                (!needs_login(&r)).then_some(r)
            }
        },
    )
    .await;
    assert!(reached(&r), "{proxy:?}: {r:?}");
    assert_eq!(user_of(&r).as_deref(), Some("client:deployer"));
    let other = sa("system:serviceaccount:ci:other");
    let r = Client::new().get(&api, &[("authorization", &other)]).await;
    assert!(needs_login(&r), "{proxy:?}: another service account: {r:?}");

    // The same API for the CI system's client-credentials token from its own provider.
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "ci-runner:ci-secret"
        )
    );
    let issued = Client::new()
        .send(
            "POST",
            &format!("{}/protocol/openid-connect/token", ci_idp.issuer),
            &[
                ("authorization", &basic),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some("grant_type=client_credentials".into()),
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let access: serde_json::Value = serde_json::from_str(&issued.body).unwrap();
    let ci_token = format!("Bearer {}", access["access_token"].as_str().unwrap());
    let r = eventually(
        std::time::Duration::from_secs(10),
        "the CI provider's keys are loaded",
        || {
            let (api, h) = (api.clone(), ci_token.clone());
            async move {
                let r = Client::new().get(&api, &[("authorization", &h)]).await;
                (!needs_login(&r)).then_some(r)
            }
        },
    )
    .await;
    assert!(reached(&r), "{proxy:?}: {r:?}");
    assert_eq!(user_of(&r).as_deref(), Some("client:ci-token"));
    let post = Client::new()
        .send(
            "POST",
            &api,
            &[("authorization", &ci_token)],
            Some(String::new()),
        )
        .await;
    assert_eq!(post.status, 403, "{proxy:?}: the CI token writes");

    // A webhook by API key and source network.
    let hook = [("authorization", "Bearer hook-key")];
    let send = |path: &str, h: &[(&str, &str)]| {
        let (url, h): (String, Vec<(String, String)>) = (
            format!("{base}{path}"),
            h.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Client::new()
                .send("POST", &url, &h, Some(String::new()))
                .await
        }
    };
    let r = send("/hooks/deploy", &hook).await;
    assert!(reached(&r), "{proxy:?}: {r:?}");
    assert_eq!(user_of(&r).as_deref(), Some("client:deploy-hook"));
    assert_eq!(
        send("/hooks/partner", &hook).await.status,
        403,
        "{proxy:?}: network"
    );
    assert_eq!(
        send("/hooks/other", &hook).await.status,
        403,
        "{proxy:?}: deny"
    );
    assert_eq!(
        send("/hooks/deploy", &ci).await.status,
        403,
        "{proxy:?}: the CI key"
    );
    assert!(
        needs_login(&send("/hooks/deploy", &[]).await),
        "{proxy:?}: no key"
    );
    let forged = [
        ("authorization", "Bearer hook-key"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ];
    assert_eq!(
        send("/hooks/partner", &forged).await.status,
        403,
        "{proxy:?}: a forged address"
    );
    // Keys, wrong keys included, and tokens never reach authgate's log; its refusals are there
    // (so the log is the one the refusals went to).
    let log = ws.authgate.log_text();
    assert!(log.contains("refused"), "{log}");
    for secret in [
        "ci-key",
        "ci-kex",
        "hook-key",
        "ci-secret",
        &ci_token[7..],
        &deployer[7..],
    ] {
        assert!(
            !log.contains(secret),
            "{proxy:?}: {secret} in authgate's log"
        );
    }
}
