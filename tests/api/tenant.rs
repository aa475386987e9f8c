//! The tenant is fixed by the route the operator wrote, never by a header the client writes.
//!
//! Against the in-process server with three workspaces (`mcd` and `team` with logins on the
//! forging provider, `perso` without): `/oauth2/<action>/<workspace>` names the workspace, the
//! host the client wrote must be one of its hosts, and the short routes answer only in a
//! config with a single workspace. The same attacks through the real NGINX are in
//! `nginx_flow.rs`.

use std::sync::Arc;
use std::time::Duration;

use authgate::oidc::JwksCache;
use authgate::provider::ProviderContext;
use authgate::state::{AppState, SystemClock};
use axum::body::Body;
use jsonwebtoken::Algorithm;
use serde_json::json;
use tower::ServiceExt;

use crate::forge_flow::{claims, config_for, edited, param, rs256, setup, Env, COOKIE, HOST};
use crate::helpers::client::raw_bytes;
use crate::helpers::forge::{spawn_forge, tokens};
use crate::helpers::{env_with, spawn_in_process, Client, ConfigDir, MovedClock, Resp};

/// `/oauth2/auth<route>` as NGINX asks it: Host is authgate's service, the original URL and
/// the cookie are the client's.
async fn auth(env: &Env, route: &str, original_url: &str, cookie: Option<&str>) -> Resp {
    let mut headers = vec![("x-original-url", original_url)];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    Client::new()
        .get(
            &env.url("authgate.authgate.svc", &format!("/oauth2/auth{route}")),
            &headers,
        )
        .await
}

#[tokio::test]
async fn auth_without_a_workspace_in_the_route_is_refused_when_several_exist() {
    let mut env = setup().await;
    let cookie = env.session_cookie().await;
    assert_eq!(
        auth(&env, "/mcd", "http://mcd.test/app", Some(&cookie))
            .await
            .status,
        202
    );
    // The same valid session, the same host: without a workspace in the route the client's
    // host would choose the policy, so nothing passes.
    let r = auth(&env, "", "http://mcd.test/app", Some(&cookie)).await;
    assert_eq!(r.status, 403);
    assert!(r.header("x-auth-request-user").is_none());
    // Nor for the login-free workspace's host: it would open mcd's apps to anyone.
    assert_eq!(auth(&env, "", "http://perso.test/", None).await.status, 403);
}

#[tokio::test]
async fn auth_without_a_workspace_keeps_working_in_a_single_workspace_config() {
    let forge = spawn_forge().await;
    let config = ConfigDir::new("").workspace("mcd", &crate::forge_flow::mcd_toml(&forge.issuer));
    let app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    let mut c = Client::new();
    let url = format!("http://authgate.svc:{}/oauth2/auth", app.port);
    let r = c
        .get(&url, &[("x-original-url", "http://mcd.test/app")])
        .await;
    assert_eq!(r.status, 401, "judged by the only workspace: sign in");
    // Its host must still be one of that workspace's hosts.
    let r = c
        .get(&url, &[("x-original-url", "http://perso.test/app")])
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_host_of_the_login_free_workspace_never_opens_a_protected_one() {
    let env = setup().await;
    // Before: judged by perso's policy (no login) and answered 202.
    let r = auth(&env, "/mcd", "http://perso.test/helloworld", None).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_session_carried_to_another_workspace_under_its_host_is_refused() {
    let mut env = setup().await;
    let cookie = env.session_cookie().await;
    // mcd's session, sent to team's Ingress (auth-url …/team) while claiming mcd's host.
    let r = auth(&env, "/team", "http://mcd.test/admin", Some(&cookie)).await;
    assert_eq!(r.status, 403);
    // And under team's own host it does not open either: another workspace's key.
    let r = auth(&env, "/team", "http://team.test/admin", Some(&cookie)).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_workspace_the_config_does_not_have_is_refused() {
    let mut env = setup().await;
    let cookie = env.session_cookie().await;
    let r = auth(&env, "/nope", "http://mcd.test/", Some(&cookie)).await;
    assert_eq!(r.status, 403);
}

/// Original URLs whose host NGINX and a URL parser read differently, or that name no plain
/// host: refused even with a valid session, never normalised into a host.
#[tokio::test]
async fn hostile_original_urls_are_refused_even_with_a_valid_session() {
    let mut env = setup().await;
    let cookie = env.session_cookie().await;
    for url in [
        "http://perso.test:1@mcd.test/app",
        "http://mcd.test:1@perso.test/app",
        "http://alice@mcd.test/app",
        "http:///app",
        "http://:80/app",
        "http://mcd.test\\@perso.test/app",
        "http://mcd%2etest/app",
        "http://mcd.test,perso.test/app",
        "http://2130706433/app",
        "mcd.test/app",
    ] {
        let r = auth(&env, "/mcd", url, Some(&cookie)).await;
        assert_eq!(r.status, 403, "{url}");
        assert!(r.header("x-auth-request-user").is_none(), "{url}");
    }
}

#[tokio::test]
async fn login_routes_refuse_a_host_of_another_workspace() {
    let mut env = setup().await;
    let cookie = env.session_cookie().await;
    let mut raw = Client::new();
    // start: the Ingress names mcd, the client wrote team's or perso's host.
    for host in ["team.test", "perso.test", "nowhere.test"] {
        let r = raw
            .get(&env.url(host, "/oauth2/start/mcd?rd=%2F"), &[])
            .await;
        assert_eq!(r.status, 403, "start at {host}");
        assert!(r.header("location").is_none());
    }
    // X-Forwarded-Host counts from a trusted proxy, and is held to the same rule.
    let r = raw
        .get(
            &env.url(HOST, "/oauth2/start/mcd?rd=%2F"),
            &[("x-forwarded-host", "team.test")],
        )
        .await;
    assert_eq!(r.status, 403);
    // Without a workspace in the route, several workspaces: refused.
    let r = raw.get(&env.url(HOST, "/oauth2/start?rd=%2F"), &[]).await;
    assert_eq!(r.status, 403);
    // callback: a login of mcd cannot be finished under team's host.
    let s = env.start_armed("/app").await;
    let iss = env.forge.issuer.clone();
    let q = format!("code=c&state={}&iss={}", s.state, urlencode(&iss));
    let login_cookies: String = env
        .client
        .jar
        .get(HOST)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let r = raw
        .get(
            &env.url("team.test", &format!("/oauth2/callback/mcd?{q}")),
            &[("cookie", &login_cookies)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.set_cookies().is_empty(), "no session is issued");
    // sign_out: mcd's session cannot be ended through team's host, nor unpinned.
    for (host, route) in [
        ("team.test", "/oauth2/sign_out/mcd"),
        (HOST, "/oauth2/sign_out"),
    ] {
        let r = raw.get(&env.url(host, route), &[("cookie", &cookie)]).await;
        assert_eq!(r.status, 403, "{host}{route}");
        assert!(r.set_cookies().is_empty(), "{host}{route}: nothing cleared");
    }
    assert_eq!(
        auth(&env, "/mcd", "http://mcd.test/", Some(&cookie))
            .await
            .status,
        202,
        "the session is untouched"
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A workspace serving several hosts logs in from any of them: the callback comes back to the
/// host the login started on, where the login-state cookie is.
#[tokio::test]
async fn a_workspace_with_several_hosts_logs_in_from_any_of_them() {
    let mut env = setup().await;
    let s = env.start_on("mcd2.test", "/app").await;
    assert_eq!(
        param(&s.authorize, "redirect_uri"),
        "http://mcd2.test/oauth2/callback"
    );
    let token = env.good_token(&s.nonce);
    env.forge.answer_id_token(&token);
    let iss = env.forge.issuer.clone();
    let r = env
        .callback_on(
            "mcd2.test",
            &[("code", "c"), ("state", &s.state), ("iss", &iss)],
        )
        .await;
    assert_eq!((r.status, r.raw_location()), (302, "/app"), "{}", r.body);
    assert_eq!(
        env.forge
            .shared
            .last_token_request
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.as_str()),
        Some("http://mcd2.test/oauth2/callback"),
        "the code is exchanged with the redirect URI it was issued for"
    );
    let cookie = format!(
        "{COOKIE}={}",
        env.client.cookie("mcd2.test", COOKIE).unwrap()
    );
    let r = auth(&env, "/mcd", "http://mcd2.test/app", Some(&cookie)).await;
    assert_eq!(r.status, 202);
}

/// Bearer identities pass the same header-safety checks as logins.
#[tokio::test]
async fn bearer_identities_that_are_not_header_safe_are_refused() {
    let mut env = setup().await;
    env.session_cookie().await; // metadata and keys known
    let iss = env.forge.issuer.clone();
    let call = |token: String| {
        let url = env.url("authgate.svc", "/oauth2/auth/mcd");
        async move {
            let h = format!("Bearer {token}");
            Client::new()
                .get(
                    &url,
                    &[
                        ("x-original-url", "http://mcd.test/api"),
                        ("authorization", h.as_str()),
                    ],
                )
                .await
        }
    };
    let good = rs256(&claims(&iss, "n"));
    assert_eq!(call(good).await.status, 202);
    for (name, edit) in [
        ("comma in a group", json!({"groups": ["g-admins,g-root"]})),
        (
            "newline in the user",
            json!({"preferred_username": "alice\r\nx-evil: 1"}),
        ),
        (
            "control character in the email",
            json!({"email": "a\u{7}@example.test"}),
        ),
    ] {
        let c = edited(&iss, "n", |c| {
            for (k, v) in edit.as_object().unwrap() {
                c[k] = v.clone();
            }
        });
        let r = call(tokens::sign(Algorithm::RS256, Some(tokens::RSA_KID), &c)).await;
        assert_eq!(r.status, 401, "{name}");
    }
}

/// The in-process router over `state`, asked as the `/oauth2` Ingress asks it: from NGINX on
/// loopback (a trusted proxy), the client's address in `X-Real-IP` and `X-Forwarded-For`, as
/// the Ingress sets both.
struct Routed {
    app: axum::Router,
}

/// An answer: status, `Location`, the `Set-Cookie` pairs, the body.
struct Answer {
    status: u16,
    location: String,
    cookies: String,
    body: String,
}

impl Routed {
    fn new(state: AppState) -> Self {
        Self {
            app: authgate::http::app(state),
        }
    }

    async fn get(&self, uri: &str, cookie: &str, client: &str) -> Answer {
        let mut req = axum::http::Request::get(uri)
            .header("host", HOST)
            .header("x-real-ip", client)
            .header("x-forwarded-for", client);
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40_000,
            ))));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let header = |name: &str| {
            resp.headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (status, location, cookies) = (
            resp.status().as_u16(),
            header("location"),
            header("set-cookie"),
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        Answer {
            status,
            location,
            cookies,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// `/oauth2/start` from `client`: the login-state cookie and the callback query for it
    /// (`extra` added, e.g. `code=…` or `error=…`).
    async fn start(&self, client: &str) -> Result<(String, String, String), Answer> {
        let start = self.get("/oauth2/start/mcd?rd=%2Fapp", "", client).await;
        if start.status != 302 {
            return Err(start);
        }
        let location = url::Url::parse(&start.location).unwrap();
        Ok((
            start.cookies,
            param(&location, "state"),
            param(&location, "nonce"),
        ))
    }

    async fn callback(&self, cookie: &str, state: &str, extra: &str, client: &str) -> Answer {
        let uri = format!("/oauth2/callback/mcd?state={state}&{extra}");
        self.get(&uri, cookie, client).await
    }
}

fn app_state(
    issuer: &str,
    build: impl FnOnce(authgate::workspace::Registry, ProviderContext) -> AppState,
) -> (AppState, ConfigDir) {
    let config = config_for(issuer, "");
    let env = env_with(&[("MCD_SECRET", "s3cret")]);
    let http = authgate::server::http_client().unwrap();
    let ctx = ProviderContext::new(http.clone(), JwksCache::new(http, Duration::from_secs(30)));
    let (_, registry) = authgate::server::load_registry(config.path(), &env, &ctx).unwrap();
    (build(registry, ctx), config)
}

const FLOODER: &str = "198.51.100.66";
const VICTIM: &str = "203.0.113.5";

/// One address floods logins (each a real `/oauth2/start`, then a callback: with `error=`,
/// which is refused before its state is recorded, and with a `code`, which is recorded) into a
/// spent-state set of capacity 4. Another client's login still starts and completes, and no
/// state spent during the flood, forgotten or not, can be used again.
#[tokio::test]
async fn a_login_flood_from_one_address_never_refuses_another_clients_login() {
    let forge = spawn_forge().await;
    let clock = Arc::new(MovedClock::default());
    let (state, _config) = app_state(&forge.issuer, |r, ctx| {
        AppState::with_spent_capacity(r, ctx, clock.clone(), 4)
    });
    let app = Routed::new(state);
    // Error callbacks: nothing the IdP said, nothing recorded, however many.
    for _ in 0..20 {
        let (cookie, st, _) = app
            .start(FLOODER)
            .await
            .unwrap_or_else(|a| panic!("{}", a.status));
        let r = app
            .callback(&cookie, &st, "error=access_denied", FLOODER)
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    // Callbacks with a code: each recorded before the exchange (which fails).
    forge.answer(json!({"error": "invalid_grant"}));
    let mut spent = Vec::new();
    for _ in 0..12 {
        let (cookie, st, _) = app
            .start(FLOODER)
            .await
            .unwrap_or_else(|a| panic!("{}", a.status));
        let r = app.callback(&cookie, &st, "code=garbage", FLOODER).await;
        assert_ne!(r.status, 302, "{}", r.body);
        spent.push((cookie, st));
    }
    // Another client signs in, a moment later.
    clock.advance(2);
    let (cookie, st, nonce) = app
        .start(VICTIM)
        .await
        .unwrap_or_else(|a| panic!("the victim's start was refused: {} {}", a.status, a.body));
    forge.answer_id_token(&rs256(&claims(&forge.issuer, &nonce)));
    let iss = format!("code=c&iss={}", urlencode(&forge.issuer));
    let done = app.callback(&cookie, &st, &iss, VICTIM).await;
    assert_eq!(
        (done.status, done.location.as_str()),
        (302, "/app"),
        "{}",
        done.body
    );
    // Every state spent, the forgotten ones included, stays spent, from any address.
    for (cookie, st) in spent.iter().chain([&(cookie, st)]) {
        let replay = app.callback(cookie, st, &iss, VICTIM).await;
        assert_eq!(replay.status, 400, "{}", replay.body);
    }
}

/// A client that has spent its share of login states is refused new logins (429, at the start
/// already); another client is not.
#[tokio::test]
async fn a_client_over_its_share_of_spent_states_is_refused_alone() {
    let forge = spawn_forge().await;
    let (state, _config) = app_state(&forge.issuer, |r, ctx| {
        AppState::with_spent_limits(r, ctx, Arc::new(SystemClock), 100, 3)
    });
    let app = Routed::new(state);
    forge.answer(json!({"error": "invalid_grant"}));
    for _ in 0..3 {
        let (cookie, st, _) = app
            .start(FLOODER)
            .await
            .unwrap_or_else(|a| panic!("{}", a.status));
        app.callback(&cookie, &st, "code=garbage", FLOODER).await;
    }
    let refused = app
        .start(FLOODER)
        .await
        .expect_err("the fourth start is refused");
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("Too many sign-ins from your address"),
        "{}",
        refused.body
    );
    // A login it started before reaching its share is refused at the callback too.
    let (cookie, st, nonce) = app
        .start(VICTIM)
        .await
        .unwrap_or_else(|a| panic!("{}", a.status));
    forge.answer_id_token(&rs256(&claims(&forge.issuer, &nonce)));
    let iss = format!("code=c&iss={}", urlencode(&forge.issuer));
    let r = app.callback(&cookie, &st, &iss, FLOODER).await;
    assert_eq!(r.status, 429, "{}", r.body);
    // From its own address, the other client completes (its state was not recorded above).
    let done = app.callback(&cookie, &st, &iss, VICTIM).await;
    assert_eq!(
        (done.status, done.location.as_str()),
        (302, "/app"),
        "{}",
        done.body
    );
}

/// A header that names a host but is not text is refused, never read as absent: absent would
/// let the next header, which the client also writes, decide.
#[tokio::test]
async fn a_non_ascii_original_url_is_refused_not_skipped_for_x_forwarded_host() {
    let mut env = setup().await;
    let cookie = env.session_cookie().await;
    let mut req = b"GET /oauth2/auth/mcd HTTP/1.1\r\nHost: authgate.svc\r\nX-Original-URL: http://perso.test\xff/x\r\nX-Forwarded-Host: mcd.test\r\n".to_vec();
    req.extend_from_slice(format!("Cookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes());
    let r = raw_bytes(env.app.port, &req).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!r.text.to_ascii_lowercase().contains("x-auth-request-user"));
}

/// Another app's cookie that is not UTF-8, in the same `Cookie` header, hides nothing.
#[tokio::test]
async fn a_foreign_non_utf8_cookie_does_not_hide_the_session() {
    let mut env = setup().await;
    let cookie = env.session_cookie().await;
    let mut req = b"GET /oauth2/auth/mcd HTTP/1.1\r\nHost: authgate.svc\r\nX-Original-URL: http://mcd.test/x\r\n".to_vec();
    req.extend_from_slice(format!("Cookie: theme=\u{e9}t\u{e9}; {cookie}; x=").as_bytes());
    req.extend_from_slice(b"\xff\xfe\r\nConnection: close\r\n\r\n");
    let r = raw_bytes(env.app.port, &req).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

/// On the login routes X-Original-URL is not read: through the /oauth2 Ingress it is the
/// client's own header, and would choose which of the workspace's hosts the login uses.
#[tokio::test]
async fn login_routes_ignore_a_client_x_original_url() {
    let mut env = setup().await;
    let r = env
        .client
        .get(
            &env.url(HOST, "/oauth2/start/mcd?rd=%2F"),
            &[("x-original-url", "http://mcd2.test/")],
        )
        .await;
    assert_eq!(r.status, 302);
    let redirect_uri = r
        .location()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        redirect_uri.as_deref(),
        Some("http://mcd.test/oauth2/callback")
    );
}
