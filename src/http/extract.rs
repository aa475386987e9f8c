//! The one extractor: the request reduced to the plain values the core needs.
//!
//! Owns reading the peer address, forwarding headers, cookies, and the workspace the route
//! names (`/oauth2/<action>/<workspace>`). Which proxy describes the request is the route's
//! choice, made by the extractor type its handler takes: [`Subrequest`] for ingress-nginx's
//! `auth_request` target, [`ForwardAuth`] for the Traefik and Caddy form, [`Incoming`] itself
//! for the browser's routes ([`RouteForm`]). Policy reads the one [`OriginalRequest`] that
//! form builds ([`Incoming::original`]); the raw headers stay private to this file. Never
//! fails: a request with no usable host keeps the reason in `target`, and
//! [`Incoming::workspace`] turns it into the refusal.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{ACCEPT, AUTHORIZATION, COOKIE, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};

use crate::authn::Credentials;
use crate::forward::{self, ForwardingHeaders, HostError, OriginalRequest, RouteForm, Target};
use crate::host::Host;
use crate::state::AppState;
use crate::workspace::{Registry, Workspace};

use super::AppError;

/// A request as the core sees it: it owns the request's headers and URI (moved, never copied,
/// since `/oauth2/auth` builds one per protected request) and reads values from them on demand,
/// each through the headers its route form's proxy writes.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The peer's address.
    pub peer: IpAddr,
    /// The proxy whose description of the request this route reads.
    form: RouteForm,
    /// The host the user asked for, or why none could be taken.
    pub target: Result<Target, HostError>,
    /// The workspace named by the route the operator wrote (`/oauth2/auth/<workspace>`).
    pub pinned: Option<String>,
    /// The request's headers: read only through the methods below.
    headers: HeaderMap,
    /// The request's URI (path and query).
    uri: Uri,
    /// The registry this request is served with, from start to end.
    pub registry: Arc<Registry>,
}

/// ingress-nginx's `auth_request` subrequest (`/oauth2/auth[/<workspace>]`): the request as
/// `X-Original-URL` and `X-Original-Method` describe it.
#[derive(Debug)]
pub(super) struct Subrequest(pub(super) Incoming);

/// Traefik's ForwardAuth and Caddy's `forward_auth` (`/oauth2/auth/<workspace>/redirect`): the
/// request as `X-Forwarded-Host`, `-Method` and `-Uri` describe it.
#[derive(Debug)]
pub(super) struct ForwardAuth(pub(super) Incoming);

impl Incoming {
    /// Builds it from request parts, the route's form, the workspace the route names, and the
    /// current registry's trusted proxies.
    pub fn from_parts(
        parts: Parts,
        form: RouteForm,
        pinned: Option<String>,
        registry: Arc<Registry>,
    ) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let target = forward::resolve(
            form,
            peer,
            &registry.trusted_proxies,
            forwarding_headers(&parts.headers, &parts.uri),
        );
        Self {
            peer,
            form,
            target,
            pinned,
            headers: parts.headers,
            uri: parts.uri,
            registry,
        }
    }

    /// The user's original request as this route's proxy describes it; `None` on the
    /// browser's routes, from an untrusted peer, or when the proxy's description is unusable.
    pub fn original(&self) -> Option<OriginalRequest<'_>> {
        let trusted = self.target.as_ref().is_ok_and(|t| t.trusted);
        forward::original_request(
            self.form,
            trusted,
            &forwarding_headers(&self.headers, &self.uri),
        )
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
            self.headers
                .get_all("x-forwarded-for")
                .iter()
                .map(|v| v.to_str().unwrap_or("\u{fffd}")),
        )
    }

    /// The `Accept` header, if it is text.
    pub fn accept(&self) -> Option<&str> {
        header(&self.headers, ACCEPT.as_str())
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
            api_keys: Vec::new(),
        }
    }

    /// [`Self::credentials`] of the auth route, with the API-key headers `clients` name.
    pub fn credentials_for<'a>(
        &'a self,
        clients: &'a [crate::config::ClientConfig],
    ) -> Credentials<'a> {
        let mut creds = self.credentials(true);
        creds.api_keys = clients
            .iter()
            .filter_map(|c| c.header.as_deref())
            .filter_map(|h| Some((h, header(&self.headers, h)?)))
            .collect();
        creds
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

    /// The request id the route's proxy sent, for log lines beside authgate's own: ingress-nginx's
    /// `X-Request-ID` on its subrequest (which the controller takes from the client when it
    /// sent one), when a plain token ([`super::plain_request_id`]); empty otherwise. Traefik
    /// and Caddy write none: there a client's would pass as the proxy's.
    pub fn proxy_request_id(&self) -> &str {
        match self.form {
            RouteForm::Subrequest => header(&self.headers, "x-request-id")
                .filter(|id| super::plain_request_id(id))
                .unwrap_or(""),
            RouteForm::ForwardAuth | RouteForm::Browser => "",
        }
    }

    /// What `rules` are matched against ([`crate::rules::RuleRequest`]): the original request
    /// the route's proxy describes, the host already checked against the workspace, and the
    /// client's address (looked up only when a rule names networks).
    pub fn rule_request(&self, rules: &crate::rules::RuleSet) -> crate::rules::RuleRequest<'_> {
        let h = &self.headers;
        crate::rules::RuleRequest {
            original: self.original(),
            host: self.target_host(),
            client: rules.reads_client().then(|| self.client()),
            preflight_headers: h.contains_key("origin")
                && h.contains_key("access-control-request-method"),
        }
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
    /// The request as [`Incoming`] of a browser's route, and its body for the one route that
    /// reads one.
    pub(super) async fn with_body(req: Request, state: &AppState) -> (Self, axum::body::Body) {
        Self::of_form(req, RouteForm::Browser, state).await
    }

    /// The request as [`Incoming`] of a route of `form`, and its body.
    async fn of_form(req: Request, form: RouteForm, state: &AppState) -> (Self, axum::body::Body) {
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
        (
            Self::from_parts(parts, form, pinned, state.registry()),
            body,
        )
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The headers a proxy may describe the request in, as sent; `Host` falls back to the request
/// line's authority.
fn forwarding_headers<'a>(h: &'a HeaderMap, uri: &'a Uri) -> ForwardingHeaders<'a> {
    ForwardingHeaders {
        host: forwarding_header(h, HOST.as_str()).or(uri.authority().map(|a| a.as_str())),
        original_url: forwarding_header(h, "x-original-url"),
        original_method: header(h, "x-original-method"),
        forwarded_host: forwarding_header(h, "x-forwarded-host"),
        forwarded_method: header(h, "x-forwarded-method"),
        forwarded_uri: header(h, "x-forwarded-uri"),
    }
}

/// A header that names a host. Present but not visible ASCII, it is kept as a value no host
/// parses (`forward` then refuses it), never read as absent: absent would make the next
/// header, which the client may also write, decide.
fn forwarding_header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .map(|v| v.to_str().unwrap_or("\u{fffd}not visible ASCII"))
}

/// A browser's route. Takes the whole request (the body is never read), so it is a handler's
/// last argument.
impl FromRequest<AppState> for Incoming {
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self::of_form(req, RouteForm::Browser, state).await.0)
    }
}

impl FromRequest<AppState> for Subrequest {
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(
            Incoming::of_form(req, RouteForm::Subrequest, state).await.0,
        ))
    }
}

impl FromRequest<AppState> for ForwardAuth {
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(
            Incoming::of_form(req, RouteForm::ForwardAuth, state)
                .await
                .0,
        ))
    }
}
