//! The configuration files as written: serde structs, every field optional where a default exists.
//!
//! Nothing here is validated; `validate` turns these into the typed config. Unknown fields are
//! errors so a typo never silently falls back to a default.
//!
//! With the `schema` feature these structs also derive the JSON Schema `authgate schema`
//! prints (`docs/schema/`); the `///` lines on fields become its descriptions, so they are
//! written for someone editing a config file.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::parsed::Parsed;
use super::{AuthMode, ProviderKind, SessionStoreKind};

/// `authgate.toml`, the server file.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "authgate.toml"))]
pub(crate) struct RawServer {
    /// Address to bind (default `0.0.0.0:4180`).
    pub(crate) listen: Option<String>,
    /// Fills `{domain}` in workspace hosts (`AUTHGATE_DOMAIN` overrides).
    pub(crate) domain: Option<String>,
    /// Peers (CIDRs) whose forwarding headers are believed (default: loopback and the private ranges).
    pub(crate) trusted_proxies: Option<Vec<String>>,
    /// Where workspace files are (default `workspaces`).
    pub(crate) workspaces_dir: Option<String>,
    /// Where the master cookie secrets come from.
    #[serde(default)]
    pub(crate) secrets: RawServerSecrets,
    /// Redis for server-side sessions.
    pub(crate) redis: Option<RawRedis>,
}

/// `[redis]` of the server file: where server-side sessions live.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Redis"))]
pub(crate) struct RawRedis {
    /// Environment variable holding the Redis URL (`redis://` or `rediss://` for TLS).
    pub(crate) url_env: Option<String>,
    /// File holding the Redis URL (`redis://` or `rediss://` for TLS).
    pub(crate) url_file: Option<String>,
    /// Sentinels to ask for the master (`host:port` each), instead of a URL.
    pub(crate) sentinels: Option<Vec<String>>,
    /// The master's name at the sentinels (`sentinel monitor <name> …`); required with `sentinels`.
    pub(crate) sentinel_master: Option<String>,
    /// Environment variable holding the sentinels' own password, if they ask for one.
    pub(crate) sentinel_password_env: Option<String>,
    /// File holding the sentinels' own password, if they ask for one.
    pub(crate) sentinel_password_file: Option<String>,
    /// With `sentinels`: reach the sentinels and the master over TLS (a URL says `rediss://` instead).
    pub(crate) tls: Option<bool>,
    /// PEM file of the CA that signs the Redis server's certificate, the only one trusted (default: the Mozilla roots).
    pub(crate) ca_file: Option<String>,
    /// PEM client certificate, for a Redis that asks for one (`tls-auth-clients yes`); with `client_key_file`.
    pub(crate) client_cert_file: Option<String>,
    /// PEM private key of `client_cert_file`.
    pub(crate) client_key_file: Option<String>,
    /// ACL user (Redis 6+); default: the URL's, else `default`.
    pub(crate) username: Option<String>,
    /// Environment variable holding the password (instead of one in the URL).
    pub(crate) password_env: Option<String>,
    /// File holding the password (instead of one in the URL).
    pub(crate) password_file: Option<String>,
}

/// `[secrets]` of the server file.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Secrets"))]
pub(crate) struct RawServerSecrets {
    /// Environment variable holding the master secrets, one per line, newest first (default `AUTHGATE_COOKIE_SECRETS`).
    pub(crate) cookie_secrets_env: Option<String>,
    /// File holding the master secrets, one per line, newest first.
    pub(crate) cookie_secrets_file: Option<String>,
}

/// One `workspaces/<name>.toml`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "workspace"))]
pub(crate) struct RawWorkspace {
    /// Hosts this workspace serves (`mcd.{domain}`, `host:port`).
    pub(crate) hosts: Vec<String>,
    /// `oidc` (login required) or `none` (202 without identity).
    #[cfg_attr(feature = "schema", schemars(with = "AuthMode"))]
    pub(crate) auth: Parsed<AuthMode>,
    /// Plain-http development: no `Secure`, no `__Host-`, `http://` redirects allowed.
    #[serde(default)]
    pub(crate) insecure_http: bool,
    /// The redirect URI registered at the IdP (default `https://<first host>/oauth2/callback`).
    pub(crate) callback_url: Option<String>,
    /// Other hosts `rd` may point at.
    #[serde(default)]
    pub(crate) allowed_redirect_hosts: Vec<String>,
    /// Identity providers; several give a sign-in page.
    #[serde(default)]
    pub(crate) provider: Vec<RawProvider>,
    /// The session cookie.
    #[serde(default)]
    pub(crate) session: RawSession,
    /// Claims feeding the `X-Auth-Request-*` headers.
    #[serde(default)]
    pub(crate) headers: RawHeaders,
    /// Who may pass once signed in.
    #[serde(default)]
    pub(crate) authz: RawAuthz,
    /// Requests that pass without a login (health checks, webhooks, static assets).
    #[serde(default)]
    pub(crate) public: Vec<RawPublic>,
}

/// One `[[public]]` table: a method and path rule that passes without a login.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Public"))]
pub(crate) struct RawPublic {
    /// One exact path, plain and decoded (`/healthz`).
    pub(crate) path: Option<String>,
    /// Every path under this one; ends with `/` (`/static/`).
    pub(crate) prefix: Option<String>,
    /// Methods that pass (default `["GET", "HEAD"]`).
    pub(crate) methods: Option<Vec<String>>,
    /// CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) to these paths pass too.
    #[serde(default)]
    pub(crate) cors_preflight: bool,
}

/// One `[[provider]]` table. Keys a kind does not know are reported by `validate`
/// (serde cannot deny unknown fields next to a flattened map).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "Provider", deny_unknown_fields))]
pub(crate) struct RawProvider {
    /// Id for `/oauth2/start?provider=<id>`.
    pub(crate) id: Option<String>,
    /// `oidc` (default), `azure`, `keycloak` or `github`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<ProviderKind>"))]
    pub(crate) kind: Option<Parsed<ProviderKind>>,
    /// Label on the sign-in page.
    pub(crate) display_name: Option<String>,
    /// The issuer URL (GitHub: `https://github.com` or the Enterprise host).
    pub(crate) issuer: Option<String>,
    /// The OAuth client id.
    pub(crate) client_id: Option<String>,
    /// Refused by `validate` (secrets never sit in a file): not in the schema, so editors flag it.
    #[cfg_attr(feature = "schema", schemars(skip))]
    pub(crate) client_secret: Option<String>,
    /// Environment variable holding the client secret.
    pub(crate) client_secret_env: Option<String>,
    /// File holding the client secret.
    pub(crate) client_secret_file: Option<String>,
    /// Scopes requested (default `openid email profile`; GitHub `read:user user:email read:org`).
    pub(crate) scopes: Option<Vec<String>>,
    /// ID-token signature algorithms accepted (default `RS256 ES256 PS256`).
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<JwsAlgorithm>>"))]
    pub(crate) algorithms: Option<Vec<Parsed<JwsAlgorithm>>>,
    /// Whether `/oauth2/sign_out` also ends the session at the IdP (OIDC RP-Initiated Logout
    /// 1.0): to its `end_session_endpoint` with `id_token_hint`, `client_id` and, as
    /// `post_logout_redirect_uri`, the root of the validated `rd`'s origin (the host's root for
    /// a path or a refused `rd`); register each such root at the IdP. OIDC kinds only; off by
    /// default.
    pub(crate) logout_at_idp: Option<bool>,
    /// Anything a specific provider kind adds (tenants, API base, realm client…).
    #[serde(flatten)]
    #[cfg_attr(feature = "schema", schemars(with = "ProviderKindKeys"))]
    pub(crate) extra: BTreeMap<String, toml::Value>,
}

/// A JWS `alg` name (RFC 7518 §3.1) as written in `algorithms`. Every name is read, so that
/// `validate` can say why the symmetric ones and `none` are never accepted for ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(inline))]
pub(crate) enum JwsAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
    #[serde(rename = "none")]
    None,
}

/// `[session]`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Session"))]
pub(crate) struct RawSession {
    /// Session cookie name (default `__Host-authgate`).
    pub(crate) cookie_name: Option<String>,
    /// `cookie` (default) or `redis`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<SessionStoreKind>"))]
    pub(crate) store: Option<Parsed<SessionStoreKind>>,
    /// How long a session lasts (default `12h`).
    #[serde(default, with = "humantime_serde")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub(crate) lifetime: Option<std::time::Duration>,
    /// Accept OpenID Connect back-channel logout tokens at `/oauth2/backchannel_logout` and end
    /// the sessions they name on every replica; requires `store = "redis"`.
    #[serde(default)]
    pub(crate) backchannel_logout: bool,
    /// Refresh a session at the provider's token endpoint once it is this old (e.g. `5m`), when
    /// the provider issued a refresh token: groups and roles are read again and the tokens
    /// passed to apps renewed. Unset: a session is never refreshed.
    #[serde(default, with = "humantime_serde")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub(crate) refresh_interval: Option<std::time::Duration>,
}

/// `[headers]`: claim names feeding `X-Auth-Request-*`, and the tokens passed to apps.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Headers"))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Authz"))]
pub(crate) struct RawAuthz {
    /// Exact email addresses allowed.
    #[serde(default)]
    pub(crate) emails: Vec<String>,
    /// Email domains allowed.
    #[serde(default)]
    pub(crate) email_domains: Vec<String>,
    /// Groups or roles allowed.
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// Every account of the providers may pass (required when a provider admits anyone and there are no rules).
    #[serde(default)]
    pub(crate) allow_any_account: bool,
}

/// The keys only some provider kinds know, as the schema shows them (`validate` reads them
/// from [`RawProvider::extra`] and refuses each where its kind does not know it).
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct ProviderKindKeys {
    /// azure: the tenant (id, domain, `organizations`, `common`); fills the issuer.
    tenant: Option<String>,
    /// azure: the authority host of a sovereign cloud (default `login.microsoftonline.com`).
    authority: Option<String>,
    /// azure: tenants a multi-tenant (`organizations`) workspace accepts.
    allowed_tenants: Option<Vec<String>>,
    /// azure: look groups up in Microsoft Graph when a user has too many for the token.
    resolve_group_overage: Option<bool>,
    /// azure: the Microsoft Graph base URL.
    graph_url: Option<String>,
    /// github: the REST API base (`https://ghe.example.com/api/v3`).
    api_url: Option<String>,
    /// oidc, keycloak: an email counts when the IdP sends no `email_verified` at all.
    trust_email_without_email_verified: Option<bool>,
}
