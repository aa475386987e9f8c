//! The trust matrix: every header a client can write, through each real proxy in front of its
//! own form of the auth route — NGINX (the ingress-nginx subrequest, `/oauth2/auth/<ws>`),
//! Traefik and Caddy (the redirect form, `/oauth2/auth/<ws>/redirect`) — against a workspace
//! with public rules, from a client without a session.
//!
//! What must hold, whatever the client adds:
//! - the app is reached without a login only on a public path, with a method its rule allows,
//!   spelled exactly as the rule names it (checked on the path and method the app itself saw);
//! - every public path still reaches the app;
//! - no forged value reaches the app as an identity header, in any spelling of `-` and `_` a
//!   CGI-style app server reads as the same name, nor authgate's log as authgate's own (as a
//!   user, a host, a client address or its request id).

use crate::helpers::caddy::spawn_caddy_at;
use crate::helpers::client::{raw_request, RawResp};
use crate::helpers::nginx::{spawn_nginx_at, Site};
use crate::helpers::redis::eventually;
use crate::helpers::traefik::{self, spawn_traefik_at};
use crate::helpers::upstream::spawn_upstream;
use crate::helpers::{free_port, spawn_authgate, ConfigDir};

use std::time::Duration;

const HOST: &str = "mcd.localhost";

/// The workspace: a login at a provider that is never reached (no request here gets that far),
/// two public rules, tokens passed to apps (so a forged token header would show).
const WORKSPACE: &str = r#"hosts = ["mcd.localhost"]
auth = "oidc"
insecure_http = true
[[provider]]
issuer = "http://127.0.0.1:9/unreachable"
client_id = "authgate"
client_secret_env = "CLIENT_SECRET"
[headers]
pass_access_token = true
pass_id_token = true
[[public]]
path = "/healthz"
[[public]]
prefix = "/static/"
methods = ["GET"]
"#;

/// Distinctive forged values: none may show in authgate's log or as the app's identity.
const FORGED_USER: &str = "mallory";
const FORGED_HOST: &str = "forged.invalid";
const FORGED_ADDRESS: &str = "203.0.113.66";
const FORGED_REQUEST_ID: &str = "forgedrequestid66";

/// Every header a client can write that some proxy or authgate reads, each with a value that
/// would make the request public, another host's, another client's or someone's identity.
fn forged_headers() -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = [
        ("X-Original-URL", format!("http://{HOST}/healthz")),
        ("X-Original-Method", "GET".into()),
        ("X-Forwarded-Uri", "/healthz".into()),
        ("X-Forwarded-Method", "GET".into()),
        ("X-Forwarded-Host", FORGED_HOST.into()),
        ("X-Forwarded-Proto", "https".into()),
        ("X-Forwarded-Port", "443".into()),
        ("X-Forwarded-Prefix", "/healthz".into()),
        ("X-Forwarded-For", FORGED_ADDRESS.into()),
        (
            "Forwarded",
            format!("for={FORGED_ADDRESS};host={FORGED_HOST};proto=https"),
        ),
        ("X-Real-IP", FORGED_ADDRESS.into()),
        ("X-Request-ID", FORGED_REQUEST_ID.into()),
        ("X-Auth-Request-Redirect", "/healthz".into()),
        ("X-Auth-Request-Access-Token", FORGED_USER.into()),
        ("X-Auth-Request-Id-Token", FORGED_USER.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // Each identity header as authgate writes it, and as CGI-style app servers (WSGI, Rack,
    // PHP) read it too: with `_` for `-`, all or some.
    for name in traefik::auth_response_headers() {
        h.push((name.replace('-', "_"), FORGED_USER.into()));
        h.push((name.replacen('-', "_", 1), FORGED_USER.into()));
        h.push((name, FORGED_USER.into()));
    }
    h
}

/// The requests tried, and whether each is public: only the rules' own spellings are.
const REQUESTS: &[(&str, &str, bool)] = &[
    ("GET", "/healthz", true),
    ("HEAD", "/healthz", true),
    ("GET", "/healthz?probe=1", true),
    ("GET", "/static/app.js", true),
    ("GET", "/admin", false),
    ("POST", "/admin/delete", false),
    ("POST", "/healthz", false),
    ("POST", "/static/app.js", false),
    ("GET", "/admin/../healthz", false),
    ("GET", "/static/../admin", false),
    ("GET", "/static/./app.js", false),
    ("GET", "/heal%74hz", false),
    ("GET", "/static/%2e%2e/admin", false),
    ("GET", "/healthz;x", false),
    ("GET", "//healthz", false),
];

/// The public paths and the methods their rules allow, as the app must see them.
fn public_as_seen(method: &str, path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match method {
        "GET" => path == "/healthz" || path.starts_with("/static/") && !path.contains(".."),
        "HEAD" => path == "/healthz",
        _ => false,
    }
}

/// What the echoing app saw, when the request reached it: the method and path it answers
/// in `X-App-Method` and `X-App-Path` (proxies may recase header names).
fn reached(r: &RawResp) -> Option<(String, String)> {
    let header = |name: &str| {
        r.text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    Some((header("x-app-method")?, header("x-app-path")?))
}

#[tokio::test]
async fn no_header_a_client_writes_opens_a_path_or_forges_an_identity_through_any_proxy() {
    let config = ConfigDir::new("").workspace("mcd", WORKSPACE);
    let authgate = spawn_authgate(&config, &[("CLIENT_SECRET", "s")], "trust-matrix");
    let upstream = spawn_upstream().await;
    let (nginx_port, traefik_port, caddy_port) = (free_port(), free_port(), free_port());
    let _nginx = spawn_nginx_at(
        &[Site::protected(HOST, &["/"])],
        authgate.port,
        upstream.port,
        nginx_port,
    );
    let _traefik = spawn_traefik_at(
        &[traefik::Site::new(HOST)],
        authgate.port,
        upstream.port,
        traefik_port,
    )
    .await;
    let _caddy = spawn_caddy_at(&[(HOST, "mcd")], authgate.port, upstream.port, caddy_port);

    let forged = forged_headers();
    let proxies = [
        ("nginx", nginx_port),
        ("traefik", traefik_port),
        ("caddy", caddy_port),
    ];
    // First every forged header at once through each proxy: its refusals are few enough to be
    // logged whole (authgate logs at most 50 refusals a second), so the log is checked on them.
    let mut refusals = 0;
    for (proxy, port) in proxies {
        refusals += try_every_request(proxy, port, &forged).await;
        // A browser route too: its log lines carry authgate's own request id.
        let host = format!("{HOST}:{port}");
        let mut headers: Vec<(&str, &str)> = vec![("Host", host.as_str())];
        headers.extend(forged.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let r = raw_request(port, "GET /oauth2/start?rd=%2F HTTP/1.1", &headers).await;
        assert!(
            reached(&r).is_none(),
            "{proxy}: /oauth2/start reached the app"
        );
    }
    let log = eventually(Duration::from_secs(10), "the refusals are logged", || {
        let log = authgate.log_text();
        async move { (log.matches("refused").count() >= refusals).then_some(log) }
    })
    .await;
    assert_no_forged_value_in(&log);
    // Then each forged header alone, and none.
    let mut sets: Vec<Vec<(String, String)>> = forged.iter().map(|h| vec![h.clone()]).collect();
    sets.push(vec![]);
    for (proxy, port) in proxies {
        for set in &sets {
            try_every_request(proxy, port, set).await;
        }
    }
    assert_no_forged_value_in(&authgate.log_text());
}

/// No forged value in authgate's log as authgate's own. The one place a client's value may
/// stand is `proxy_request_id`, the id the proxy sent, labelled as the proxy's: ingress-nginx
/// passes a client's own `X-Request-ID` on as its request id.
fn assert_no_forged_value_in(log: &str) {
    let log = log.replace(&format!("proxy_request_id={FORGED_REQUEST_ID}"), "");
    for value in [FORGED_USER, FORGED_HOST, FORGED_ADDRESS, FORGED_REQUEST_ID] {
        assert!(
            !log.contains(value),
            "{value} reached authgate's log: {}",
            log.lines()
                .filter(|l| l.contains(value))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Every request of [`REQUESTS`] through the proxy on `port`, with `forged` headers added;
/// returns how many authgate refused (each one a line in its log).
async fn try_every_request(proxy: &str, port: u16, forged: &[(String, String)]) -> usize {
    let mut refused = 0;
    let host = format!("{HOST}:{port}");
    for &(method, target, public) in REQUESTS {
        let mut headers: Vec<(&str, &str)> = vec![
            ("Host", host.as_str()),
            ("Accept", "text/html"),
            ("Content-Length", "0"),
        ];
        headers.extend(forged.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let r = raw_request(port, &format!("{method} {target} HTTP/1.1"), &headers).await;
        let what = format!("{proxy}: {method} {target} with {forged:?}");
        match reached(&r) {
            Some((seen_method, seen_path)) => {
                assert!(
                    public_as_seen(&seen_method, &seen_path),
                    "{what}: the app served {seen_method} {seen_path} without a login"
                );
                // A header the app would read as an identity header, `_` and `-` alike.
                let identity = r
                    .text
                    .lines()
                    .filter(|l| {
                        l.to_ascii_lowercase()
                            .replace('_', "-")
                            .starts_with("x-auth-request-")
                    })
                    .collect::<Vec<_>>();
                assert!(
                    identity.iter().all(|l| !l.contains(FORGED_USER)),
                    "{what}: a forged identity reached the app: {identity:?}"
                );
            }
            None => {
                assert!(
                    !public,
                    "{what}: a public path did not reach the app: {r:?}"
                );
                // Sent to the sign-in (NGINX's auth-signin, authgate's own 302 on the redirect
                // form), or refused by the proxy itself as malformed.
                let to_sign_in = r.status == 302 && r.text.contains("/oauth2/start?rd=");
                assert!(
                    to_sign_in || r.status == 400,
                    "{what}: neither the sign-in nor the proxy's 400: {r:?}"
                );
                refused += usize::from(to_sign_in);
            }
        }
    }
    refused
}
