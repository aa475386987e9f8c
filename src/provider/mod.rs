//! Identity providers: one trait, one file per kind.
//!
//! Owns the login conversation with an IdP: building the authorization URL and turning the
//! callback's code into an [`Identity`]. Providers never see HTTP requests or cookies; the HTTP
//! layer hands them plain values and maps their [`ProviderError`] to a page.

mod azure;
mod claims;
mod generic;
mod github;
mod keycloak;
mod oauth;
mod oidc;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::config::{HeaderMapping, ProviderConfig, ProviderKind};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::oidc::{JwksCache, LogoutClaims, LogoutError, VerifyError};
use crate::secret::Secret;
use crate::session::{LoginState, Tokens};

pub use azure::Azure;
pub use claims::{identity_from_claims, EmailRule};
pub use generic::{Flavor, Generic};
pub use github::GithubProvider;
pub use keycloak::Keycloak;
pub use oidc::{Discovered, OidcProvider};

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What `/oauth2/start` asks a provider to put in the authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// CSRF `state`.
    pub state: String,
    /// OIDC `nonce`.
    pub nonce: String,
    /// PKCE S256 challenge.
    pub pkce_challenge: String,
    /// Our callback, from the workspace's config.
    pub redirect_uri: Url,
}

/// What the provider sent back to `/oauth2/callback`.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The authorization code.
    pub code: Secret,
    /// RFC 9207 `iss`, if sent.
    pub iss: Option<String>,
    /// Our callback URL, as in the authorization request.
    pub redirect_uri: Url,
}

/// A completed login: who logged in, and the provider's tokens (the workspace keeps only those
/// it needs).
#[derive(Debug, Clone)]
pub struct Login {
    /// Who.
    pub identity: Identity,
    /// The access token, and the ID token for OIDC kinds.
    pub tokens: Tokens,
}

/// The identity a bearer token proves, and until when.
#[derive(Debug, Clone)]
pub struct BearerIdentity {
    /// Who.
    pub identity: Identity,
    /// The token's `exp`, seconds since the epoch.
    pub expires_at: u64,
}

/// What went wrong underneath a [`ProviderError`]: the HTTP, JSON or OAuth error itself where
/// there is one, else a sentence saying what was missing.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a login failed at the provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider cannot be reached or answers garbage.
    #[error("identity provider unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// RFC 9207: the response names another issuer, or omits one the provider promised.
    #[error("authorization response issuer: {0}")]
    IssuerMismatch(String),
    /// The token endpoint refused the code.
    #[error("code exchange refused: {0}")]
    Exchange(#[source] Cause),
    /// The ID token or access token did not verify.
    #[error("token rejected: {0}")]
    Token(#[from] VerifyError),
    /// The provider's answer lacks something required (no email, no ID token…).
    #[error("incomplete identity: {0}")]
    Incomplete(#[source] Cause),
}

/// Why a refresh did not renew a session, sorted by what becomes of the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: revoked, expired, or the
    /// user is gone): the session ends.
    #[error("the provider refused the refresh token: {0}")]
    Refused(String),
    /// The provider answered, but not with this session's user or not with tokens that
    /// verify: the session ends.
    #[error("the refreshed identity was rejected: {0}")]
    Rejected(#[source] ProviderError),
    /// The provider could not be reached or failed: the session is kept until it ends.
    #[error("the provider could not refresh: {0}")]
    Unavailable(String),
    /// The token endpoint renewed the tokens, but the identity could not be read again (the
    /// provider, Graph or the GitHub API unreachable, or not within [`REFRESH_BUDGET`]). The new
    /// tokens must still be kept: a provider that rotates refresh tokens accepts only the new
    /// one from now on.
    #[error("the provider renewed the tokens, but the identity could not be read again: {why}")]
    Unconfirmed {
        /// Why the identity was not read.
        why: String,
        /// What the token endpoint answered.
        tokens: Tokens,
    },
}

/// The longest one refresh may spend at the provider: the refresh grant (the outbound client
/// gives up on one call after 10 s) and reading the identity again (a JWKS refetch, Graph or
/// the GitHub API, a few calls). Half the Redis refresh lock's life (`refresh::LOCK_TTL`), so
/// the lock never runs out while the provider is asked; a provider that answered the grant
/// and then runs out of time answers [`RefreshError::Unconfirmed`] with the new tokens.
pub const REFRESH_BUDGET: Duration = Duration::from_secs(15);

/// What a refresh grant renewed and the identity read again, each step within `deadline`: a
/// late or failed identity after the grant keeps the grant's tokens
/// ([`RefreshError::Unconfirmed`]).
pub(crate) async fn within_budget<G, I>(
    deadline: tokio::time::Instant,
    grant: impl Future<Output = Result<G, RefreshError>>,
    tokens_of: impl FnOnce(&G) -> Tokens,
    identity: impl FnOnce(G) -> I,
) -> Result<Login, RefreshError>
where
    I: Future<Output = Result<Identity, RefreshError>>,
{
    let late = || format!("no answer within {REFRESH_BUDGET:?}");
    let granted = tokio::time::timeout_at(deadline, grant)
        .await
        .map_err(|_| RefreshError::Unavailable(late()))??;
    let tokens = tokens_of(&granted);
    match tokio::time::timeout_at(deadline, identity(granted)).await {
        Ok(Ok(identity)) => Ok(Login { identity, tokens }),
        Ok(Err(RefreshError::Unavailable(why))) => Err(RefreshError::Unconfirmed { why, tokens }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(RefreshError::Unconfirmed {
            why: late(),
            tokens,
        }),
    }
}

impl From<ProviderError> for RefreshError {
    /// A provider that cannot be reached keeps the session; any other failure ends it.
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Unavailable(why) => Self::Unavailable(why.to_string()),
            other => Self::Rejected(other),
        }
    }
}

/// A workspace's identity provider.
pub trait Provider: Send + Sync {
    /// Id within the workspace (`/oauth2/start?provider=<id>`).
    fn id(&self) -> &str;
    /// Name on the sign-in page.
    fn display_name(&self) -> &str;
    /// Kind.
    fn kind(&self) -> ProviderKind;
    /// The authorization URL and the issuer the response must come from.
    fn authorization_url<'a>(
        &'a self,
        req: &'a AuthorizationRequest,
    ) -> BoxFuture<'a, Result<(Url, String), ProviderError>>;
    /// Exchanges the code and returns who logged in, with the provider's tokens.
    fn finish<'a>(
        &'a self,
        callback: &'a Callback,
        login: &'a LoginState,
        now: u64,
    ) -> BoxFuture<'a, Result<Login, ProviderError>>;
    /// Fetches metadata and keys ahead of need; failures are logged, never fatal.
    fn warm_up(&self) -> BoxFuture<'_, ()>;
    /// Renews `previous`'s login with the refresh token (RFC 6749 §6): who the user is now,
    /// read again as at the login (groups and roles included), with the new tokens; a token the
    /// provider did not renew is `None` in the answer.
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
        previous: &'a Identity,
        now: u64,
    ) -> BoxFuture<'a, Result<Login, RefreshError>>;
    /// Verifies a bearer JWT issued by this provider for this client, from cached metadata and
    /// keys only (no I/O on the request path). `None` when this provider cannot judge it (not
    /// discovered yet, or a kind that issues no JWTs).
    fn verify_bearer(
        &self,
        _token: &str,
        _now: u64,
    ) -> Option<Result<BearerIdentity, ProviderError>> {
        None
    }
    /// Verifies a back-channel logout token (OIDC Back-Channel Logout 1.0 §2.6) for this
    /// provider and client; may fetch metadata and, on an unknown `kid`, keys (this is not the
    /// auth path). `None` when this kind issues no logout tokens.
    fn verify_logout_token<'a>(
        &'a self,
        _token: &'a str,
        _now: u64,
    ) -> BoxFuture<'a, Option<Result<LogoutClaims, LogoutError>>> {
        Box::pin(async { None })
    }
    /// Where to send the browser to end the IdP session too (OIDC RP-Initiated Logout 1.0
    /// §2), when the provider is configured with `logout_at_idp` and its discovery document
    /// names an `end_session_endpoint`. `id_token_hint` is the session's ID token, if kept.
    fn logout_url(&self, _post_logout: &Url, _id_token_hint: Option<&str>) -> Option<Url> {
        None
    }
}

/// Things every provider is built from.
#[derive(Clone)]
pub struct ProviderContext {
    /// Outbound HTTP (no redirects, timeouts).
    pub http: reqwest::Client,
    /// Shared JWKS cache.
    pub jwks: Arc<JwksCache>,
    /// The Redis store, kept across reloads while its URL is unchanged.
    pub stores: Arc<crate::session::StoreCache>,
    /// The process's metrics; registries built from this context record into them.
    pub metrics: Arc<Metrics>,
}

impl ProviderContext {
    /// A context fetching through `http`, with metrics that count `jwks`'s fetches.
    pub fn new(http: reqwest::Client, jwks: JwksCache) -> Self {
        Self {
            metrics: Arc::new(Metrics::new(jwks.fetch_counters())),
            stores: Default::default(),
            jwks: Arc::new(jwks),
            http,
        }
    }
}

/// Builds the provider for one `[[provider]]`.
pub fn build(
    config: &ProviderConfig,
    secret: Secret,
    mapping: &HeaderMapping,
    ctx: &ProviderContext,
) -> Arc<dyn Provider> {
    let flavor: Box<dyn Flavor> = match config.kind {
        ProviderKind::Github => {
            return Arc::new(GithubProvider::new(
                config.clone(),
                secret,
                mapping.clone(),
                ctx.http.clone(),
            ))
        }
        ProviderKind::Oidc => Box::new(Generic {
            trust_email_without_email_verified: config.extra.trust_email_without_email_verified,
        }),
        ProviderKind::Keycloak => Box::new(Keycloak {
            trust_email_without_email_verified: config.extra.trust_email_without_email_verified,
        }),
        ProviderKind::Azure => Box::new(Azure {
            resolve_group_overage: config.extra.resolve_group_overage,
            graph_url: config.extra.graph_url.clone(),
            single_tenant: !config.is_multi_tenant(),
        }),
    };
    Arc::new(OidcProvider::new(
        config.clone(),
        secret,
        mapping.clone(),
        ctx.clone(),
        flavor,
    ))
}
