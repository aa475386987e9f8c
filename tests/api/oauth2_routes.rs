//! The browser reaches only authgate's browser routes, through each real proxy configured from
//! the shipped files (ingress-nginx's `/oauth2` Ingress as the test NGINX renders it, the
//! Traefik Ingress paths and Middlewares of `k8s/traefik/`, the example Caddyfile).
//!
//! authgate's auth route answers the proxy inside the cluster with a 202 carrying the identity
//! headers and, in a workspace that passes them (`[headers] pass_access_token`,
//! `pass_id_token`, `pass_authorization_header`), the provider's tokens. Routed from outside,
//! any script on a page of the host could fetch it with the session cookie and read them, which
//! defeats the cookie's `HttpOnly`. So through every proxy a signed-in browser's request for
//! `/oauth2/auth…` on a workspace host, in every spelling a proxy may normalise, never gets
//! that answer: it may reach an app (after the auth check, as any page does) or a 404, never
//! authgate's 202, its `X-Auth-Request-*` or `Authorization` headers, or a token. And the five
//! browser routes (start, callback, sign_out, userinfo, backchannel_logout) still work.

use crate::helpers::caddy::spawn_caddy_at;
use crate::helpers::client::{raw_request, RawResp};
use crate::helpers::nginx::{spawn_nginx_at, OAuth2Route, Site as NginxSite};
use crate::helpers::platform::{spawn_workspaces_with, Workspaces, MCD};
use crate::helpers::traefik::{spawn_traefik_at, Site as TraefikSite};
use crate::helpers::{free_port, Client};

/// mcd passes every token it can to its apps.
const PASS_TOKENS: &str =
    "pass_access_token = true\npass_id_token = true\npass_authorization_header = true\n";

/// Spellings of authgate's auth route a browser may send to a workspace host: its own forms,
/// other cases, and the dot segments, doubled slashes and escapes a proxy normalises before
/// routing.
const AUTH_SPELLINGS: &[&str] = &[
    "/oauth2/auth",
    "/oauth2/auth/mcd",
    "/oauth2/auth/mcd/redirect",
    "/oauth2/auth?allowed_groups=",
    "/oauth2/AUTH/mcd",
    "/oauth2/Auth",
    "/oauth2/userinfo/../auth/mcd",
    "/oauth2/userinfo/../auth",
    "/oauth2/start/../auth/mcd/redirect",
    "/oauth2/./auth/mcd",
    "//oauth2/auth/mcd",
    "/oauth2//auth/mcd",
    "/oauth2/%61uth/mcd",
    "/oauth2/auth%2fmcd",
];

/// The tokens authgate passes for alice's session: what must never reach the browser.
struct Tokens {
    access: String,
    id: String,
}

/// alice's session cookies at mcd, as one `Cookie` line.
fn cookie_line(c: &Client) -> String {
    c.jar
        .get(MCD)
        .expect("a session at mcd")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The tokens, asked from authgate directly as the proxy inside the cluster asks: this is the
/// answer the browser must never see, and its tokens show the workspace really passes them.
async fn tokens_from_authgate(ws: &Workspaces, host: &str, cookie: &str) -> Tokens {
    let r = Client::new()
        .get(
            &format!("http://127.0.0.1:{}/oauth2/auth/mcd", ws.authgate.port),
            &[
                ("x-original-url", &format!("http://{host}/helloworld")),
                ("x-original-method", "GET"),
                ("cookie", cookie),
            ],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let header = |name: &str| {
        r.header(name)
            .unwrap_or_else(|| panic!("authgate's 202 has no {name}: {:?}", r.headers))
            .to_string()
    };
    let tokens = Tokens {
        access: header("x-auth-request-access-token"),
        id: header("x-auth-request-id-token"),
    };
    assert_eq!(header("authorization"), format!("Bearer {}", tokens.access));
    assert_eq!(header("x-auth-request-user"), "alice");
    tokens
}

/// `r` is not authgate's auth answer: not its 202, none of its headers, and, unless it is the
/// app's page, none of the tokens.
fn assert_not_the_auth_answer(what: &str, r: &RawResp, tokens: &Tokens) {
    let head = r
        .text
        .split_once("\r\n\r\n")
        .map_or(r.text.as_str(), |(head, _)| head)
        .to_ascii_lowercase();
    assert_ne!(
        r.status, 202,
        "{what}: authgate's 202 reached the browser:\n{}",
        r.text
    );
    for line in head.lines().skip(1) {
        assert!(
            !line.starts_with("x-auth-request-") && !line.starts_with("authorization:"),
            "{what}: the browser got {line:?}:\n{}",
            r.text
        );
    }
    // The app itself may be handed the tokens (that is what passing them means) and the
    // echoing app shows them in its page: only an answer that is not the app's is checked.
    if head.lines().any(|l| l.starts_with("x-app-path:")) {
        return;
    }
    for (name, token) in [("access token", &tokens.access), ("ID token", &tokens.id)] {
        assert!(
            !r.text.contains(token.as_str()),
            "{what}: the {name} reached the browser:\n{}",
            r.text
        );
    }
}

/// Signs alice in at mcd through the proxy at `base` (`http://mcd.localhost:<port>`), then
/// checks what the browser reaches under `/oauth2` there.
async fn browser_reaches_only_the_browser_routes(ws: &Workspaces, base: &str, port: u16) {
    let host = format!("{MCD}:{port}");
    let mut alice = Client::browser();
    let page = format!("{base}/helloworld");
    let steps = alice.follow(&page, "alice").await;
    let last = steps.last().unwrap();
    assert_eq!(
        (last.status, last.url.as_str()),
        (200, page.as_str()),
        "{}",
        last.body
    );
    // start and callback: the login went through both, on the proxy.
    for route in ["/oauth2/start", "/oauth2/callback"] {
        assert!(
            steps.iter().any(|r| r.url.path() == route
                && r.url.port() == Some(port)
                && (300..400).contains(&r.status)),
            "the login went through {route} on the proxy"
        );
    }
    let cookie = cookie_line(&alice);
    let tokens = tokens_from_authgate(ws, &host, &cookie).await;

    // The auth route, however spelled, with the session cookie, as a script of the page
    // would fetch it (with and without naming the original request itself).
    let original = format!("http://{host}/helloworld");
    for path in AUTH_SPELLINGS {
        for forged in [false, true] {
            let mut headers = vec![
                ("Host", host.as_str()),
                ("Cookie", cookie.as_str()),
                ("Accept", "*/*"),
            ];
            if forged {
                headers.push(("X-Original-URL", original.as_str()));
                headers.push(("X-Original-Method", "GET"));
            }
            let r = raw_request(port, &format!("GET {path} HTTP/1.1"), &headers).await;
            assert_not_the_auth_answer(&format!("GET {path} (forged: {forged})"), &r, &tokens);
        }
    }

    // The browser routes still reach authgate.
    let info = alice.get(&format!("{base}/oauth2/userinfo"), &[]).await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert!(
        info.body.contains("\"email\":\"alice@example.test\""),
        "{}",
        info.body
    );
    assert!(!info.body.contains(&tokens.access) && !info.body.contains(&tokens.id));
    let logout = alice
        .post_form(
            &format!("{base}/oauth2/backchannel_logout"),
            &[("logout_token", "not-a-token")],
        )
        .await;
    assert_eq!(logout.status, 400, "authgate's refusal: {}", logout.body);
    assert!(
        logout.body.contains("\"error\":\"invalid_request\""),
        "{}",
        logout.body
    );
    let start = Client::browser()
        .get(&format!("{base}/oauth2/start?rd=%2Fhelloworld"), &[])
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    assert!(
        start.raw_location().starts_with(&ws.idp.issuer),
        "to the provider: {}",
        start.raw_location()
    );
    let out = alice.get(&format!("{base}/oauth2/sign_out"), &[]).await;
    assert!((300..400).contains(&out.status), "{}", out.body);
    assert_eq!(alice.cookie(MCD, "authgate"), None, "signed out");
    let r = alice.get(&page, &[]).await;
    assert_eq!(r.status, 302, "signed out: to the sign-in again");
}

#[tokio::test]
async fn through_nginx_the_browser_reaches_only_the_browser_routes() {
    let port = free_port();
    let ws = spawn_workspaces_with("oauth2-routes-nginx", port, "generic", "", PASS_TOKENS).await;
    let nginx = spawn_nginx_at(
        &[NginxSite::protected(MCD, &["/helloworld"])],
        ws.authgate.port,
        ws.upstream.port,
        port,
    );
    browser_reaches_only_the_browser_routes(&ws, &nginx.url(MCD), port).await;
}

#[tokio::test]
async fn through_traefik_the_browser_reaches_only_the_browser_routes() {
    let port = free_port();
    let ws = spawn_workspaces_with("oauth2-routes-traefik", port, "generic", "", PASS_TOKENS).await;
    let traefik = spawn_traefik_at(
        &[TraefikSite::new(MCD)],
        ws.authgate.port,
        ws.upstream.port,
        port,
    )
    .await;
    browser_reaches_only_the_browser_routes(&ws, &traefik.url(MCD), port).await;
}

#[tokio::test]
async fn through_caddy_the_browser_reaches_only_the_browser_routes() {
    let port = free_port();
    let ws = spawn_workspaces_with("oauth2-routes-caddy", port, "generic", "", PASS_TOKENS).await;
    let caddy = spawn_caddy_at(&[(MCD, "mcd")], ws.authgate.port, ws.upstream.port, port);
    browser_reaches_only_the_browser_routes(&ws, &caddy.url(MCD), port).await;
}

#[test]
fn the_test_nginx_routes_what_the_oauth2_ingresses_route() {
    assert_eq!(
        OAuth2Route::from_manifest(),
        OAuth2Route {
            path: "/oauth2/(start|callback|sign_out|userinfo|backchannel_logout)$".into(),
            rewrite_prefix: "/oauth2/$1/".into(),
        }
    );
    let ingress = |ws: &str, rewrite: &str, path: &str| {
        format!(
            "# path: /ignored\nkind: Ingress\nmetadata:\n  labels:\n    platform/workspace: {ws}\n  \
             annotations:\n    nginx.ingress.kubernetes.io/rewrite-target: {rewrite}\nspec:\n  \
             rules:\n    - http:\n        paths:\n          - path: {path}\n            \
             pathType: ImplementationSpecific\n"
        )
    };
    let a = ingress("a", "/oauth2/$1/a", "/oauth2/(x|y)$");
    for (text, ok) in [
        (
            format!("{a}---\n{}", ingress("b", "/oauth2/$1/b", "/oauth2/(x|y)$")),
            true,
        ),
        (
            format!("{a}---\n{}", ingress("b", "/oauth2/$1/b", "/oauth2/(.*)")),
            false,
        ),
        (
            format!("{a}---\n{}", ingress("b", "/oauth2/$1/a", "/oauth2/(x|y)$")),
            false,
        ),
        (
            format!("{a}---\n{}", ingress("b", "/$1/b", "/oauth2/(x|y)$")),
            false,
        ),
        (a.replace("    platform/workspace: a\n", ""), false),
        (String::new(), false),
    ] {
        assert_eq!(OAuth2Route::from_ingresses(&text).is_ok(), ok, "{text}");
    }
}
