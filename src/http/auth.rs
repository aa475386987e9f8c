//! `GET /oauth2/auth`: NGINX's `auth_request` target.
//!
//! Answers from the request alone (no network): 202 with `X-Auth-Request-*` for a valid session,
//! 401 without one, 403 when the session's user is not allowed. Any failure is a 401 or 403, so
//! NGINX never turns an authgate problem into a 500 for the user.
//!
//! `GET /oauth2/auth/<workspace>/redirect` is the same check for proxies that return the
//! answer to the client as it is (Traefik ForwardAuth, Caddy `forward_auth`): there a browser
//! without a session gets the 302 to the sign-in that NGINX's `auth-signin` would have made.

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use std::time::Instant;

use super::error::{log_errors, RefusalContext};
use super::extract::{ForwardAuth, Subrequest};
use super::metrics::{decision, refusal_counters};
use super::{AppError, Incoming};
use crate::authn::Gate;
use crate::config::HeaderMapping;
use crate::identity::Identity;
use crate::session::Tokens;
use crate::state::AppState;
use crate::workspace::Workspace;

/// Header names sent to NGINX, as oauth2-proxy names them.
const USER: HeaderName = HeaderName::from_static("x-auth-request-user");
const EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
const PREFERRED_USERNAME: HeaderName = HeaderName::from_static("x-auth-request-preferred-username");
const GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");
const ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-auth-request-access-token");
const ID_TOKEN: HeaderName = HeaderName::from_static("x-auth-request-id-token");

/// Most bytes of identity headers one 202 answer carries. NGINX reads the auth subrequest's
/// answer headers into one `proxy_buffer_size` buffer and fails the request with a 500 when
/// they do not fit; ingress-nginx renders that buffer for the auth location from its
/// `proxy-buffer-size` (k8s/ingress-nginx sets 16k; NGINX's own default is 4k or 8k). Past
/// this budget the groups header is left out (and the fact logged) instead: an app sees no
/// groups rather than the user seeing a 500. Tokens are never cut: a workspace that passes
/// them has asked for them.
pub(super) const HEADER_BUDGET: usize = 12 * 1024;

/// `/oauth2/auth[/<workspace>]`: ingress-nginx's subrequest.
pub(super) async fn auth(
    state: axum::extract::State<AppState>,
    Subrequest(req): Subrequest,
) -> Response {
    decide(state, req).await
}

/// The check, on the request as the route's proxy describes it.
async fn decide(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Incoming,
) -> Response {
    let started = state.metrics().enabled().then(Instant::now);
    let (counters, result) = match req.workspace() {
        Ok(ws) => (&ws.metrics.decisions, check(&state, &req, ws).await),
        Err(e) => (refusal_counters(&req, &state), Err(Refusal::from(e))),
    };
    let decided = decision(&result.as_ref().map_err(|r| &r.error));
    let response = match result {
        Ok(allowed) => allowed,
        // The route has no trace layer (it is the hot path); a refusal names its own id, the
        // id ingress-nginx's log knows the request by, the host it was for, the workspace the
        // route names, and the user where one was known.
        Err(Refusal { error, user }) => {
            let mut resp = error.into_response();
            resp.extensions_mut().insert(RefusalContext {
                host: req.host().to_string(),
                route_workspace: req.pinned.clone().unwrap_or_default(),
                user: user.unwrap_or_default(),
                request_id: format!("{:032x}", rand::random::<u128>()),
                proxy_request_id: req.proxy_request_id().to_string(),
            });
            // The hot path runs without middleware: the refusal goes to the one logging
            // function here, only when there is one.
            log_errors(resp).await
        }
    };
    // Atomic increments on counters made with the registry: no lock, no allocation.
    if let Some(started) = started {
        counters.record(decided);
        state.metrics().observe_auth(started.elapsed());
    }
    response
}

/// The redirect form: the check of [`auth`], then a 401 to a browser becomes a 302 to
/// `/oauth2/start?rd=<original URI>` on the host the browser asked for. The `Location` is
/// absolute (Traefik resolves a relative one against the auth address): the host is the
/// request's, already checked to be one of the workspace's, and the scheme the workspace's
/// `callback_url`, which the operator wrote, never `X-Forwarded-Proto`. The original URI is
/// the trusted proxy's `X-Forwarded-Uri` ([`Incoming::original`]), else `/`. An API client
/// keeps its 401.
pub(super) async fn auth_redirect(
    state: axum::extract::State<AppState>,
    ForwardAuth(req): ForwardAuth,
) -> Response {
    let browser = is_browser(req.accept(), req.bearer().is_some());
    let to_login = match req.workspace() {
        Ok(ws) if browser => Some(sign_in_location(
            ws.config.callback_url.scheme(),
            req.host(),
            req.original().map(|o| o.target),
        )),
        _ => None,
    };
    let response = decide(state, req).await;
    match to_login {
        Some(location) if response.status() == StatusCode::UNAUTHORIZED => (
            StatusCode::FOUND,
            [
                (LOCATION, location),
                (CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response(),
        _ => response,
    }
}

/// Whether a refused request came from a browser that a sign-in page can help: it accepts
/// HTML and carries no bearer token. Anything else (an API client, a script, a refused
/// token) is answered 401, as a redirect to a login form would only confuse it.
fn is_browser(accept: Option<&str>, bearer: bool) -> bool {
    !bearer && accept.is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
}

/// `<scheme>://<host>/oauth2/start?rd=<uri>`, the URI percent-encoded once (as NGINX's
/// `$escaped_request_uri`), so `/oauth2/start` reads back exactly the original target.
fn sign_in_location(scheme: &str, host: &str, uri: Option<&str>) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(uri.unwrap_or("/").as_bytes()).collect();
    format!("{scheme}://{host}/oauth2/start?rd={rd}")
}

/// A refused `/oauth2/auth`, with the user it was refused to where one was known.
struct Refusal {
    error: AppError,
    user: Option<String>,
}

impl<E: Into<AppError>> From<E> for Refusal {
    fn from(e: E) -> Self {
        Self {
            error: e.into(),
            user: None,
        }
    }
}

async fn check(state: &AppState, req: &Incoming, ws: &Workspace) -> Result<Response, Refusal> {
    // A public route passes as a workspace without login does: 202 and no identity, even
    // when the request carries a session; a `deny` rule refuses before any credential is read.
    let verdict = match ws.gate(&req.rule_request(&ws.config.rules)) {
        Gate::Public => return Ok(StatusCode::ACCEPTED.into_response()),
        Gate::Deny(denial) => return Err(AppError::Forbidden(denial).into()),
        Gate::Authenticate(verdict) => verdict,
    };
    let done = ws
        .authenticate(&req.credentials_for(&ws.config.clients), state.now())
        .await?;
    let narrowing = req.query().map(|_| req.query_pairs());
    ws.authorize(&done.identity, verdict, narrowing.as_deref())
        .map_err(|d| Refusal {
            error: AppError::Forbidden(d),
            user: Some(done.identity.user.clone()),
        })?;
    tracing::debug!(workspace = ws.name(), user = %done.identity.user, "allowed");
    let mut headers = identity_headers(&done.identity, &done.tokens, &ws.config.headers);
    // A session renewed by a refresh: ingress-nginx hands the first `Set-Cookie` of this
    // answer to the browser (`auth_request_set $auth_cookie $upstream_http_set_cookie`). It
    // counts in the budget with the identity headers: NGINX reads them all into one buffer.
    super::append_set_cookies(&mut headers, done.cookies);
    let headers = within_budget(headers, ws.name(), &done.identity.user);
    Ok((StatusCode::ACCEPTED, headers).into_response())
}

/// The identity as `X-Auth-Request-*` headers: user and email always, the preferred username,
/// groups, `[headers.claims]` and tokens where the workspace configures them. Values were
/// checked header-safe at login.
fn identity_headers(id: &Identity, tokens: &Tokens, config: &HeaderMapping) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(4);
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(USER, &id.user);
    if !id.email.is_empty() {
        put(EMAIL, &id.email);
    }
    if let (Some(p), Some(_)) = (&id.preferred_username, &config.preferred_username) {
        put(PREFERRED_USERNAME, p);
    }
    if !id.groups.is_empty() && config.groups.is_some() {
        put(GROUPS, &id.groups.join(","));
    }
    for (header, _claim) in &config.claims {
        if let (Some(value), Ok(name)) = (
            id.claims.get(header),
            HeaderName::from_bytes(header.as_bytes()),
        ) {
            put(name, value);
        }
    }
    if let Some(access) = &tokens.access {
        if config.pass_access_token {
            put(ACCESS_TOKEN, access);
        }
        if config.pass_authorization_header {
            put(AUTHORIZATION, &format!("Bearer {access}"));
        }
    }
    if let (Some(token), true) = (&tokens.id, config.pass_id_token) {
        put(ID_TOKEN, token);
    }
    h
}

/// `headers` (identity headers and a renewed session's `Set-Cookie`), without the groups header
/// when all together exceed [`HEADER_BUDGET`].
fn within_budget(mut headers: HeaderMap, workspace: &str, user: &str) -> HeaderMap {
    let size =
        |h: &HeaderMap| -> usize { h.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum() };
    let total = size(&headers);
    if total > HEADER_BUDGET {
        if let Some(groups) = headers.remove(GROUPS) {
            tracing::warn!(
                workspace,
                user,
                bytes = total,
                groups_bytes = groups.len(),
                budget = HEADER_BUDGET,
                "identity headers exceed the budget: X-Auth-Request-Groups left out"
            );
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_browser_without_a_token_is_sent_to_the_sign_in() {
        let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        for (accept, bearer, browser) in [
            (Some(html), false, true),
            (Some("TEXT/HTML"), false, true),
            (Some(html), true, false),
            (Some("application/json"), false, false),
            (Some("*/*"), false, false),
            (None, false, false),
        ] {
            assert_eq!(is_browser(accept, bearer), browser, "{accept:?} {bearer}");
        }
    }

    #[test]
    fn the_sign_in_location_carries_the_uri_escaped_once() {
        assert_eq!(
            sign_in_location(
                "https",
                "mcd.example",
                Some("/helloworld?greeting=hi%20there&x=1")
            ),
            "https://mcd.example/oauth2/start?rd=%2Fhelloworld%3Fgreeting%3Dhi%2520there%26x%3D1"
        );
        assert_eq!(
            sign_in_location("http", "mcd.localhost:8080", None),
            "http://mcd.localhost:8080/oauth2/start?rd=%2F"
        );
    }
}
