//! Generic OpenID Connect (any certified OP: Google, Okta, Authentik, Dex, …), and the
//! [`Flavor`] trait by which each OIDC kind turns a verified login into an [`Identity`].

use super::claims::{identity_from_claims, EmailRule};
use super::oauth::TokenResponse;
use super::oidc::{Discovered, OidcProvider};
use super::{BoxFuture, ProviderError};
use crate::identity::Identity;
use crate::oidc::Claims;

/// What distinguishes one OIDC provider kind from another: how a verified login becomes an
/// [`Identity`]. Generic OIDC reads the ID token through the header mapping; Entra and Keycloak
/// add their own claims and calls (`azure.rs`, `keycloak.rs`).
pub trait Flavor: Send + Sync {
    /// The identity of a completed login: ID-token claims already verified, tokens at hand.
    fn identity<'a>(
        &'a self,
        provider: &'a OidcProvider,
        tokens: &'a TokenResponse,
        discovered: &'a Discovered,
        claims: Claims,
        now: u64,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>>;

    /// When this kind's email claim counts.
    fn email_rule(&self) -> EmailRule;

    /// The identity a verified bearer JWT carries.
    fn bearer_identity(&self, provider: &OidcProvider, claims: &Claims) -> Identity {
        identity_from_claims(
            claims,
            &provider.mapping,
            &provider.config.id,
            self.email_rule(),
        )
    }
}

/// Any certified OpenID Provider: the ID token says it all.
pub struct Generic {
    /// `trust_email_without_email_verified` of the provider.
    pub trust_email_without_email_verified: bool,
}

impl Flavor for Generic {
    fn identity<'a>(
        &'a self,
        provider: &'a OidcProvider,
        _tokens: &'a TokenResponse,
        _discovered: &'a Discovered,
        claims: Claims,
        _now: u64,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(async move { Ok(self.bearer_identity(provider, &claims)) })
    }

    fn email_rule(&self) -> EmailRule {
        EmailRule::EmailVerified {
            trust_absent: self.trust_email_without_email_verified,
        }
    }
}
