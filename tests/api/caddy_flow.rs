//! End to end through a real Caddy 2 (`forward_auth` to `/oauth2/auth/<workspace>/redirect?`,
//! the five browser routes rewritten to `/oauth2/<action>/<workspace>`: the shipped
//! `examples/caddy/Caddyfile`), the real authgate binary, the real OpenID Provider and the echoing upstream.

use crate::helpers::caddy::{spawn_caddy_at, Caddy};
use crate::helpers::platform::{
    assert_sent_to_team_sign_in, login_free_app_sees_none_of, login_round_trip, pairs,
    signed_in_app_sees_only_authgates_identity, spawn_workspaces, spoofed, with_mcd_cookie_at_team,
    Workspaces, MCD, PERSO, TEAM,
};
use crate::helpers::{free_port, Client};

struct Platform {
    caddy: Caddy,
    ws: Workspaces,
}

async fn spawn_platform(name: &str) -> Platform {
    let port = free_port();
    let ws = spawn_workspaces(name, port, "generic", "").await;
    let sites = [(MCD, "mcd"), (TEAM, "team"), (PERSO, "perso")];
    let caddy = spawn_caddy_at(&sites, ws.authgate.port, ws.upstream.port, port);
    Platform { caddy, ws }
}

#[tokio::test]
async fn login_through_caddy_brings_the_browser_back_to_the_exact_url() {
    let p = spawn_platform("caddy-login").await;
    let mut c = Client::browser();
    login_round_trip(
        &mut c,
        &p.caddy.url(MCD),
        &p.ws.idp.issuer,
        "no cookie: authgate's own redirect",
    )
    .await;
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
    let url = format!("{}/landing", p.caddy.url(PERSO));
    login_free_app_sees_none_of(&mut anon, &url, &pairs(&spoofed)).await;
    let mut alice = Client::browser();
    let page = format!("{}/helloworld", p.caddy.url(MCD));
    let steps = alice.follow(&page, "alice").await;
    assert_eq!(steps.last().unwrap().status, 200);
    signed_in_app_sees_only_authgates_identity(&mut alice, &page, &pairs(&spoofed)).await;
}

#[tokio::test]
async fn one_workspaces_cookie_is_refused_at_another() {
    let p = spawn_platform("caddy-cross").await;
    let mut c = Client::browser();
    let steps = c
        .follow(&format!("{}/helloworld", p.caddy.url(MCD)), "alice")
        .await;
    assert_eq!(steps.last().unwrap().status, 200);
    let mut other = with_mcd_cookie_at_team(&c, Client::browser());
    let r = other
        .get(&format!("{}/admin", p.caddy.url(TEAM)), &[])
        .await;
    assert_sent_to_team_sign_in(&r);
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
