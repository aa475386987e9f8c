//! The OpenID Connect provider every OIDC kind shares (generic, Entra, Keycloak), each kind's
//! differences in its [`Flavor`].
//!
//! Owns the authorization-code flow with PKCE S256 and nonce (OIDC Core §3.1), the RFC 9207
//! issuer check on the response, the code exchange, and ID-token validation against the cached
//! JWKS. Metadata is discovered lazily and cached, then refreshed in the background with the
//! keys (`oidc::metadata`); an unreachable provider fails logins with
//! [`ProviderError::Unavailable`] and nothing else.

use std::sync::{Arc, OnceLock};

use oauth2::{CsrfToken, RedirectUrl, Scope};
use serde_json::Value;
use url::Url;

use super::generic::Flavor;
use super::oauth::{
    exchange_code, refresh_grant, token_client, tokens_of, TokenClient, TokenResponse,
};
use super::{
    within_budget, AuthorizationRequest, BearerIdentity, BoxFuture, Callback, Login, Provider,
    ProviderContext, ProviderError, RefreshError, REFRESH_BUDGET,
};
use crate::config::{HeaderMapping, ProviderConfig, ProviderKind};
use crate::identity::Identity;
use crate::oidc::logout::{self, LogoutExpectations};
use crate::oidc::verify::check_issuer;
use crate::oidc::{
    verify, Claims, Expectations, LogoutClaims, LogoutError, MetadataCell, MetadataSource,
    ProviderMetadata, RefreshTask, VerifyError,
};
use crate::secret::Secret;
use crate::session::LoginState;

/// ID tokens from the code flow must be this fresh (seconds).
const ID_TOKEN_MAX_AGE: u64 = 600;

pub use crate::oidc::Discovered;

/// A generic OIDC provider.
pub struct OidcProvider {
    /// Its config.
    pub(crate) config: ProviderConfig,
    /// Client secret.
    secret: Secret,
    /// Claim → header mapping of the workspace.
    pub(crate) mapping: HeaderMapping,
    /// HTTP client and JWKS cache.
    pub(crate) ctx: ProviderContext,
    /// Metadata once discovered, kept fresh by the refresh task.
    metadata: Arc<MetadataCell>,
    /// The refresh task, started by the first warm-up; stops when the provider is dropped.
    refresh: OnceLock<RefreshTask>,
    /// How this kind turns a login into an identity.
    flavor: Box<dyn Flavor>,
}

impl OidcProvider {
    /// A provider; nothing is fetched until needed or warmed up.
    pub fn new(
        config: ProviderConfig,
        secret: Secret,
        mapping: HeaderMapping,
        ctx: ProviderContext,
        flavor: Box<dyn Flavor>,
    ) -> Self {
        let metadata = Arc::new(MetadataCell::new(
            MetadataSource {
                issuer: config.issuer.clone(),
                tenant_template: config.kind == ProviderKind::Azure,
                allowed_tenants: config.extra.allowed_tenants.clone(),
                provider: config.id.clone(),
            },
            ctx.http.clone(),
            ctx.jwks.clone(),
        ));
        Self {
            config,
            secret,
            mapping,
            metadata,
            ctx,
            refresh: OnceLock::new(),
            flavor,
        }
    }

    /// The metadata, discovering it if needed (at most one attempt per backoff interval).
    pub async fn discovered(&self) -> Result<Arc<Discovered>, ProviderError> {
        self.metadata
            .get()
            .await
            .map_err(|e| ProviderError::Unavailable(e.into()))
    }

    /// Our client id at this provider.
    pub(crate) fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// This provider's id in the workspace.
    pub(crate) fn id_str(&self) -> &str {
        &self.config.id
    }

    fn token_client(&self, md: &ProviderMetadata) -> TokenClient {
        token_client(
            &self.config.client_id,
            &self.secret,
            &md.authorization_endpoint,
            &md.token_endpoint,
        )
    }

    /// Builds the authorization URL (OIDC Core §3.1.2.1) with state, nonce and PKCE S256.
    pub async fn authorize(
        &self,
        req: &AuthorizationRequest,
    ) -> Result<(Url, String), ProviderError> {
        let d = self.discovered().await?;
        let client = self
            .token_client(&d.metadata)
            .set_redirect_uri(RedirectUrl::from_url(req.redirect_uri.clone()));
        let state = req.state.clone();
        let (url, _) = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
            .add_extra_param("nonce", req.nonce.clone())
            .add_extra_param("code_challenge", req.pkce_challenge.clone())
            .add_extra_param("code_challenge_method", "S256")
            .url();
        Ok((url, d.metadata.issuer.clone()))
    }

    /// Checks the callback's issuer (RFC 9207 §2.4) and exchanges the code (RFC 6749 §4.1.3,
    /// RFC 7636 §4.5). Returns the token response and the metadata used.
    pub async fn exchange(
        &self,
        callback: &Callback,
        login: &LoginState,
    ) -> Result<(TokenResponse, Arc<Discovered>), ProviderError> {
        let d = self.discovered().await?;
        match &callback.iss {
            Some(iss) if *iss != login.issuer => {
                return Err(ProviderError::IssuerMismatch(format!(
                    "got {iss:?}, expected {:?}",
                    login.issuer
                )))
            }
            None if d.metadata.authorization_response_iss_parameter_supported => {
                return Err(ProviderError::IssuerMismatch(
                    "missing, though the provider always sends it".into(),
                ))
            }
            _ => {}
        }
        if d.metadata.issuer != login.issuer {
            return Err(ProviderError::IssuerMismatch(
                "the provider's issuer changed during the login".into(),
            ));
        }
        let client = self
            .token_client(&d.metadata)
            .set_redirect_uri(RedirectUrl::from_url(callback.redirect_uri.clone()));
        let tokens = exchange_code(
            &client,
            &self.ctx.http,
            &callback.code,
            &login.pkce_verifier,
        )
        .await?;
        Ok((tokens, d))
    }

    /// Verifies a JWT issued by this provider for this client, refetching the JWKS once when
    /// its `kid` is unknown.
    pub async fn verify_jwt(
        &self,
        d: &Discovered,
        token: &str,
        nonce: Option<&str>,
        max_age: Option<u64>,
        now: u64,
    ) -> Result<Claims, ProviderError> {
        let expect = Expectations {
            issuer: &d.issuer_rule,
            client_id: &self.config.client_id,
            algorithms: &self.config.algorithms,
            nonce,
            max_age,
        };
        let uri = &d.metadata.jwks_uri;
        let keys = self.ctx.jwks.keys(uri);
        match verify::verify(&keys, &expect, now, token) {
            Err(VerifyError::UnknownKid(kid)) => {
                let (keys, err) = self.ctx.jwks.refresh(uri).await;
                if let Some(err) = err {
                    tracing::warn!(provider = %self.config.id, error = %err, "JWKS refresh failed");
                    if keys.is_empty() {
                        return Err(ProviderError::Unavailable(err.into()));
                    }
                }
                tracing::debug!(provider = %self.config.id, ?kid, "unknown kid: JWKS refreshed");
                Ok(verify::verify(&keys, &expect, now, token)?)
            }
            other => Ok(other?),
        }
    }

    /// A back-channel logout token, verified (OIDC Back-Channel Logout 1.0 §2.6). A token
    /// naming another issuer is refused before any key is looked at; an unknown `kid` refetches
    /// the JWKS once, as at the callback.
    async fn verify_logout(&self, token: &str, now: u64) -> Result<LogoutClaims, LogoutError> {
        let d = self
            .discovered()
            .await
            .map_err(|e| LogoutError::Unavailable(e.to_string()))?;
        check_issuer(&logout::unverified_claims(token)?, &d.issuer_rule)?;
        let expect = LogoutExpectations {
            issuer: &d.issuer_rule,
            client_id: &self.config.client_id,
            algorithms: &self.config.algorithms,
        };
        let uri = &d.metadata.jwks_uri;
        match logout::verify_logout(&self.ctx.jwks.keys(uri), &expect, now, token) {
            Err(LogoutError::Token(VerifyError::UnknownKid(_))) => {
                let (keys, err) = self.ctx.jwks.refresh(uri).await;
                if let Some(err) = err {
                    tracing::warn!(provider = %self.config.id, error = %err, "JWKS refresh failed");
                    if keys.is_empty() {
                        return Err(LogoutError::Unavailable(err.to_string()));
                    }
                }
                logout::verify_logout(&keys, &expect, now, token)
            }
            other => other,
        }
    }

    /// The ID token of a token response, verified (OIDC Core §3.1.3.7).
    pub async fn verified_id_token(
        &self,
        tokens: &TokenResponse,
        d: &Discovered,
        login: &LoginState,
        now: u64,
    ) -> Result<Claims, ProviderError> {
        let raw = tokens.extra_fields().id_token.as_deref().ok_or_else(|| {
            ProviderError::Incomplete("the token response has no id_token".into())
        })?;
        self.verify_jwt(d, raw, Some(&login.nonce), Some(ID_TOKEN_MAX_AGE), now)
            .await
    }
}

impl OidcProvider {
    /// Renews a login (OIDC Core §12): the refresh grant, then the new ID token verified as at
    /// the login but for the nonce, which a refreshed ID token does not carry; it must name the
    /// same user (§12.2). The identity is then built as at the login, so groups and roles
    /// (Graph overage, Keycloak's access-token roles) are read again. A provider that sends no
    /// new ID token leaves the identity as it was. All of it within [`REFRESH_BUDGET`]; the
    /// grant's tokens are kept when the identity is not read after it ([`within_budget`]).
    async fn renew(
        &self,
        refresh_token: &Secret,
        previous: &Identity,
        now: u64,
    ) -> Result<Login, RefreshError> {
        let deadline = tokio::time::Instant::now() + REFRESH_BUDGET;
        let grant = async {
            let d = self.discovered().await?;
            let tokens = refresh_grant(
                &self.token_client(&d.metadata),
                &self.ctx.http,
                refresh_token,
            )
            .await?;
            Ok((d, tokens))
        };
        within_budget(
            deadline,
            grant,
            |(_, tokens)| tokens_of(tokens),
            |(d, tokens)| async move { self.refreshed_identity(&d, &tokens, previous, now).await },
        )
        .await
    }

    /// Who the user is after a refresh grant answered `tokens`.
    async fn refreshed_identity(
        &self,
        d: &Discovered,
        tokens: &TokenResponse,
        previous: &Identity,
        now: u64,
    ) -> Result<Identity, RefreshError> {
        match &tokens.extra_fields().id_token {
            Some(raw) => {
                let claims = self.verify_jwt(d, raw, None, None, now).await?;
                let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
                if sub != previous.subject {
                    return Err(RefreshError::Rejected(ProviderError::Incomplete(
                        "the refreshed ID token names another user (OIDC Core §12.2)".into(),
                    )));
                }
                Ok(self.flavor.identity(self, tokens, d, claims, now).await?)
            }
            None => {
                tracing::debug!(provider = %self.config.id, "the refresh response has no ID token: the identity is kept");
                Ok(previous.clone())
            }
        }
    }
}

impl Provider for OidcProvider {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn display_name(&self) -> &str {
        &self.config.display_name
    }

    fn kind(&self) -> ProviderKind {
        self.config.kind
    }

    fn authorization_url<'a>(
        &'a self,
        req: &'a AuthorizationRequest,
    ) -> BoxFuture<'a, Result<(Url, String), ProviderError>> {
        Box::pin(self.authorize(req))
    }

    fn finish<'a>(
        &'a self,
        callback: &'a Callback,
        login: &'a LoginState,
        now: u64,
    ) -> BoxFuture<'a, Result<Login, ProviderError>> {
        Box::pin(async move {
            let (tokens, d) = self.exchange(callback, login).await?;
            let claims = self.verified_id_token(&tokens, &d, login, now).await?;
            tracing::debug!(provider = %self.config.id, claims = ?claims.keys().collect::<Vec<_>>(), "ID token verified");
            let identity = self.flavor.identity(self, &tokens, &d, claims, now).await?;
            Ok(Login {
                identity,
                tokens: tokens_of(&tokens),
            })
        })
    }

    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
        previous: &'a Identity,
        now: u64,
    ) -> BoxFuture<'a, Result<Login, RefreshError>> {
        Box::pin(self.renew(refresh_token, previous, now))
    }

    fn warm_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.refresh.get().is_none() {
                if let Some(task) = self.metadata.spawn_refresh() {
                    // A concurrent warm-up won the race: this second task is aborted on drop.
                    let _ = self.refresh.set(task);
                }
            }
            if let Ok(d) = self.discovered().await {
                if let (_, Some(e)) = self.ctx.jwks.load(&d.metadata.jwks_uri).await {
                    tracing::warn!(provider = %self.config.id, error = %e, "JWKS fetch failed; will retry on demand");
                }
            }
        })
    }

    fn verify_bearer(
        &self,
        token: &str,
        now: u64,
    ) -> Option<Result<BearerIdentity, ProviderError>> {
        let d = self.metadata.current()?;
        let expect = Expectations {
            issuer: &d.issuer_rule,
            client_id: &self.config.client_id,
            algorithms: &self.config.algorithms,
            nonce: None,
            max_age: None,
        };
        let keys = self.ctx.jwks.keys(&d.metadata.jwks_uri);
        Some(match verify::verify(&keys, &expect, now, token) {
            Ok(claims) => Ok(BearerIdentity {
                expires_at: claims.get("exp").and_then(Value::as_u64).unwrap_or(now),
                identity: self.flavor.bearer_identity(self, &claims),
            }),
            Err(e) => {
                if matches!(e, VerifyError::UnknownKid(_)) {
                    // Refetch in the background (one task per JWKS URL at a time, rate-limited);
                    // this request is answered now.
                    self.ctx.jwks.refresh_in_background(&d.metadata.jwks_uri);
                }
                Err(e.into())
            }
        })
    }

    fn verify_logout_token<'a>(
        &'a self,
        token: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Option<Result<LogoutClaims, LogoutError>>> {
        Box::pin(async move { Some(self.verify_logout(token, now).await) })
    }

    fn logout_url(&self, post_logout: &Url, id_token_hint: Option<&str>) -> Option<Url> {
        if !self.config.logout_at_idp {
            return None;
        }
        let d = self.metadata.current()?;
        let mut url = d.metadata.end_session_endpoint.clone()?;
        {
            let mut q = url.query_pairs_mut();
            // §2: the hint lets the OP end the right session without asking; `client_id`
            // stands in for it (and tells the OP which registered URIs to accept).
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", &self.config.client_id)
                .append_pair("post_logout_redirect_uri", post_logout.as_str());
        }
        Some(url)
    }
}
