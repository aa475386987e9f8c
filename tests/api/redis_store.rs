//! Server-side sessions in Redis end to end: a Redis that never answers makes `/oauth2/auth`
//! fail closed at once, and sessions come back when Redis does, without restarting authgate;
//! a return target too long for the login cookie still ends in a session.

use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::json;
use testkit::config::oidc_workspace;

use crate::helpers::forge::{spawn_forge, tokens, Forge};
use crate::helpers::redis::{spawn_redis, spawn_redis_at, until_store_connected, Redis};
use crate::helpers::{env_with, spawn_in_process, Client, ConfigDir, InProcess, Resp};

pub(crate) const HOST: &str = "mcd.test";
const CLIENT_ID: &str = "authgate-mcd";
pub(crate) const COOKIE: &str = "authgate-mcd";

/// How long an answer may take and still count as "at once": the store must not wait for a
/// connection (an attempt may take 500 ms, and the old code queued requests behind it).
const AT_ONCE: Duration = Duration::from_millis(600);

/// authgate with one workspace, `mcd`, keeping its sessions in Redis at `redis_url`.
async fn spawn_app(issuer: &str, redis_url: &str) -> (InProcess, ConfigDir) {
    let config = config_with(issuer, "[redis]\nurl_env = \"REDIS_URL\"\n");
    let app = spawn_in_process(
        &config,
        env_with(&[("MCD_SECRET", "s3cret"), ("REDIS_URL", redis_url)]),
    )
    .await;
    (app, config)
}

/// A config directory: the server file `server_toml`, and workspace `mcd` keeping its sessions
/// in Redis, its client secret in `$MCD_SECRET`.
pub(crate) fn config_with(issuer: &str, server_toml: &str) -> ConfigDir {
    let ws = format!(
        r#"{}[session]
cookie_name = "{COOKIE}"
lifetime = "1h"
store = "redis"
[headers]
user = "preferred_username"
"#,
        oidc_workspace(HOST, issuer, CLIENT_ID, "MCD_SECRET")
    );
    ConfigDir::new(server_toml).workspace("mcd", &ws)
}

/// A whole login through `/oauth2/start?rd=<rd>` with the forge answering a valid ID token;
/// returns the callback's answer, the session cookie landing in `browser`.
pub(crate) async fn login(forge: &Forge, app: &InProcess, browser: &mut Client, rd: &str) -> Resp {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("rd", rd)
        .finish();
    let base = format!("http://{HOST}:{}", app.port);
    let started = browser.get(&format!("{base}/oauth2/start?{q}"), &[]).await;
    assert_eq!(started.status, 302, "{}", started.body);
    let param = |k: &str| {
        started
            .location()
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = tokens::id_claims(&forge.issuer, CLIENT_ID, now, &param("nonce"));
    claims["preferred_username"] = json!("alice");
    forge.answer_id_token(&tokens::sign(
        Algorithm::RS256,
        Some(tokens::RSA_KID),
        &claims,
    ));
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", "c-1")
        .append_pair("state", &param("state"))
        .append_pair("iss", &forge.issuer)
        .finish();
    browser
        .get(&format!("{base}/oauth2/callback?{q}"), &[])
        .await
}

/// `/oauth2/auth` as NGINX asks it for `cookie`: the status and how long the answer took.
pub(crate) async fn auth(port: u16, cookie: &str) -> (u16, Option<String>, Duration) {
    let started = Instant::now();
    let r = Client::new()
        .get(
            &format!("http://authgate.svc:{port}/oauth2/auth"),
            &[
                ("x-original-url", "http://mcd.test/app"),
                ("cookie", cookie),
            ],
        )
        .await;
    let user = r.header("x-auth-request-user").map(str::to_string);
    (r.status, user, started.elapsed())
}

/// Every session record in `redis`, with its value.
async fn records(redis: &Redis) -> Vec<(String, String)> {
    let mut c = redis.connect().await;
    let mut out = Vec::new();
    for k in redis.session_keys().await {
        let v: String = redis::cmd("GET").arg(&k).query_async(&mut c).await.unwrap();
        out.push((k, v));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_auth_at_once_and_sessions_return_when_it_answers() {
    let forge = spawn_forge().await;
    let mut redis = spawn_redis();
    let port = redis.port;
    let (first, _first_config) = spawn_app(&forge.issuer, &redis.url()).await;
    until_store_connected(first.port).await;
    let mut browser = Client::new();
    let r = login(&forge, &first, &mut browser, "/app").await;
    assert_eq!(r.status, 302, "{}", r.body);
    let cookie = format!("{COOKIE}={}", browser.cookie(HOST, COOKIE).unwrap());
    let saved = records(&redis).await;
    assert_eq!(saved.len(), 1, "{saved:?}");

    // Where Redis was, a socket now accepts connections (the kernel's backlog) but never
    // answers the Redis handshake: every connection attempt runs into its timeout.
    redis.stop();
    let black_hole = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (app, _config) = spawn_app(&forge.issuer, &format!("redis://127.0.0.1:{port}")).await;
    let mut batch = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (port, cookie) = (app.port, cookie.clone());
        batch.spawn(async move { auth(port, &cookie).await });
    }
    let answers = batch.join_all().await;
    for (status, _, took) in &answers {
        assert_eq!(*status, 401, "fail closed");
        assert!(*took < AT_ONCE, "an answer took {took:?}: {answers:?}");
    }

    // Redis comes up on the same port with the session record: the same authgate serves the
    // session again, as soon as its background connection is made.
    drop(black_hole);
    let redis = spawn_redis_at(port);
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (k, v) in &saved {
        redis::cmd("SET")
            .arg(k)
            .arg(v)
            .query_async::<()>(&mut c)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, user, _) = auth(app.port, &cookie).await;
        if status == 202 {
            assert_eq!(user.as_deref(), Some("alice"));
            break;
        }
        assert_eq!(status, 401, "fail closed until then");
        assert!(
            Instant::now() < deadline,
            "sessions did not come back within 15 s of Redis answering"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_return_target_too_long_for_the_login_cookie_ends_the_login_at_slash() {
    let forge = spawn_forge().await;
    let redis = spawn_redis();
    let (app, _config) = spawn_app(&forge.issuer, &redis.url()).await;
    until_store_connected(app.port).await;
    let mut browser = Client::new();
    // A valid path, short enough for the redirect policy, too long for the login cookie.
    let rd = format!("/app/{}", "a".repeat(3500));
    let r = login(&forge, &app, &mut browser, &rd).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.raw_location(), "/");
    assert_eq!(records(&redis).await.len(), 1, "the session is saved");
    let cookie = format!("{COOKIE}={}", browser.cookie(HOST, COOKIE).unwrap());
    let (status, user, _) = auth(app.port, &cookie).await;
    assert_eq!((status, user.as_deref()), (202, Some("alice")));
}

/// A reload whose Redis URL is unchanged keeps the connected store (a new one would fail
/// closed until it connects); a changed URL gets a new store.
#[tokio::test]
async fn a_reload_keeps_the_redis_store_while_its_url_is_unchanged() {
    let forge = spawn_forge().await;
    let redis = spawn_redis();
    let (app, config) = spawn_app(&forge.issuer, &redis.url()).await;
    let store = |state: &authgate::state::AppState| {
        state.registry().workspaces[0]
            .store
            .clone()
            .expect("mcd keeps its sessions in Redis")
    };
    let before = store(&app.state);
    let env = env_with(&[("MCD_SECRET", "s3cret"), ("REDIS_URL", &redis.url())]);
    authgate::server::reload(&app.state, config.path(), &env).unwrap();
    assert!(std::sync::Arc::ptr_eq(&before, &store(&app.state)));
    let other = env_with(&[
        ("MCD_SECRET", "s3cret"),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ]);
    authgate::server::reload(&app.state, config.path(), &other).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&before, &store(&app.state)));
}
