//! End to end through a real Caddy 2 (`forward_auth` to `/oauth2/auth/<workspace>/redirect?`,
//! `/oauth2/*` rewritten to `/oauth2/<action>/<workspace>`: the Caddyfile of README's "With
//! Caddy"), the real authgate binary, the real OpenID Provider and the echoing upstream.

use crate::helpers::caddy::{spawn_caddy_at, Caddy};
use crate::helpers::{free_port, Client};
use crate::traefik_flow::{pairs, spawn_workspaces, spoofed, Workspaces, MCD, PERSO, TEAM};

struct Platform {
    caddy: Caddy,
    ws: Workspaces,
}

async fn spawn_platform(name: &str) -> Platform {
    let port = free_port();
    let ws = spawn_workspaces(name, port).await;
    let sites = [(MCD, "mcd"), (TEAM, "team"), (PERSO, "perso")];
    let caddy = spawn_caddy_at(&sites, ws.authgate.port, ws.upstream.port, port);
    Platform { caddy, ws }
}

#[tokio::test]
async fn login_through_caddy_brings_the_browser_back_to_the_exact_url() {
    let p = spawn_platform("caddy-login").await;
    let mut c = Client::browser();
    let page = format!("{}/helloworld?greeting=hi%20there&x=1", p.caddy.url(MCD));
    let first = c.get(&page, &[]).await;
    assert_eq!(first.status, 302, "no cookie: authgate's own redirect");
    assert_eq!(
        first.location().as_str(),
        format!(
            "{}/oauth2/start?rd=%2Fhelloworld%3Fgreeting%3Dhi%2520there%26x%3D1",
            p.caddy.url(MCD)
        )
    );
    let steps = c.follow(&page, "alice").await;
    let last = steps.last().unwrap();
    assert_eq!(
        (last.status, last.url.as_str()),
        (200, page.as_str()),
        "{}",
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
    assert!(
        steps
            .iter()
            .any(|r| r.url.as_str().starts_with(&p.ws.idp.issuer)
                && r.body.contains("name=\"login\""))
    );
    // The client's query never reaches the auth address (the `?` ending the URI): an app's
    // own `allowed_emails` parameter is not read as the operator's narrowing.
    let narrowed = format!(
        "{}/helloworld?allowed_emails=nobody%40example.test",
        p.caddy.url(MCD)
    );
    let r = c.get(&narrowed, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // An API client gets the 401 itself.
    let mut api = Client::new();
    let r = api
        .get(
            &format!("{}/helloworld", p.caddy.url(MCD)),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app() {
    let p = spawn_platform("caddy-spoof").await;
    let spoofed = spoofed();
    let mut anon = Client::browser();
    let r = anon
        .get(&format!("{}/landing", p.caddy.url(PERSO)), &pairs(&spoofed))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (name, _) in &spoofed {
        assert!(
            !r.body.contains(name.as_str()),
            "{name} reached perso's app: {}",
            r.body
        );
    }
    let mut alice = Client::browser();
    let page = format!("{}/helloworld", p.caddy.url(MCD));
    let steps = alice.follow(&page, "alice").await;
    assert_eq!(steps.last().unwrap().status, 200);
    let r = alice.get(&page, &pairs(&spoofed)).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("x-auth-request-email: alice@example.test"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("mallory"), "{}", r.body);
}

#[tokio::test]
async fn one_workspaces_cookie_is_refused_at_another() {
    let p = spawn_platform("caddy-cross").await;
    let mut c = Client::browser();
    let steps = c
        .follow(&format!("{}/helloworld", p.caddy.url(MCD)), "alice")
        .await;
    assert_eq!(steps.last().unwrap().status, 200);
    let session = c.cookie(MCD, "authgate").unwrap();
    let mut other = Client::browser();
    other
        .jar
        .entry(TEAM.into())
        .or_default()
        .insert("authgate".into(), session);
    let r = other
        .get(&format!("{}/admin", p.caddy.url(TEAM)), &[])
        .await;
    assert_eq!(r.status, 302, "to team's sign-in: {}", r.body);
    assert!(r.location().path() == "/oauth2/start" && r.location().host_str() == Some(TEAM));
    assert!(!r.body.contains("path: /admin"), "{}", r.body);
}

#[tokio::test]
async fn the_login_free_workspace_passes_without_login() {
    let p = spawn_platform("caddy-perso").await;
    let r = Client::browser()
        .get(&format!("{}/landing", p.caddy.url(PERSO)), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("path: /landing"), "{}", r.body);
    assert!(!r.body.contains("x-auth-request-user"), "{}", r.body);
}
