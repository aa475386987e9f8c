//! Who the user is, in the one shape every provider produces and every check reads.
//!
//! Owns the [`Identity`] type. Plain data; providers build it, sessions carry it, `authz`
//! judges it, the auth endpoint turns it into `X-Auth-Request-*` headers.

use serde::{Deserialize, Serialize};

/// The authenticated user, as the session cookie stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    /// Value for `X-Auth-Request-User`.
    #[serde(rename = "u")]
    pub user: String,
    /// Value for `X-Auth-Request-Email` (empty when the provider gave none).
    #[serde(rename = "e", default)]
    pub email: String,
    /// Value for `X-Auth-Request-Preferred-Username`.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Groups, roles, orgs and teams, as authorization and `X-Auth-Request-Groups` see them.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The provider's id for the user (`sub`, GitHub's numeric id).
    #[serde(rename = "s", default)]
    pub subject: String,
    /// The workspace provider id that logged the user in.
    #[serde(rename = "i", default)]
    pub provider: String,
}

impl Identity {
    /// Whether every value can travel in an HTTP header as it is (no CR, LF or other control
    /// characters), so a hostile claim can never split a header.
    pub fn is_header_safe(&self) -> bool {
        let ok = |s: &str| !s.chars().any(|c| c.is_control());
        ok(&self.user)
            && ok(&self.email)
            && self.preferred_username.as_deref().is_none_or(ok)
            && self.groups.iter().all(|g| ok(g) && !g.contains(','))
    }
}

/// Why an identity cannot be sent to apps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnusableIdentity {
    /// No value for `X-Auth-Request-User`.
    #[error("no user claim")]
    NoUser,
    /// A value would break a header (control characters) or the groups list (a comma).
    #[error("claims hold control characters, or commas in groups")]
    NotHeaderSafe,
}

impl Identity {
    /// Whether this identity may be sent to apps at all: a user, and values that travel in
    /// headers unchanged. The same check holds for logins and for bearer tokens.
    pub fn check_usable(&self) -> Result<(), UnusableIdentity> {
        if self.user.is_empty() {
            return Err(UnusableIdentity::NoUser);
        }
        if !self.is_header_safe() {
            return Err(UnusableIdentity::NotHeaderSafe);
        }
        Ok(())
    }
}
