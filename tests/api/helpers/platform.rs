//! What every proxy's end-to-end tests stand on: the real authgate binary, the real OpenID
//! Provider and the echoing upstream, for a proxy listening on a port chosen first (the
//! callback URLs name it). `mcd` and `team` log in at the provider, `perso` has no login.
//! `nginx_flow`, `traefik_flow` and `caddy_flow` put their proxy in front.

use serde_json::json;

use super::node::{spawn_oidc_provider, Idp};
use super::traefik::auth_response_headers;
use super::upstream::{spawn_upstream, Upstream};
use super::{spawn_authgate, AuthgateProcess, Client, ConfigDir, Resp};

pub const MCD: &str = "mcd.localhost";
pub const PERSO: &str = "perso.localhost";
pub const TEAM: &str = "team.localhost";

/// authgate, oidc-provider and the upstream behind a proxy.
pub struct Workspaces {
    pub authgate: AuthgateProcess,
    pub idp: Idp,
    pub upstream: Upstream,
    pub config: ConfigDir,
}

/// The parts for a proxy on `proxy_port`, `mcd` on an oidc-provider of `shape` (`generic`,
/// `azure`, `keycloak`) with `more_providers` appended to its `[[provider]]` list; authgate's
/// log is named after `name`.
pub async fn spawn_workspaces(
    name: &str,
    proxy_port: u16,
    shape: &str,
    more_providers: &str,
) -> Workspaces {
    spawn_workspaces_with(name, proxy_port, shape, more_providers, "").await
}

/// [`spawn_workspaces`] with `mcd_headers` (`key = value` lines, e.g.
/// `pass_access_token = true`) added to mcd's `[headers]`.
pub async fn spawn_workspaces_with(
    name: &str,
    proxy_port: u16,
    shape: &str,
    more_providers: &str,
    mcd_headers: &str,
) -> Workspaces {
    let callback = |h: &str| format!("http://{h}:{proxy_port}/oauth2/callback");
    let idp = spawn_oidc_provider(
        shape,
        "authgate",
        "client-secret",
        &[callback(MCD), callback(TEAM)],
        json!({}),
    );
    let ws = |host: &str| {
        format!(
            r#"hosts = ["{host}:{proxy_port}"]
auth = "oidc"
insecure_http = true
[[provider]]
id = "sso"
kind = "{kind}"
display_name = "Company SSO"
issuer = "{issuer}"
client_id = "authgate"
client_secret_env = "CLIENT_SECRET"
[session]
cookie_name = "authgate"
[headers]
user = "sub"
email = "email"
"#,
            issuer = idp.issuer,
            kind = if shape == "generic" { "oidc" } else { shape },
        )
    };
    let config = ConfigDir::new("")
        .workspace("mcd", &format!("{}{mcd_headers}{more_providers}", ws(MCD)))
        .workspace("team", &ws(TEAM))
        .workspace(
            "perso",
            &format!("hosts = [\"{PERSO}:{proxy_port}\"]\nauth = \"none\"\n"),
        );
    let authgate = spawn_authgate(
        &config,
        &[
            ("CLIENT_SECRET", "client-secret"),
            ("GH_SECRET", "gh-secret"),
        ],
        name,
    );
    let upstream = spawn_upstream().await;
    Workspaces {
        authgate,
        idp,
        upstream,
        config,
    }
}

/// The login every proxy's first test walks: `c` asks for a page of `mcd` at `base` (the
/// proxy's URL for it) without a cookie and is sent to the sign-in (`first_why` says by whom),
/// signs in as alice at `issuer`'s login form and lands back on exactly that page, whose app
/// saw alice's email. Returns the page and every step, for the proxy's own checks.
pub async fn login_round_trip(
    c: &mut Client,
    base: &str,
    issuer: &str,
    first_why: &str,
) -> (String, Vec<Resp>) {
    let page = format!("{base}/helloworld?greeting=hi%20there&x=1");
    let first = c.get(&page, &[]).await;
    assert_eq!(first.status, 302, "{first_why}");
    assert_eq!(
        first.location().as_str(),
        format!("{base}/oauth2/start?rd=%2Fhelloworld%3Fgreeting%3Dhi%2520there%26x%3D1")
    );
    let steps = c.follow(&page, "alice").await;
    let last = steps.last().unwrap();
    assert_eq!(
        (last.status, last.url.as_str()),
        (200, page.as_str()),
        "back at exactly the URL asked for: {}",
        last.body
    );
    assert!(
        last.body
            .contains("path: /helloworld?greeting=hi%20there&x=1"),
        "{}",
        last.body
    );
    assert!(
        last.body
            .contains("x-auth-request-email: alice@example.test"),
        "{}",
        last.body
    );
    // The IdP's login form was really shown and submitted.
    assert!(steps
        .iter()
        .any(|r| r.url.as_str().starts_with(issuer) && r.body.contains("name=\"login\"")));
    (page, steps)
}

/// Every identity header authgate can send, with a value a client might forge.
pub fn spoofed() -> Vec<(String, &'static str)> {
    auth_response_headers()
        .into_iter()
        .map(|h| (h.to_ascii_lowercase(), "mallory"))
        .collect()
}

/// `(name, value)` pairs as request headers.
pub fn pairs<'a>(h: &'a [(String, &'static str)]) -> Vec<(&'a str, &'a str)> {
    h.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

/// `c` sends `spoofed` identity headers to `url`, a page of the login-free workspace: passed,
/// and none of them reaches the app.
pub async fn login_free_app_sees_none_of(c: &mut Client, url: &str, spoofed: &[(&str, &str)]) {
    let r = c.get(url, spoofed).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (name, _) in spoofed {
        assert!(
            !r.body.contains(name),
            "{name} reached perso's app: {}",
            r.body
        );
    }
}

/// Signed-in `alice` sends `spoofed` identity headers to `page`: the app sees authgate's
/// values, never hers.
pub async fn signed_in_app_sees_only_authgates_identity(
    alice: &mut Client,
    page: &str,
    spoofed: &[(&str, &str)],
) {
    let r = alice.get(page, spoofed).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("x-auth-request-email: alice@example.test"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("mallory"), "{}", r.body);
}

/// `other` holding `signed_in`'s `mcd` session cookie under `team`'s host (same cookie name,
/// same IdP).
pub fn with_mcd_cookie_at_team(signed_in: &Client, mut other: Client) -> Client {
    let session = signed_in.cookie(MCD, "authgate").unwrap();
    other
        .jar
        .entry(TEAM.into())
        .or_default()
        .insert("authgate".into(), session);
    other
}

/// A browser sent to team's sign-in, not to its app.
pub fn assert_sent_to_team_sign_in(r: &Resp) {
    assert_eq!(r.status, 302, "to team's sign-in: {}", r.body);
    assert!(r.location().path() == "/oauth2/start" && r.location().host_str() == Some(TEAM));
    assert!(!r.body.contains("path: /admin"), "{}", r.body);
}
