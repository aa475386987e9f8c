//! The one extractor: the request reduced to the plain values the core needs.
//!
//! Owns reading the peer address, forwarding headers and cookies. Never fails: a request with
//! no usable host yields `target: None`, which handlers answer as an unknown host.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::forward::{self, ForwardingHeaders, Target};
use crate::state::AppState;
use crate::workspace::{Registry, Workspace};

use super::AppError;

/// A request as the core sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The peer's address.
    pub peer: IpAddr,
    /// The host the user asked for, if any could be found.
    pub target: Option<Target>,
    /// Every `Cookie` header value.
    pub cookies: Vec<String>,
    /// `Authorization: Bearer` token, if any.
    pub bearer: Option<String>,
    /// The raw query string.
    pub query: Option<String>,
    /// The registry this request is served with, from start to end.
    pub registry: Arc<Registry>,
}

impl Incoming {
    /// Builds it from request parts and the current registry's trusted proxies.
    pub fn from_parts(parts: &Parts, registry: Arc<Registry>) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let h = &parts.headers;
        let fwd = ForwardingHeaders {
            original_url: header(h, "x-original-url"),
            forwarded_host: header(h, "x-forwarded-host"),
            host: h
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .or(parts.uri.authority().map(|a| a.as_str())),
        };
        Self {
            peer,
            target: forward::resolve(peer, &registry.trusted_proxies, fwd),
            cookies: h
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect(),
            bearer: h
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|t| t.trim().to_string()),
            query: parts.uri.query().map(str::to_string),
            registry,
        }
    }

    /// The workspace the request is for.
    pub fn workspace(&self) -> Result<&Arc<Workspace>, AppError> {
        let target = self
            .target
            .as_ref()
            .ok_or(AppError::UnknownHost(String::new()))?;
        self.registry
            .lookup(&target.host)
            .ok_or_else(|| AppError::UnknownHost(target.host.clone()))
    }

    /// The host, or empty.
    pub fn host(&self) -> &str {
        self.target.as_ref().map_or("", |t| t.host.as_str())
    }

    /// Cookie header values as `&str`.
    pub fn cookie_headers(&self) -> impl Iterator<Item = &str> + Clone {
        self.cookies.iter().map(String::as_str)
    }

    /// Query pairs, percent-decoded once.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl FromRequestParts<AppState> for Incoming {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, state.registry()))
    }
}
