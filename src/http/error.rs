//! The one HTTP error type: every failure of every handler, mapped to a status in one `match`.
//!
//! Owns the status codes NGINX relies on (401 → sign-in, 403 → denial, never 5xx from
//! `/oauth2/auth`) and the reason logged for each. Bodies are generic; details go to the log.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::log_budget::{LogBudget, Verdict};
use super::pages::{self, Page};
use crate::authz::Denial;
use crate::callback::CallbackError;
use crate::forward::HostError;
use crate::identity::UnusableIdentity;
use crate::provider::ProviderError;
use crate::session::{LoginError, SessionError};
use crate::workspace::{BearerError, TenantError};

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The request's host header is missing or malformed.
    #[error("{0}")]
    HostRefused(#[from] HostError),
    /// No workspace may judge the request: the route names none, or the client's host is not
    /// one of the named workspace's hosts.
    #[error("{0}")]
    Tenant(#[from] TenantError),
    /// The client has this many login requests in flight already.
    #[error("this client has {0} login requests in flight already")]
    ClientBusy(u32),
    /// The client holds its bound of spent login states (within a login lifetime).
    #[error(
        "too many logins from this client: it has spent {0} login states within a login lifetime"
    )]
    TooManyLogins(u32),
    /// `/oauth2/auth` without a valid session.
    #[error("unauthenticated: {0}")]
    Unauthenticated(#[from] SessionError),
    /// Bearer token refused.
    #[error("bearer token refused: {0}")]
    Bearer(#[source] BearerError),
    /// Authenticated but not allowed, at `/oauth2/auth`.
    #[error("forbidden: {0}")]
    Forbidden(Denial),
    /// Authenticated but not allowed, at the end of a login.
    #[error("login denied: {0}")]
    LoginDenied(#[source] Denial),
    /// The callback has no `state`.
    #[error("callback without state")]
    StateMissing,
    /// The callback's state leads to no valid login.
    #[error("login state: {0}")]
    LoginState(#[from] LoginError),
    /// The callback's state was used before.
    #[error("login state replayed")]
    StateReplayed,
    /// The provider answered the authorization request with an error (RFC 6749 §4.1.2.1).
    #[error("provider returned error {error:?}")]
    ProviderDenied {
        /// `error`.
        error: String,
        /// `error_description`, shown escaped.
        description: Option<String>,
    },
    /// `?provider=` names no provider of this workspace.
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    /// The callback has no `code`.
    #[error("callback without code")]
    CodeMissing,
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The session store (Redis) cannot be reached at the end of a login.
    #[error("session store unavailable")]
    StoreUnavailable,
    /// The identity names no user, or values that cannot travel in headers.
    #[error("identity unusable: {0}")]
    Identity(#[from] UnusableIdentity),
    /// The session could not be sealed (the identity does not serialise).
    #[error("session not issued: {0}")]
    SessionNotIssued(#[source] SessionError),
    /// The identity could not be written as JSON.
    #[error("identity not encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// The session is larger than the cookies may carry (`session::MAX_CHUNKS`); the
    /// workspace needs the Redis store.
    #[error("session too large for cookies: the workspace needs session.store = \"redis\"")]
    SessionTooLarge,
}

impl From<CallbackError> for AppError {
    fn from(e: CallbackError) -> Self {
        match e {
            CallbackError::State(e) => Self::LoginState(e),
            CallbackError::Replayed => Self::StateReplayed,
            CallbackError::TooManyLogins(n) => Self::TooManyLogins(n),
            CallbackError::ProviderDenied { error, description } => {
                Self::ProviderDenied { error, description }
            }
            CallbackError::CodeMissing => Self::CodeMissing,
            CallbackError::UnknownProvider(p) => Self::UnknownProvider(p),
            CallbackError::Provider(e) => Self::Provider(e),
            CallbackError::Unusable(e) => Self::Identity(e),
            CallbackError::Denied(d) => Self::LoginDenied(d),
            CallbackError::StoreUnavailable => Self::StoreUnavailable,
            CallbackError::TooLarge => Self::SessionTooLarge,
            CallbackError::NotIssued(e) => Self::SessionNotIssued(e),
        }
    }
}

impl From<crate::authn::AuthError> for AppError {
    fn from(e: crate::authn::AuthError) -> Self {
        match e {
            crate::authn::AuthError::Session(e) => Self::Unauthenticated(e),
            crate::authn::AuthError::Bearer(e) => Self::Bearer(e),
        }
    }
}

impl AppError {
    pub(super) fn status(&self) -> StatusCode {
        use AppError::*;
        match self {
            Unauthenticated(_) | Bearer(_) => StatusCode::UNAUTHORIZED,
            // Never 401: NGINX would send the browser to a sign-in that cannot fix it.
            HostRefused(_) | Tenant(_) => StatusCode::FORBIDDEN,
            Forbidden(_) | LoginDenied(_) | ProviderDenied { .. } => StatusCode::FORBIDDEN,
            StateMissing | LoginState(_) | StateReplayed | UnknownProvider(_) | CodeMissing
            | Identity(_) | SessionNotIssued(_) => StatusCode::BAD_REQUEST,
            Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // The operator's to fix, and a retry fails the same way.
            SessionTooLarge => StatusCode::INTERNAL_SERVER_ERROR,
            ClientBusy(_) | TooManyLogins(_) => StatusCode::TOO_MANY_REQUESTS,
            Provider(ProviderError::Unavailable(_)) | StoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Provider(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn page(&self) -> Page {
        use AppError::*;
        match self {
            HostRefused(_) | Tenant(_) => Page::error("Unknown site", "This address is not served by the sign-in service here.", None),
            ClientBusy(_) => Page::error(
                "Too many sign-ins at once",
                "Several sign-ins from your address are still in progress. Wait for them to finish, then try again.",
                Some(("Try again", "/oauth2/start")),
            ),
            TooManyLogins(_) => Page::error(
                "Too many sign-ins from your address",
                "Your address has signed in more often in the last few minutes than the sign-in service allows. Try again in a few minutes.",
                Some(("Try again", "/oauth2/start")),
            ),
            Unauthenticated(_) | Bearer(_) => Page::error("Sign-in required", "Please sign in.", None),
            Forbidden(Denial::EmailUnverified(_)) | LoginDenied(Denial::EmailUnverified(_)) => {
                email_unverified()
            }
            // A `deny` rule: the same for everyone, signed in or not.
            Forbidden(Denial::Rule(_)) => Page::error(
                "Access denied",
                "This page is not available here, whoever asks.",
                None,
            ),
            Forbidden(_) | LoginDenied(_) => Page::error(
                "Access denied",
                "You are signed in, but this account is not allowed here. Ask the workspace's owner for access, or sign in with another account.",
                Some(("Sign out", "/oauth2/sign_out")),
            ),
            ProviderDenied { error, description } => Page::error(
                "Sign-in was not completed",
                &format!(
                    "The identity provider answered “{error}”{}.",
                    description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
                ),
                Some(("Try again", "/oauth2/start")),
            ),
            StateMissing | LoginState(_) | StateReplayed | CodeMissing => Page::error(
                "Sign-in expired or was already used",
                "This sign-in link is no longer valid. Start again from the page you wanted.",
                Some(("Start again", "/oauth2/start")),
            ),
            UnknownProvider(_) => Page::error("Unknown sign-in option", "Choose one of the listed providers.", Some(("Back", "/oauth2/start"))),
            StoreUnavailable => Page::error(
                "Sign-in temporarily unavailable",
                "Your sign-in worked, but the session could not be saved. Try again in a moment.",
                Some(("Try again", "/oauth2/start")),
            ),
            Provider(ProviderError::Unavailable(_)) => Page::error(
                "Identity provider unreachable",
                "The identity provider could not be reached. Try again in a moment.",
                Some(("Try again", "/oauth2/start")),
            ),
            SessionTooLarge => Page::error(
                "Sign-in could not be completed",
                "Your account carries more information (groups, roles, tokens) than fits in this site's sign-in cookies. Ask the site's operator to keep sessions server-side: session.store = \"redis\" in this workspace's authgate configuration.",
                None,
            ),
            Provider(_) | Identity(_) | SessionNotIssued(_) | Encode(_) => Page::error(
                "Sign-in failed",
                "The identity provider's answer could not be accepted.",
                Some(("Start again", "/oauth2/start")),
            ),
        }
    }
}

/// The refusal of a user whose identity provider did not vouch for their email address, where
/// this workspace admits people by email.
fn email_unverified() -> Page {
    Page::error(
        "Email address not verified",
        "Your identity provider has not verified your email address, and this site admits people by their email address. Verify the address with your identity provider (or ask its administrator to), then sign in again.",
        Some(("Sign out", "/oauth2/sign_out")),
    )
}

impl AppError {
    /// The page for this error, without logging it (the error happened elsewhere).
    pub(crate) fn page_response(&self) -> Response {
        pages::render(self.status(), &self.page())
    }
}

/// Refusal and failure lines a second, for the whole process and every route. Beyond it a
/// line is counted, and the next line logged says how many were left out.
const REFUSALS_LOGGED_PER_SECOND: u64 = 50;

static REFUSAL_LOG: LogBudget = LogBudget::new(REFUSALS_LOGGED_PER_SECOND);

/// Lines a second for what any client may do at will without being refused (a login started),
/// a budget of their own so that a flood of them neither fills the log nor hides refusals.
const ACTIVITY_LOGGED_PER_SECOND: u64 = 50;

static ACTIVITY_LOG: LogBudget = LogBudget::new(ACTIVITY_LOGGED_PER_SECOND);

/// Whether a line any client can cause at will fits this second's budget: `Some(n)`, `n` such
/// lines having been left out before it, or `None` to leave it out.
pub(super) fn activity_budget() -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match ACTIVITY_LOG.charge(now) {
        Verdict::Log => Some(0),
        Verdict::LogAfterSuppressing(n) => Some(n),
        Verdict::Suppress => None,
    }
}

impl IntoResponse for AppError {
    /// The error's page, with the error attached for [`log_errors`] to log.
    fn into_response(self) -> Response {
        let mut resp = self.page_response();
        resp.extensions_mut().insert(Logged::refusal(self));
        resp
    }
}

/// An error attached to the answer it became, for [`log_errors`]: handlers and `IntoResponse`
/// never log refusals themselves.
#[derive(Clone)]
pub(super) struct Logged {
    /// The error.
    error: Arc<dyn std::error::Error + Send + Sync>,
    /// Which line it makes.
    kind: LineKind,
}

/// The log line of an attached error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// An [`AppError`]: 400, 401 and 403 are "refused" at info, within the rate budget; any
    /// other status "failed" at warn.
    App,
    /// A refused back-channel logout, at info: anyone can post to that route, so its lines share
    /// the budget too.
    Backchannel,
}

impl Logged {
    fn refusal(error: AppError) -> Self {
        Self {
            error: Arc::new(error),
            kind: LineKind::App,
        }
    }

    /// A refused back-channel logout.
    pub(super) fn backchannel(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            error: Arc::new(error),
            kind: LineKind::Backchannel,
        }
    }
}

/// Where `/oauth2/auth` refused: that route runs without the request span, so its log line
/// names the host, the workspace its route names, the user where known and the request id.
#[derive(Clone, Debug)]
pub(super) struct RefusalContext {
    /// The host the client wrote.
    pub(super) host: String,
    /// The workspace the route names, or "".
    pub(super) route_workspace: String,
    /// The user, where one was known.
    pub(super) user: String,
    /// authgate's own id for this refusal, made up here.
    pub(super) request_id: String,
    /// The id the proxy sent in `X-Request-ID` (ingress-nginx's, or its client's: the
    /// controller passes a client's own on), or "".
    pub(super) proxy_request_id: String,
}

/// The one place refusals and failures are logged: after the handler, from the error its answer
/// carries ([`Logged`]), in the request's span (or the [`RefusalContext`]'s). Refusals (4xx) at
/// info, failures at warn; every kind, back-channel logout refusals included, at most
/// [`REFUSALS_LOGGED_PER_SECOND`] lines a second together.
pub(super) async fn log_errors(resp: Response) -> Response {
    if let Some(logged) = resp.extensions().get::<Logged>() {
        let log = || log_one(resp.status(), logged);
        match resp.extensions().get::<RefusalContext>() {
            Some(c) => tracing::info_span!(
                "auth",
                host = %c.host,
                route_workspace = %c.route_workspace,
                user = %c.user,
                request_id = %c.request_id,
                proxy_request_id = %c.proxy_request_id,
            )
            .in_scope(log),
            None => log(),
        }
    }
    resp
}

fn log_one(status: StatusCode, logged: &Logged) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Every line here is one a client can cause at will: each charges the one budget.
    let left_out = match REFUSAL_LOG.charge(now) {
        Verdict::Log => 0,
        Verdict::LogAfterSuppressing(n) => n,
        Verdict::Suppress => return,
    };
    let reason = &logged.error;
    let code = status.as_u16();
    let refused = matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
    );
    match (logged.kind, refused, left_out) {
        (LineKind::Backchannel, _, 0) => {
            tracing::info!(status = code, reason = %reason, "back-channel logout refused")
        }
        (LineKind::Backchannel, _, n) => tracing::info!(
            status = code,
            reason = %reason,
            not_logged = n,
            "back-channel logout refused (and {n} more refusals not logged in the last second)"
        ),
        (LineKind::App, false, 0) => tracing::warn!(status = code, reason = %reason, "failed"),
        (LineKind::App, false, n) => tracing::warn!(
            status = code,
            reason = %reason,
            not_logged = n,
            "failed (and {n} more refusals not logged in the last second)"
        ),
        (LineKind::App, true, 0) => tracing::info!(status = code, reason = %reason, "refused"),
        (LineKind::App, true, n) => tracing::info!(
            status = code,
            reason = %reason,
            not_logged = n,
            "refused (and {n} more refusals not logged in the last second)"
        ),
    }
}
