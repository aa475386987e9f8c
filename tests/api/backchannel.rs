//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0) against the forging provider
//! and a real Redis: a logout token by `sid` ends exactly that IdP session's sessions, by `sub`
//! every session of the user, and each refused token ends nothing. The end-to-end case with
//! the real `oidc-provider` is at the end.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use testkit::config::oidc_workspace;

use crate::forge_flow::{claims, mcd_toml, rs256, Env, CLIENT_ID, COOKIE, HOST};
use crate::helpers::forge::{spawn_forge, tokens};
use crate::helpers::log::capture;
use crate::helpers::redis::{eventually, spawn_redis, until_store_connected, Redis};
use crate::helpers::{env_with, spawn_in_process, Client, ConfigDir};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// authgate with `mcd` keeping sessions in `redis` and accepting back-channel logout.
async fn setup(redis: &Redis) -> Env {
    let forge = spawn_forge().await;
    let ws = mcd_toml(&forge.issuer).replace(
        "lifetime = \"1h\"",
        "lifetime = \"1h\"\nstore = \"redis\"\nbackchannel_logout = true",
    );
    let config = ConfigDir::new("[redis]\nurl_env = \"REDIS_URL\"\n").workspace("mcd", &ws);
    let app = spawn_in_process(
        &config,
        env_with(&[("MCD_SECRET", "s3cret"), ("REDIS_URL", &redis.url())]),
    )
    .await;
    // A login saves its session in Redis: not before the store has connected.
    crate::helpers::redis::until_store_connected(app.port).await;
    Env::new(forge, app.owning(config))
}

/// Logs in as `sub` in IdP session `sid` (a fresh browser each time); returns the cookie.
async fn login(env: &mut Env, sub: &str, sid: &str) -> String {
    env.client = Client::new();
    let r = env
        .login_with_token(|iss, nonce| {
            let mut c = claims(iss, nonce);
            c["sub"] = json!(sub);
            c["sid"] = json!(sid);
            rs256(&c)
        })
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap())
}

/// `/oauth2/auth` for `cookie`, as NGINX asks it.
async fn auth(env: &Env, cookie: &str) -> u16 {
    Client::new()
        .get(
            &env.url("authgate.svc", "/oauth2/auth/mcd"),
            &[
                ("x-original-url", "http://mcd.test/app"),
                ("cookie", cookie),
            ],
        )
        .await
        .status
}

/// Valid logout-token claims for the forge's issuer.
fn logout_claims(iss: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let t = now();
    let mut c = json!({
        "iss": iss, "aud": CLIENT_ID, "iat": t, "exp": t + 120,
        "jti": format!("jti-{}", rand_id()),
        "sub": "alice-sub", "sid": "sid-1",
        "events": {EVENT: {}},
    });
    edit(c.as_object_mut().unwrap());
    c
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst) ^ now().rotate_left(20)
}

/// Signs as the forge does, with `typ` in the header.
fn sign(pem: &str, typ: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(tokens::RSA_KID.into());
    header.typ = typ.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn logout_token(claims: &Value) -> String {
    sign(tokens::RSA_PRIVATE, Some("logout+jwt"), claims)
}

/// POSTs `logout_token=<token>` as the IdP does; the status and body.
async fn post_logout(env: &Env, token: &str) -> (u16, String, Option<String>) {
    let r = Client::new()
        .post_form(
            &env.url(HOST, "/oauth2/backchannel_logout/mcd"),
            &[("logout_token", token)],
        )
        .await;
    let cc = r.header("cache-control").map(str::to_string);
    (r.status, r.body, cc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_by_sid_ends_that_session_and_by_sub_every_session_of_the_user() {
    let redis = spawn_redis();
    let mut env = setup(&redis).await;
    let a1 = login(&mut env, "alice-sub", "sid-1").await;
    let a2 = login(&mut env, "alice-sub", "sid-2").await;
    let a3 = login(&mut env, "alice-sub", "sid-3").await;
    let bob = login(&mut env, "bob-sub", "sid-b").await;
    for c in [&a1, &a2, &a3, &bob] {
        assert_eq!(auth(&env, c).await, 202);
    }
    let iss = env.forge.issuer.clone();

    // By sid: that IdP session's session ends, the same user's other sessions stay.
    let by_sid = logout_token(&logout_claims(&iss, |c| drop(c.remove("sub"))));
    let (status, body, cc) = post_logout(&env, &by_sid).await;
    assert_eq!((status, cc.as_deref()), (200, Some("no-store")), "{body}");
    assert_eq!(auth(&env, &a1).await, 401, "the session of sid-1 ended");
    assert_eq!(
        auth(&env, &a2).await,
        202,
        "another sid of the same user stays"
    );
    assert_eq!(auth(&env, &bob).await, 202);

    // The same token again is a replay: refused, and nothing more ends.
    let (status, body, _) = post_logout(&env, &by_sid).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("replayed"), "{body}");

    // By sub: every remaining session of the user ends; another user's stays.
    let by_sub = logout_token(&logout_claims(&iss, |c| drop(c.remove("sid"))));
    let (status, body, _) = post_logout(&env, &by_sub).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(auth(&env, &a2).await, 401);
    assert_eq!(auth(&env, &a3).await, 401);
    assert_eq!(auth(&env, &bob).await, 202, "another user's session stays");
}

/// A logout token naming both `sid` and `sub` also ends the user's sessions whose ID token had
/// no `sid` (no `sid` index can name them), and leaves those of the user's other IdP sessions;
/// a valid token that ends nothing is answered 200 and logged as a warning.
#[tokio::test]
async fn a_token_with_sid_and_sub_also_ends_the_users_sessions_saved_without_a_sid() {
    let (log, _guard) = capture();
    let redis = spawn_redis();
    let mut env = setup(&redis).await;
    env.client = Client::new();
    let r = env
        .login_with_token(|iss, nonce| {
            let mut c = claims(iss, nonce);
            c["sub"] = json!("alice-sub");
            rs256(&c) // no sid
        })
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let without_sid = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let other_idp_session = login(&mut env, "alice-sub", "sid-2").await;
    let bob = login(&mut env, "bob-sub", "sid-b").await;
    for c in [&without_sid, &other_idp_session, &bob] {
        assert_eq!(auth(&env, c).await, 202);
    }
    let iss = env.forge.issuer.clone();
    let token = logout_token(&logout_claims(&iss, |c| {
        c.insert("sid".into(), json!("sid-1"));
    }));
    let (status, body, _) = post_logout(&env, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        auth(&env, &without_sid).await,
        401,
        "the session saved without a sid ended"
    );
    assert_eq!(
        auth(&env, &other_idp_session).await,
        202,
        "the user's session of another IdP session stays"
    );
    assert_eq!(auth(&env, &bob).await, 202, "another user's session stays");
    assert!(!log.text().contains("ended no session"), "{}", log.text());

    // A valid token naming no session: processed (200), and the operator is told.
    let nothing = logout_token(&logout_claims(&iss, |c| {
        c.insert("sid".into(), json!("sid-unknown"));
        c.insert("sub".into(), json!("nobody-sub"));
    }));
    let (status, body, _) = post_logout(&env, &nothing).await;
    assert_eq!(status, 200, "{body}");
    let text = log.text();
    let warning = text
        .lines()
        .find(|l| l.contains("back-channel logout ended no session"))
        .unwrap_or_else(|| panic!("no warning in:\n{text}"));
    assert!(warning.contains("WARN"), "{warning}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_logout_token_is_a_400_that_ends_nothing() {
    let redis = spawn_redis();
    let mut env = setup(&redis).await;
    let alice = login(&mut env, "alice-sub", "sid-1").await;
    let iss = env.forge.issuer.clone();
    let t = now();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad signature",
            sign(
                tokens::RSA2_PRIVATE,
                Some("logout+jwt"),
                &logout_claims(&iss, |_| {}),
            ),
            "bad signature",
        ),
        (
            "wrong aud",
            logout_token(&logout_claims(&iss, |c| {
                c.insert("aud".into(), json!("another-client"));
            })),
            "audience",
        ),
        (
            "wrong iss",
            logout_token(&logout_claims("https://evil.test", |_| {})),
            "issuer",
        ),
        (
            "nonce present",
            logout_token(&logout_claims(&iss, |c| {
                c.insert("nonce".into(), json!("n"));
            })),
            "nonce",
        ),
        (
            "events missing",
            logout_token(&logout_claims(&iss, |c| drop(c.remove("events")))),
            "events",
        ),
        (
            "events wrong",
            logout_token(&logout_claims(&iss, |c| {
                c.insert(
                    "events".into(),
                    json!({"http://schemas.openid.net/event/other": {}}),
                );
            })),
            "events",
        ),
        (
            "neither sid nor sub",
            logout_token(&logout_claims(&iss, |c| {
                c.remove("sid");
                c.remove("sub");
            })),
            "neither sid nor sub",
        ),
        (
            "typ JWT",
            sign(
                tokens::RSA_PRIVATE,
                Some("JWT"),
                &logout_claims(&iss, |_| {}),
            ),
            "typ",
        ),
        (
            "iat far in the future",
            logout_token(&logout_claims(&iss, |c| {
                c.insert("iat".into(), json!(t + 3600));
                c.insert("exp".into(), json!(t + 3700));
            })),
            "not yet valid",
        ),
        (
            "iat too old",
            logout_token(&logout_claims(&iss, |c| {
                c.insert("iat".into(), json!(t - 3600));
            })),
            "too long ago",
        ),
        (
            "an ID token",
            rs256(&{
                let mut c = claims(&iss, "a-nonce");
                c["sub"] = json!("alice-sub");
                c
            }),
            "typ",
        ),
    ];
    for (name, token, reason) in cases {
        let (status, body, cc) = post_logout(&env, &token).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(cc.as_deref(), Some("no-store"), "{name}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: {body}"));
        assert_eq!(v["error"], "invalid_request", "{name}");
        assert!(
            v["error_description"].as_str().unwrap().contains(reason),
            "{name}: {body}"
        );
        assert_eq!(auth(&env, &alice).await, 202, "{name} ended nothing");
    }
    // A good token still works after all that: the refusals left the session in place.
    let good = logout_token(&logout_claims(&iss, |_| {}));
    assert_eq!(post_logout(&env, &good).await.0, 200);
    assert_eq!(auth(&env, &alice).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_503_so_the_idp_may_retry() {
    let mut redis = spawn_redis();
    let env = setup(&redis).await;
    redis.stop();
    let token = logout_token(&logout_claims(&env.forge.issuer, |_| {}));
    // The forge's keys are fetched at the first token, so the answer is the store's.
    let (status, body, cc) = post_logout(&env, &token).await;
    assert_eq!((status, cc.as_deref()), (503, Some("no-store")), "{body}");
    assert!(body.contains("temporarily_unavailable"), "{body}");
}

// === End to end with the real OpenID Provider ===

/// The value of the hidden input `name` in an HTML page.
fn hidden_input(body: &str, name: &str) -> String {
    let at = body
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no input {name} in {body}"));
    let rest = &body[at..];
    let start = rest.find("value=\"").unwrap() + 7;
    rest[start..start + rest[start..].find('"').unwrap()].to_string()
}

/// Log in through oidc-provider, sign out at the IdP (RP-initiated logout, confirming the end
/// of the IdP session), and the IdP's logout token ends the authgate session: the old cookie
/// gets 401. The IdP posts straight to authgate on loopback; in a cluster the URI registered at
/// the IdP is `https://<workspace host>/oauth2/backchannel_logout`, which the workspace's
/// `/oauth2` Ingress rewrites to `/oauth2/backchannel_logout/<workspace>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_the_idp_session_ends_the_authgate_session() {
    let port = crate::helpers::free_port();
    let host = format!("ws.localhost:{port}");
    let callback = format!("http://{host}/oauth2/callback");
    let idp = crate::helpers::node::spawn_oidc_provider(
        "generic",
        "authgate-ws",
        "client-secret",
        std::slice::from_ref(&callback),
        json!({
            "backchannel_logout": true,
            "clients": [{
                "client_id": "authgate-ws",
                "client_secret": "client-secret",
                "redirect_uris": [callback],
                "post_logout_redirect_uris": [format!("http://{host}/")],
                "backchannel_logout_uri": format!("http://{host}/oauth2/backchannel_logout"),
                "backchannel_logout_session_required": true,
            }],
        }),
    );
    let redis = spawn_redis();
    let ws = format!(
        "{}[session]\ncookie_name = \"ag\"\nstore = \"redis\"\nbackchannel_logout = true\n[headers]\nuser = \"email\"\n",
        oidc_workspace(&host, &idp.issuer, "authgate-ws", "CLIENT_SECRET")
    );
    let config = ConfigDir::new("[redis]\nurl_env = \"REDIS_URL\"\n").workspace("ws", &ws);
    let _app = crate::helpers::spawn_in_process_at(
        &config,
        env_with(&[
            ("CLIENT_SECRET", "client-secret"),
            ("REDIS_URL", &redis.url()),
        ]),
        port,
    )
    .await;
    // A second replica sharing the same redis-server; the IdP knows only the first.
    let replica = crate::helpers::spawn_in_process(
        &config,
        env_with(&[
            ("CLIENT_SECRET", "client-secret"),
            ("REDIS_URL", &redis.url()),
        ]),
    )
    .await;
    let mut browser = Client::new();
    browser
        .follow(&format!("http://{host}/oauth2/start?rd=%2F"), "alice")
        .await;
    let cookie = format!(
        "ag={}",
        browser.cookie("ws.localhost", "ag").expect("a session")
    );
    let auth_at = |port: u16, cookie: String| {
        let url = format!("http://authgate.svc:{port}/oauth2/auth");
        let original = format!("http://{host}/app");
        async move {
            Client::new()
                .get(&url, &[("x-original-url", &original), ("cookie", &cookie)])
                .await
                .status
        }
    };
    let auth = |cookie: String| auth_at(port, cookie);
    assert_eq!(auth(cookie.clone()).await, 202);
    // The replica reads the session from Redis once it has connected.
    until_store_connected(replica.port).await;
    assert_eq!(auth_at(replica.port, cookie.clone()).await, 202);
    assert_eq!(redis.session_keys().await.len(), 1);

    // RP-initiated logout at the IdP, confirming "sign me out" of the IdP session.
    let ask = browser
        .get(
            &format!("{}/session/end?client_id=authgate-ws", idp.issuer),
            &[],
        )
        .await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    let xsrf = hidden_input(&ask.body, "xsrf");
    let done = browser
        .post_form(
            &format!("{}/session/end/confirm", idp.issuer),
            &[("xsrf", &xsrf), ("logout", "yes")],
        )
        .await;
    assert!((300..400).contains(&done.status), "{}", done.body);
    // The IdP waits for the back-channel answers before it redirects.
    assert_eq!(
        auth(cookie.clone()).await,
        401,
        "the IdP's logout token ended the session"
    );
    assert_eq!(redis.session_keys().await.len(), 0, "the record is gone");
    // The replica the IdP never spoke to: ended too, once its ticket cache (5 s) lets go.
    eventually(
        authgate::workspace::TICKET_CACHE_TTL + std::time::Duration::from_secs(5),
        "the replica ends the session",
        || async { (auth_at(replica.port, cookie.clone()).await == 401).then_some(()) },
    )
    .await;
}
