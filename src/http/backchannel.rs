//! `POST /oauth2/backchannel_logout`: OpenID Connect Back-Channel Logout 1.0 (§2.5, §2.8).
//!
//! A thin handler: reads the form field `logout_token` (body bounded by [`MAX_BODY`] and by
//! [`body::BODY_READ_TIMEOUT`]), has the
//! workspace verify it ([`Workspace::verify_logout_token`]) and end the sessions it names
//! ([`Workspace::end_by_logout_token`]). Its caller is the IdP, not a browser, so its answers are
//! JSON (§2.8), not pages: 200 when processed, 400 with `{"error": …}` for a token it refuses
//! (nothing is ended), 503 when the store or the provider cannot be reached — not 400, since the
//! IdP may retry a 5xx and the token was not at fault.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::body::{self, BodyError};
use super::error::Logged;
use super::Incoming;
use crate::oidc::LogoutError;
use crate::state::AppState;

/// The largest body read: a logout token is a few KB at most.
pub(super) const MAX_BODY: usize = 16 * 1024;

/// Why a logout request was not processed.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// No readable `logout_token` form field.
    #[error("no logout_token in the form body ({0})")]
    Request(&'static str),
    /// The body was not read: over [`MAX_BODY`], or not all there within the deadline.
    #[error("{0}")]
    Body(#[from] BodyError),
    /// The workspace does not accept back-channel logout.
    #[error("back-channel logout is not enabled for this workspace")]
    NotEnabled,
    /// The token was refused.
    #[error("logout token refused: {0}")]
    Token(#[from] LogoutError),
    /// The token was accepted before (§2.6 point 7).
    #[error("logout token replayed (jti seen before)")]
    Replayed,
    /// Redis cannot be reached: nothing was ended, the IdP may retry.
    #[error("session store unavailable")]
    StoreUnavailable,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::StoreUnavailable | Self::Token(LogoutError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Body(BodyError::TooSlow) => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = match self {
            Self::Request(_) | Self::Body(_) | Self::NotEnabled => "invalid_request",
            Self::StoreUnavailable | Self::Token(LogoutError::Unavailable(_)) => {
                "temporarily_unavailable"
            }
            Self::Token(_) | Self::Replayed => "invalid_request",
        };
        let body = serde_json::json!({"error": error, "error_description": self.to_string()});
        let mut resp = json(status, body.to_string());
        resp.extensions_mut().insert(Logged::backchannel(self));
        resp
    }
}

/// A JSON answer that no cache keeps (§2.8).
fn json(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `POST /oauth2/backchannel_logout[/{workspace}]` with `logout_token=<JWT>`.
pub(super) async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let (incoming, body) = Incoming::with_body(req, &state).await;
    let ws = match incoming.workspace() {
        Ok(ws) => ws.clone(),
        Err(e) => return e.into_response(),
    };
    tracing::Span::current().record("workspace", ws.name());
    match process(&state, &ws, body).await {
        Ok(ended) => {
            tracing::info!(workspace = ws.name(), ended, "back-channel logout");
            json(StatusCode::OK, "{}".into())
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn process(
    state: &AppState,
    ws: &crate::workspace::Workspace,
    body: Body,
) -> Result<usize, Refusal> {
    if !ws.config.session.backchannel_logout {
        return Err(Refusal::NotEnabled);
    }
    let bytes = body::read(body, MAX_BODY).await?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::Request("field missing"))?;
    let (provider, claims) = ws.verify_logout_token(&token, state.now()).await?;
    tracing::Span::current().record("provider", provider.as_str());
    match ws.end_by_logout_token(&provider, &claims).await {
        Ok(Some(0)) => {
            // Valid, and yet nothing ended: the IdP believes a logout happened that did not.
            tracing::warn!(
                workspace = ws.name(),
                provider = %provider,
                by_sid = claims.sid.is_some(),
                by_sub = claims.subject.is_some(),
                "back-channel logout ended no session: none is indexed under its sid or sub (signed in before backchannel_logout was on, already ended, or expired)"
            );
            Ok(0)
        }
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(Refusal::Replayed),
        Err(e) => {
            ws.metrics.redis_error(crate::metrics::RedisOp::Delete);
            tracing::warn!(workspace = ws.name(), error = %e, "cannot end sessions for a logout token");
            Err(Refusal::StoreUnavailable)
        }
    }
}
