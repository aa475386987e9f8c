//! Sessions and login state, carried by encrypted cookies.
//!
//! Owns the cookie formats: [`SessionCodec`] for the session (identity, workspace, expiry) and
//! [`LoginState`] for the short-lived state of one login in progress. Knows nothing of HTTP
//! routing; the clock is always passed in.

mod cookie_jar;
mod keys;
mod login;
mod seal;
mod store;

use std::time::Duration;

use cookie::{Cookie, Key, SameSite};
use serde::{Deserialize, Serialize};

use crate::identity::Identity;

pub use cookie_jar::cookies_named;
pub use keys::{KeyError, MasterSecrets, Purpose, MIN_SECRET_BYTES};
pub use login::{
    LoginCodec, LoginError, LoginState, LOGIN_LIFETIME, MAX_COOKIE_BYTES, MAX_PARALLEL_LOGINS,
};
pub use seal::MAX_SEALED_LEN;
pub use store::{index_key, key as store_key, IndexKind, RedisStore, StoreCache, StoreError};

/// Why a session cookie does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No cookie of the workspace's name.
    #[error("no session cookie")]
    Missing,
    /// Larger than any cookie authgate issues.
    #[error("session cookie is oversized")]
    Oversized,
    /// Tampered, truncated, sealed with an unknown key or for another workspace's cookie.
    #[error("session cookie does not decrypt")]
    Undecryptable,
    /// Decrypted but not a session of this version.
    #[error("session cookie is malformed")]
    Malformed,
    /// Sealed for another workspace.
    #[error("session belongs to another workspace")]
    WrongWorkspace,
    /// Past its expiry.
    #[error("session expired")]
    Expired,
    /// The identity is too large to fit a cookie.
    #[error("session would exceed the cookie size limit")]
    TooLarge,
    /// A server-side session that was signed out or has expired in the store.
    #[error("session revoked or expired in the store")]
    Revoked,
    /// The session store cannot be reached.
    #[error("session store unavailable")]
    StoreUnavailable,
}

/// What the session cookie holds, before sealing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Format version.
    pub v: u8,
    /// Workspace name the session was issued for.
    pub w: String,
    /// The user.
    pub id: Identity,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// Server-side session ticket; `id` is then empty and lives in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

const SESSION_VERSION: u8 = 1;

/// Issues and opens one workspace's session cookies.
#[derive(Clone)]
pub struct SessionCodec {
    /// Keys derived for this workspace, newest first.
    keys: Vec<Key>,
    /// Cookie name.
    name: String,
    /// Workspace name, checked inside the payload too.
    workspace: String,
    /// Session lifetime.
    lifetime: Duration,
    /// Whether cookies carry `Secure`.
    secure: bool,
}

impl std::fmt::Debug for SessionCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCodec")
            .field("name", &self.name)
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl SessionCodec {
    /// A codec for one workspace.
    pub fn new(
        keys: Vec<Key>,
        name: &str,
        workspace: &str,
        lifetime: Duration,
        secure: bool,
    ) -> Self {
        Self {
            keys,
            name: name.into(),
            workspace: workspace.into(),
            lifetime,
            secure,
        }
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Seals a new session for `id`, issued at `now` (seconds since the epoch).
    pub fn issue(&self, id: &Identity, now: u64) -> Result<Cookie<'static>, SessionError> {
        self.seal(id.clone(), None, now)
    }

    /// Seals a ticket for a server-side session whose identity lives in the store.
    pub fn issue_ticket(&self, ticket: &str, now: u64) -> Result<Cookie<'static>, SessionError> {
        self.seal(Identity::default(), Some(ticket.to_string()), now)
    }

    /// The session lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn seal(
        &self,
        id: Identity,
        sid: Option<String>,
        now: u64,
    ) -> Result<Cookie<'static>, SessionError> {
        let payload = Session {
            v: SESSION_VERSION,
            w: self.workspace.clone(),
            id,
            iat: now,
            exp: now + self.lifetime.as_secs(),
            sid,
        };
        let json = serde_json::to_string(&payload).map_err(|_| SessionError::Malformed)?;
        let sealed = seal::seal(&self.keys, &self.name, json).ok_or(SessionError::Malformed)?;
        if sealed.len() > MAX_SEALED_LEN {
            return Err(SessionError::TooLarge);
        }
        Ok(self.cookie(sealed, self.lifetime))
    }

    /// Opens the first valid session among the cookie values offered under this name.
    pub fn open<'a>(
        &self,
        values: impl IntoIterator<Item = &'a str>,
        now: u64,
    ) -> Result<Session, SessionError> {
        let mut last = SessionError::Missing;
        for value in values {
            match self.open_one(value, now) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn open_one(&self, value: &str, now: u64) -> Result<Session, SessionError> {
        if value.len() > MAX_SEALED_LEN {
            return Err(SessionError::Oversized);
        }
        let json = seal::open(&self.keys, &self.name, value).ok_or(SessionError::Undecryptable)?;
        let s: Session = serde_json::from_str(&json).map_err(|_| SessionError::Malformed)?;
        if s.v != SESSION_VERSION {
            return Err(SessionError::Malformed);
        }
        if s.w != self.workspace {
            return Err(SessionError::WrongWorkspace);
        }
        if now >= s.exp {
            return Err(SessionError::Expired);
        }
        Ok(s)
    }

    /// A cookie that deletes the session.
    pub fn clear(&self) -> Cookie<'static> {
        self.cookie(String::new(), Duration::ZERO)
    }

    fn cookie(&self, value: String, max_age: Duration) -> Cookie<'static> {
        build_cookie(self.name.clone(), value, max_age, self.secure)
    }
}

/// A host-only cookie with the flags every authgate cookie carries.
pub(crate) fn build_cookie(
    name: String,
    value: String,
    max_age: Duration,
    secure: bool,
) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(secure);
    c.set_same_site(SameSite::Lax);
    c.set_max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64));
    c
}

#[cfg(test)]
mod tests;
