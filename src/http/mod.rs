//! The HTTP surface: routes on oauth2-proxy's paths, thin handlers, one error type.
//!
//! Owns translating requests into calls on the core and the core's answers into responses.
//! Handlers extract plain values ([`extract::Incoming`]), call the domain modules, and return
//! [`AppError`] for every failure; nothing here decides policy.

mod auth;
mod backchannel;
mod body;
mod error;
mod extract;
mod log_budget;
mod login;
mod metrics;
mod pages;
mod serve;
mod userinfo;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

pub use error::AppError;
pub use extract::Incoming;
pub use serve::{serve, Limits, MAX_HEADERS};

/// The router, ready for `axum::serve` or `oneshot` in tests.
///
/// Every `/oauth2/<action>` route also exists as `/oauth2/<action>/<workspace>`: the Ingress
/// names the workspace (`auth-url: …/oauth2/auth/mcd`; the `/oauth2` Ingress rewrites to
/// `/oauth2/$1/mcd`), and the host the client wrote must belong to it ([`Incoming::workspace`]).
/// The short forms serve a config with a single workspace, as oauth2-proxy does.
///
/// `/metrics` is on this router too, so on the main port: the `/oauth2` Ingress cannot reach
/// it and the NetworkPolicy limits who reaches the Service ([`metrics`]).
///
/// `/oauth2/auth/<workspace>/redirect` is the same check for Traefik and Caddy, which send
/// `X-Forwarded-Host`/`-Uri` and return any non-2xx answer to the client: a browser without a
/// session gets a 302 to `/oauth2/start?rd=<original URI>` instead of the 401 ([`auth`]).
///
/// `/oauth2/auth`, `/ping` and `/metrics` run without middleware: NGINX asks `/oauth2/auth` once per
/// protected request, and the request-id and trace layers cost about as much CPU as the cookie
/// check itself. Its refusals carry an id of their own and ingress-nginx's `X-Request-ID`
/// (`proxy_request_id`) to their log line instead
/// ([`error::log_errors`], the one place errors are logged). The
/// login routes, where a request id in every log line helps follow one sign-in, keep the layers.
pub fn app(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let login = Router::new()
        .route("/oauth2/start", get(login::start))
        .route("/oauth2/start/{workspace}", get(login::start))
        .route("/oauth2/callback", get(login::callback))
        .route("/oauth2/callback/{workspace}", get(login::callback))
        .route(
            "/oauth2/sign_out",
            get(login::sign_out).post(login::sign_out),
        )
        .route(
            "/oauth2/sign_out/{workspace}",
            get(login::sign_out).post(login::sign_out),
        )
        .route("/oauth2/backchannel_logout", post(backchannel::logout))
        .route(
            "/oauth2/backchannel_logout/{workspace}",
            post(backchannel::logout),
        )
        .route("/oauth2/userinfo", get(userinfo::userinfo))
        .route("/oauth2/userinfo/{workspace}", get(userinfo::userinfo))
        .route("/ready", get(ready))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::map_request(own_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                        // At info, so every line of a sign-in carries its request id at the default
                        // level; handlers fill in the workspace, provider and user as they learn them.
                        let text = |v: Option<&axum::http::HeaderValue>| {
                            v.and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
                        };
                        let id = text(req.headers().get("x-request-id"));
                        let proxy_id = text(req.extensions().get::<ProxyRequestId>().map(|p| &p.0));
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path = %req.uri().path(),
                            request_id = %id,
                            proxy_request_id = %proxy_id,
                            workspace = tracing::field::Empty,
                            provider = tracing::field::Empty,
                            user = tracing::field::Empty,
                        )
                    }),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                // Innermost: the refusal is logged in the request's span.
                .layer(axum::middleware::map_response(error::log_errors)),
        );
    Router::new()
        .route("/oauth2/auth", get(auth::auth))
        .route("/oauth2/auth/{workspace}", get(auth::auth))
        .route(
            &format!("/oauth2/auth/{{workspace}}/{REDIRECT}"),
            get(auth::auth_redirect),
        )
        .route("/ping", get(|| async { "OK" }))
        .route("/metrics", get(metrics::metrics))
        .merge(login)
        .fallback(error_backend)
        .with_state(state)
}

/// The last segment of the auth route's redirect form, `/oauth2/auth/<workspace>/redirect`:
/// for proxies that return the auth answer to the client as it is (Traefik's ForwardAuth,
/// Caddy's `forward_auth`), where authgate itself sends a browser to the sign-in. The operator
/// chooses it by the address written into the proxy's config, never a header: behind NGINX a
/// 302 from the auth subrequest would be a 500 for the user.
const REDIRECT: &str = "redirect";

/// Everything else. Requests carrying ingress-nginx's `X-Code` come from its custom-error
/// routing (`custom-http-errors` with authgate as `default-backend`): they get authgate's page
/// for that status, so a 403 from `/oauth2/auth` shows the user a readable denial.
async fn error_backend(headers: axum::http::HeaderMap) -> axum::response::Response {
    let code = headers
        .get("x-code")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok());
    match code {
        Some(403) => AppError::Forbidden(crate::authz::Denial::Group).page_response(),
        Some(401) => {
            AppError::Unauthenticated(crate::session::SessionError::Missing).page_response()
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Readiness: the config is loaded and the process is not stopping. Never waits on an
/// identity provider or on Redis.
///
/// When workspaces keep their sessions in Redis, the answer says whether the store is
/// connected (its last check, at most a second old) and which workspaces fail closed while it
/// is not. That alone answers 200: every replica shares the one Redis, so a 503 for its outage
/// would take every replica out of the Service and turn 401s for the Redis workspaces into
/// 500s for all workspaces. `GET /ready?store=required` answers 503 while the store is not
/// connected, for a probe that prefers that (every workspace on Redis, or a replica cut off
/// from a Redis its peers reach).
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> impl IntoResponse {
    let registry = state.registry();
    let n = registry.workspaces.len();
    if state.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: finishing in-flight requests before exit".to_string(),
        );
    }
    if n == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no workspaces loaded".to_string(),
        );
    }
    let on_redis: Vec<&str> = registry
        .workspaces
        .iter()
        .filter(|ws| ws.store.is_some())
        .map(|ws| ws.name())
        .collect();
    let Some(store) = registry.workspaces.iter().find_map(|ws| ws.store.as_ref()) else {
        return (StatusCode::OK, format!("ready: {n} workspaces"));
    };
    if store.is_connected() {
        return (
            StatusCode::OK,
            format!("ready: {n} workspaces; redis: connected"),
        );
    }
    let (status, verdict) = match query.as_deref() {
        Some("store=required") => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        _ => (StatusCode::OK, "ready"),
    };
    (
        status,
        format!(
            "{verdict}: {n} workspaces; redis: not connected, sessions of {} fail closed until it is",
            on_redis.join(", ")
        ),
    )
}

/// Whether a request id a proxy sent is a plain token (1 to 64 of `A-Z a-z 0-9 - _ .`), fit
/// for a log line; ingress-nginx's are 32 hex digits. Any other value is dropped and one made
/// up instead.
fn plain_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The `X-Request-ID` a request arrived with, when a plain token ([`plain_request_id`]):
/// ingress-nginx's, or a client's that the proxy passed on.
#[derive(Clone)]
struct ProxyRequestId(axum::http::HeaderValue);

/// Moves the `X-Request-ID` a request arrived with out of the way of the request-id layer,
/// which then makes authgate's own: the log's `request_id` is always authgate's, and the
/// proxy's (a client's, behind Traefik or Caddy) is kept, when plain, as `proxy_request_id`.
async fn own_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    if let Some(v) = req.headers_mut().remove("x-request-id") {
        if v.to_str().is_ok_and(plain_request_id) {
            req.extensions_mut().insert(ProxyRequestId(v));
        }
    }
    req
}

/// Adds a `Set-Cookie` header for each cookie, in order.
pub(super) fn append_set_cookies(
    headers: &mut axum::http::HeaderMap,
    cookies: impl IntoIterator<Item = cookie::Cookie<'static>>,
) {
    for c in cookies {
        if let Ok(v) = axum::http::HeaderValue::from_str(&c.to_string()) {
            headers.append(axum::http::header::SET_COOKIE, v);
        }
    }
}

#[cfg(test)]
mod handler_tests;

#[cfg(test)]
mod tests {
    use super::plain_request_id;

    #[test]
    fn only_plain_tokens_pass_as_request_ids() {
        for (id, plain) in [
            ("5f1c0ffee0ddba115f1c0ffee0ddba11", true),
            ("req-anon-1", true),
            ("a.b_c-D", true),
            ("", false),
            ("a b", false),
            ("a\"b", false),
            ("{\"user\":\"alice\"}", false),
            ("user=alice", false),
        ] {
            assert_eq!(plain_request_id(id), plain, "{id:?}");
        }
        assert!(!plain_request_id(&"a".repeat(65)));
    }
}
