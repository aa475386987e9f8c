//! Sessions and login state, carried by encrypted cookies.
//!
//! Owns the cookie formats: [`SessionCodec`] for the session (identity, workspace, expiry, and
//! the tokens a workspace asks to keep), one cookie or split over numbered ones (`chunks`), and
//! [`LoginState`] for the short-lived state of one login in progress. Knows nothing of HTTP
//! routing; the clock is always passed in.

mod chunks;
mod cookie_jar;
mod keys;
mod link;
mod login;
mod seal;
mod store;

use std::time::Duration;

use cookie::{Cookie, Key, SameSite};
use serde::{Deserialize, Serialize};

use crate::identity::Identity;

pub use chunks::{MAX_CHUNKS, MAX_JOINED_LEN};
pub use cookie_jar::cookies_named;
pub use keys::{KeyError, MasterSecrets, Purpose, MIN_SECRET_BYTES};
pub use link::OpenError as StoreOpenError;
pub use login::{
    LoginCodec, LoginError, LoginState, LOGIN_LIFETIME, MAX_COOKIE_BYTES, MAX_PARALLEL_LOGINS,
};
pub use seal::MAX_SEALED_LEN;

pub use store::{
    index_key, key as store_key, IndexKind, LockToken, RedisStore, StoreCache, StoreError,
};

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
    /// The identity is too large to fit the session cookies.
    #[error("session would exceed the cookie size limit")]
    TooLarge,
    /// Split over several cookies, and they do not join: one is missing or mangled.
    #[error("session cookie chunks do not join")]
    BrokenChunks,
    /// A server-side session that was signed out or has expired in the store.
    #[error("session revoked or expired in the store")]
    Revoked,
    /// The session store cannot be reached.
    #[error("session store unavailable")]
    StoreUnavailable,
    /// The provider refused to refresh the session (its grant was revoked, the user is gone),
    /// or answered a refresh with something that cannot be trusted.
    #[error("session ended by the identity provider at refresh")]
    Ended,
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
    /// Tokens kept for apps or for logout at the IdP; absent from cookies of workspaces that
    /// ask for none (and from every cookie issued before they existed).
    #[serde(rename = "t", default, skip_serializing_if = "Tokens::is_empty")]
    pub tokens: Tokens,
}

/// The provider's tokens a session keeps, only those its workspace needs: the access token for
/// `pass_access_token`/`pass_authorization_header`, the ID token for `pass_id_token` and as
/// `id_token_hint` of a logout at the IdP, the refresh token for `session.refresh_interval`.
/// The refresh token is authgate's alone: it is never passed to an app, nor logged.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The OAuth 2.0 access token.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// The OIDC ID token, compact JWT.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The OAuth 2.0 refresh token.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access", &self.access.as_ref().map(|_| "redacted"))
            .field("id", &self.id.as_ref().map(|_| "redacted"))
            .field("refresh", &self.refresh.as_ref().map(|_| "redacted"))
            .finish()
    }
}

/// Which tokens a workspace keeps in its sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// The access token.
    pub access: bool,
    /// The ID token.
    pub id: bool,
    /// The refresh token.
    pub refresh: bool,
}

impl Tokens {
    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.access.is_none() && self.id.is_none() && self.refresh.is_none()
    }

    /// Only the tokens asked for.
    pub fn keep(self, keep: Keep) -> Self {
        Self {
            access: self.access.filter(|_| keep.access),
            id: self.id.filter(|_| keep.id),
            refresh: self.refresh.filter(|_| keep.refresh),
        }
    }
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

    /// Seals a new session for `id`, issued at `now` (seconds since the epoch), in one cookie;
    /// [`SessionError::TooLarge`] when it does not fit one.
    pub fn issue(&self, id: &Identity, now: u64) -> Result<Cookie<'static>, SessionError> {
        let sealed = self.seal(id.clone(), None, Tokens::default(), now)?;
        if sealed.len() > MAX_SEALED_LEN {
            return Err(SessionError::TooLarge);
        }
        Ok(self.cookie(sealed, self.lifetime))
    }

    /// Seals a new session for `id` and `tokens`: one cookie when it fits, else split over
    /// numbered cookies (`<name>-0`, `<name>-1`, …, see `chunks`); [`SessionError::TooLarge`]
    /// beyond [`MAX_CHUNKS`]. Pair with [`SessionCodec::stale`] to delete what the browser
    /// holds from an older session.
    pub fn issue_split(
        &self,
        id: &Identity,
        tokens: Tokens,
        now: u64,
    ) -> Result<Vec<Cookie<'static>>, SessionError> {
        self.reissue(id, tokens, (now, now), now + self.lifetime.as_secs())
    }

    /// Seals, at `now`, a session renewed at `iat` that still ends at `exp`, the end of the
    /// session it replaces (a refresh renews what the session says, never how long it lasts):
    /// one cookie when it fits, else split as [`SessionCodec::issue_split`] does. `iat` is when
    /// the provider answered, so that the next refresh is due one interval after it, however
    /// late a request brings the renewal to the browser.
    pub fn reissue(
        &self,
        id: &Identity,
        tokens: Tokens,
        (iat, now): (u64, u64),
        exp: u64,
    ) -> Result<Vec<Cookie<'static>>, SessionError> {
        let sealed = self.seal_until(id.clone(), None, tokens, iat, exp)?;
        let max_age = Duration::from_secs(exp.saturating_sub(now));
        if sealed.len() <= MAX_SEALED_LEN {
            return Ok(vec![self.cookie(sealed, max_age)]);
        }
        let parts = chunks::split(&self.name, &sealed).ok_or(SessionError::TooLarge)?;
        Ok(parts
            .into_iter()
            .map(|(name, value)| build_cookie(name, value, max_age, self.secure))
            .collect())
    }

    /// Seals a ticket for a server-side session whose identity lives in the store.
    pub fn issue_ticket(&self, ticket: &str, now: u64) -> Result<Cookie<'static>, SessionError> {
        let sealed = self.seal(
            Identity::default(),
            Some(ticket.to_string()),
            Tokens::default(),
            now,
        )?;
        if sealed.len() > MAX_SEALED_LEN {
            return Err(SessionError::TooLarge);
        }
        Ok(self.cookie(sealed, self.lifetime))
    }

    /// The session lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The sealed session, of any length.
    fn seal(
        &self,
        id: Identity,
        sid: Option<String>,
        tokens: Tokens,
        now: u64,
    ) -> Result<String, SessionError> {
        self.seal_until(id, sid, tokens, now, now + self.lifetime.as_secs())
    }

    /// The sealed session, issued at `now`, ending at `exp`.
    fn seal_until(
        &self,
        id: Identity,
        sid: Option<String>,
        tokens: Tokens,
        now: u64,
        exp: u64,
    ) -> Result<String, SessionError> {
        let payload = Session {
            v: SESSION_VERSION,
            w: self.workspace.clone(),
            id,
            iat: now,
            exp,
            sid,
            tokens,
        };
        let json = serde_json::to_string(&payload).map_err(|_| SessionError::Malformed)?;
        seal::seal(&self.keys, &self.name, json).ok_or(SessionError::Malformed)
    }

    /// Opens the session a request's `Cookie` headers carry: the single cookie first, else the
    /// chunks joined.
    pub fn open_request<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        now: u64,
    ) -> Result<Session, SessionError> {
        let headers: Vec<&str> = cookie_headers.into_iter().collect();
        self.open_headers(&headers, now)
    }

    /// [`SessionCodec::open_request`] on headers already collected. The chunks are looked for
    /// only when the single cookie does not open.
    pub fn open_headers(&self, headers: &[&str], now: u64) -> Result<Session, SessionError> {
        let e = match self.open(cookies_named(headers.iter().copied(), &self.name), now) {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        match chunks::join(headers, &self.name) {
            Err(chunks::JoinError::Absent) => Err(e),
            Err(chunks::JoinError::Broken) => Err(SessionError::BrokenChunks),
            Ok(joined) => self.open_sealed(&joined, MAX_JOINED_LEN, now),
        }
    }

    /// Deletions for the session cookies in the request's `Cookie` headers that `issued` does
    /// not replace: a smaller new session clears the chunks of a larger old one, a chunked one
    /// the single cookie.
    pub fn stale<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        issued: &[Cookie<'static>],
    ) -> Vec<Cookie<'static>> {
        let headers: Vec<&str> = cookie_headers.into_iter().collect();
        chunks::present(&headers, &self.name)
            .into_iter()
            .filter(|name| !issued.iter().any(|c| c.name() == name))
            .map(|name| build_cookie(name, String::new(), Duration::ZERO, self.secure))
            .collect()
    }

    /// Deletions for every session cookie: the single one always, and each chunk present.
    pub fn clear_all<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Cookie<'static>> {
        let headers: Vec<&str> = cookie_headers.into_iter().collect();
        let mut out = vec![self.clear()];
        out.extend(
            chunks::present(&headers, &self.name)
                .into_iter()
                .filter(|name| *name != self.name)
                .map(|name| build_cookie(name, String::new(), Duration::ZERO, self.secure)),
        );
        out
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
        self.open_sealed(value, MAX_SEALED_LEN, now)
    }

    fn open_sealed(&self, value: &str, max_len: usize, now: u64) -> Result<Session, SessionError> {
        if value.len() > max_len {
            return Err(SessionError::Oversized);
        }
        let json = seal::open_up_to(&self.keys, &self.name, value, max_len)
            .ok_or(SessionError::Undecryptable)?;
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
