//! A large identity end to end: an Entra-shaped user holding 200 group ids (the most Entra puts
//! in a token before it sends the overage indication) logs in with Chromium through NGINX
//! sized as the manifests size ingress-nginx. The browser really stores the split session
//! cookies and sends them back, and the app behind NGINX receives the identity and the groups.
//! With ingress-nginx's default buffers the same login breaks, which is why the manifests set
//! them.

use serde_json::{json, Value};

use crate::helpers::browser::{run_browser, screenshots};
use crate::helpers::nginx::{render_config, spawn_nginx_with, Buffers, Nginx, Site};
use crate::helpers::node::{spawn_oidc_provider, Idp};
use crate::helpers::upstream::{spawn_upstream, Upstream};
use crate::helpers::{free_port, spawn_authgate, AuthgateProcess, ConfigDir};
use crate::nginx_flow::MCD;

/// Chromium's (and RFC 6265 §6.1's) limit for one cookie: name and value together.
const COOKIE_LIMIT: usize = 4096;

/// NGINX in front of authgate with one Entra workspace on `mcd.localhost`, and the
/// oidc-provider shaped as Entra (tenant issuer, object ids as groups).
struct EntraPlatform {
    nginx: Nginx,
    _authgate: AuthgateProcess,
    _idp: Idp,
    _upstream: Upstream,
    _config: ConfigDir,
}

async fn spawn_entra_platform(name: &str, buffers: &Buffers) -> EntraPlatform {
    let port = free_port();
    let idp = spawn_oidc_provider(
        "azure",
        "authgate",
        "client-secret",
        &[format!("http://{MCD}:{port}/oauth2/callback")],
        json!({}),
    );
    let workspace = format!(
        r#"hosts = ["{MCD}:{port}"]
auth = "oidc"
insecure_http = true
[[provider]]
id = "entra"
kind = "azure"
issuer = "{issuer}"
client_id = "authgate"
client_secret_env = "CLIENT_SECRET"
[session]
cookie_name = "authgate"
[headers]
user = "email"
email = "email"
preferred_username = "preferred_username"
groups = "groups"
"#,
        issuer = idp.issuer,
    );
    let config = ConfigDir::new("").workspace("mcd", &workspace);
    let authgate = spawn_authgate(&config, &[("CLIENT_SECRET", "client-secret")], name);
    let upstream = spawn_upstream().await;
    let site = Site::protected(MCD, &["/helloworld"]);
    let nginx = spawn_nginx_with(&[site], authgate.port, upstream.port, port, buffers);
    EntraPlatform {
        nginx,
        _authgate: authgate,
        _idp: idp,
        _upstream: upstream,
        _config: config,
    }
}

/// Chromium logs `many` in at `/helloworld` and comes back to it; returns what it sees there.
async fn log_in_many(p: &EntraPlatform, name: &str, expect_text: Option<&str>) -> Value {
    let start = format!("{}/helloworld?from={name}", p.nginx.url(MCD));
    let result = browse_login(&start, name, expect_text).await;
    assert_eq!(result["final_url"], start, "{result}");
    result
}

/// Chromium logs `many` in from `start` and stays on the page it lands on (any on its host).
async fn browse_login(start: &str, name: &str, expect_text: Option<&str>) -> Value {
    run_browser(json!({
        "start_url": start,
        "login": "many",
        "kind": "oidc",
        "expect_text": expect_text,
        "excerpt_len": 40000,
        "screenshot_dir": screenshots(),
        "name": name,
    }))
    .await
}

/// Whether NGINX's error log holds `needle`.
fn nginx_logged(p: &EntraPlatform, needle: &str) -> bool {
    std::fs::read_to_string(p.nginx.dir.path().join("error.log"))
        .unwrap_or_default()
        .contains(needle)
}

/// `(name, size)` of the session cookies in the browser's jar: `authgate` or `authgate-<n>`.
fn session_cookies(result: &Value) -> Vec<(String, usize)> {
    result["cookies"]
        .as_array()
        .expect("the browser's cookies")
        .iter()
        .filter(|c| c["domain"] == MCD)
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["size"].as_u64().unwrap() as usize,
            )
        })
        .filter(|(name, _)| {
            name == "authgate"
                || name
                    .strip_prefix("authgate-")
                    .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// The value of header `name` in the echoing app's page (one `name: value` line per header).
fn echoed<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[tokio::test]
async fn entra_user_with_200_groups_logs_in_with_chromium_through_nginx() {
    let buffers = Buffers::from_manifest();
    let p = spawn_entra_platform("large-identity", &buffers).await;
    let result = log_in_many(
        &p,
        "large-identity",
        Some("x-auth-request-email: many@example.test"),
    )
    .await;
    assert_eq!(result["final_status"], 200, "{result}");

    // The browser holds the session split over numbered cookies, each within a cookie's limit.
    let mut cookies = session_cookies(&result);
    cookies.sort();
    let names: Vec<&str> = cookies.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.len() >= 2 && names.iter().all(|n| n.starts_with("authgate-")),
        "split cookies: {cookies:?}"
    );
    let expected: Vec<String> = (0..names.len()).map(|i| format!("authgate-{i}")).collect();
    assert_eq!(names, expected, "numbered from 0, none missing");
    assert!(
        cookies.iter().all(|(_, size)| *size < COOKIE_LIMIT),
        "{cookies:?}"
    );

    // It sent them back through NGINX: the app sees them in one `Cookie` line, and the
    // identity authgate read from them.
    let body = result["body_excerpt"].as_str().unwrap();
    let cookie = echoed(body, "cookie").expect("the Cookie header reached the app");
    for name in &names {
        assert!(cookie.contains(&format!("{name}=")), "{name} was sent");
    }
    assert_eq!(
        echoed(body, "x-auth-request-user"),
        Some("many@example.test")
    );
    assert_eq!(
        echoed(body, "x-auth-request-preferred-username"),
        Some("many@example.test")
    );
    // The 200 object ids fit authgate's 12 KB identity-header budget, so the groups header is
    // sent whole.
    let groups: Vec<&str> = echoed(body, "x-auth-request-groups")
        .expect("the groups header")
        .split(',')
        .collect();
    assert_eq!(groups.len(), 200);
    assert!(groups
        .iter()
        .all(|g| g.len() == 36 && g.matches('-').count() == 4));
    let sizes: Vec<usize> = cookies.iter().map(|(_, s)| *s).collect();
    eprintln!(
        "session cookies {sizes:?} bytes; Cookie header {} bytes; X-Auth-Request-Groups {} bytes; \
         NGINX large_client_header_buffers {}, proxy_buffer_size {}",
        cookie.len(),
        groups.join(",").len(),
        buffers.large_client_header_buffers,
        buffers.proxy_buffer_size,
    );
    assert!(
        cookie.len() + "Cookie: ".len() <= buffers.header_line_limit(),
        "the Cookie line fits one of NGINX's large header buffers"
    );
}

#[tokio::test]
async fn ingress_nginx_default_header_buffers_refuse_the_200_group_session() {
    // Only `large-client-header-buffers` at ingress-nginx's default (`4 8k`); the rest as
    // the manifests set it.
    let buffers = Buffers::default_header_buffers();
    assert_eq!(buffers.header_line_limit(), 8 * 1024);
    let p = spawn_entra_platform("large-identity-8k", &buffers).await;
    let result = log_in_many(&p, "large-identity-8k", None).await;
    // The login itself completes and the browser keeps the cookies; its next request carries
    // them in a `Cookie` line longer than one 8k buffer, which NGINX refuses before authgate
    // or the app see it.
    assert!(session_cookies(&result).len() >= 2, "{result}");
    assert_eq!(result["final_status"], 400, "{result}");
    let body = result["body_excerpt"].as_str().unwrap();
    assert!(
        body.contains("Request Header Or Cookie Too Large"),
        "{body}"
    );
    assert!(nginx_logged(&p, "client sent too long header line"));
}

#[tokio::test]
async fn ingress_nginx_default_proxy_buffer_fails_the_200_group_callback() {
    // Only `proxy-buffer-size` at ingress-nginx's default (`4k`): the callback's answer, three
    // `Set-Cookie` lines of about 3.8 KB each, does not fit it.
    let buffers = Buffers {
        proxy_buffer_size: Buffers::ingress_nginx_defaults().proxy_buffer_size,
        ..Buffers::from_manifest()
    };
    let p = spawn_entra_platform("large-identity-4k", &buffers).await;
    let start = format!("{}/helloworld?from=large-identity-4k", p.nginx.url(MCD));
    let result = browse_login(&start, "large-identity-4k", None).await;
    let final_url = result["final_url"].as_str().unwrap();
    assert!(final_url.contains("/oauth2/callback?"), "{result}");
    assert_eq!(result["final_status"], 502, "{result}");
    assert!(session_cookies(&result).is_empty(), "{result}");
    assert!(nginx_logged(&p, "upstream sent too big header"));
}

#[test]
fn the_test_nginx_sizes_its_buffers_as_the_manifests_do() {
    let manifest = Buffers::from_manifest();
    let conf = render_config(
        &[Site::protected(MCD, &["/helloworld"])],
        1,
        2,
        3,
        &manifest,
        "/tmp/x",
    );
    let size = &manifest.proxy_buffer_size;
    assert!(conf.contains(&format!(
        "large_client_header_buffers {};",
        manifest.large_client_header_buffers
    )));
    // The auth subrequest's location, as ingress-nginx renders it from `proxy-buffer-size`.
    let auth = &conf[conf.find("location = /_external-auth-").unwrap()..];
    let auth = &auth[..auth.find('}').unwrap()];
    assert!(
        auth.contains(&format!("proxy_buffer_size           {size};")),
        "{auth}"
    );
    assert!(
        auth.contains(&format!("proxy_buffers               4 {size};")),
        "{auth}"
    );

    // What authgate counts on from these values. A `Cookie` line with a session split over
    // every chunk it may use (the longest cookie name the tests use twice over) fits one large
    // header buffer…
    let name = "__Host-authgate-session";
    let cookie_line = "Cookie: ".len()
        + authgate::session::MAX_JOINED_LEN
        + "3.".len()
        + authgate::session::MAX_CHUNKS * (name.len() + "-0=; ".len());
    assert!(
        cookie_line <= manifest.header_line_limit(),
        "{cookie_line} bytes of Cookie do not fit large-client-header-buffers {}",
        manifest.large_client_header_buffers
    );
    // …and the auth answer's identity headers, cut at 12 KB (`HEADER_BUDGET` in
    // src/http/auth.rs), fit `proxy_buffer_size` with room for the status line and the rest.
    assert!(12 * 1024 + 1024 <= manifest.response_head_limit());
}

#[test]
fn buffer_sizes_are_read_from_helm_values() {
    let values = "    controller:\n      config:\n        proxy-buffer-size: \"16k\"\n        large-client-header-buffers: \"4 16k\"\n";
    assert_eq!(
        Buffers::from_helm_values(values),
        Some(Buffers {
            proxy_buffer_size: "16k".into(),
            large_client_header_buffers: "4 16k".into(),
        })
    );
    assert_eq!(
        Buffers::from_helm_values("proxy-buffer-size: \"16k\"\n"),
        None
    );
    let b = Buffers::from_helm_values(values).unwrap();
    assert_eq!(
        (b.header_line_limit(), b.response_head_limit()),
        (16384, 16384)
    );
}
