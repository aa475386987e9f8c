//! Keycloak on top of the OIDC core.
//!
//! Owns Keycloak's role shapes. Keycloak's default mappers put roles in the *access token*, not
//! the ID token, so the access token (a JWT) is verified against the realm's JWKS with our
//! client id as audience (add an "Audience" mapper in Keycloak), and read: realm roles
//! (`realm_access.roles`) as `role`, client roles (`resource_access.<client>.roles`) as
//! `<client>:role`, group paths (`groups`, with a group-membership mapper) as `/path`. Only
//! full paths count as groups (the mapper's "Full group path", on by default): a bare group
//! name would read as the realm role of the same name, so a member of group `admin` would pass
//! a rule written for the role `admin`.
//! The email counts only with `email_verified` true in the ID token, as for any OIDC provider
//! (Keycloak sends it; "Email verified" is a per-user flag an admin or self-registration sets).

use serde_json::Value;

use super::claims::{identity_from_claims, string_list, EmailRule};
use super::generic::Flavor;
use super::oauth::TokenResponse;
use super::oidc::{Discovered, OidcProvider};
use super::{BoxFuture, ProviderError};
use crate::identity::Identity;
use crate::oidc::Claims;

/// Keycloak's flavor.
pub struct Keycloak {
    /// `trust_email_without_email_verified` of the provider.
    pub trust_email_without_email_verified: bool,
}

/// Realm roles, then this client's roles as `<client>:role`.
pub(super) fn roles(claims: &Claims, client_id: &str) -> Vec<String> {
    let mut out = string_list(claims.get("realm_access").and_then(|r| r.get("roles")));
    let client_roles = claims
        .get("resource_access")
        .and_then(|r| r.get(client_id))
        .and_then(|c| c.get("roles"));
    out.extend(
        string_list(client_roles)
            .into_iter()
            .map(|r| format!("{client_id}:{r}")),
    );
    out
}

/// The `groups` claim's full group paths (`/team/admins`); bare names are left out.
pub(super) fn group_paths(claims: &Claims) -> Vec<String> {
    let mut groups = string_list(claims.get("groups"));
    groups.retain(|g| g.starts_with('/'));
    groups
}

impl Flavor for Keycloak {
    fn identity<'a>(
        &'a self,
        provider: &'a OidcProvider,
        tokens: &'a TokenResponse,
        discovered: &'a Discovered,
        claims: Claims,
        now: u64,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(async move {
            use oauth2::TokenResponse as _;
            // The identity (and its email) comes from the ID token; the access token adds roles.
            let mut id = identity_from_claims(
                &claims,
                &provider.mapping,
                provider.id_str(),
                self.email_rule(),
            );
            let access = tokens.access_token().secret();
            let access_claims = provider
                .verify_jwt(discovered, access, None, None, now)
                .await
                .map_err(|e| ProviderError::Incomplete(format!("access token: {e}").into()))?;
            if access_claims.get("sub").and_then(Value::as_str)
                != claims.get("sub").and_then(Value::as_str)
            {
                return Err(ProviderError::Incomplete(
                    "access token and ID token name different users".into(),
                ));
            }
            id.add_groups(roles(&access_claims, provider.client_id()));
            id.add_groups(group_paths(&access_claims));
            Ok(id)
        })
    }

    fn email_rule(&self) -> EmailRule {
        EmailRule::EmailVerified {
            trust_absent: self.trust_email_without_email_verified,
        }
    }

    fn bearer_identity(&self, provider: &OidcProvider, claims: &Claims) -> Identity {
        let mut id = identity_from_claims(
            claims,
            &provider.mapping,
            provider.id_str(),
            self.email_rule(),
        );
        id.add_groups(roles(claims, provider.client_id()));
        id
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_full_group_paths_are_groups_never_a_bare_name_that_reads_as_a_role() {
        let claims: Claims = serde_json::from_value(json!({
            "groups": ["/admins", "admin", "/team/ops", ""],
        }))
        .unwrap();
        assert_eq!(group_paths(&claims), ["/admins", "/team/ops"]);
    }

    #[test]
    fn realm_and_client_roles() {
        let c = json!({
            "realm_access": {"roles": ["admin", "user"]},
            "resource_access": {"authgate": {"roles": ["editor"]}, "other": {"roles": ["x"]}}
        });
        assert_eq!(
            roles(c.as_object().unwrap(), "authgate"),
            vec!["admin", "user", "authgate:editor"]
        );
        assert!(roles(json!({}).as_object().unwrap(), "authgate").is_empty());
    }
}
