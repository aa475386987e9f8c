//! The browser login: `/oauth2/start`, `/oauth2/callback`, `/oauth2/sign_out`.
//!
//! Thin handlers over the session codecs, the redirect policy and the providers. The
//! `redirect_uri` always comes from the workspace's config, never from the request.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cookie::Cookie;
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge};

use super::metrics::login_failure;
use super::pages::{self, Page};
use super::{AppError, Incoming};
use crate::callback::CallbackParams;
use crate::host::Host;
use crate::metrics::LoginFailure;
use crate::provider::AuthorizationRequest;
use crate::session::LoginState;
use crate::state::AppState;
use crate::workspace::Workspace;

/// The redirect URI for a login on the host the user is on: the configured callback URL, on
/// the workspace host the request came to (`host` exactly, else `host` without its port). The
/// login-state cookie is host-only, so the callback must come back to the host the login
/// started on; each host's callback is registered at the IdP.
fn redirect_uri(ws: &Workspace, host: Option<&Host>) -> url::Url {
    let mut uri = ws.config.callback_url.clone();
    let hosts = &ws.config.hosts;
    let Some(entry) = host.and_then(|host| {
        hosts
            .iter()
            .find(|h| *h == host)
            .or_else(|| hosts.iter().find(|h| h.as_str() == host.name()))
    }) else {
        return uri;
    };
    if uri.set_host(Some(entry.name())).is_ok() {
        let _ = uri.set_port(entry.port());
    }
    uri
}

/// Fills a field of the request's span (declared empty in [`super::app`]), so every later line
/// of this request, refusals included, carries it.
fn record(field: &str, value: &str) {
    tracing::Span::current().record(field, value);
}

/// A 302 to `location` setting `cookies`.
fn redirect(location: &str, cookies: impl IntoIterator<Item = Cookie<'static>>) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(LOCATION, v);
    }
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    append_cookies(&mut resp, cookies);
    resp
}

fn append_cookies(resp: &mut Response, cookies: impl IntoIterator<Item = Cookie<'static>>) {
    super::append_set_cookies(resp.headers_mut(), cookies);
}

/// `GET /oauth2/start?rd=…[&provider=…]`: to the IdP with state, nonce and PKCE S256.
pub(super) async fn start(
    State(_state): State<AppState>,
    req: Incoming,
) -> Result<Response, AppError> {
    let ws = req.workspace()?;
    record("workspace", ws.name());
    let _slot = _state
        .enter_login(req.client())
        .map_err(AppError::ClientBusy)?;
    let rd = ws
        .redirect_policy()
        .validate(req.query_param("rd").as_deref());
    if !ws.requires_login() {
        return Ok(redirect(&rd, []));
    }
    let wanted = req.query_param("provider");
    let Some(provider) = ws.provider(wanted.as_deref()) else {
        if let Some(id) = wanted {
            // Counted under no provider: the id is the client's.
            ws.metrics.login(None).failed(LoginFailure::UnknownProvider);
            return Err(AppError::UnknownProvider(id));
        }
        let options = ws
            .providers
            .iter()
            .map(|p| {
                let href = format!(
                    "/oauth2/start?{}",
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("provider", p.id())
                        .append_pair("rd", &rd)
                        .finish()
                );
                (format!("Sign in with {}", p.display_name()), href)
            })
            .collect();
        return Ok(pages::render(
            StatusCode::OK,
            &Page::sign_in(ws.name(), options),
        ));
    };
    let logins = ws.metrics.login(Some(provider.id()));
    let failed = |e: AppError| {
        logins.failed(login_failure(&e));
        e
    };
    _state
        .login_room(req.client())
        .map_err(|n| failed(AppError::TooManyLogins(n)))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let request = AuthorizationRequest {
        state: CsrfToken::new_random().secret().clone(),
        nonce: Nonce::new_random().secret().clone(),
        pkce_challenge: challenge.as_str().to_string(),
        redirect_uri: redirect_uri(ws, req.target_host()),
    };
    record("provider", provider.id());
    let (url, issuer) = provider
        .authorization_url(&request)
        .await
        .map_err(|e| failed(e.into()))?;
    let login = LoginState {
        workspace: ws.name().to_string(),
        provider: provider.id().to_string(),
        state: request.state,
        nonce: request.nonce,
        pkce_verifier: verifier.secret().clone(),
        issuer,
        rd,
        created: _state.now(),
    };
    let mut cookies = ws.login.evict_oldest(req.cookie_headers());
    cookies.extend(ws.login.issue(&login));
    // Anyone may start logins at will: their lines share one budget.
    if let Some(not_logged) = super::error::activity_budget() {
        tracing::info!(
            workspace = ws.name(),
            provider = provider.id(),
            not_logged,
            "login started"
        );
    }
    logins.started();
    Ok(redirect(url.as_str(), cookies))
}

/// `GET /oauth2/callback`: state, issuer, code exchange, ID token, rules, session.
pub(super) async fn callback(
    State(state): State<AppState>,
    req: Incoming,
) -> Result<Response, AppError> {
    let ws = req.workspace()?;
    record("workspace", ws.name());
    let _slot = state
        .enter_login(req.client())
        .map_err(AppError::ClientBusy)?;
    let found = req
        .query_param("state")
        .filter(|s| !s.is_empty())
        .ok_or(AppError::StateMissing)
        .and_then(|returned| {
            let login = ws
                .login
                .find(req.cookie_headers(), &returned, state.now())?;
            Ok((returned, login))
        });
    // Without a login state, the provider is unknown.
    let (returned_state, login) =
        found.inspect_err(|e| ws.metrics.login(None).failed(login_failure(e)))?;
    // From here on the login cookie is spent, whatever the outcome.
    let clear = ws.login.clear(&returned_state);
    let logins = ws.metrics.login(Some(&login.provider));
    let params = CallbackParams {
        client: req.client(),
        code: req.query_param("code"),
        iss: req.query_param("iss"),
        error: req.query_param("error"),
        error_description: req.query_param("error_description"),
    };
    let cookies: Vec<&str> = req.cookie_headers().collect();
    let result = state
        .complete_login(
            ws,
            login,
            &returned_state,
            params,
            redirect_uri(ws, req.target_host()),
            &cookies,
        )
        .await
        .map_err(AppError::from);
    let mut resp = match result {
        Ok(done) => {
            logins.completed();
            redirect(&done.rd, done.cookies)
        }
        Err(e) => {
            logins.failed(login_failure(&e));
            e.into_response()
        }
    };
    append_cookies(&mut resp, [clear]);
    Ok(resp)
}

/// `GET|POST /oauth2/sign_out?rd=…`: clears the session (every cookie of it, and its
/// server-side record) and goes to a validated `rd` — or, for a provider configured with
/// `logout_at_idp`, to the provider's `end_session_endpoint` with the session's ID token as
/// `id_token_hint` and, as `post_logout_redirect_uri`, the root of the validated `rd`'s origin
/// (`RedirectPolicy::logout_return`: the root of the host signed out from for a path or a
/// refused `rd`). Each such root must be registered at the IdP.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    req: Incoming,
) -> Result<Response, AppError> {
    let ws = req.workspace()?;
    record("workspace", ws.name());
    let asked = req.query_param("rd");
    let rd = ws.redirect_policy().validate(asked.as_deref());
    let session = ws
        .session
        .open_request(req.cookie_headers(), state.now())
        .ok();
    let mut provider = None;
    let mut id_token = None;
    let ended = session.is_some();
    if let Some(s) = session {
        if let Ok(c) = ws.contents_of(s.clone()).await {
            record("user", &c.identity.user);
            record("provider", &c.identity.provider);
            provider = Some(c.identity.provider);
            id_token = c.tokens.id;
        }
        ws.end(&s).await;
    }
    // The request's host was checked against the workspace; the scheme is its callback URL's.
    let mut home = redirect_uri(ws, req.target_host());
    home.set_path("/");
    home.set_query(None);
    let post_logout = ws.redirect_policy().logout_return(asked.as_deref(), &home);
    let idp_logout = provider
        .and_then(|id| ws.provider(Some(&id)).cloned())
        .and_then(|p| p.logout_url(&post_logout, id_token.as_deref()));
    // A sign-out that ended a session is worth a line; one without a session, which anyone
    // may send at will, only at debug.
    if ended {
        tracing::info!(
            workspace = ws.name(),
            idp_logout = idp_logout.is_some(),
            "signed out"
        );
    } else {
        tracing::debug!(workspace = ws.name(), "sign-out without a session");
    }
    let target = idp_logout.map(String::from).unwrap_or(rd);
    Ok(redirect(
        &target,
        ws.session.clear_all(req.cookie_headers()),
    ))
}
