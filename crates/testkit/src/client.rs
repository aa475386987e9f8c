//! A small browser-like HTTP client: no automatic redirects, a cookie jar per host, requests
//! sent to 127.0.0.1 whatever host name the URL carries (so `mcd.localhost` works anywhere),
//! and the login and consent forms of the test OpenID Provider filled in. For the tests, and
//! for the load benchmark's login through mod_auth_openidc.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, COOKIE, HOST, LOCATION, SET_COOKIE};
use url::Url;

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: String,
    /// The URL requested.
    pub url: Url,
}

impl Resp {
    /// `Location`, resolved against the request URL.
    pub fn location(&self) -> Url {
        let loc = self
            .headers
            .get(LOCATION)
            .unwrap_or_else(|| panic!("no Location in {self:?}"));
        self.url.join(loc.to_str().unwrap()).unwrap()
    }

    /// `Location` as sent.
    pub fn raw_location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Every `Set-Cookie`.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
}

/// A browser-like client.
pub struct Client {
    http: reqwest::Client,
    /// Cookies by host name (ports share cookies, as in browsers).
    pub jar: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A fresh client with an empty jar.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            jar: BTreeMap::new(),
        }
    }

    /// A fresh client that asks for HTML on every request, as a browser's navigations do
    /// (for proxies where authgate answers a browser and an API client differently); a
    /// request's own `Accept` replaces it.
    pub fn browser() -> Self {
        let mut accept = HeaderMap::new();
        accept.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(accept)
            .build()
            .unwrap();
        Self {
            http,
            jar: BTreeMap::new(),
        }
    }

    /// GET with extra headers.
    pub async fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", url, headers, None).await
    }

    /// POST a form.
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            "POST",
            url,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body),
        )
        .await
    }

    /// Sends a request to 127.0.0.1 on the URL's port with `Host` from the URL.
    pub async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Resp {
        let url = Url::parse(url).unwrap();
        let host = url.host_str().unwrap().to_string();
        let mut target = url.clone();
        target.set_host(Some("127.0.0.1")).unwrap();
        // TLS ends in front of NGINX on the platform (Cloudflare): an https URL is sent as plain
        // http to the same port, marked the way cloudflared marks it.
        let tls_terminated = url.scheme() == "https";
        if tls_terminated {
            target.set_scheme("http").unwrap();
        }
        let mut req = self.http.request(method.parse().unwrap(), target).header(
            HOST,
            match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            },
        );
        if let Some(cookies) = self.jar.get(&host).filter(|c| !c.is_empty()) {
            let line = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(COOKIE, line);
        }
        if tls_terminated {
            req = req.header("x-forwarded-proto", "https");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        let r = Resp {
            status,
            headers,
            body,
            url,
        };
        self.store(&host, &r.set_cookies());
        r
    }

    fn store(&mut self, host: &str, set_cookies: &[String]) {
        let jar = self.jar.entry(host.to_string()).or_default();
        for sc in set_cookies {
            let c = cookie::Cookie::parse(sc.clone()).unwrap();
            let expired = c.max_age().is_some_and(|a| a.is_zero() || a.is_negative());
            if expired || c.value().is_empty() {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_string(), c.value().to_string());
            }
        }
    }

    /// The cookie `name` for `host`.
    pub fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.jar.get(host).and_then(|c| c.get(name)).cloned()
    }

    /// Follows redirects from `url`, submitting oidc-provider's login (as `login`) and consent
    /// forms, until a response that is neither a redirect nor such a form. Returns every
    /// response in order.
    pub async fn follow(&mut self, url: &str, login: &str) -> Vec<Resp> {
        let mut out: Vec<Resp> = Vec::new();
        let mut next = url.to_string();
        for _ in 0..25 {
            let r = self.get(&next, &[]).await;
            if (300..400).contains(&r.status) {
                next = r.location().to_string();
                out.push(r);
                continue;
            }
            match parse_form(&r.body) {
                Some(form) => {
                    let action = r.url.join(&form.action).unwrap().to_string();
                    let mut fields = form.hidden.clone();
                    if form.has_login {
                        fields.push(("login".to_string(), login.to_string()));
                    }
                    if form.has_password {
                        fields.push(("password".to_string(), "any-password".to_string()));
                    }
                    let pairs: Vec<(&str, &str)> = fields
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    out.push(r);
                    let p = self.post_form(&action, &pairs).await;
                    assert!(
                        (300..400).contains(&p.status),
                        "form post answered {}: {}",
                        p.status,
                        p.body
                    );
                    next = p.location().to_string();
                    out.push(p);
                }
                None => {
                    out.push(r);
                    return out;
                }
            }
        }
        panic!("too many redirects from {url}");
    }
}

/// A login or consent form (oidc-provider's dev interactions, the GitHub stand-in's page).
struct Form {
    action: String,
    hidden: Vec<(String, String)>,
    has_login: bool,
    has_password: bool,
}

fn unescape(v: &str) -> String {
    v.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(unescape(&tag[start..start + tag[start..].find('"')?]))
}

/// The first form of a page with its hidden inputs, if it posts somewhere.
fn parse_form(body: &str) -> Option<Form> {
    let form_start = body.find("<form")?;
    let form_tag = &body[form_start..form_start + body[form_start..].find('>')?];
    let action = attr(form_tag, "action")?;
    let inner = &body[form_start..form_start + body[form_start..].find("</form>")?];
    let mut hidden = Vec::new();
    let (mut has_login, mut has_password) = (false, false);
    for part in inner.split("<input").skip(1) {
        let tag = &part[..part.find('>').unwrap_or(part.len())];
        let name = attr(tag, "name").unwrap_or_default();
        match (attr(tag, "type").as_deref(), name.as_str()) {
            (Some("hidden"), _) => hidden.push((name, attr(tag, "value").unwrap_or_default())),
            (_, "login") => has_login = true,
            (_, "password") => has_password = true,
            _ => {}
        }
    }
    Some(Form {
        action,
        hidden,
        has_login,
        has_password,
    })
}
