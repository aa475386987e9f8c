//! The end of a login: from what the IdP sent back to `/oauth2/callback` to a session.
//!
//! Owns the checks, in order: the login state belongs to this workspace, the IdP's own error,
//! the code, then the state spent once (RFC 9700 §4.7: a replayed `state` is refused; a client
//! over its share of spent states is refused, no one else), the provider's exchange and
//! verification, an identity that can travel in headers, the workspace's `[authz]`, and the
//! session established. A callback that cannot complete a login (an `error`, no `code`) is
//! refused before its state is recorded: recording it would let anyone fill the set with
//! logins that never reach the IdP, and replaying it completes nothing either. One that can is
//! recorded before the exchange, so that two callbacks with one state never both reach it.
//! The HTTP handler only extracts and maps ([`crate::http`]); every refusal is a
//! [`CallbackError`].

use cookie::Cookie;
use url::Url;

use crate::authz::Denial;
use crate::identity::{Identity, UnusableIdentity};
use crate::provider::{Callback, ProviderError};
use crate::secret::Secret;
use crate::session::{LoginError, LoginState, SessionError};
use crate::spent::Spend;
use crate::state::AppState;
use crate::workspace::Workspace;

/// What the IdP's redirect to `/oauth2/callback` carried, besides `state`, and from where.
#[derive(Debug, Clone)]
pub struct CallbackParams {
    /// The client's address ([`crate::http::Incoming::client`]): whose share of spent states
    /// the state counts against.
    pub client: std::net::IpAddr,
    /// `code`.
    pub code: Option<String>,
    /// RFC 9207 `iss`.
    pub iss: Option<String>,
    /// `error` (RFC 6749 §4.1.2.1).
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

/// A login that ended in a session.
#[derive(Debug)]
pub struct Completed {
    /// Who logged in.
    pub identity: Identity,
    /// The session cookies, and deletions of an older session's that they do not replace.
    pub cookies: Vec<Cookie<'static>>,
    /// Where to send the browser: the login's `rd`, validated again.
    pub rd: String,
}

/// Why a callback does not end in a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The login state was made for another workspace.
    #[error("login state: {0}")]
    State(#[source] LoginError),
    /// The `state` was used before.
    #[error("login state replayed")]
    Replayed,
    /// The client holds its bound of spent login states: this one could not be recorded.
    #[error(
        "too many logins from this client: it has spent {0} login states within a login lifetime"
    )]
    TooManyLogins(u32),
    /// The IdP answered with an error.
    #[error("provider returned error {error:?}")]
    ProviderDenied {
        /// `error`.
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// No `code`.
    #[error("callback without code")]
    CodeMissing,
    /// The login names a provider the workspace no longer has.
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    /// The provider failed or refused.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The identity names no user, or values that cannot travel in headers.
    #[error("identity unusable: {0}")]
    Unusable(#[from] UnusableIdentity),
    /// The workspace's `[authz]` refuses the user.
    #[error("login denied: {0}")]
    Denied(#[source] Denial),
    /// The session could not be saved in the store.
    #[error("session store unavailable")]
    StoreUnavailable,
    /// The session does not fit the cookies.
    #[error("session too large for cookies: the workspace needs session.store = \"redis\"")]
    TooLarge,
    /// The session could not be sealed.
    #[error("session not issued: {0}")]
    NotIssued(#[source] SessionError),
}

impl AppState {
    /// Completes `login` (found by its `state`, `returned_state`) with what the IdP sent back.
    /// The request's span gets the provider and, once known, the user.
    pub async fn complete_login(
        &self,
        ws: &Workspace,
        login: LoginState,
        returned_state: &str,
        params: CallbackParams,
        redirect_uri: Url,
        cookie_headers: &[&str],
    ) -> Result<Completed, CallbackError> {
        let client = params.client;
        if login.workspace != ws.name() {
            return Err(CallbackError::State(LoginError::StateMismatch));
        }
        if let Some(error) = params.error {
            return Err(CallbackError::ProviderDenied {
                error,
                description: params.error_description,
            });
        }
        let code = params
            .code
            .filter(|c| !c.is_empty())
            .ok_or(CallbackError::CodeMissing)?;
        match self.spend_state(ws.name(), returned_state, client, login.created) {
            Spend::Fresh => {}
            Spend::Replayed => return Err(CallbackError::Replayed),
            Spend::BelowFloor => return Err(CallbackError::State(LoginError::BelowFloor)),
            Spend::ClientFull => {
                return Err(CallbackError::TooManyLogins(
                    self.login_room(client).err().unwrap_or(0),
                ))
            }
        }
        record("provider", &login.provider);
        let provider = ws
            .provider(Some(&login.provider))
            .ok_or_else(|| CallbackError::UnknownProvider(login.provider.clone()))?;
        let callback = Callback {
            code: Secret::new(code),
            iss: params.iss,
            redirect_uri,
        };
        let done = provider.finish(&callback, &login, self.now()).await?;
        let identity = &done.identity;
        record("user", &identity.user);
        identity.check_usable()?;
        ws.config
            .authz
            .check(identity)
            .map_err(CallbackError::Denied)?;
        let cookies = ws
            .establish(&done, cookie_headers.iter().copied(), self.now())
            .await
            .map_err(|e| match e {
                SessionError::StoreUnavailable => CallbackError::StoreUnavailable,
                SessionError::TooLarge => {
                    tracing::warn!(workspace = ws.name(), user = %identity.user, groups = identity.groups.len(), "session too large for cookies: set session.store = \"redis\" for this workspace");
                    CallbackError::TooLarge
                }
                e => CallbackError::NotIssued(e),
            })?;
        let rd = ws.redirect_policy().validate(Some(&login.rd));
        tracing::info!(workspace = ws.name(), provider = provider.id(), user = %identity.user, "login completed");
        Ok(Completed {
            identity: done.identity,
            cookies,
            rd,
        })
    }
}

/// Fills a field of the request's span (declared empty by the HTTP layer), so every later line
/// of this request, refusals included, carries it.
fn record(field: &str, value: &str) {
    tracing::Span::current().record(field, value);
}
