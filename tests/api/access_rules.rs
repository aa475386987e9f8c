//! `[[rule]]`: ordered access rules decide `/oauth2/auth` through authgate alone — an admin
//! area by group, a denied area, a public path — with `[[public]]` first, `[authz]` when no
//! rule matches, the Ingress's narrowing query narrowing an `allow`, and doubtful spellings
//! matching no rule.

use crate::forge_flow::{mcd_toml, Env, COOKIE, HOST};
use crate::helpers::forge::spawn_forge;
use crate::helpers::{env_with, spawn_in_process, Client, ConfigDir};

/// The forge workspace of `forge_flow` (its `[[public]]` `/healthz`), with rules after it.
const RULES: &str = r#"
[[rule]]
prefix = "/admin/"
action = "allow"
groups = ["g-admins"]
[[rule]]
prefix = "/ops/"
action = "allow"
groups = ["g-ops"]
[[rule]]
prefix = "/private/"
action = "deny"
[[rule]]
path = "/status"
methods = ["GET"]
action = "public"
"#;

async fn setup() -> Env {
    let forge = spawn_forge().await;
    let config =
        ConfigDir::new("").workspace("mcd", &format!("{}{RULES}", mcd_toml(&forge.issuer)));
    let app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    Env::new(forge, app.owning(config))
}

#[tokio::test]
async fn the_first_matching_rule_decides_and_authz_applies_when_none_does() {
    let mut env = setup().await;
    let s = env.start_armed("/app").await;
    let iss = env.forge.issuer.clone();
    let r = env
        .callback(&[("code", "c-1"), ("state", &s.state), ("iss", &iss)])
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let url = env.url("authgate.authgate.svc", "/oauth2/auth/mcd");
    let auth = |target: &str, method: &str, session: bool| {
        let (url, original, method) = (
            url.clone(),
            format!("http://{HOST}{target}"),
            method.to_string(),
        );
        let cookie = session.then(|| cookie.clone());
        async move {
            let mut h = vec![
                ("x-original-url", original.as_str()),
                ("x-original-method", method.as_str()),
            ];
            if let Some(c) = &cookie {
                h.push(("cookie", c.as_str()));
            }
            Client::new().get(&url, &h).await
        }
    };
    // alice is in g-admins and g-staff.
    let admin = auth("/admin/users", "GET", true).await;
    assert_eq!(admin.status, 202);
    assert_eq!(admin.header("x-auth-request-user"), Some("alice"));
    assert_eq!(auth("/admin/users", "GET", false).await.status, 401);
    let ops = auth("/ops/restart", "POST", true).await;
    assert_eq!(ops.status, 403, "not in g-ops");
    assert!(
        ops.body.contains("not allowed") || ops.body.contains("denied"),
        "{}",
        ops.body
    );
    // deny: 403 with or without a session, before any credential is read, with a page that
    // does not ask a visitor to sign in with another account
    for session in [true, false] {
        let denied = auth("/private/x", "GET", session).await;
        assert_eq!(denied.status, 403);
        assert!(
            denied.body.contains("not available here, whoever asks"),
            "{}",
            denied.body
        );
    }
    // public: `[[public]]` and a public rule, no identity even with a session
    for (target, method) in [("/healthz", "GET"), ("/status", "GET")] {
        let r = auth(target, method, true).await;
        assert_eq!(r.status, 202, "{target}");
        assert_eq!(r.header("x-auth-request-user"), None, "{target}");
        assert_eq!(auth(target, method, false).await.status, 202, "{target}");
    }
    assert_eq!(auth("/status", "POST", false).await.status, 401);
    // no rule: [authz] (empty here: any signed-in user)
    assert_eq!(auth("/app", "GET", true).await.status, 202);
    assert_eq!(auth("/app", "GET", false).await.status, 401);
    // doubtful spellings match no rule: neither the deny nor the public exception
    for target in [
        "/private/../app",
        "/admin/%2e%2e/private/x",
        "/status/.",
        "//private/x",
    ] {
        assert_eq!(auth(target, "GET", false).await.status, 401, "{target}");
        assert_eq!(auth(target, "GET", true).await.status, 202, "{target}");
    }
    // the Ingress's narrowing query narrows what a rule allows
    let narrowed = Client::new()
        .get(
            &format!("{url}?allowed_groups=g-other"),
            &[
                ("x-original-url", &format!("http://{HOST}/admin/users")),
                ("x-original-method", "GET"),
                ("cookie", &cookie),
            ],
        )
        .await;
    assert_eq!(narrowed.status, 403);
}

/// The recipes' machine clients: `ci` by `Authorization: Bearer`, `deploy-hook` by
/// `X-Hook-Key` from its network, two valid keys for `ci` (a rotation).
fn clients_toml() -> String {
    let hash = |key: &str| {
        use sha2::Digest;
        let d = sha2::Sha256::digest(key.as_bytes());
        format!(
            "sha256:{}",
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    format!(
        r#"
[[rule]]
path = "/hooks/deploy"
methods = ["POST"]
networks = ["192.0.2.0/24"]
action = "allow"
clients = ["deploy-hook"]
[[rule]]
prefix = "/hooks/"
action = "deny"
[[rule]]
prefix = "/api/"
methods = ["GET"]
action = "allow"
clients = ["ci"]
[[client]]
name = "ci"
api_keys = ["{}", "{}"]
[[client]]
name = "deploy-hook"
api_keys = ["{}"]
header = "X-Hook-Key"
"#,
        hash("ci-key-old"),
        hash("ci-key-new"),
        hash("hook-key")
    )
}

#[tokio::test]
async fn machine_clients_pass_by_api_key_only_where_a_rule_names_them() {
    let forge = spawn_forge().await;
    let config = ConfigDir::new("").workspace(
        "mcd",
        &format!("{}{}", mcd_toml(&forge.issuer), clients_toml()),
    );
    let app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    let env = Env::new(forge, app.owning(config));
    let url = env.url("authgate.authgate.svc", "/oauth2/auth/mcd");
    let auth = |method: &str, target: &str, extra: &[(&str, &str)]| {
        let original = format!("http://{HOST}{target}");
        let mut h: Vec<(String, String)> = vec![
            ("x-original-url".into(), original),
            ("x-original-method".into(), method.into()),
        ];
        h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let url = url.clone();
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Client::new().get(&url, &h).await
        }
    };
    // CI by bearer key, either of its two keys; apps see which client it was
    for key in ["ci-key-old", "ci-key-new"] {
        let bearer = format!("Bearer {key}");
        let r = auth("GET", "/api/builds", &[("authorization", &bearer)]).await;
        assert_eq!(r.status, 202, "{key}");
        assert_eq!(r.header("x-auth-request-user"), Some("client:ci"));
        assert_eq!(r.header("x-auth-request-email"), None);
    }
    let ci = [("authorization", "Bearer ci-key-new")];
    assert_eq!(
        auth("POST", "/api/builds", &ci).await.status,
        403,
        "read-only"
    );
    assert_eq!(
        auth("GET", "/app", &ci).await.status,
        403,
        "[authz] admits users only"
    );
    assert_eq!(
        auth(
            "GET",
            "/api/builds",
            &[("authorization", "Bearer ci-key-typo")]
        )
        .await
        .status,
        401
    );
    // the hook by its header, from its network only (the client address from a trusted
    // proxy's X-Forwarded-For)
    let hook = |ip: &'static str, key: &'static str| [("x-hook-key", key), ("x-forwarded-for", ip)];
    let r = auth("POST", "/hooks/deploy", &hook("192.0.2.10", "hook-key")).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("x-auth-request-user"), Some("client:deploy-hook"));
    assert_eq!(
        auth("POST", "/hooks/deploy", &hook("198.51.100.7", "hook-key"))
            .await
            .status,
        403
    );
    assert_eq!(
        auth("POST", "/hooks/deploy", &hook("192.0.2.10", "wrong"))
            .await
            .status,
        401
    );
    assert_eq!(
        auth("POST", "/hooks/deploy", &hook("192.0.2.10", "ci-key-new"))
            .await
            .status,
        401
    );
    // the ci key in the hook's header, and the hook's key as a bearer, are not the hook
    assert_eq!(
        auth(
            "POST",
            "/hooks/deploy",
            &[
                ("authorization", "Bearer hook-key"),
                ("x-forwarded-for", "192.0.2.10")
            ]
        )
        .await
        .status,
        401
    );
    assert_eq!(
        auth(
            "POST",
            "/hooks/deploy",
            &[
                ("authorization", "Bearer ci-key-new"),
                ("x-forwarded-for", "192.0.2.10")
            ]
        )
        .await
        .status,
        403
    );
}

#[tokio::test]
async fn a_service_account_token_from_its_own_issuer_passes_only_as_its_client() {
    use crate::helpers::forge::tokens;
    use serde_json::json;
    // The workspace's login provider, and a cluster's service-account issuer beside it.
    let forge = spawn_forge().await;
    let cluster = spawn_forge().await;
    let config = ConfigDir::new("").workspace(
        "mcd",
        &format!(
            r#"{}
[[rule]]
prefix = "/deploy/"
action = "allow"
clients = ["deployer"]
[[client]]
name = "deployer"
issuer = "{}"
audience = "authgate-mcd"
claims = {{ sub = "system:serviceaccount:ci:deployer" }}
user_claim = "sub"
"#,
            mcd_toml(&forge.issuer),
            cluster.issuer
        ),
    );
    let app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    // Readiness: the issuer discovered and its keys loaded, as the start-up warm-up does.
    for c in &app.state.registry().by_name("mcd").unwrap().jwt_clients {
        c.warm_up().await;
    }
    let env = Env::new(forge, app.owning(config));
    let url = env.url("authgate.authgate.svc", "/oauth2/auth/mcd");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = json!({
            "iss": cluster.issuer, "sub": "system:serviceaccount:ci:deployer",
            "aud": ["https://kubernetes.default.svc.cluster.local", "authgate-mcd"],
            "iat": now, "exp": now + 600,
            "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "deployer"}},
        });
        edit(&mut c);
        tokens::sign(jsonwebtoken::Algorithm::RS256, Some(tokens::RSA_KID), &c)
    };
    let call = |target: &str, token: String| {
        let (url, original) = (url.clone(), format!("http://{HOST}{target}"));
        async move {
            let bearer = format!("Bearer {token}");
            Client::new()
                .get(
                    &url,
                    &[
                        ("x-original-url", original.as_str()),
                        ("x-original-method", "POST"),
                        ("authorization", bearer.as_str()),
                    ],
                )
                .await
        }
    };
    let ok = call("/deploy/app", token(&|_| {})).await;
    assert_eq!(ok.status, 202, "{}", ok.body);
    assert_eq!(
        ok.header("x-auth-request-user"),
        Some("client:deployer:system:serviceaccount:ci:deployer")
    );
    assert_eq!(
        call("/deploy/app", token(&|_| {})).await.status,
        202,
        "cached"
    );
    assert_eq!(
        call("/app", token(&|_| {})).await.status,
        403,
        "not under [authz]"
    );
    for (name, edit) in [
        (
            "another service account",
            Box::new(|c: &mut serde_json::Value| c["sub"] = json!("system:serviceaccount:ci:other"))
                as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        (
            "another audience",
            Box::new(|c: &mut serde_json::Value| {
                c["aud"] = json!("https://kubernetes.default.svc.cluster.local")
            }),
        ),
        (
            "expired",
            Box::new(move |c: &mut serde_json::Value| c["exp"] = json!(now - 3600)),
        ),
        (
            "another issuer",
            Box::new(|c: &mut serde_json::Value| c["iss"] = json!("https://evil.test")),
        ),
    ] {
        assert_eq!(
            call("/deploy/app", token(&*edit)).await.status,
            401,
            "{name}"
        );
    }
}
