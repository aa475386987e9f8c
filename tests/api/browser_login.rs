//! A real browser (Debian's Chromium, driven by npm `playwright-core`) logging in through
//! NGINX → authgate → the IdP's login form → back to the app, which shows the user's email
//! from `X-Auth-Request-Email`. Screenshots land in `target/test-artifacts/screenshots/`.

use serde_json::json;

use crate::helpers::browser::{run_browser, screenshots};
use crate::nginx_flow::{spawn_platform, MCD};

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
