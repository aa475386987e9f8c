//! A real browser-style login through mod_auth_openidc and the test OpenID Provider (npm
//! `oidc-provider`, `tests/support/node/idp.mjs`): follow redirects, fill in its development
//! login form (any password) and consent form, keep cookies per host as a browser does. The
//! session cookie mod_auth_openidc sets at the end is what its load row replays.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use url::Url;

/// Cookies by host name (ports share cookies, as in browsers).
#[derive(Default)]
struct Jar(BTreeMap<String, BTreeMap<String, String>>);

impl Jar {
    /// The `Cookie` header for `url`: every cookie of its host whose name starts with `prefix`.
    fn header(&self, url: &Url, prefix: &str) -> Option<String> {
        let cookies: Vec<String> = self
            .0
            .get(url.host_str()?)?
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        (!cookies.is_empty()).then(|| cookies.join("; "))
    }

    fn store(&mut self, url: &Url, resp: &reqwest::Response) {
        let Some(host) = url.host_str() else { return };
        let jar = self.0.entry(host.to_string()).or_default();
        for v in resp.headers().get_all(SET_COOKIE) {
            let Ok(c) = cookie::Cookie::parse(v.to_str().unwrap_or("").to_string()) else {
                continue;
            };
            let expired = c.max_age().is_some_and(|a| a.is_zero() || a.is_negative());
            if expired || c.value().is_empty() {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_string(), c.value().to_string());
            }
        }
    }
}

/// oidc-provider's development interaction form: its action and prompt.
fn parse_form(body: &str) -> Option<(String, String)> {
    let action = body.split("action=\"").nth(1)?.split('"').next()?;
    let prompt = body
        .split("name=\"prompt\" value=\"")
        .nth(1)?
        .split('"')
        .next()?;
    Some((action.replace("&amp;", "&"), prompt.to_string()))
}

/// Logs `login` in at `start` (a mod_auth_openidc-protected URL) and returns the cookies named
/// `keep*` the browser holds for that host afterwards, as one `Cookie` header value.
pub(crate) async fn login(start: &str, login: &str, keep: &str) -> Result<String, String> {
    let first = Url::parse(start).map_err(|e| e.to_string())?;
    let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(host) = first
        .host_str()
        .filter(|h| h.parse::<std::net::IpAddr>().is_err())
    {
        // The protected site's name need not resolve: it lives on 127.0.0.1 (the URL's port).
        http = http.resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let http = http.build().map_err(|e| e.to_string())?;
    let mut jar = Jar::default();
    let mut next = first.clone();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..30 {
        let mut req = match &form {
            Some(fields) => http.post(next.clone()).form(fields),
            None => http.get(next.clone()),
        };
        if let Some(c) = jar.header(&next, "") {
            req = req.header(COOKIE, c);
        }
        let resp = req.send().await.map_err(|e| format!("{next}: {e}"))?;
        jar.store(&next, &resp);
        form = None;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let loc = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{status} without Location at {next}"))?;
            next = next.join(loc).map_err(|e| e.to_string())?;
            continue;
        }
        let body = resp.text().await.unwrap_or_default();
        if let Some((action, prompt)) = parse_form(&body) {
            let mut fields = vec![("prompt".to_string(), prompt.clone())];
            if prompt == "login" {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "any-password".into()));
            }
            next = next.join(&action).map_err(|e| e.to_string())?;
            form = Some(fields);
            continue;
        }
        if status != 200 {
            return Err(format!("login ended with {status} at {next}: {body}"));
        }
        return jar
            .header(&first, keep)
            .ok_or_else(|| format!("no {keep}* cookie after the login"));
    }
    Err("too many redirects during the login".into())
}
