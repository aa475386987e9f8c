//! Through the real NGINX: no request routed to one workspace's Ingress is ever judged by
//! another workspace's policy, logged in or not.
//!
//! ingress-nginx builds `X-Original-URL` from `$http_host`, the client's own `Host` header,
//! not the host NGINX routed on. Two request forms make them differ: an absolute-form request
//! line (`GET http://mcd…/helloworld` with `Host: perso…`: NGINX routes on the request line)
//! and an authority with userinfo (`Host: mcd…:1@perso…`: NGINX routes on what precedes the
//! first `:`, a URL parser reads host `perso…`). Each form is tried without a cookie (the
//! login-free workspace must not open mcd) and with a session of another protected workspace
//! (team's session must not open mcd), each its own test. The platform is `nginx_flow`'s:
//! mcd and team log in on oidc-provider, perso has no login.

use crate::helpers::client::{raw_request, RawResp};
use crate::helpers::Client;
use crate::nginx_flow::{spawn_platform, Platform, MCD, PERSO, TEAM};

/// A session of the team workspace (alice is in g-admins, so team's narrowing lets her in).
async fn team_session(p: &Platform) -> String {
    let mut c = Client::new();
    let steps = c
        .follow(&format!("{}/admin", p.nginx.url(TEAM)), "alice")
        .await;
    assert_eq!(
        steps.last().unwrap().status,
        200,
        "alice reaches team's app"
    );
    format!("authgate={}", c.cookie(TEAM, "authgate").unwrap())
}

fn host(p: &Platform, name: &str) -> String {
    format!("{name}:{}", p.nginx.port)
}

/// The request was refused by authgate (403 through NGINX), never reached the app, and
/// authgate logged a line naming the host the client wrote and the workspace of the Ingress.
fn assert_refused(p: &Platform, r: &RawResp, claimed: &str) {
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        !r.text.contains("path: /helloworld"),
        "the app was reached:\n{}",
        r.text
    );
    let log = p.authgate.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refused") && l.contains(claimed) && l.contains("workspace `mcd`")),
        "no refusal line naming {claimed} and mcd:\n{log}"
    );
}

#[tokio::test]
async fn absolute_form_naming_mcd_with_the_login_free_host_is_refused() {
    let p = spawn_platform("tenant-abs-anon", "generic", false).await;
    let line = format!("GET {}/helloworld HTTP/1.1", p.nginx.url(MCD));
    let r = raw_request(p.nginx.port, &line, &[("Host", &host(&p, PERSO))]).await;
    assert_refused(&p, &r, PERSO);
}

#[tokio::test]
async fn absolute_form_naming_mcd_with_another_workspaces_host_and_session_is_refused() {
    let p = spawn_platform("tenant-abs-session", "generic", false).await;
    let cookie = team_session(&p).await;
    let line = format!("GET {}/helloworld HTTP/1.1", p.nginx.url(MCD));
    let r = raw_request(
        p.nginx.port,
        &line,
        &[("Host", &host(&p, TEAM)), ("Cookie", &cookie)],
    )
    .await;
    assert_refused(&p, &r, TEAM);
}

#[tokio::test]
async fn userinfo_host_routed_to_mcd_naming_the_login_free_host_is_refused() {
    let p = spawn_platform("tenant-userinfo-anon", "generic", false).await;
    let claimed = format!("{MCD}:1@{}", host(&p, PERSO));
    let r = raw_request(
        p.nginx.port,
        "GET /helloworld HTTP/1.1",
        &[("Host", &claimed)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!r.text.contains("path: /helloworld"), "{}", r.text);
    let log = p.authgate.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refused") && l.contains("userinfo")),
        "no refusal line naming the userinfo:\n{log}"
    );
}

#[tokio::test]
async fn userinfo_host_routed_to_mcd_with_another_workspaces_session_is_refused() {
    let p = spawn_platform("tenant-userinfo-session", "generic", false).await;
    let cookie = team_session(&p).await;
    let claimed = format!("{MCD}:1@{}", host(&p, TEAM));
    let r = raw_request(
        p.nginx.port,
        "GET /helloworld HTTP/1.1",
        &[("Host", &claimed), ("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!r.text.contains("path: /helloworld"), "{}", r.text);
}

#[tokio::test]
async fn the_same_session_with_its_own_host_still_reaches_its_own_workspace() {
    // The control for the tests above: team's session is good at team's Ingress.
    let p = spawn_platform("tenant-control", "generic", false).await;
    let cookie = team_session(&p).await;
    let line = format!("GET {}/admin HTTP/1.1", p.nginx.url(TEAM));
    let r = raw_request(
        p.nginx.port,
        &line,
        &[("Host", &host(&p, TEAM)), ("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("path: /admin"));
}

#[tokio::test]
async fn a_login_cannot_be_started_through_mcds_ingress_for_another_workspace() {
    let p = spawn_platform("tenant-start", "generic", false).await;
    let line = format!("GET {}/oauth2/start?rd=%2F HTTP/1.1", p.nginx.url(MCD));
    let r = raw_request(p.nginx.port, &line, &[("Host", &host(&p, TEAM))]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        !r.text.to_ascii_lowercase().contains("location:"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_session_cannot_be_ended_through_mcds_ingress_for_another_workspace() {
    let p = spawn_platform("tenant-signout", "generic", false).await;
    let cookie = team_session(&p).await;
    let line = format!("GET {}/oauth2/sign_out HTTP/1.1", p.nginx.url(MCD));
    let r = raw_request(
        p.nginx.port,
        &line,
        &[("Host", &host(&p, TEAM)), ("Cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        !r.text.to_ascii_lowercase().contains("set-cookie:"),
        "nothing is cleared: {}",
        r.text
    );
}
