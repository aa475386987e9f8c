//! Machine clients that present a JWT from an issuer of their own: a Kubernetes cluster's
//! service-account issuer, GitHub Actions' OIDC issuer, any OpenID Provider.
//!
//! Owns the runtime form of a JWT `[[client]]` ([`JwtClient`]: its issuer's metadata cell, its
//! background refresh) and the pure checks on a verified token's claims
//! ([`check_client_claims`]): issuer equal to the configured one (OIDC Core §3.1.3.7 point 2),
//! the client's own audience in `aud` (RFC 7519 §4.1.3; `azp` is not read: service-account
//! tokens may name several audiences and no authorized party), `exp`/`iat`/`nbf` with the
//! usual leeway (RFC 7519 §4.1.4–6), and every configured claim equal to its value, so that an
//! issuer shared by many (every workflow on GitHub, every pod of a cluster) never admits all of
//! them. Verification reads cached keys only (`oidc::JwksCache::keys`), as the bearer path of
//! the providers does; discovery and JWKS fetches happen in the warm-up and the refresh task.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::config::JwtClientConfig;
use crate::identity::Identity;
use crate::oidc::logout::unverified_claims;
use crate::oidc::verify::{check_issuer, check_times, verify_signature};
use crate::oidc::{
    Claims, Discovered, IssuerRule, JwksCache, MetadataCell, MetadataSource, RefreshTask,
    VerifyError,
};

/// Why a verified token is not this client's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientTokenError {
    /// Signature, issuer or times (the shared OIDC checks).
    #[error(transparent)]
    Token(#[from] VerifyError),
    /// The client's audience is not in `aud`.
    #[error("audience is not this client's")]
    Audience,
    /// A configured claim is absent or has another value.
    #[error("claim {0} does not match")]
    Claim(String),
    /// The user claim is absent, not a string, or not header-safe.
    #[error("claim {0} is missing or not header-safe")]
    User(String),
}

/// A JWT `[[client]]`, ready to verify tokens from its issuer.
pub struct JwtClient {
    /// Its validated config.
    pub config: JwtClientConfig,
    /// The issuer's discovery document and how `iss` is checked.
    metadata: Arc<MetadataCell>,
    /// The shared key cache.
    jwks: Arc<JwksCache>,
    /// The refresh task, started by the first warm-up; stops when the client is dropped.
    refresh: OnceLock<RefreshTask>,
}

impl JwtClient {
    /// A client; nothing is fetched until it is warmed up.
    pub fn new(config: JwtClientConfig, http: reqwest::Client, jwks: Arc<JwksCache>) -> Self {
        let metadata = Arc::new(MetadataCell::new(
            MetadataSource {
                issuer: config.issuer.clone(),
                tenant_template: false,
                allowed_tenants: Vec::new(),
                provider: format!("client:{}", config.name),
            },
            http,
            jwks.clone(),
        ));
        Self {
            config,
            metadata,
            jwks,
            refresh: OnceLock::new(),
        }
    }

    /// Discovers the issuer and loads its keys, and starts the periodic refresh; failures
    /// only log (a token is refused until keys are known).
    pub async fn warm_up(&self) {
        if self.refresh.get().is_none() {
            if let Some(task) = self.metadata.spawn_refresh() {
                let _ = self.refresh.set(task);
            }
        }
        if let Ok(d) = self.metadata.get().await {
            if let (_, Some(e)) = self.jwks.load(&d.metadata.jwks_uri).await {
                tracing::warn!(client = %self.config.name, error = %e, "JWKS fetch failed; will retry on demand");
            }
        }
    }

    /// The identity `token` proves for this client, with the token's `exp`, from cached keys
    /// only; `None` when the issuer is not discovered yet or the token names another issuer
    /// (read before any key is looked at: another client's or a provider's token is not this
    /// client's to refuse).
    pub fn verify(
        &self,
        token: &str,
        now: u64,
    ) -> Option<Result<(Identity, u64), ClientTokenError>> {
        let d: Arc<Discovered> = self.metadata.current()?;
        let named = unverified_claims(token).ok()?;
        if check_issuer(&named, &d.issuer_rule).is_err() {
            return None;
        }
        let claims = match verify_signature(
            &self.jwks.keys(&d.metadata.jwks_uri),
            &self.config.algorithms,
            token,
        ) {
            Ok(c) => c,
            Err(e) => {
                if matches!(e, VerifyError::UnknownKid(_)) {
                    self.jwks.refresh_in_background(&d.metadata.jwks_uri);
                }
                return Some(Err(e.into()));
            }
        };
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
        Some(check_client_claims(&claims, &self.config, &d.issuer_rule, now).map(|id| (id, exp)))
    }
}

/// The checks on a token whose signature verified: issuer, times, audience, the configured
/// claims, and the user claim. Pure.
pub fn check_client_claims(
    claims: &Claims,
    config: &JwtClientConfig,
    issuer: &IssuerRule,
    now: u64,
) -> Result<Identity, ClientTokenError> {
    check_issuer(claims, issuer)?;
    check_times(claims, None, now)?;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == config.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&config.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(ClientTokenError::Audience);
    }
    for (claim, want) in &config.claims {
        if claims.get(claim).and_then(Value::as_str) != Some(want.as_str()) {
            return Err(ClientTokenError::Claim(claim.clone()));
        }
    }
    let mut id = Identity::machine_client(&config.name);
    if let Some(claim) = &config.user_claim {
        let value = claims
            .get(claim)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && !v.chars().any(char::is_control))
            .ok_or_else(|| ClientTokenError::User(claim.clone()))?;
        id.user = format!("client:{}:{value}", config.name);
    }
    id.subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use url::Url;

    use super::*;

    fn config() -> JwtClientConfig {
        JwtClientConfig {
            name: "deployer".into(),
            issuer: Url::parse("https://k8s.example.com").unwrap(),
            audience: "authgate".into(),
            claims: vec![("sub".into(), "system:serviceaccount:ci:deployer".into())],
            user_claim: Some("sub".into()),
            algorithms: vec![jsonwebtoken::Algorithm::RS256],
        }
    }

    fn claims(edit: impl FnOnce(&mut Value)) -> Claims {
        let mut c = json!({
            "iss": "https://k8s.example.com", "sub": "system:serviceaccount:ci:deployer",
            "aud": ["https://kubernetes.default.svc", "authgate"], "iat": 1000, "exp": 1600,
        });
        edit(&mut c);
        c.as_object().unwrap().clone()
    }

    #[test]
    fn each_bad_token_fails_for_its_one_reason() {
        let issuer = IssuerRule::Exact("https://k8s.example.com".into());
        let check = |c: Claims| check_client_claims(&c, &config(), &issuer, 1200);
        let id = check(claims(|_| {})).unwrap();
        assert_eq!(id.user, "client:deployer:system:serviceaccount:ci:deployer");
        assert_eq!(id.client.as_deref(), Some("deployer"));
        assert_eq!(
            check(claims(|c| c["aud"] = json!("authgate"))).map(|_| ()),
            Ok(())
        );
        for (edit, want) in [
            (
                Box::new(|c: &mut Value| c["iss"] = json!("https://evil.example.com"))
                    as Box<dyn Fn(&mut Value)>,
                ClientTokenError::Token(VerifyError::Issuer("https://evil.example.com".into())),
            ),
            (
                Box::new(|c: &mut Value| c["exp"] = json!(1100)),
                ClientTokenError::Token(VerifyError::Expired),
            ),
            (
                Box::new(|c: &mut Value| c["iat"] = json!(5000)),
                ClientTokenError::Token(VerifyError::NotYetValid),
            ),
            (
                Box::new(|c: &mut Value| c["aud"] = json!(["https://kubernetes.default.svc"])),
                ClientTokenError::Audience,
            ),
            (
                Box::new(|c: &mut Value| c["aud"] = json!("authgate-other")),
                ClientTokenError::Audience,
            ),
            (
                Box::new(|c: &mut Value| c["sub"] = json!("system:serviceaccount:ci:other")),
                ClientTokenError::Claim("sub".into()),
            ),
            (
                Box::new(|c: &mut Value| {
                    c.as_object_mut().unwrap().remove("sub");
                }),
                ClientTokenError::Claim("sub".into()),
            ),
        ] {
            let mut c = claims(|_| {});
            let mut v = Value::Object(c.clone());
            edit(&mut v);
            c = v.as_object().unwrap().clone();
            assert_eq!(check(c).map(|_| ()), Err(want));
        }
        let mut cfg = config();
        cfg.user_claim = Some("repository".into());
        assert_eq!(
            check_client_claims(&claims(|_| {}), &cfg, &issuer, 1200).map(|_| ()),
            Err(ClientTokenError::User("repository".into()))
        );
    }
}
