//! Who the user is, in the one shape every provider produces and every check reads.
//!
//! Owns the [`Identity`] type. Plain data; providers build it, sessions carry it, `authz`
//! judges it, the auth endpoint turns it into `X-Auth-Request-*` headers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The authenticated user, as the session cookie stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    /// Value for `X-Auth-Request-User`.
    #[serde(rename = "u")]
    pub user: String,
    /// Value for `X-Auth-Request-Email`: an address the provider vouches for, else empty
    /// (none given, or one given but not vouched for: see [`Identity::email_withheld`]).
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
    /// Set when the provider sent an email the identity does not carry, because the provider
    /// did not vouch for it; `authz` refuses such a user where a rule needs an email.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub email_withheld: Option<EmailWithheld>,
    /// The IdP's session id (the ID token's `sid`, OIDC Back-Channel Logout §2.1), by which a
    /// logout token names the sessions to end. Absent in cookies issued before it existed.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Values of the workspace's `[headers.claims]`, by lower-case header name; a mapped claim
    /// the provider did not send has no entry.
    #[serde(rename = "x", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// The workspace's machine client (`[[client]]` name) this identity is, when it is one
    /// rather than a user: it passes only rules that name it. Never in a session.
    #[serde(skip)]
    pub client: Option<String>,
}

/// Why a provider's email claim was not taken as the user's email. An unverified address is
/// one anybody may have typed into their profile at the provider (the "nOAuth" class of
/// account takeover), so it never reaches authorization or the `X-Auth-Request-Email` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EmailWithheld {
    /// `email_verified` is false, or something other than true (OIDC Core §5.1).
    #[serde(rename = "f")]
    NotVerified,
    /// `email_verified` is absent and the provider is not configured to trust emails without it.
    #[serde(rename = "a")]
    VerificationAbsent,
    /// Entra ID in a multi-tenant app: `xms_edov` (the email domain's owner verified it) is not
    /// true, so the address may come from any tenant's directory.
    #[serde(rename = "d")]
    DomainOwnerUnverified,
}

impl std::fmt::Display for EmailWithheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotVerified => "email_verified is not true",
            Self::VerificationAbsent => "email_verified is absent",
            Self::DomainOwnerUnverified => "multi-tenant Entra ID and xms_edov is not true",
        })
    }
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
            && self.claims.values().all(|v| ok(v))
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
    /// The workspace's machine client `name`: `X-Auth-Request-User: client:<name>`, no email,
    /// no groups; it passes only rules that name it.
    pub fn machine_client(name: &str) -> Self {
        Self {
            user: format!("client:{name}"),
            client: Some(name.to_string()),
            ..Self::default()
        }
    }

    /// Adds groups (roles, Graph's groups) after those of the ID token, each once, in order.
    pub fn add_groups(&mut self, more: impl IntoIterator<Item = String>) {
        for g in more {
            if !self.groups.contains(&g) {
                self.groups.push(g);
            }
        }
    }

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
