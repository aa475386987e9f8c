//! A real browser-style login through mod_auth_openidc and the test OpenID Provider (npm
//! `oidc-provider`, `tests/support/node/idp.mjs`), with the tests' browser-like client
//! (`testkit::client`): redirects followed, the development login form (any password) and the
//! consent form filled in, cookies kept per host. The session cookie mod_auth_openidc sets at
//! the end is what its load row replays.

use testkit::client::Client;

/// Logs `login` in at `start` (a mod_auth_openidc-protected URL) and returns the cookies named
/// `keep*` the browser holds for that host afterwards, as one `Cookie` header value.
pub(crate) async fn login(start: &str, login: &str, keep: &str) -> Result<String, String> {
    let host = url::Url::parse(start)
        .map_err(|e| format!("{start}: {e}"))?
        .host_str()
        .unwrap_or_default()
        .to_string();
    let mut browser = Client::new();
    let steps = browser.follow(start, login).await;
    let last = steps.last().ok_or("no answer to the login")?;
    if last.status != 200 {
        return Err(format!(
            "login ended with {} at {}: {}",
            last.status, last.url, last.body
        ));
    }
    let cookies: Vec<String> = browser
        .jar
        .get(&host)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(keep))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if cookies.is_empty() {
        return Err(format!("no {keep}* cookie after the login"));
    }
    Ok(cookies.join("; "))
}
