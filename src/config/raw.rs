//! The configuration files as written: serde structs, every field optional where a default exists.
//!
//! Nothing here is validated; `validate` turns these into the typed config. Unknown fields are
//! errors so a typo never silently falls back to a default.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `authgate.toml`, the server file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) listen: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) trusted_proxies: Option<Vec<String>>,
    pub(crate) workspaces_dir: Option<String>,
    #[serde(default)]
    pub(crate) secrets: RawServerSecrets,
    pub(crate) redis: Option<RawRedis>,
}

/// `[redis]` of the server file: where server-side sessions live.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedis {
    pub(crate) url_env: Option<String>,
    pub(crate) url_file: Option<String>,
}

/// `[secrets]` of the server file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServerSecrets {
    pub(crate) cookie_secrets_env: Option<String>,
    pub(crate) cookie_secrets_file: Option<String>,
}

/// One `workspaces/<name>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkspace {
    pub(crate) hosts: Vec<String>,
    pub(crate) auth: String,
    #[serde(default)]
    pub(crate) insecure_http: bool,
    pub(crate) callback_url: Option<String>,
    #[serde(default)]
    pub(crate) allowed_redirect_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) provider: Vec<RawProvider>,
    #[serde(default)]
    pub(crate) session: RawSession,
    #[serde(default)]
    pub(crate) headers: RawHeaders,
    #[serde(default)]
    pub(crate) authz: RawAuthz,
    #[serde(default)]
    pub(crate) public: Vec<RawPublic>,
}

/// One `[[public]]` table: a method and path rule that passes without a login.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPublic {
    pub(crate) path: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) methods: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) cors_preflight: bool,
}

/// One `[[provider]]` table. Keys a kind does not know are reported by `validate`
/// (serde cannot deny unknown fields next to a flattened map).
#[derive(Debug, Deserialize)]
pub(crate) struct RawProvider {
    pub(crate) id: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) display_name: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) client_secret_env: Option<String>,
    pub(crate) client_secret_file: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) algorithms: Option<Vec<String>>,
    /// Whether `/oauth2/sign_out` also ends the session at the IdP (OIDC RP-Initiated Logout
    /// 1.0): to its `end_session_endpoint` with `id_token_hint`, `client_id` and the host's root
    /// as `post_logout_redirect_uri`. OIDC kinds only; off by default.
    pub(crate) logout_at_idp: Option<bool>,
    /// Anything a specific provider kind adds (tenants, API base, realm client…).
    #[serde(flatten)]
    pub(crate) extra: BTreeMap<String, toml::Value>,
}

/// `[session]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSession {
    pub(crate) cookie_name: Option<String>,
    pub(crate) store: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) lifetime: Option<std::time::Duration>,
    /// Accept OpenID Connect back-channel logout tokens at `/oauth2/backchannel_logout` and end
    /// the sessions they name on every replica; requires `store = "redis"`.
    #[serde(default)]
    pub(crate) backchannel_logout: bool,
}

/// `[headers]`: claim names feeding `X-Auth-Request-*`, and the tokens passed to apps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaders {
    /// Claim for `X-Auth-Request-User` (default `email`).
    pub(crate) user: Option<String>,
    /// Claim for `X-Auth-Request-Email` (default `email`).
    pub(crate) email: Option<String>,
    /// Claim for `X-Auth-Request-Preferred-Username`; the header is sent only when set.
    pub(crate) preferred_username: Option<String>,
    /// Claim for `X-Auth-Request-Groups`; the header is sent only when set.
    pub(crate) groups: Option<String>,
    /// Send the provider's access token as `X-Auth-Request-Access-Token` (oauth2-proxy's
    /// `--pass-access-token`); the session then keeps it.
    #[serde(default)]
    pub(crate) pass_access_token: bool,
    /// Send the access token as `Authorization: Bearer …` (oauth2-proxy's
    /// `--pass-authorization-header`); the session then keeps it.
    #[serde(default)]
    pub(crate) pass_authorization_header: bool,
    /// Send the ID token as `X-Auth-Request-Id-Token`; the session then keeps it.
    #[serde(default)]
    pub(crate) pass_id_token: bool,
    /// `[headers.claims]`: more headers, each named `X-Auth-Request-…` and fed by one claim of
    /// the ID token (`"X-Auth-Request-Tenant" = "tid"`). A login whose mapped claim is not
    /// header-safe is refused.
    #[serde(default)]
    pub(crate) claims: BTreeMap<String, String>,
}

/// `[authz]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthz {
    #[serde(default)]
    pub(crate) emails: Vec<String>,
    #[serde(default)]
    pub(crate) email_domains: Vec<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    #[serde(default)]
    pub(crate) allow_any_account: bool,
}
