//! A real browser (Debian's Chromium, driven by npm `playwright-core`) logging in through
//! NGINX → authgate → the IdP's login form → back to the app, which shows the user's email
//! from `X-Auth-Request-Email`. Screenshots land in `target/test-artifacts/screenshots/`.

use serde_json::json;

use crate::helpers::browser::{run_browser, screenshots};
use crate::helpers::node::spawn_node;
use crate::nginx_flow::{spawn_platform, spawn_platform_with, MCD};

#[tokio::test]
async fn browser_logs_in_through_nginx_with_generic_oidc() {
    let p = spawn_platform("browser-oidc", "generic", false).await;
    let start = format!("{}/helloworld?from=browser", p.nginx.url(MCD));
    let result = run_browser(json!({
        "start_url": start,
        "login": "alice",
        "kind": "oidc",
        "expect_text": "x-auth-request-email: alice@example.test",
        "screenshot_dir": screenshots(),
        "name": "oidc-generic",
    }))
    .await;
    assert_eq!(result["final_url"], start);
    // The error page a user sees for a stale callback, kept as an artifact.
    let page = run_browser(json!({
        "mode": "screenshot",
        "url": format!("{}/oauth2/callback?state=stale&code=x", p.nginx.url(MCD)),
        "name": "error-state-expired",
        "screenshot_dir": screenshots(),
    }))
    .await;
    assert_eq!(page["status"], 400);
    assert!(
        page["body_excerpt"]
            .as_str()
            .unwrap()
            .contains("Start again"),
        "{page}"
    );
}

async fn browser_login(shape: &str, name: &str, login: &str) {
    let p = spawn_platform(&format!("browser-{name}"), shape, false).await;
    let start = format!("{}/helloworld?from={name}", p.nginx.url(MCD));
    let result = run_browser(json!({
        "start_url": start,
        "login": login,
        "kind": "oidc",
        "expect_text": format!("x-auth-request-email: {login}@example.test"),
        "screenshot_dir": screenshots(),
        "name": name,
    }))
    .await;
    assert_eq!(result["final_url"], start);
}

#[tokio::test]
async fn browser_logs_in_through_nginx_with_entra_id() {
    browser_login("azure", "oidc-azure", "alice").await;
}

#[tokio::test]
async fn browser_logs_in_through_nginx_with_keycloak() {
    browser_login("keycloak", "oidc-keycloak", "alice").await;
}

/// GitHub cannot be reached from tests: its OAuth pages and API are played by the stand-in
/// `tests/support/node/github-api.mjs`, which follows GitHub's documented shapes. The workspace
/// has two providers, so the browser first sees the sign-in page and picks GitHub.
#[tokio::test]
async fn browser_picks_github_on_the_sign_in_page_and_logs_in() {
    let gh = spawn_node("github-api.mjs", &[]);
    let base = gh.ready["base"].as_str().unwrap();
    let github = format!(
        "\n[[provider]]\nid = \"github\"\nkind = \"github\"\nissuer = \"{base}\"\napi_url = \"{base}\"\nclient_id = \"gh-client\"\nclient_secret_env = \"GH_SECRET\"\n[authz]\nallow_any_account = true\n"
    );
    let p = spawn_platform_with("browser-github", "generic", false, &github).await;
    let start = format!("{}/helloworld?from=github", p.nginx.url(MCD));
    let result = run_browser(json!({
        "start_url": start,
        "login": "octocat",
        "kind": "github",
        "steps": [
            {"wait_for_text": "Sign in with GitHub"},
            {"screenshot": "0-sign-in-page"},
            {"click": "text=Sign in with GitHub"},
        ],
        "expect_text": "x-auth-request-email: octocat@example.test",
        "screenshot_dir": screenshots(),
        "name": "github",
    }))
    .await;
    assert_eq!(result["final_url"], start);
    // The page for an unknown sign-in option, kept as an artifact.
    let unknown = run_browser(json!({
        "mode": "screenshot",
        "url": format!("{}/oauth2/start?provider=nope", p.nginx.url(MCD)),
        "name": "error-unknown-provider",
        "screenshot_dir": screenshots(),
    }))
    .await;
    assert_eq!(unknown["status"], 400);
}
