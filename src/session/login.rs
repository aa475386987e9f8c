//! The login-state cookie: one per login in progress, so parallel tabs never collide.
//!
//! Owns what travels from `/oauth2/start` to `/oauth2/callback`: state, nonce, PKCE verifier,
//! expected issuer, provider and `rd`, sealed with a key of its own per workspace. The cookie's
//! name carries a digest of the state, so the callback finds exactly its own login.

use std::time::Duration;

use base64::Engine;
use cookie::{Cookie, Key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::seal::{self, MAX_SEALED_LEN};
use super::{build_cookie, cookie_jar};
use crate::redirect::FALLBACK;
use crate::secret::Secret;

/// How long a login may take between `/oauth2/start` and `/oauth2/callback`.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(600);

/// Logins kept in parallel; older ones are dropped so cookies never outgrow request headers.
pub const MAX_PARALLEL_LOGINS: usize = 5;

/// Bytes of name and value together that browsers keep in one cookie: RFC 6265 §6.1 asks for
/// at least 4096, and Chrome and Firefox drop a larger cookie without a word.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// Whether a login cookie named `name` with value `sealed` reaches the callback intact: the
/// browser keeps it ([`MAX_COOKIE_BYTES`]) and [`seal::open`] accepts it ([`MAX_SEALED_LEN`]).
pub(super) fn fits(name: &str, sealed: &str) -> bool {
    sealed.len() <= MAX_SEALED_LEN && name.len() + sealed.len() <= MAX_COOKIE_BYTES
}

/// One login in progress.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginState {
    /// Workspace name.
    pub workspace: String,
    /// Provider id within the workspace.
    pub provider: String,
    /// The `state` sent to the provider (CSRF, RFC 6749 §10.12).
    pub state: String,
    /// The `nonce` sent (OIDC Core §3.1.2.1).
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636).
    pub pkce_verifier: String,
    /// Issuer the response must come from (RFC 9207).
    pub issuer: String,
    /// Where to go after login, already validated.
    pub rd: String,
    /// Created at, seconds since the epoch.
    pub created: u64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("workspace", &self.workspace)
            .field("provider", &self.provider)
            .field("rd", &self.rd)
            .finish_non_exhaustive()
    }
}

/// Seals and finds login-state cookies for one workspace.
#[derive(Clone)]
pub struct LoginCodec {
    /// Login keys of this workspace, newest first.
    keys: Vec<Key>,
    /// Name prefix (`__Host-authgate-login-` or `authgate-login-`).
    prefix: String,
    /// Whether cookies carry `Secure`.
    secure: bool,
}

impl LoginCodec {
    /// A codec; `secure` also picks the `__Host-` prefix.
    pub fn new(keys: Vec<Key>, secure: bool) -> Self {
        let prefix = if secure {
            "__Host-authgate-login-"
        } else {
            "authgate-login-"
        };
        Self {
            keys,
            prefix: prefix.into(),
            secure,
        }
    }

    /// The cookie name for a given state value.
    pub fn cookie_name(&self, state: &str) -> String {
        let digest = Sha256::digest(state.as_bytes());
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..9]);
        format!("{}{tag}", self.prefix)
    }

    /// The cookie carrying `login`. An `rd` so long that the cookie would not fit
    /// ([`fits`]) is replaced by [`FALLBACK`]: the login then ends at `/` instead of never
    /// ending, because the browser would drop the cookie or [`LoginCodec::find`] refuse it.
    /// `None` only without a key, or when even the shortened login does not fit.
    pub fn issue(&self, login: &LoginState) -> Option<Cookie<'static>> {
        let name = self.cookie_name(&login.state);
        let mut sealed = self.seal(&name, login)?;
        if !fits(&name, &sealed) {
            tracing::info!(
                workspace = %login.workspace,
                rd_len = login.rd.len(),
                "return target too long for the login cookie; the login returns to / instead"
            );
            let shortened = LoginState {
                rd: FALLBACK.to_string(),
                ..login.clone()
            };
            sealed = self.seal(&name, &shortened)?;
            if !fits(&name, &sealed) {
                return None;
            }
        }
        Some(build_cookie(name, sealed, LOGIN_LIFETIME, self.secure))
    }

    fn seal(&self, name: &str, login: &LoginState) -> Option<String> {
        let json = serde_json::to_string(login).ok()?;
        seal::seal(&self.keys, name, json)
    }

    /// The login whose `state` the provider sent back, if its cookie is present, opens, matches
    /// the state exactly (constant-time) and has not expired.
    pub fn find<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        state: &str,
        now: u64,
    ) -> Result<LoginState, LoginError> {
        let name = self.cookie_name(state);
        let mut values = cookie_jar::cookies_named(cookie_headers, &name).peekable();
        if values.peek().is_none() {
            return Err(LoginError::NoCookie);
        }
        let login = values
            .find_map(|v| seal::open(&self.keys, &name, v))
            .and_then(|json| serde_json::from_str::<LoginState>(&json).ok())
            .ok_or(LoginError::Undecryptable)?;
        if !Secret::new(login.state.clone()).ct_eq(state) {
            return Err(LoginError::StateMismatch);
        }
        if now > login.created + LOGIN_LIFETIME.as_secs() {
            return Err(LoginError::Expired);
        }
        Ok(login)
    }

    /// Cookies deleting the login for `state`.
    pub fn clear(&self, state: &str) -> Cookie<'static> {
        build_cookie(
            self.cookie_name(state),
            String::new(),
            Duration::ZERO,
            self.secure,
        )
    }

    /// Deletions for the oldest logins in progress, so that with the one being started at
    /// most [`MAX_PARALLEL_LOGINS`] remain.
    pub fn evict_oldest<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Cookie<'static>> {
        let mut pending: Vec<(u64, &str)> =
            cookie_jar::cookies_with_prefix(cookie_headers, &self.prefix)
                .into_iter()
                .map(|(name, value)| {
                    let created = seal::open(&self.keys, name, value)
                        .and_then(|j| serde_json::from_str::<LoginState>(&j).ok())
                        .map_or(0, |l| l.created);
                    (created, name)
                })
                .collect();
        pending.sort();
        let excess = (pending.len() + 1).saturating_sub(MAX_PARALLEL_LOGINS);
        pending
            .into_iter()
            .take(excess)
            .map(|(_, name)| {
                build_cookie(name.to_string(), String::new(), Duration::ZERO, self.secure)
            })
            .collect()
    }
}

/// Why the callback's state does not lead to a login in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// No login cookie for this state: never started here, already used, or expired.
    #[error("no login in progress for this state")]
    NoCookie,
    /// The cookie does not decrypt with this workspace's keys.
    #[error("login cookie does not decrypt")]
    Undecryptable,
    /// The cookie's state differs from the returned one.
    #[error("state does not match the login cookie")]
    StateMismatch,
    /// Older than [`LOGIN_LIFETIME`].
    #[error("login took too long")]
    Expired,
    /// Started at or before the spent-state set's floor: the set forgot states that old to make
    /// room, so this one may have been used already ([`crate::spent`]).
    #[error(
        "login started before the spent-state set's floor (it forgot states that old to make room)"
    )]
    BelowFloor,
}
