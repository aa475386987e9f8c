//! Debian's Chromium, driven by npm `playwright-core` through `tests/support/node/browser.mjs`.

use serde_json::Value;
use tokio::process::Command;

use super::{artifacts, repo};

/// Runs one browser script; returns its RESULT payload or panics with the script's output.
///
/// Async on purpose: the page the browser loads is served through NGINX by the echo upstream,
/// which runs on the test's own (single-threaded) runtime. Waiting for the browser with a
/// blocking call would stall that runtime, and with it the upstream's answer to the browser.
pub async fn run_browser(script: Value) -> Value {
    let out = Command::new("node")
        .arg("browser.mjs")
        .current_dir(repo().join("tests/support/node"))
        .env("BROWSER_SCRIPT", script.to_string())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run node browser.mjs: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT: {stdout}"));
    serde_json::from_str(line).unwrap()
}

/// The directory screenshots go to.
pub fn screenshots() -> String {
    let dir = artifacts().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}
