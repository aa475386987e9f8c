//! `GET /oauth2/userinfo`: the session's identity as JSON, as oauth2-proxy serves it.
//!
//! For single-page apps that want to show who is signed in without parsing anything: the user,
//! email, preferred username and groups of the session the browser's cookie carries. 401
//! without a valid session. Reads the session exactly as `/oauth2/auth` does, without rules.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{AppError, Incoming};
use crate::identity::Identity;
use crate::state::AppState;

/// oauth2-proxy's userinfo shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UserInfo<'a> {
    user: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
}

impl<'a> From<&'a Identity> for UserInfo<'a> {
    fn from(id: &'a Identity) -> Self {
        Self {
            user: &id.user,
            email: &id.email,
            preferred_username: id.preferred_username.as_deref(),
            groups: &id.groups,
        }
    }
}

pub(super) async fn userinfo(
    State(state): State<AppState>,
    req: Incoming,
) -> Result<Response, AppError> {
    let ws = req.workspace()?;
    // As /oauth2/auth sees the session: refreshed when due, refused once the IdP ended it. The
    // browser's session only: no bearer token here.
    let done = ws
        .authenticate(&req.credentials(false), state.now())
        .await?;
    let body = serde_json::to_vec(&UserInfo::from(&done.identity))?;
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    super::append_set_cookies(h, done.cookies);
    Ok(resp)
}
