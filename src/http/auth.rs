//! `GET /oauth2/auth`: NGINX's `auth_request` target.
//!
//! Answers from the request alone (no network): 202 with `X-Auth-Request-*` for a valid session,
//! 401 without one, 403 when the session's user is not allowed. Any failure is a 401 or 403, so
//! NGINX never turns an authgate problem into a 500 for the user.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use std::time::Instant;

use super::metrics::{decision, refusal_counters};
use super::{AppError, Incoming};
use crate::config::{AuthzRules, HeaderMapping};
use crate::identity::Identity;
use crate::session::{cookies_named, SessionError};
use crate::state::AppState;
use crate::workspace::Workspace;

/// Header names sent to NGINX, as oauth2-proxy names them.
const USER: HeaderName = HeaderName::from_static("x-auth-request-user");
const EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
const PREFERRED_USERNAME: HeaderName = HeaderName::from_static("x-auth-request-preferred-username");
const GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");

pub(super) async fn auth(
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
        // The route has no trace layer (it is the hot path); a refusal names the request
        // ingress-nginx's log knows it by (or one made up here), the host it was for, the
        // workspace the route names, and the user where one was known.
        Err(Refusal { error, user }) => tracing::info_span!(
            "auth",
            host = req.host(),
            route_workspace = req.pinned.as_deref().unwrap_or(""),
            user = user.as_deref().unwrap_or(""),
            request_id = %RequestId(req.request_id()),
        )
        .in_scope(|| error.into_response()),
    };
    // Atomic increments on counters made with the registry: no lock, no allocation.
    if let Some(started) = started {
        counters.record(decided);
        state.metrics().observe_auth(started.elapsed());
    }
    response
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

/// ingress-nginx's `X-Request-ID`, or a fresh random one when the request came without.
struct RequestId<'a>(&'a str);

impl std::fmt::Display for RequestId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            write!(f, "{:032x}", rand::random::<u128>())
        } else {
            f.write_str(self.0)
        }
    }
}

async fn check(state: &AppState, req: &Incoming, ws: &Workspace) -> Result<Response, Refusal> {
    if !ws.requires_login() {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let now = state.now();
    let values = cookies_named(req.cookie_headers(), ws.session.name());
    let identity = match (ws.session.open(values, now), req.bearer()) {
        (Ok(session), _) => ws.identity_of(session).await?,
        (Err(SessionError::Missing), Some(token)) => {
            ws.verify_bearer(token, now).map_err(AppError::Bearer)?
        }
        (Err(e), _) => return Err(e.into()),
    };
    let forbidden = |d| Refusal {
        error: AppError::Forbidden(d),
        user: Some(identity.user.clone()),
    };
    ws.config.authz.check(&identity).map_err(forbidden)?;
    if req.query().is_some() {
        AuthzRules::from_query(&req.query_pairs())
            .check(&identity)
            .map_err(forbidden)?;
    }
    tracing::debug!(workspace = ws.name(), user = %identity.user, "allowed");
    Ok((
        StatusCode::ACCEPTED,
        identity_headers(&identity, &ws.config.headers),
    )
        .into_response())
}

/// The identity as `X-Auth-Request-*` headers: user and email always, the preferred username
/// and groups where the workspace configures them. Values were checked header-safe at login.
fn identity_headers(id: &Identity, config: &HeaderMapping) -> HeaderMap {
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
    h
}
