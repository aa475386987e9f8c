//! The trust matrix: every header a client can write, through each real proxy in front of its
//! own form of the auth route — NGINX (the ingress-nginx subrequest, `/oauth2/auth/<ws>`),
//! Traefik and Caddy (the redirect form, `/oauth2/auth/<ws>/redirect`) — against a workspace
//! with public rules, and against one with ordered access rules (`[[rule]]`: public by path
//! and by client network, deny), from a client without a session.
//!
//! What must hold, whatever the client adds:
//! - the app is reached without a login only on a public path, with a method its rule allows,
//!   spelled exactly as the rule names it (checked on the path and method the app itself saw),
//!   from a network its rule names (the address the proxy saw, never one the client wrote);
//! - every public path still reaches the app, and a denied one is refused with 403;
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

/// The login both workspaces share: a provider that is never reached (no request here gets
/// that far), tokens passed to apps (so a forged token header would show).
const LOGIN: &str = r#"hosts = ["mcd.localhost"]
auth = "oidc"
insecure_http = true
[[provider]]
issuer = "http://127.0.0.1:9/unreachable"
client_id = "authgate"
client_secret_env = "CLIENT_SECRET"
[headers]
pass_access_token = true
pass_id_token = true
"#;

/// The workspace's own rules after [`LOGIN`]: two public rules.
const WORKSPACE: &str = r#"[[public]]
path = "/healthz"
[[public]]
prefix = "/static/"
methods = ["GET"]
"#;

/// The rules after [`LOGIN`] of the workspace with access rules, after a `[[public]]`: a public prefix by
/// rule, a public prefix for the network the test client really is on (loopback), one for a
/// network only a forged `X-Forwarded-For` names, and a denied area.
const RULES_WORKSPACE: &str = r#"[[public]]
path = "/healthz"
[[rule]]
prefix = "/static/"
methods = ["GET"]
action = "public"
[[rule]]
prefix = "/partner/"
networks = ["203.0.113.0/24"]
action = "public"
[[rule]]
prefix = "/internal/"
methods = ["GET"]
networks = ["127.0.0.0/8", "::1/128"]
action = "public"
[[rule]]
prefix = "/admin/"
action = "deny"
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

/// What a request without a session must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Reaches the app.
    Public,
    /// Sent to the sign-in.
    SignIn,
    /// 403 from a `deny` rule.
    Denied,
    /// Sent to the sign-in or denied: a doubtful spelling matches no rule in authgate, but a
    /// proxy that normalises the path itself (Traefik) hands on, and serves, the path it made.
    Refused,
}

use Expect::{Denied, Public, Refused, SignIn};

/// The requests tried on the `[[public]]` workspace: only the rules' own spellings are public.
const REQUESTS: &[(&str, &str, Expect)] = &[
    ("GET", "/healthz", Public),
    ("HEAD", "/healthz", Public),
    ("GET", "/healthz?probe=1", Public),
    ("GET", "/static/app.js", Public),
    ("GET", "/admin", SignIn),
    ("POST", "/admin/delete", SignIn),
    ("POST", "/healthz", SignIn),
    ("POST", "/static/app.js", SignIn),
    ("GET", "/admin/../healthz", SignIn),
    ("GET", "/static/../admin", SignIn),
    ("GET", "/static/./app.js", SignIn),
    ("GET", "/heal%74hz", SignIn),
    ("GET", "/static/%2e%2e/admin", SignIn),
    ("GET", "/healthz;x", SignIn),
    ("GET", "//healthz", SignIn),
];

/// The requests tried on the rules workspace: besides the above, the network rules (the
/// client is on loopback; a forged `X-Forwarded-For` names 203.0.113.66) and the denied area,
/// whose doubtful spellings match no rule and get the login instead.
const RULE_REQUESTS: &[(&str, &str, Expect)] = &[
    ("GET", "/healthz", Public),
    ("HEAD", "/healthz", Public),
    ("GET", "/static/app.js", Public),
    ("POST", "/static/app.js", SignIn),
    ("GET", "/internal/status", Public),
    ("POST", "/internal/status", SignIn),
    ("GET", "/partner/feed", SignIn),
    ("GET", "/admin/users", Denied),
    ("POST", "/admin/delete", Denied),
    ("GET", "/admin", SignIn),
    ("GET", "/internal/../admin/users", Refused),
    ("GET", "/static/../partner/feed", Refused),
    ("GET", "/internal/%2e%2e/admin/users", Refused),
    ("GET", "/internal;x/status", Refused),
    ("GET", "//internal/status", Refused),
    ("GET", "/heal%74hz", Refused),
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

/// The same for the rules workspace: `/internal/` is public too (for the loopback client),
/// `/partner/` never (the client is not on its network).
fn rule_public_as_seen(method: &str, path: &str) -> bool {
    let plain = path.split_once('?').map_or(path, |(p, _)| p);
    public_as_seen(method, path)
        || method == "GET" && plain.starts_with("/internal/") && !plain.contains("..")
}

/// One matrix: a workspace, the requests tried on it, and what the app may serve.
struct Matrix {
    /// The workspace's rules, after [`LOGIN`].
    workspace: &'static str,
    requests: &'static [(&'static str, &'static str, Expect)],
    public_as_seen: fn(&str, &str) -> bool,
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
    run(
        "trust-matrix",
        &Matrix {
            workspace: WORKSPACE,
            requests: REQUESTS,
            public_as_seen,
        },
    )
    .await;
}

#[tokio::test]
async fn no_header_a_client_writes_moves_a_request_to_another_access_rule_through_any_proxy() {
    run(
        "trust-matrix-rules",
        &Matrix {
            workspace: RULES_WORKSPACE,
            requests: RULE_REQUESTS,
            public_as_seen: rule_public_as_seen,
        },
    )
    .await;
}

/// The matrix `m` through NGINX, Traefik and Caddy, authgate's log named after `name`.
async fn run(name: &str, m: &Matrix) {
    let config = ConfigDir::new("").workspace("mcd", &format!("{LOGIN}{}", m.workspace));
    let authgate = spawn_authgate(&config, &[("CLIENT_SECRET", "s")], name);
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
        refusals += try_every_request(m, proxy, port, &forged).await;
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
            try_every_request(m, proxy, port, set).await;
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

/// Every request of the matrix through the proxy on `port`, with `forged` headers added;
/// returns how many authgate refused (each one a line in its log).
async fn try_every_request(
    m: &Matrix,
    proxy: &str,
    port: u16,
    forged: &[(String, String)],
) -> usize {
    let mut refused = 0;
    let host = format!("{HOST}:{port}");
    for &(method, target, expect) in m.requests {
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
                    (m.public_as_seen)(&seen_method, &seen_path),
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
                    expect != Public,
                    "{what}: a public path did not reach the app: {r:?}"
                );
                // Sent to the sign-in (NGINX's auth-signin, authgate's own 302 on the redirect
                // form), refused by a deny rule, or refused by the proxy itself as malformed.
                let to_sign_in = r.status == 302 && r.text.contains("/oauth2/start?rd=");
                let denied = r.status == 403;
                match expect {
                    Denied => assert!(
                        denied || r.status == 400,
                        "{what}: neither the deny rule's 403 nor the proxy's 400: {r:?}"
                    ),
                    Refused => assert!(
                        to_sign_in || denied || r.status == 400,
                        "{what}: neither the sign-in, a deny rule's 403 nor the proxy's 400: {r:?}"
                    ),
                    _ => assert!(
                        to_sign_in || r.status == 400,
                        "{what}: neither the sign-in nor the proxy's 400: {r:?}"
                    ),
                }
                refused += usize::from(to_sign_in || denied);
            }
        }
    }
    refused
}
