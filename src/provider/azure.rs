//! Microsoft Entra ID (Azure AD) on top of the OIDC core.
//!
//! Owns Entra's claim shapes: email from `email` only, and only when it counts (see
//! [`EmailRule::Entra`]): Entra's `email` is a directory attribute any tenant's admin may set
//! to any address (the "nOAuth" takeover), so in a multi-tenant app it needs the optional claim
//! `xms_edov` true; `preferred_username` and `upn` are never read as an email. `groups`
//! (object ids) and `roles` both as groups; group overage (`_claim_names` / `hasgroups`)
//! resolved through Microsoft Graph `/me/memberOf` or refused — never read as "no groups".
//! Multi-tenant issuers (`organizations`, `common`) are checked through the `{tenantid}`
//! template and the allowed-tenants list in `oidc::verify`.

use serde_json::Value;
use url::Url;

use super::claims::{identity_from_claims, EmailRule};
use super::generic::Flavor;
use super::oauth::TokenResponse;
use super::oidc::{Discovered, OidcProvider};
use super::{BoxFuture, ProviderError};
use crate::identity::Identity;
use crate::oidc::Claims;

/// Pages of `/me/memberOf` followed at most.
const MAX_GRAPH_PAGES: usize = 50;

/// Entra's flavor.
pub struct Azure {
    /// Resolve group overage through Graph (else refuse the login).
    pub resolve_group_overage: bool,
    /// Graph base URL (`https://graph.microsoft.com`; sovereign clouds differ).
    pub graph_url: Option<Url>,
    /// The issuer names one tenant: its `email` claims count without `xms_edov`.
    pub single_tenant: bool,
}

/// Whether the token says the user's groups did not fit in it (Entra "group overage").
pub(super) fn has_group_overage(claims: &Claims) -> bool {
    claims
        .get("_claim_names")
        .and_then(|n| n.get("groups"))
        .is_some()
        || claims.get("hasgroups").and_then(Value::as_bool) == Some(true)
}

/// Claims normalised to what the header mapping expects: `roles` merged into `groups`.
/// The email is left as Entra sent it: no fallback to `preferred_username` or `upn`, which
/// are sign-in names, not addresses anyone verified.
pub(super) fn normalise(claims: &Claims) -> Claims {
    let mut c = claims.clone();
    let mut groups: Vec<Value> = c
        .get("groups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for role in c
        .get("roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !groups.contains(role) {
            groups.push(role.clone());
        }
    }
    c.insert("groups".into(), Value::Array(groups));
    c
}

impl Azure {
    /// Every group id of the signed-in user from Graph, following `@odata.nextLink` on the same
    /// host only; directory roles and other non-group objects are skipped.
    async fn graph_groups(
        &self,
        http: &reqwest::Client,
        access_token: &str,
    ) -> Result<Vec<String>, ProviderError> {
        let base = self
            .graph_url
            .as_ref()
            .ok_or_else(|| ProviderError::Incomplete("no graph_url configured".into()))?;
        let mut url = base
            .join("v1.0/me/memberOf")
            .map_err(|e| ProviderError::Incomplete(e.into()))?;
        let mut groups = Vec::new();
        for _ in 0..MAX_GRAPH_PAGES {
            let resp = http
                .get(url.clone())
                .bearer_auth(access_token)
                .send()
                .await
                .map_err(|e| ProviderError::Unavailable(format!("Microsoft Graph: {e}").into()))?;
            if !resp.status().is_success() {
                return Err(ProviderError::Incomplete(
                    format!("Microsoft Graph answered {}", resp.status()).into(),
                ));
            }
            let page: Value = resp
                .json()
                .await
                .map_err(|e| ProviderError::Incomplete(format!("Microsoft Graph: {e}").into()))?;
            for item in page
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let is_group = item.get("@odata.type").and_then(Value::as_str)
                    == Some("#microsoft.graph.group");
                if let (true, Some(id)) = (is_group, item.get("id").and_then(Value::as_str)) {
                    groups.push(id.to_string());
                }
            }
            match page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(Url::parse)
            {
                None => return Ok(groups),
                Some(Ok(next)) if next.origin() == base.origin() => url = next,
                Some(_) => {
                    return Err(ProviderError::Incomplete(
                        "Microsoft Graph nextLink points elsewhere".into(),
                    ))
                }
            }
        }
        Err(ProviderError::Incomplete(
            format!("more than {MAX_GRAPH_PAGES} pages of groups").into(),
        ))
    }
}

impl Flavor for Azure {
    fn identity<'a>(
        &'a self,
        provider: &'a OidcProvider,
        tokens: &'a TokenResponse,
        _discovered: &'a Discovered,
        claims: Claims,
        _now: u64,
    ) -> BoxFuture<'a, Result<Identity, ProviderError>> {
        Box::pin(async move {
            let mut id = self.bearer_identity(provider, &claims);
            if has_group_overage(&claims) {
                if !self.resolve_group_overage {
                    return Err(ProviderError::Incomplete(
                        "group overage: the user is in more groups than the token carries; set resolve_group_overage = true (needs the GroupMember.Read.All or Directory.Read.All permission)".into(),
                    ));
                }
                use oauth2::TokenResponse as _;
                let graph = self
                    .graph_groups(&provider.ctx.http, tokens.access_token().secret())
                    .await?;
                tracing::info!(
                    provider = provider.id_str(),
                    groups = graph.len(),
                    "group overage resolved through Microsoft Graph"
                );
                id.add_groups(graph);
            }
            Ok(id)
        })
    }

    fn email_rule(&self) -> EmailRule {
        EmailRule::Entra {
            single_tenant: self.single_tenant,
        }
    }

    fn bearer_identity(&self, provider: &OidcProvider, claims: &Claims) -> Identity {
        identity_from_claims(
            &normalise(claims),
            &provider.mapping,
            provider.id_str(),
            self.email_rule(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn roles_join_groups_and_no_email_is_made_up() {
        let c = json!({"sub": "s", "preferred_username": "bob@contoso.test", "upn": "bob@contoso.test", "groups": ["g1"], "roles": ["App.Reader", "g1"]});
        let n = normalise(c.as_object().unwrap());
        assert_eq!(n["groups"], json!(["g1", "App.Reader"]));
        assert!(n.get("email").is_none(), "{n:?}");
    }

    #[test]
    fn overage_is_detected_both_ways() {
        let a = json!({"_claim_names": {"groups": "src1"}});
        let b = json!({"hasgroups": true});
        let none = json!({"groups": []});
        assert!(has_group_overage(a.as_object().unwrap()));
        assert!(has_group_overage(b.as_object().unwrap()));
        assert!(!has_group_overage(none.as_object().unwrap()));
    }
}
