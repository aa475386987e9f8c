//! End to end through a real Traefik 3 (ForwardAuth to `/oauth2/auth/<workspace>/redirect`,
//! `/oauth2` rewritten to `/oauth2/<action>/<workspace>`, both middlewares read from
//! `k8s/components/traefik-protected/`), the real authgate binary, the real OpenID Provider
//! and the echoing upstream: the checks of `nginx_flow` and `nginx_tenant`, where Traefik
//! returns authgate's answers to the client as they are.

use crate::helpers::platform::{
    assert_sent_to_team_sign_in, login_free_app_sees_none_of, login_round_trip, pairs,
    signed_in_app_sees_only_authgates_identity, spawn_workspaces, spoofed, with_mcd_cookie_at_team,
    Workspaces, MCD, PERSO, TEAM,
};
use crate::helpers::traefik::{spawn_traefik_at, Site, Traefik};
use crate::helpers::{free_port, Client};

/// Traefik in front of the three workspaces.
pub struct Platform {
    pub traefik: Traefik,
    pub ws: Workspaces,
}

pub async fn spawn_platform(name: &str) -> Platform {
    let port = free_port();
    let ws = spawn_workspaces(name, port, "generic", "").await;
    let sites = [Site::new(MCD), Site::new(TEAM), Site::new(PERSO)];
    let traefik = spawn_traefik_at(&sites, ws.authgate.port, ws.upstream.port, port).await;
    Platform { traefik, ws }
}

/// Signs `c` in as `user` at `url` and checks it lands there.
async fn login(c: &mut Client, url: &str, user: &str) {
    let steps = c.follow(url, user).await;
    let last = steps.last().unwrap();
    assert_eq!(
        (last.status, last.url.as_str()),
        (200, url),
        "{}",
        last.body
    );
}

#[tokio::test]
async fn login_through_traefik_brings_the_browser_back_to_the_exact_url() {
    let p = spawn_platform("traefik-login").await;
    let mut c = Client::browser();
    let (_, steps) = login_round_trip(
        &mut c,
        &p.traefik.url(MCD),
        &p.ws.idp.issuer,
        "no cookie: authgate's own redirect",
    )
    .await;
    let last = steps.last().unwrap();
    assert!(
        last.body.contains("x-auth-request-user: alice"),
        "{}",
        last.body
    );
    // The callback came back through Traefik's /oauth2 router.
    assert!(steps
        .iter()
        .any(|r| r.url.path() == "/oauth2/callback" && r.url.port() == Some(p.traefik.port)));
    // The client's query never reaches the auth address: an app's own `allowed_emails`
    // parameter is not read as the operator's narrowing.
    let narrowed = format!(
        "{}/helloworld?allowed_emails=nobody%40example.test",
        p.traefik.url(MCD)
    );
    let r = c.get(&narrowed, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn an_api_client_gets_401_not_a_redirect() {
    let p = spawn_platform("traefik-api").await;
    let mut c = Client::browser();
    let url = format!("{}/helloworld", p.traefik.url(MCD));
    let r = c.get(&url, &[("accept", "application/json")]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.raw_location(), "");
    // A browser's Accept with a bearer token is an API client too.
    let r = c
        .get(&url, &[("authorization", "Bearer not-a-token")])
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
}

#[tokio::test]
async fn the_redirect_names_the_uri_traefik_saw_not_one_the_client_wrote() {
    let p = spawn_platform("traefik-xfu").await;
    let mut c = Client::browser();
    let r = c
        .get(
            &format!("{}/landing?a=1", p.traefik.url(MCD)),
            &[
                ("x-forwarded-uri", "//evil.test/"),
                ("x-forwarded-host", PERSO),
                ("x-original-url", "http://perso.localhost/elsewhere"),
            ],
        )
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        r.raw_location(),
        format!("{}/oauth2/start?rd=%2Flanding%3Fa%3D1", p.traefik.url(MCD))
    );
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app() {
    let p = spawn_platform("traefik-spoof").await;
    let spoofed = spoofed();
    // Without a session, at the login-free workspace: passed, with none of them.
    let mut anon = Client::browser();
    let url = format!("{}/landing", p.traefik.url(PERSO));
    login_free_app_sees_none_of(&mut anon, &url, &pairs(&spoofed)).await;
    // Without a session at mcd: the sign-in, never the app.
    let r = anon
        .get(
            &format!("{}/helloworld", p.traefik.url(MCD)),
            &pairs(&spoofed),
        )
        .await;
    assert_eq!(r.status, 302);
    assert!(!r.body.contains("mallory"), "{}", r.body);
    // Signed in: authgate's values, never the client's.
    let mut alice = Client::browser();
    let page = format!("{}/helloworld", p.traefik.url(MCD));
    login(&mut alice, &page, "alice").await;
    signed_in_app_sees_only_authgates_identity(&mut alice, &page, &pairs(&spoofed)).await;
}

#[tokio::test]
async fn one_workspaces_cookie_is_refused_at_another() {
    let p = spawn_platform("traefik-cross").await;
    let mut c = Client::browser();
    login(
        &mut c,
        &format!("{}/helloworld", p.traefik.url(MCD)),
        "alice",
    )
    .await;
    let mut other = with_mcd_cookie_at_team(&c, Client::browser());
    let url = format!("{}/admin", p.traefik.url(TEAM));
    let r = other.get(&url, &[]).await;
    assert_sent_to_team_sign_in(&r);
    let r = other.get(&url, &[("accept", "application/json")]).await;
    assert_eq!(r.status, 401);
    assert!(p
        .ws
        .authgate
        .log_text()
        .lines()
        .any(|l| l.contains("session cookie does not decrypt") && l.contains(TEAM)));
}

#[tokio::test]
async fn the_login_free_workspace_passes_without_login() {
    let p = spawn_platform("traefik-perso").await;
    for mut c in [Client::browser(), Client::new()] {
        let r = c
            .get(&format!("{}/landing", p.traefik.url(PERSO)), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("path: /landing"), "{}", r.body);
        assert!(!r.body.contains("x-auth-request-user"), "{}", r.body);
    }
}

#[tokio::test]
async fn sign_out_through_traefik_ends_the_session() {
    let p = spawn_platform("traefik-sign-out").await;
    let mut c = Client::browser();
    let page = format!("{}/helloworld", p.traefik.url(MCD));
    login(&mut c, &page, "alice").await;
    let out = c
        .get(
            &format!("{}/oauth2/sign_out?rd=%2Fbye", p.traefik.url(MCD)),
            &[],
        )
        .await;
    assert!((300..400).contains(&out.status), "{}", out.body);
    assert!(
        out.set_cookies().iter().any(|s| s.starts_with("authgate=")),
        "the session cookie is cleared: {:?}",
        out.set_cookies()
    );
    assert_eq!(c.cookie(MCD, "authgate"), None);
    let r = c.get(&page, &[]).await;
    assert_eq!(r.status, 302, "signed out: to the sign-in again");
}

#[tokio::test]
async fn a_login_cannot_be_started_through_mcds_router_for_another_workspace() {
    // Traefik routes on Host; its X-Forwarded-Host is that Host, so the only mismatch a
    // client can make is a Host of another workspace on a path Traefik sends to mcd's
    // router. There is none (each router matches its own Host): the team Host reaches team.
    let p = spawn_platform("traefik-start").await;
    let mut c = Client::browser();
    let r = c
        .get(&format!("{}/oauth2/start?rd=%2F", p.traefik.url(TEAM)), &[])
        .await;
    assert_eq!(r.status, 302);
    assert!(
        r.raw_location().starts_with(&p.ws.idp.issuer),
        "team's own login starts: {}",
        r.raw_location()
    );
    // And authgate refuses a start for mcd with team's host, whoever sends it.
    let direct = Client::new()
        .get(
            &format!(
                "http://127.0.0.1:{}/oauth2/start/mcd?rd=%2F",
                p.ws.authgate.port
            ),
            &[("x-forwarded-host", &format!("{TEAM}:{}", p.traefik.port))],
        )
        .await;
    assert_eq!(direct.status, 403, "{}", direct.body);
}
