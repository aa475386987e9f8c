//! The OAuth 2.0 client of every provider kind: the token endpoint's code exchange (with PKCE)
//! and refresh grant, their answers and their failures sorted by what they mean for a login or
//! a session. No discovery, no claims: the callers bring the endpoints and read the tokens.

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RefreshToken, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{ProviderError, RefreshError};
use crate::secret::Secret;
use crate::session::Tokens;

/// The token response's OIDC field, kept as the raw compact JWT for our own verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OidcTokenFields {
    /// `id_token`.
    #[serde(default)]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for OidcTokenFields {}

/// Token endpoint answer.
pub(crate) type TokenResponse = StandardTokenResponse<OidcTokenFields, BasicTokenType>;

pub(crate) type TokenClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The tokens of a token endpoint's answer: the access token, the ID token where the provider
/// sent one, and the refresh token where it issued (or renewed) one.
pub(crate) fn tokens_of(answer: &TokenResponse) -> Tokens {
    use oauth2::TokenResponse as _;
    Tokens {
        access: Some(answer.access_token().secret().clone()),
        id: answer.extra_fields().id_token.clone(),
        refresh: answer.refresh_token().map(|t| t.secret().clone()),
    }
}

/// The OAuth 2.0 client for one provider's authorization and token endpoints; the code flow
/// sets its redirect URI, a refresh needs none.
pub(crate) fn token_client(
    client_id: &str,
    secret: &Secret,
    authorization_endpoint: &Url,
    token_endpoint: &Url,
) -> TokenClient {
    oauth2::Client::new(ClientId::new(client_id.to_string()))
        .set_client_secret(ClientSecret::new(secret.expose().to_string()))
        .set_auth_uri(AuthUrl::from_url(authorization_endpoint.clone()))
        .set_token_uri(TokenUrl::from_url(token_endpoint.clone()))
}

/// The code exchange (RFC 6749 §4.1.3) with the PKCE verifier (RFC 7636 §4.5), its failures
/// sorted into "provider down" and "provider refused".
pub(crate) async fn exchange_code(
    client: &TokenClient,
    http: &reqwest::Client,
    code: &Secret,
    pkce_verifier: &str,
) -> Result<TokenResponse, ProviderError> {
    client
        .exchange_code(AuthorizationCode::new(code.expose().to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
        .request_async(http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => {
                ProviderError::Exchange(r.error().to_string().into())
            }
            RequestTokenError::Request(e) => ProviderError::Unavailable(e.into()),
            RequestTokenError::Parse(e, _) => {
                ProviderError::Exchange(format!("unreadable token response: {e}").into())
            }
            RequestTokenError::Other(e) => ProviderError::Exchange(e.into()),
        })
}

/// The refresh grant (RFC 6749 §6), its failures sorted into "the session ends"
/// (`invalid_grant`, §5.2: the refresh token is invalid, expired or revoked) and "the session
/// is kept" (anything else: the provider down, failing or misconfigured).
pub(crate) async fn refresh_grant(
    client: &TokenClient,
    http: &reqwest::Client,
    refresh_token: &Secret,
) -> Result<TokenResponse, RefreshError> {
    let token = RefreshToken::new(refresh_token.expose().to_string());
    client
        .exchange_refresh_token(&token)
        .request_async(http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r)
                if *r.error() == BasicErrorResponseType::InvalidGrant =>
            {
                RefreshError::Refused(r.error().to_string())
            }
            RequestTokenError::ServerResponse(r) => {
                RefreshError::Unavailable(format!("the token endpoint answered {}", r.error()))
            }
            RequestTokenError::Request(e) => RefreshError::Unavailable(e.to_string()),
            RequestTokenError::Parse(e, _) => {
                RefreshError::Unavailable(format!("unreadable token response: {e}"))
            }
            RequestTokenError::Other(e) => RefreshError::Unavailable(e),
        })
}
