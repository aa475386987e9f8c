//! OpenID Provider discovery (OpenID Connect Discovery 1.0 §4).
//!
//! Owns fetching `/.well-known/openid-configuration` and checking that the document speaks for
//! the configured issuer (§4.3). Entra's multi-tenant documents carry a `{tenantid}` template,
//! which is accepted only when the caller says so.

use serde::Deserialize;
use url::Url;

/// The parts of the provider metadata authgate uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// Where the browser is sent to log in.
    pub authorization_endpoint: Url,
    /// Where codes are exchanged.
    pub token_endpoint: Url,
    /// The signing keys.
    pub jwks_uri: Url,
    /// UserInfo, if any.
    #[serde(default)]
    pub userinfo_endpoint: Option<Url>,
    /// RP-initiated logout, if any.
    #[serde(default)]
    pub end_session_endpoint: Option<Url>,
    /// RFC 9207: whether the callback always carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Network or HTTP failure.
    #[error("cannot fetch {url}: {source}")]
    Fetch {
        /// Document URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// Not a metadata document.
    #[error("{url} is not OpenID Provider metadata: {source}")]
    Parse {
        /// Document URL.
        url: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Speaks for another issuer.
    #[error("metadata issuer {found:?} differs from the configured issuer {expected:?}")]
    IssuerMismatch {
        /// Configured.
        expected: String,
        /// Found in the document.
        found: String,
    },
}

/// Fetches and checks the metadata of `issuer`. With `tenant_template`, a document whose issuer
/// is the configured one with the tenant segment replaced by `{tenantid}` is accepted too.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &Url,
    tenant_template: bool,
) -> Result<ProviderMetadata, DiscoveryError> {
    let base = issuer.as_str().trim_end_matches('/');
    let url = format!("{base}/.well-known/openid-configuration");
    let fetch = |source| DiscoveryError::Fetch {
        url: url.clone(),
        source,
    };
    let body = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(fetch)?
        .bytes()
        .await
        .map_err(fetch)?;
    let md: ProviderMetadata =
        serde_json::from_slice(&body).map_err(|source| DiscoveryError::Parse {
            url: url.clone(),
            source,
        })?;
    let found = md.issuer.trim_end_matches('/');
    let templated = tenant_template && found.contains("{tenantid}") && same_but_tenant(base, found);
    if found != base && !templated {
        return Err(DiscoveryError::IssuerMismatch {
            expected: base.into(),
            found: md.issuer,
        });
    }
    Ok(md)
}

/// `https://h/organizations/v2.0` vs `https://h/{tenantid}/v2.0`: equal but for one segment.
fn same_but_tenant(configured: &str, template: &str) -> bool {
    let a: Vec<&str> = configured.split('/').collect();
    let b: Vec<&str> = template.split('/').collect();
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || *y == "{tenantid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_template_differs_in_one_segment_only() {
        assert!(same_but_tenant(
            "https://login.microsoftonline.com/organizations/v2.0",
            "https://login.microsoftonline.com/{tenantid}/v2.0"
        ));
        assert!(!same_but_tenant(
            "https://login.microsoftonline.com/organizations/v2.0",
            "https://evil.example/{tenantid}/v2.0"
        ));
    }
}
