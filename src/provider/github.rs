//! GitHub (OAuth 2.0 apps; GitHub is not an OpenID Provider).
//!
//! Owns the GitHub conversation: the authorize and token endpoints under the web base, then the
//! REST API (`/user`, `/user/emails` — primary and verified only —, `/user/orgs`, `/user/teams`)
//! under a configurable API base for GitHub Enterprise (`https://ghe.example.com/api/v3`).
//! Pagination follows `Link: rel="next"` on the API host only; a rate-limit answer is reported
//! as the provider being unavailable, with its reset time.

use oauth2::{AuthType, CsrfToken, RedirectUrl, Scope, TokenResponse as _};
use serde_json::{json, Map, Value};
use url::Url;

use super::claims::{identity_from_claims, EmailRule};
use super::oauth::{exchange_code, refresh_grant, token_client, tokens_of, TokenClient};
use super::{
    within_budget, AuthorizationRequest, BoxFuture, Callback, Login, Provider, ProviderError,
    RefreshError, REFRESH_BUDGET,
};
use crate::config::{HeaderMapping, ProviderConfig, ProviderKind};
use crate::identity::Identity;
use crate::secret::Secret;
use crate::session::{LoginState, Tokens};

/// Pages followed at most per listing (100 items each).
const MAX_PAGES: usize = 10;

/// A GitHub OAuth app.
pub struct GithubProvider {
    /// Its config; `issuer` is the web base (`https://github.com`).
    config: ProviderConfig,
    /// Client secret.
    secret: Secret,
    /// Claim → header mapping of the workspace.
    mapping: HeaderMapping,
    /// Outbound HTTP.
    http: reqwest::Client,
    /// REST API base, ending in `/`.
    api: Url,
}

impl GithubProvider {
    /// A provider; the API base defaults to `https://api.github.com/`.
    pub fn new(
        config: ProviderConfig,
        secret: Secret,
        mapping: HeaderMapping,
        http: reqwest::Client,
    ) -> Self {
        let mut api = config
            .extra
            .api_url
            .clone()
            .unwrap_or_else(|| default_api(&config.issuer));
        if !api.path().ends_with('/') {
            api.set_path(&format!("{}/", api.path()));
        }
        Self {
            config,
            secret,
            mapping,
            http,
            api,
        }
    }

    fn client(&self) -> Result<TokenClient, ProviderError> {
        let join = |p: &str| {
            self.config
                .issuer
                .join(p)
                .map_err(|e| ProviderError::Unavailable(e.into()))
        };
        Ok(token_client(
            &self.config.client_id,
            &self.secret,
            &join("login/oauth/authorize")?,
            &join("login/oauth/access_token")?,
        )
        .set_auth_type(AuthType::RequestBody))
    }

    /// One API call; rate limits and errors become [`ProviderError`]s.
    async fn get(&self, url: Url, token: &str) -> Result<reqwest::Response, ProviderError> {
        let resp = self
            .http
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("GitHub API: {e}").into()))?;
        let status = resp.status();
        let remaining = resp
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok());
        if (status.as_u16() == 403 || status.as_u16() == 429)
            && (remaining == Some("0") || resp.headers().contains_key("retry-after"))
        {
            let reset = resp
                .headers()
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_string();
            return Err(ProviderError::Unavailable(
                format!("GitHub API rate limit exceeded (resets at epoch {reset})").into(),
            ));
        }
        if !status.is_success() {
            return Err(ProviderError::Incomplete(
                format!("GitHub API answered {status}").into(),
            ));
        }
        Ok(resp)
    }

    async fn object(&self, path: &str, token: &str) -> Result<Value, ProviderError> {
        let url = self
            .api
            .join(path)
            .map_err(|e| ProviderError::Incomplete(e.into()))?;
        self.get(url, token)
            .await?
            .json()
            .await
            .map_err(|e| ProviderError::Incomplete(format!("GitHub API: {e}").into()))
    }

    /// Every item of a paginated listing.
    async fn list(&self, path: &str, token: &str) -> Result<Vec<Value>, ProviderError> {
        let mut url = self
            .api
            .join(path)
            .map_err(|e| ProviderError::Incomplete(e.into()))?;
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.get(url.clone(), token).await?;
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let page: Vec<Value> = resp
                .json()
                .await
                .map_err(|e| ProviderError::Incomplete(format!("GitHub API: {e}").into()))?;
            items.extend(page);
            match next.map(|n| Url::parse(&n)) {
                None => return Ok(items),
                Some(Ok(n)) if n.origin() == self.api.origin() => url = n,
                Some(_) => {
                    return Err(ProviderError::Incomplete(
                        "GitHub pagination points to another host".into(),
                    ))
                }
            }
        }
        Err(ProviderError::Incomplete(
            format!("more than {MAX_PAGES} pages from {path}").into(),
        ))
    }

    async fn identity(&self, token: &str) -> Result<Identity, ProviderError> {
        let user = self.object("user", token).await?;
        let login = user
            .get("login")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Incomplete("no login".into()))?;
        let emails = self.list("user/emails", token).await?;
        let email = emails
            .iter()
            .find(|e| {
                e.get("primary") == Some(&json!(true)) && e.get("verified") == Some(&json!(true))
            })
            .and_then(|e| e.get("email").and_then(Value::as_str))
            .ok_or_else(|| {
                ProviderError::Incomplete(
                    format!("GitHub user {login} has no verified primary email").into(),
                )
            })?;
        let scopes_allow_orgs = self
            .config
            .scopes
            .iter()
            .any(|s| s == "read:org" || s == "user");
        let mut groups = Vec::new();
        if scopes_allow_orgs {
            for org in self.list("user/orgs", token).await? {
                if let Some(o) = org.get("login").and_then(Value::as_str) {
                    groups.push(o.to_string());
                }
            }
            for team in self.list("user/teams", token).await? {
                let org = team
                    .get("organization")
                    .and_then(|o| o.get("login"))
                    .and_then(Value::as_str);
                if let (Some(org), Some(slug)) = (org, team.get("slug").and_then(Value::as_str)) {
                    groups.push(format!("{org}/{slug}"));
                }
            }
        }
        let mut claims = Map::new();
        claims.insert(
            "sub".into(),
            json!(user.get("id").map(|v| v.to_string()).unwrap_or_default()),
        );
        claims.insert("login".into(), json!(login));
        claims.insert("preferred_username".into(), json!(login));
        // Only the primary address GitHub marks verified was taken above.
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(true));
        claims.insert(
            "name".into(),
            user.get("name").cloned().unwrap_or(Value::Null),
        );
        claims.insert("groups".into(), json!(groups));
        Ok(identity_from_claims(
            &claims,
            &self.mapping,
            &self.config.id,
            EmailRule::EmailVerified {
                trust_absent: false,
            },
        ))
    }
}

/// `https://github.com` → `https://api.github.com/`; an Enterprise web base `https://h` →
/// `https://h/api/v3/`.
fn default_api(web: &Url) -> Url {
    let fallback = || Url::parse("https://api.github.com/").ok();
    let api = match web.host_str() {
        Some("github.com") => fallback(),
        _ => web.join("api/v3/").ok(),
    };
    api.or_else(fallback).unwrap_or_else(|| web.clone())
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

impl Provider for GithubProvider {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn display_name(&self) -> &str {
        &self.config.display_name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Github
    }

    fn authorization_url<'a>(
        &'a self,
        req: &'a AuthorizationRequest,
    ) -> BoxFuture<'a, Result<(Url, String), ProviderError>> {
        Box::pin(async move {
            let state = req.state.clone();
            let (url, _) = self
                .client()?
                .set_redirect_uri(RedirectUrl::from_url(req.redirect_uri.clone()))
                .authorize_url(move || CsrfToken::new(state))
                .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
                .add_extra_param("code_challenge", req.pkce_challenge.clone())
                .add_extra_param("code_challenge_method", "S256")
                .url();
            Ok((
                url,
                self.config
                    .issuer
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
            ))
        })
    }

    fn finish<'a>(
        &'a self,
        callback: &'a Callback,
        login: &'a LoginState,
        _now: u64,
    ) -> BoxFuture<'a, Result<Login, ProviderError>> {
        Box::pin(async move {
            if let Some(iss) = &callback.iss {
                if *iss != login.issuer {
                    return Err(ProviderError::IssuerMismatch(format!(
                        "got {iss:?}, expected {:?}",
                        login.issuer
                    )));
                }
            }
            let client = self
                .client()?
                .set_redirect_uri(RedirectUrl::from_url(callback.redirect_uri.clone()));
            let tokens =
                exchange_code(&client, &self.http, &callback.code, &login.pkce_verifier).await?;
            Ok(Login {
                identity: self.identity(tokens.access_token().secret()).await?,
                // GitHub is no OpenID Provider: no ID token, whatever the answer holds.
                tokens: Tokens {
                    id: None,
                    ..tokens_of(&tokens)
                },
            })
        })
    }

    /// GitHub issues refresh tokens to GitHub Apps with expiring user tokens: the refresh grant
    /// at the same token endpoint, then the user, emails, orgs and teams read again.
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
        previous: &'a Identity,
        _now: u64,
    ) -> BoxFuture<'a, Result<Login, RefreshError>> {
        // Within REFRESH_BUDGET; the grant's tokens are kept when the user is not read after it.
        let deadline = tokio::time::Instant::now() + REFRESH_BUDGET;
        Box::pin(async move {
            let grant = async { refresh_grant(&self.client()?, &self.http, refresh_token).await };
            within_budget(
                deadline,
                grant,
                |tokens| Tokens {
                    id: None,
                    ..tokens_of(tokens)
                },
                |tokens| async move {
                    let identity = self.identity(tokens.access_token().secret()).await?;
                    if identity.subject != previous.subject {
                        return Err(RefreshError::Rejected(ProviderError::Incomplete(
                            "the refreshed token belongs to another GitHub user".into(),
                        )));
                    }
                    Ok(identity)
                },
            )
            .await
        })
    }

    fn warm_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let h = r#"<https://api.github.com/user/orgs?per_page=30&page=2>; rel="next", <https://api.github.com/user/orgs?page=2>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/user/orgs?per_page=30&page=2")
        );
        assert_eq!(next_link(r#"<https://x/y?page=1>; rel="prev""#), None);
    }

    #[test]
    fn api_base_for_github_and_enterprise() {
        assert_eq!(
            default_api(&Url::parse("https://github.com").unwrap()).as_str(),
            "https://api.github.com/"
        );
        assert_eq!(
            default_api(&Url::parse("https://ghe.example.com").unwrap()).as_str(),
            "https://ghe.example.com/api/v3/"
        );
    }
}
