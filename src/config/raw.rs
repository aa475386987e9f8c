//! The configuration files as written: serde structs, every field optional where a default exists.
//!
//! Nothing here is validated; `validate` turns these into the typed config. Unknown fields are
//! errors so a typo never silently falls back to a default.
//!
//! With the `schema` feature these structs also derive the JSON Schema `authgate schema`
//! prints (`docs/schema/`); the `///` lines on fields become its descriptions, so they are
//! written for someone editing a config file.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::parsed::{keys_of, Parsed};
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
    /// Accept an `Authorization: Bearer` JWT (an access token or ID token a provider of this
    /// workspace issued for its client) on `/oauth2/auth` when no session cookie is sent
    /// (default `true`); `false`: only a session counts.
    pub(crate) bearer: Option<bool>,
    /// The redirect URI registered at the IdP (default `https://<first host>/oauth2/callback`).
    pub(crate) callback_url: Option<String>,
    /// Other hosts `rd` may point at.
    #[serde(default)]
    pub(crate) allowed_redirect_hosts: Vec<String>,
    /// Identity providers; several give a sign-in page.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<ProviderSchema>"))]
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
    /// Requests that pass without a login (health checks, webhooks, static assets). Tried
    /// before every `[[rule]]`.
    #[serde(default)]
    pub(crate) public: Vec<RawPublic>,
    /// Ordered access rules, after `[[public]]`: the first that matches decides; `[authz]`
    /// when none does.
    #[serde(default)]
    pub(crate) rule: Vec<RawRule>,
    /// Machine clients (CI jobs, webhooks, other services), named for `[[rule]] clients`.
    #[serde(default)]
    pub(crate) client: Vec<RawClient>,
}

/// One `[[client]]`: a machine client that authenticates with a static API key, whose hashes
/// only are written down (`sha256:<64 hex digits>`, the SHA-256 of the key); several hashes
/// let a key be rotated.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Client"))]
pub(crate) struct RawClient {
    /// Its name, for `[[rule]] clients`; apps see `X-Auth-Request-User: client:<name>`.
    pub(crate) name: String,
    /// Hashes of its valid keys (`sha256:<hex>`).
    #[serde(default)]
    pub(crate) api_keys: Vec<String>,
    /// File holding more hashes, one per line.
    pub(crate) api_keys_file: Option<String>,
    /// Environment variable holding more hashes, one per line or comma-separated.
    pub(crate) api_keys_env: Option<String>,
    /// The header the key is sent in (`X-Api-Key`); default `Authorization: Bearer <key>`.
    pub(crate) header: Option<String>,
    /// Instead of keys: the issuer of its JWTs (`Authorization: Bearer`), discovered at
    /// `<issuer>/.well-known/openid-configuration` with its JWKS.
    pub(crate) issuer: Option<String>,
    /// With `issuer`: the audience its tokens must name (its own, not a login client id).
    pub(crate) audience: Option<String>,
    /// With `issuer`: claims its tokens must carry with exactly these values (`sub`,
    /// `repository`…); required, as an issuer serves many clients.
    #[serde(default)]
    pub(crate) claims: BTreeMap<String, String>,
    /// With `issuer`: a claim appended to the user apps see (`client:<name>:<value>`).
    pub(crate) user_claim: Option<String>,
}

/// One `[[rule]]`: which requests it covers (every condition set must hold) and what it decides.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "Rule"))]
pub(crate) struct RawRule {
    /// One exact path, plain and decoded (`/healthz`).
    pub(crate) path: Option<String>,
    /// Every path under this one; ends with `/` (`/admin/`).
    pub(crate) prefix: Option<String>,
    /// Methods covered, upper-case (default: every method).
    pub(crate) methods: Option<Vec<String>>,
    /// Hosts covered, of the workspace's own (default: all of them).
    #[serde(default)]
    pub(crate) hosts: Vec<String>,
    /// Client networks covered, as CIDRs, matched on the address the trusted proxy reports (default: every client).
    #[serde(default)]
    pub(crate) networks: Vec<String>,
    /// `public` (no login, no identity headers), `deny` (403) or `allow` (the subject below, after login).
    pub(crate) action: RuleActionKind,
    /// allow: every signed-in user passes (with the conditions below, if any).
    #[serde(default)]
    pub(crate) any_user: bool,
    /// allow: exact email addresses.
    #[serde(default)]
    pub(crate) emails: Vec<String>,
    /// allow: email domains.
    #[serde(default)]
    pub(crate) email_domains: Vec<String>,
    /// allow: groups or roles, any of which passes.
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// allow: claim conditions, all of which must hold; each claim must be kept through `[headers.claims]`.
    #[serde(default)]
    pub(crate) claims: Vec<RawClaimMatch>,
    /// allow: machine clients (`[[client]]` names) that pass.
    #[serde(default)]
    pub(crate) clients: Vec<String>,
}

/// A rule's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(inline))]
#[serde(rename_all = "lowercase")]
pub(crate) enum RuleActionKind {
    /// No login, no identity headers.
    Public,
    /// 403 with the denial page.
    Deny,
    /// The rule's subject, after login.
    Allow,
}

/// One `[[rule.claims]]` condition: exactly one of `equals` and `contains`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(rename = "ClaimMatch"))]
pub(crate) struct RawClaimMatch {
    /// The claim's name in the token.
    pub(crate) claim: String,
    /// The value equals one of these.
    pub(crate) equals: Option<Vec<String>>,
    /// The value (a list) holds this item.
    pub(crate) contains: Option<String>,
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

/// One `[[provider]]` table: its `kind`, the keys every kind has, and the keys of its kind,
/// each kind its own struct that denies keys it does not know. Read by hand only to choose
/// the kind's struct by `kind` (which may come after the keys it decides, or be absent for
/// `oidc`); serde reads every value. A key refused (unknown to the kind, or of the wrong
/// type) is kept with its place, so the file's other problems are reported with it.
#[derive(Debug)]
pub(crate) struct RawProvider {
    /// `kind`, absent for `oidc`.
    pub(crate) kind: Option<Parsed<ProviderKind>>,
    /// `algorithms`, each at the place of the list.
    pub(crate) algorithms: Option<Vec<Parsed<JwsAlgorithm>>>,
    /// The keys every kind has; `None` when one of them was refused.
    pub(crate) common: Option<RawProviderCommon>,
    /// The keys of the kind; `None` when the kind or one of its keys was refused.
    pub(crate) keys: Option<KindKeys>,
    /// Every key refused, in the order found.
    pub(crate) refused: Vec<RefusedKey>,
}

/// The keys of a `[[provider]]` every kind has.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProviderCommon {
    /// Id for `/oauth2/start?provider=<id>`.
    pub(crate) id: Option<String>,
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
    /// Whether `/oauth2/sign_out` also ends the session at the IdP (OIDC RP-Initiated Logout
    /// 1.0): to its `end_session_endpoint` with `id_token_hint`, `client_id` and, as
    /// `post_logout_redirect_uri`, the root of the validated `rd`'s origin (the host's root for
    /// a path or a refused `rd`); register each such root at the IdP. OIDC kinds only; off by
    /// default.
    pub(crate) logout_at_idp: Option<bool>,
}

/// The keys only one kind of provider has, by kind.
#[derive(Debug)]
pub(crate) enum KindKeys {
    /// `kind = "oidc"`.
    Oidc(OidcKeys),
    /// `kind = "azure"`.
    Azure(AzureKeys),
    /// `kind = "keycloak"`: the same keys as generic OIDC.
    Keycloak(OidcKeys),
    /// `kind = "github"`.
    Github(GithubKeys),
}

/// The keys of `kind = "oidc"` and `kind = "keycloak"`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcKeys {
    /// oidc, keycloak: an email counts when the IdP sends no `email_verified` at all.
    pub(crate) trust_email_without_email_verified: Option<bool>,
}

/// The keys of `kind = "azure"` (Microsoft Entra ID).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct AzureKeys {
    /// azure: the tenant (id, domain, `organizations`, `common`); fills the issuer.
    pub(crate) tenant: Option<String>,
    /// azure: the authority host of a sovereign cloud (default `login.microsoftonline.com`).
    pub(crate) authority: Option<String>,
    /// azure: tenants a multi-tenant (`organizations`) workspace accepts.
    pub(crate) allowed_tenants: Option<Vec<String>>,
    /// azure: look groups up in Microsoft Graph when a user has too many for the token.
    pub(crate) resolve_group_overage: Option<bool>,
    /// azure: the Microsoft Graph base URL.
    pub(crate) graph_url: Option<String>,
}

/// The keys of `kind = "github"`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct GithubKeys {
    /// github: the REST API base (`https://ghe.example.com/api/v3`).
    pub(crate) api_url: Option<String>,
}

/// A key of a `[[provider]]` serde refused, and where it is written.
#[derive(Debug, Clone)]
pub(crate) struct RefusedKey {
    /// The key's path inside the table (`allowed_tenants[1]`).
    pub(crate) path: String,
    /// Why.
    pub(crate) problem: String,
    /// Where the key's value is written, in bytes of the file.
    pub(crate) span: Range<usize>,
}

impl<'de> Deserialize<'de> for RawProvider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = BTreeMap::<String, Spanned<toml::Value>>::deserialize(d)?;
        let mut refused = Vec::new();
        let kind = table.remove("kind").map(Parsed::from_spanned);
        let algorithms = table.remove("algorithms").and_then(|list| {
            let span = list.span();
            Parsed::list(list)
                .map_err(|problem| {
                    refused.push(RefusedKey {
                        path: "algorithms".into(),
                        problem: problem.message().to_string(),
                        span,
                    })
                })
                .ok()
        });
        let common_keys = keys_of::<RawProviderCommon>();
        let (common, own): (BTreeMap<_, _>, BTreeMap<_, _>) = table
            .into_iter()
            .partition(|(k, _)| common_keys.contains(&k.as_str()));
        let common = read_keys(common, &mut refused);
        let keys = match kind.as_ref().map(|k| &k.value) {
            None => Some(ProviderKind::Oidc),
            Some(Ok(k)) => Some(*k),
            Some(Err(_)) => None,
        }
        .and_then(|kind| KindKeys::read(kind, own, &mut refused));
        Ok(Self {
            kind,
            algorithms,
            common,
            keys,
            refused,
        })
    }
}

impl KindKeys {
    /// Reads the keys of `kind` from `own` (the table without `kind` and the common keys).
    fn read(
        kind: ProviderKind,
        own: BTreeMap<String, Spanned<toml::Value>>,
        refused: &mut Vec<RefusedKey>,
    ) -> Option<Self> {
        Some(match kind {
            ProviderKind::Oidc => Self::Oidc(read_kind_keys(kind, own, refused)?),
            ProviderKind::Azure => Self::Azure(read_kind_keys(kind, own, refused)?),
            ProviderKind::Keycloak => Self::Keycloak(read_kind_keys(kind, own, refused)?),
            ProviderKind::Github => Self::Github(read_kind_keys(kind, own, refused)?),
        })
    }
}

/// Reads `T` (one kind's keys) from `own`, refusing each key `T` does not have with the keys
/// it does.
fn read_kind_keys<T: DeserializeOwned>(
    kind: ProviderKind,
    own: BTreeMap<String, Spanned<toml::Value>>,
    refused: &mut Vec<RefusedKey>,
) -> Option<T> {
    let known = keys_of::<T>();
    let before = refused.len();
    for (key, value) in &own {
        if !known.contains(&key.as_str()) {
            let hint = match known {
                [] => String::new(),
                k => format!(" (known: {})", k.join(", ")),
            };
            refused.push(RefusedKey {
                path: key.clone(),
                problem: format!("unknown field for kind = \"{}\"{hint}", kind.as_str()),
                span: value.span(),
            });
        }
    }
    if refused.len() > before {
        return None;
    }
    read_keys(own, refused)
}

/// Reads `T` from table entries, each value kept with its span: serde's refusal is recorded
/// at the key it names.
fn read_keys<T: DeserializeOwned>(
    entries: BTreeMap<String, Spanned<toml::Value>>,
    refused: &mut Vec<RefusedKey>,
) -> Option<T> {
    let spans: BTreeMap<String, Range<usize>> =
        entries.iter().map(|(k, v)| (k.clone(), v.span())).collect();
    let table: toml::Table = entries
        .into_iter()
        .map(|(k, v)| (k, v.into_inner()))
        .collect();
    serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| {
            let key = match e.path().iter().next() {
                Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
                _ => String::new(),
            };
            refused.push(RefusedKey {
                path: e.path().to_string(),
                problem: e.inner().message().to_string(),
                span: spans.get(&key).cloned().unwrap_or_default(),
            });
        })
        .ok()
}

/// One `[[provider]]` table. A key only some kinds have (its description names them) is
/// refused on a provider of another kind.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[schemars(rename = "Provider", deny_unknown_fields)]
#[allow(dead_code)]
struct ProviderSchema {
    /// `oidc` (default), `azure`, `keycloak` or `github`.
    kind: Option<ProviderKind>,
    /// ID-token signature algorithms accepted (default `RS256 ES256 PS256`).
    algorithms: Option<Vec<JwsAlgorithm>>,
    #[serde(flatten)]
    common: RawProviderCommon,
    #[serde(flatten)]
    azure: AzureKeys,
    #[serde(flatten)]
    github: GithubKeys,
    #[serde(flatten)]
    oidc: OidcKeys,
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
