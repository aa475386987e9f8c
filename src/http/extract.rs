//! The one extractor: the request reduced to the plain values the core needs.
//!
//! Owns reading the peer address, forwarding headers, cookies, and the workspace the route
//! names (`/oauth2/<action>/<workspace>`). Never fails: a request with no usable host keeps
//! the reason in `target`, and [`Incoming::workspace`] turns it into the refusal.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};

use crate::authn::Credentials;
use crate::forward::{self, ForwardingHeaders, HostError, Target};
use crate::host::Host;
use crate::state::AppState;
use crate::workspace::{Registry, Workspace};

use super::AppError;

/// A request as the core sees it: it owns the request's headers and URI (moved, never copied,
/// since `/oauth2/auth` builds one per protected request) and reads values from them on demand.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The peer's address.
    pub peer: IpAddr,
    /// The host the user asked for, or why none could be taken.
    pub target: Result<Target, HostError>,
    /// The workspace named by the route the operator wrote (`/oauth2/auth/<workspace>`).
    pub pinned: Option<String>,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The request's URI (path and query).
    pub uri: Uri,
    /// The registry this request is served with, from start to end.
    pub registry: Arc<Registry>,
}

impl Incoming {
    /// Builds it from request parts, the workspace the route names, and the current
    /// registry's trusted proxies.
    pub fn from_parts(parts: Parts, pinned: Option<String>, registry: Arc<Registry>) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let h = &parts.headers;
        // Only NGINX's auth subrequest names the original URL; on the login routes (ordinary
        // proxying through the /oauth2 Ingress) and on the redirect form of the auth route
        // (Traefik and Caddy, which pass every client header on to the auth address) a
        // client's own X-Original-URL would pass through, so there it is not read at all.
        let path = parts.uri.path();
        let auth_route = path.starts_with("/oauth2/auth") && !super::is_redirect_route(path);
        let fwd = ForwardingHeaders {
            original_url: if auth_route {
                forwarding_header(h, "x-original-url")
            } else {
                None
            },
            forwarded_host: forwarding_header(h, "x-forwarded-host"),
            host: forwarding_header(h, HOST.as_str()).or(parts.uri.authority().map(|a| a.as_str())),
        };
        Self {
            peer,
            target: forward::resolve(peer, &registry.trusted_proxies, fwd),
            pinned,
            headers: parts.headers,
            uri: parts.uri,
            registry,
        }
    }

    /// The workspace the request is for: the one its route names, and the host the user
    /// asked for must be one of its hosts. Without a name in the route, only a config with a
    /// single workspace has an answer that cannot be confused.
    pub fn workspace(&self) -> Result<&Arc<Workspace>, AppError> {
        let target = self
            .target
            .as_ref()
            .map_err(|e| AppError::HostRefused(e.clone()))?;
        self.registry
            .workspace_for(self.pinned.as_deref(), &target.host)
            .map_err(AppError::Tenant)
    }

    /// The client's address, as far as authgate can tell ([`forward::client_address`]).
    pub fn client(&self) -> IpAddr {
        forward::client_address(
            self.peer,
            &self.registry.trusted_proxies,
            header(&self.headers, "x-real-ip"),
        )
    }

    /// The original request target (`X-Forwarded-Uri`, as Traefik and Caddy send it) from a
    /// trusted proxy, parsed strictly ([`forward::parse_forwarded_uri`]); `None` from anyone
    /// else, without the header, or when it is malformed.
    pub fn forwarded_uri(&self) -> Option<&str> {
        if !forward::is_trusted(self.peer, &self.registry.trusted_proxies) {
            return None;
        }
        header(&self.headers, "x-forwarded-uri").and_then(|v| forward::parse_forwarded_uri(v).ok())
    }

    /// The host, or empty.
    pub fn host(&self) -> &str {
        self.target_host().map_or("", Host::as_str)
    }

    /// The host the request is for, when one could be taken from it.
    pub fn target_host(&self) -> Option<&Host> {
        self.target.as_ref().ok().map(|t| &t.host)
    }

    /// Every `name=value` pair of every `Cookie` header, as text. A pair that is not UTF-8
    /// (another app's cookie on the same domain) is skipped alone: browsers send all cookies
    /// in one header, and dropping the whole header would hide the session with it.
    pub fn cookie_headers(&self) -> impl Iterator<Item = &str> {
        self.headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .filter_map(|pair| std::str::from_utf8(pair).ok())
    }

    /// What the request presents to authenticate: its cookies, and its bearer token when
    /// `bearer` (the auth route; the browser's own routes read the session only).
    pub fn credentials(&self, bearer: bool) -> Credentials<'_> {
        Credentials {
            cookies: self.cookie_headers().collect(),
            bearer: self.bearer().filter(|_| bearer),
        }
    }

    /// The `Authorization: Bearer` token, if any.
    pub fn bearer(&self) -> Option<&str> {
        header(&self.headers, AUTHORIZATION.as_str())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
    }

    /// ingress-nginx's `X-Request-ID`, for log lines; empty without one.
    pub fn request_id(&self) -> &str {
        header(&self.headers, "x-request-id").unwrap_or("")
    }

    /// Whether the original request is one of `rules`' public routes. The original method and
    /// URL are read only from a trusted proxy (an untrusted peer's copies are the client's
    /// word), and only when the workspace has rules: nothing is read on the usual path.
    pub fn is_public(&self, rules: &[crate::public::PublicRule]) -> bool {
        if rules.is_empty() || !self.target.as_ref().is_ok_and(|t| t.trusted) {
            return false;
        }
        let h = &self.headers;
        // One proxy's pair, never a mix: NGINX sets both X-Original-* and passes a client's
        // X-Forwarded-* through, so with an X-Original-URL only its X-Original-Method counts.
        let (method, target) = match header(h, "x-original-url") {
            Some(url) => (header(h, "x-original-method"), Some(url)),
            None => (
                header(h, "x-forwarded-method"),
                header(h, "x-forwarded-uri"),
            ),
        };
        crate::public::is_public(
            rules,
            crate::public::OriginalRequest {
                method,
                target,
                preflight_headers: h.contains_key("origin")
                    && h.contains_key("access-control-request-method"),
            },
        )
    }

    /// The raw query string.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// Query pairs, percent-decoded once.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

impl Incoming {
    /// The request as [`Incoming`], and its body for the one route that reads one.
    pub(super) async fn with_body(req: Request, state: &AppState) -> (Self, axum::body::Body) {
        let (mut parts, body) = req.into_parts();
        let pinned = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(k, _)| *k == "workspace")
                    .map(|(_, v)| v.to_string())
            });
        (Self::from_parts(parts, pinned, state.registry()), body)
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A header that names a host. Present but not visible ASCII, it is kept as a value no host
/// parses (`forward` then refuses it), never read as absent: absent would make the next
/// header, which the client may also write, decide.
fn forwarding_header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .map(|v| v.to_str().unwrap_or("\u{fffd}not visible ASCII"))
}

/// Takes the whole request (the body is never read), so it is a handler's last argument.
impl FromRequest<AppState> for Incoming {
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self::with_body(req, state).await.0)
    }
}
