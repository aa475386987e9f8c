//! End to end through a real NGINX configured as ingress-nginx renders the auth annotations,
//! the real authgate binary, the real OpenID Provider (npm `oidc-provider`) and an upstream
//! that echoes the headers it receives.

use serde_json::json;

use crate::helpers::nginx::{Nginx, Site};
use crate::helpers::node::{spawn_oidc_provider, Idp};
use crate::helpers::platform::{
    login_free_app_sees_none_of, login_round_trip, spawn_workspaces, with_mcd_cookie_at_team,
    Workspaces,
};
pub use crate::helpers::platform::{MCD, PERSO, TEAM};
use crate::helpers::upstream::{spawn_upstream, Upstream};
use crate::helpers::{free_port, spawn_authgate, AuthgateProcess, Client, ConfigDir};

/// NGINX, authgate, oidc-provider and the upstream, wired as on the platform.
pub struct Platform {
    pub nginx: Nginx,
    pub authgate: AuthgateProcess,
    pub idp: Idp,
    /// Kept for as long as the platform runs.
    _upstream: Upstream,
    _config: ConfigDir,
}

pub async fn spawn_platform(name: &str, shape: &str, absolute_rd: bool) -> Platform {
    spawn_platform_with(name, shape, absolute_rd, "").await
}

/// The platform with `mcd` on an oidc-provider of `shape` (`generic`, `azure`, `keycloak`)
/// and `more_providers` appended to its `[[provider]]` list.
pub async fn spawn_platform_with(
    name: &str,
    shape: &str,
    absolute_rd: bool,
    more_providers: &str,
) -> Platform {
    let nginx_port = free_port();
    let Workspaces {
        authgate,
        idp,
        upstream,
        config,
    } = spawn_workspaces(name, nginx_port, shape, more_providers).await;
    let mut mcd = Site::protected(MCD, &["/helloworld", "/landing"]);
    mcd.absolute_rd = absolute_rd;
    let mut admins_only = Site::protected(TEAM, &["/admin"]);
    admins_only.auth_query = "allowed_groups=g-admins".into();
    let sites = [mcd, admins_only, Site::protected(PERSO, &["/landing"])];
    let nginx = spawn_nginx_on(&sites, authgate.port, upstream.port, nginx_port);
    Platform {
        nginx,
        authgate,
        idp,
        _upstream: upstream,
        _config: config,
    }
}

fn spawn_nginx_on(sites: &[Site], authgate: u16, upstream: u16, port: u16) -> Nginx {
    crate::helpers::nginx::spawn_nginx_at(sites, authgate, upstream, port)
}

#[tokio::test]
async fn login_through_nginx_brings_the_user_back_with_their_email() {
    let p = spawn_platform("nginx-login", "generic", false).await;
    let mut c = Client::new();
    let (page, steps) = login_round_trip(
        &mut c,
        &p.nginx.url(MCD),
        &p.idp.issuer,
        "no cookie: to the sign-in",
    )
    .await;
    let last = steps.last().unwrap();
    assert!(
        last.body.contains("x-auth-request-user: alice"),
        "{}",
        last.body
    );
    // The client's own X-Auth-Request-Email never reaches the app.
    let spoof = c
        .get(
            &page,
            &[
                ("x-auth-request-email", "mallory@evil.test"),
                ("x-auth-request-user", "mallory"),
            ],
        )
        .await;
    assert_eq!(spoof.status, 200);
    assert!(
        spoof
            .body
            .contains("x-auth-request-email: alice@example.test"),
        "{}",
        spoof.body
    );
    assert!(!spoof.body.contains("mallory"), "{}", spoof.body);
}

#[tokio::test]
async fn absolute_rd_form_also_brings_the_user_back() {
    let p = spawn_platform("nginx-absolute-rd", "generic", true).await;
    let mut c = Client::new();
    let page = format!("{}/landing?q=a%2Fb", p.nginx.url(MCD));
    let first = c.get(&page, &[]).await;
    assert!(
        first.raw_location().contains("rd=http://mcd.localhost:"),
        "{}",
        first.raw_location()
    );
    let steps = c.follow(&page, "bob").await;
    let last = steps.last().unwrap();
    assert_eq!((last.status, last.url.as_str()), (200, page.as_str()));
    assert!(last.body.contains("x-auth-request-email: bob@example.test"));
}

#[tokio::test]
async fn auth_none_workspace_passes_without_login_and_strips_spoofed_identity() {
    let p = spawn_platform("nginx-perso", "generic", false).await;
    let mut c = Client::new();
    let r = c
        .get(
            &format!("{}/landing", p.nginx.url(PERSO)),
            &[("x-auth-request-email", "mallory@evil.test")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("x-auth-request-email"), "{}", r.body);
    assert!(!r.body.contains("mallory"), "{}", r.body);
}

#[tokio::test]
async fn spoofed_identity_without_a_session_never_reaches_the_app() {
    let p = spawn_platform("nginx-spoof", "generic", false).await;
    let mut c = Client::new();
    let r = c
        .get(
            &format!("{}/helloworld", p.nginx.url(MCD)),
            &[("x-auth-request-email", "mallory@evil.test")],
        )
        .await;
    assert_eq!(r.status, 302);
    assert!(!r.body.contains("mallory"));
}

#[tokio::test]
async fn mcd_cookie_at_another_workspace_host_is_401() {
    let p = spawn_platform("nginx-cross", "generic", false).await;
    let mut c = Client::new();
    let steps = c
        .follow(&format!("{}/helloworld", p.nginx.url(MCD)), "alice")
        .await;
    assert_eq!(steps.last().unwrap().status, 200);
    // The same cookie carried to the team workspace's host (same cookie name, same IdP).
    let mut other = with_mcd_cookie_at_team(&c, Client::new());
    let r = other
        .get(&format!("{}/admin", p.nginx.url(TEAM)), &[])
        .await;
    assert_eq!(
        r.status, 302,
        "NGINX turns authgate's 401 into the sign-in redirect"
    );
    assert!(r.raw_location().contains("/oauth2/start"));
    // And authgate itself answers 401, with the reason, the host and ingress-nginx's request
    // id on one log line (the auth route has no trace layer; the refusal logs them itself).
    let mut raw = Client::new();
    let cookie = format!("authgate={}", c.cookie(MCD, "authgate").unwrap());
    let request_id = "5f1c0ffee0ddba11";
    let direct = raw
        .get(
            &format!("http://127.0.0.1:{}/oauth2/auth/team", p.authgate.port),
            &[
                ("x-original-url", &format!("{}/admin", p.nginx.url(TEAM))),
                ("cookie", &cookie),
                ("x-request-id", request_id),
            ],
        )
        .await;
    assert_eq!(direct.status, 401);
    let log = p.authgate.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("session cookie does not decrypt")
                && l.contains(request_id)
                && l.contains(TEAM)),
        "no refusal line with the reason, request id and host:\n{log}"
    );
}

#[tokio::test]
async fn per_ingress_narrowing_gives_403_not_a_login_loop() {
    let p = spawn_platform("nginx-narrow", "generic", false).await;
    let mut bob = Client::new();
    let steps = bob
        .follow(&format!("{}/admin", p.nginx.url(TEAM)), "bob")
        .await;
    let last = steps.last().unwrap();
    assert_eq!(last.status, 403, "bob is not in g-admins: {}", last.body);
    assert!(
        last.body.contains("Access denied"),
        "authgate's denial page through custom errors: {}",
        last.body
    );
    let mut alice = Client::new();
    let steps = alice
        .follow(&format!("{}/admin", p.nginx.url(TEAM)), "alice")
        .await;
    assert_eq!(steps.last().unwrap().status, 200);
}

/// TLS ends at Cloudflare; inside, NGINX sees plain http from cloudflared. The annotation's
/// `https://$host/oauth2/start`, the workspace's `https://…/oauth2/callback` and a path-only
/// `rd` together bring the user back to the exact https URL, with `__Host-` `Secure` cookies.
#[tokio::test]
async fn tls_terminated_in_front_of_nginx_brings_the_user_back_to_https_with_secure_cookies() {
    let nginx_port = free_port();
    let host = format!("{MCD}:{nginx_port}");
    let idp = spawn_oidc_provider(
        "generic",
        "authgate",
        "client-secret",
        &[format!("https://{host}/oauth2/callback")],
        json!({}),
    );
    // No insecure_http: the production defaults.
    let config = ConfigDir::new("").workspace(
        "mcd",
        &format!(
            "hosts = [\"{host}\"]\nauth = \"oidc\"\n[[provider]]\nissuer = \"{}\"\nclient_id = \"authgate\"\nclient_secret_env = \"CLIENT_SECRET\"\n",
            idp.issuer
        ),
    );
    let authgate = spawn_authgate(
        &config,
        &[("CLIENT_SECRET", "client-secret")],
        "tls-terminated",
    );
    let upstream = spawn_upstream().await;
    let mut site = Site::protected(MCD, &["/helloworld"]);
    site.https_signin = true;
    let _nginx = spawn_nginx_on(&[site], authgate.port, upstream.port, nginx_port);

    let mut c = Client::new();
    let page = format!("https://{host}/helloworld?a=1%202");
    let first = c.get(&page, &[]).await;
    assert_eq!(
        first.raw_location(),
        format!("https://{host}/oauth2/start?rd=%2Fhelloworld%3Fa%3D1%25202")
    );
    let steps = c.follow(&page, "alice").await;
    let callback = steps
        .iter()
        .find(|r| r.url.path() == "/oauth2/callback")
        .unwrap();
    assert_eq!(
        callback.url.scheme(),
        "https",
        "the IdP sent the browser to the https callback"
    );
    let session = callback
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-authgate="))
        .expect("session cookie");
    assert!(
        session.contains("Secure") && session.contains("Path=/") && !session.contains("Domain"),
        "{session}"
    );
    assert_eq!(callback.raw_location(), "/helloworld?a=1%202");
    let last = steps.last().unwrap();
    assert_eq!(
        (last.status, last.url.as_str()),
        (200, page.as_str()),
        "back at the exact https URL"
    );
    assert!(last
        .body
        .contains("x-auth-request-email: alice@example.test"));
}

/// Every identity header authgate can send is listed in `auth-response-headers`, so NGINX
/// replaces (or, when authgate sends none, removes) whatever the client sent under those
/// names: without a login, and next to a real one.
#[tokio::test]
async fn every_spoofed_identity_header_is_replaced_or_removed() {
    let p = spawn_platform("nginx-spoof-all", "generic", false).await;
    let spoofed = [
        ("x-auth-request-user", "mallory"),
        ("x-auth-request-email", "mallory@evil.test"),
        ("x-auth-request-preferred-username", "root"),
        ("x-auth-request-groups", "g-admins"),
    ];
    let mut anon = Client::new();
    let url = format!("{}/landing", p.nginx.url(PERSO));
    login_free_app_sees_none_of(&mut anon, &url, &spoofed).await;
    let mut alice = Client::new();
    let steps = alice
        .follow(&format!("{}/helloworld", p.nginx.url(MCD)), "alice")
        .await;
    assert_eq!(steps.last().unwrap().status, 200);
    let r = alice
        .get(&format!("{}/helloworld", p.nginx.url(MCD)), &spoofed)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("x-auth-request-email: alice@example.test"),
        "{}",
        r.body
    );
    for (name, value) in spoofed {
        assert!(
            !r.body.contains(&format!("{name}: {value}")),
            "the client's {name} reached mcd's app: {}",
            r.body
        );
    }
}
