//! `[[public]]` routes: a public path of a protected workspace passes without a login and
//! without identity, through authgate alone and through a real NGINX; hostile spellings of it
//! get the normal login check.

use crate::forge_flow::{setup, COOKIE, HOST};
use crate::helpers::client::{raw_request, RawResp};
use crate::helpers::nginx::{spawn_nginx, Site};
use crate::helpers::upstream::spawn_upstream;
use crate::helpers::{env_with, spawn_authgate, spawn_in_process, Client, ConfigDir};

#[tokio::test]
async fn a_public_route_answers_202_without_identity_even_with_a_session() {
    let mut env = setup().await;
    let s = env.start_armed("/app").await;
    let iss = env.forge.issuer.clone();
    let r = env
        .callback(&[("code", "c-1"), ("state", &s.state), ("iss", &iss)])
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let auth = |path: &str, method: &str, cookie: Option<&str>| {
        let url = env.url("authgate.authgate.svc", "/oauth2/auth/mcd");
        let original = format!("http://{HOST}{path}");
        let method = method.to_string();
        let cookie = cookie.map(str::to_string);
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
    // With a session: the public path answers with no identity, another path with it.
    let public = auth("/healthz", "GET", Some(&cookie)).await;
    assert_eq!(public.status, 202);
    assert_eq!(public.header("x-auth-request-user"), None);
    assert_eq!(public.header("x-auth-request-email"), None);
    let app = auth("/app", "GET", Some(&cookie)).await;
    assert_eq!(app.header("x-auth-request-user"), Some("alice"));
    // Without one: the public path passes, its hostile spellings and other methods do not.
    assert_eq!(auth("/healthz?probe=1", "GET", None).await.status, 202);
    for (path, method) in [
        ("/healthz/../app", "GET"),
        ("/app/../healthz", "GET"),
        ("/./healthz", "GET"),
        ("/heal%74hz", "GET"),
        ("/healthz;x", "GET"),
        ("//healthz", "GET"),
        ("/HEALTHZ", "GET"),
        ("/healthz%00", "GET"),
        ("/x/%2e%2e/healthz", "GET"),
        ("/healthz", "POST"),
    ] {
        assert_eq!(
            auth(path, method, None).await.status,
            401,
            "{method} {path}"
        );
    }
    // The original method and URL count only from a trusted proxy: the in-process server's
    // peer is loopback (trusted), so a spoof is shown by leaving the method out.
    let url = env.url("authgate.authgate.svc", "/oauth2/auth/mcd");
    let no_method = Client::new()
        .get(&url, &[("x-original-url", "http://mcd.test/healthz")])
        .await;
    assert_eq!(no_method.status, 401, "no method: not public");
}

#[tokio::test]
async fn through_nginx_a_public_path_reaches_the_app_without_login_and_a_hostile_one_does_not() {
    let config = ConfigDir::new("").workspace(
        "mcd",
        r#"hosts = ["mcd.localhost"]
auth = "oidc"
insecure_http = true
[[provider]]
issuer = "http://127.0.0.1:9/unreachable"
client_id = "authgate"
client_secret_env = "CLIENT_SECRET"
[[public]]
path = "/healthz"
[[public]]
prefix = "/static/"
methods = ["GET"]
[[public]]
prefix = "/api/"
methods = []
cors_preflight = true
"#,
    );
    let authgate = spawn_authgate(&config, &[("CLIENT_SECRET", "s")], "public-routes");
    let upstream = spawn_upstream().await;
    let nginx = spawn_nginx(
        &[Site::protected("mcd.localhost", &["/"])],
        authgate.port,
        upstream.port,
    );
    let port = nginx.port;
    for (method, target) in [
        ("GET", "/healthz"),
        ("HEAD", "/healthz"),
        ("GET", "/healthz?verbose=1"),
        ("GET", "/static/app.js"),
        ("GET", "/static/css/app.js"),
    ] {
        let r = send(port, method, target, &[]).await;
        assert_eq!(r.status, 200, "{method} {target}: {}", r.text);
        assert!(!r.text.contains("mallory"), "{}", r.text);
        assert!(
            !r.text.to_ascii_lowercase().contains("x-auth-request"),
            "{}",
            r.text
        );
        if method == "GET" {
            assert!(r.text.contains(&format!("path: {target}")), "{}", r.text);
        }
    }
    for (method, target) in [
        ("GET", "/admin"),
        ("GET", "/healthz/../admin"),
        ("GET", "/admin/../healthz"),
        ("GET", "/static/css/../app.js"),
        ("GET", "/static/./app.js"),
        ("GET", "/heal%74hz"),
        ("GET", "/static/../admin"),
        ("GET", "/static/%2e%2e/admin"),
        ("GET", "/static%2F..%2Fadmin"),
        ("GET", "/healthz;x"),
        ("GET", "//healthz"),
        ("GET", "/HEALTHZ"),
        ("GET", "/healthz%00"),
        ("GET", "/healthz%23"),
        ("POST", "/healthz"),
        ("POST", "/static/app.js"),
        ("OPTIONS", "/api/items"),
    ] {
        let r = send(port, method, target, &[("Content-Length", "0")]).await;
        assert!(
            !r.text.contains("path: "),
            "{method} {target} reached the app: {}",
            r.text
        );
        // NGINX itself refuses a NUL byte with a 400; everything else goes to the sign-in.
        if r.status != 400 || !target.contains("%00") {
            assert_eq!(
                r.status, 302,
                "{method} {target} must go to the sign-in: {}",
                r.text
            );
            assert!(r.text.contains("/oauth2/start?rd="), "{}", r.text);
        }
    }
    // A CORS preflight to the opted-in prefix passes; the same OPTIONS without its headers
    // did not (above).
    let preflight = send(
        port,
        "OPTIONS",
        "/api/items",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 200, "{}", preflight.text);
}

/// A request to `mcd.localhost` through NGINX on `port`, with spoofed identity headers.
async fn send(port: u16, method: &str, target: &str, extra: &[(&str, &str)]) -> RawResp {
    let line = format!("{method} {target} HTTP/1.1");
    let host = format!("mcd.localhost:{port}");
    let mut h = vec![
        ("Host", host.as_str()),
        ("X-Auth-Request-User", "mallory"),
        ("X-Auth-Request-Email", "mallory@evil.test"),
    ];
    h.extend_from_slice(extra);
    raw_request(port, &line, &h).await
}

/// Each route form reads only its own proxy's description of the request, and only from a
/// trusted proxy: the subrequest form (ingress-nginx) the `X-Original-*` pair, the redirect
/// form (Traefik, Caddy) the `X-Forwarded-*` one. The other pair is the client's, passed on by
/// that proxy, and never makes a request public, whether or not the route's own pair is there.
#[tokio::test]
async fn each_route_form_reads_only_its_own_proxys_original_request() {
    let ws = "hosts = [\"mcd.test\"]\nauth = \"oidc\"\ninsecure_http = true\n[[provider]]\nissuer = \"http://127.0.0.1:9/x\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n[[public]]\npath = \"/healthz\"\n";
    let original = [
        ("x-original-url", "http://mcd.test/healthz"),
        ("x-original-method", "GET"),
    ];
    let forwarded = [
        ("x-forwarded-uri", "/healthz"),
        ("x-forwarded-method", "GET"),
        ("x-forwarded-host", "mcd.test"),
    ];
    // The test client's peer is loopback: trusted in the first config, not in the second.
    for (trusted, is_trusted) in [("127.0.0.0/8", true), ("10.0.0.0/8", false)] {
        let config =
            ConfigDir::new(&format!("trusted_proxies = [\"{trusted}\"]\n")).workspace("mcd", ws);
        let app = spawn_in_process(&config, env_with(&[("S", "s")])).await;
        let subrequest = format!("http://mcd.test:{}/oauth2/auth/mcd", app.port);
        let redirect = format!("http://mcd.test:{}/oauth2/auth/mcd/redirect", app.port);
        for (url, headers, public) in [
            (&subrequest, &original[..], is_trusted),
            (&subrequest, &forwarded[..], false),
            (&redirect, &forwarded[..], is_trusted),
            (&redirect, &original[..], false),
        ] {
            let r = Client::new().get(url, headers).await;
            assert_eq!(
                r.status == 202,
                public,
                "{trusted} {url} {headers:?}: {}",
                r.status
            );
        }
        // Both pairs, the route's own naming another path: the route's own pair decides.
        for (url, own) in [
            (&subrequest, ("x-original-url", "http://mcd.test/admin")),
            (&redirect, ("x-forwarded-uri", "/admin")),
        ] {
            let mut headers: Vec<(&str, &str)> = original
                .iter()
                .chain(forwarded.iter())
                .filter(|(k, _)| *k != own.0)
                .copied()
                .collect();
            headers.push(own);
            let r = Client::new().get(url, &headers).await;
            assert_ne!(r.status, 202, "{trusted} {url}");
        }
    }
}
