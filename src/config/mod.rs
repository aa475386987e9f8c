//! Typed configuration: the server file and one file per workspace, validated once at load.
//!
//! Owns reading `authgate.toml` and `workspaces/*.toml`, and every check on them. Plain data:
//! it holds no runtime state and depends on nothing above it. Secrets are named here (where
//! they come from) and read only by [`Secrets::read`].

mod clients;
mod parsed;
mod provider;
mod public;
mod raw;
mod redis;
mod rules;
#[cfg(feature = "schema")]
pub mod schema;
pub mod secrets;
#[cfg(test)]
mod tests;
mod validate;
mod warnings;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use crate::host::Host;

pub use self::redis::{PemFile, RedisConfig, RedisTarget, SentinelAddr};
pub use secrets::{Env, ProcessEnv, RedisSecrets, SecretSource, Secrets};
pub use validate::{load, SERVER_FILE};
pub use warnings::warnings;

/// Default listen address: oauth2-proxy's port, so Services migrate unchanged.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:4180";

/// Trusted proxies when the server file names none: loopback and the private ranges a
/// K3s cluster's pods and nodes use.
pub const DEFAULT_TRUSTED_PROXIES: &[&str] = &[
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fd00::/8",
];

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Server-wide settings.
    pub server: ServerConfig,
    /// Every workspace, sorted by name.
    pub workspaces: Vec<WorkspaceConfig>,
}

/// `authgate.toml`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The platform domain substituted for `{domain}` in workspace hosts.
    pub domain: String,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Where the master cookie secrets come from.
    pub cookie_secrets: SecretSource,
    /// `[redis]`, when server-side sessions are configured.
    pub redis: Option<RedisConfig>,
}

/// Whether a workspace asks for a login (`auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(inline))]
pub enum AuthMode {
    /// `none`: everyone passes; no identity headers.
    #[serde(rename = "none")]
    None,
    /// `oidc`: a session from one of the workspace's providers is required.
    #[serde(rename = "oidc", alias = "login")]
    Login,
}

/// Which kind of identity provider a `[[provider]]` is (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(inline))]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any certified OpenID Provider.
    Oidc,
    /// Microsoft Entra ID (Azure AD).
    Azure,
    /// Keycloak realm.
    Keycloak,
    /// GitHub OAuth app (not OIDC).
    Github,
}

impl ProviderKind {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Azure => "azure",
            Self::Keycloak => "keycloak",
            Self::Github => "github",
        }
    }
}

/// One `[[provider]]` of a workspace.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Identifier used by `/oauth2/start?provider=<id>`.
    pub id: String,
    /// The kind.
    pub kind: ProviderKind,
    /// Name shown on the sign-in page.
    pub display_name: String,
    /// OIDC issuer (for GitHub: the web base, `https://github.com`).
    pub issuer: Url,
    /// OAuth client id.
    pub client_id: String,
    /// Where the client secret comes from.
    pub client_secret: SecretSource,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Signature algorithms accepted for ID tokens.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Settings only some kinds have.
    pub extra: ProviderExtra,
    /// Sign-out also ends the session at the provider (OIDC RP-Initiated Logout 1.0).
    pub logout_at_idp: bool,
}

/// Settings specific to one provider kind.
#[derive(Debug, Clone, Default)]
pub struct ProviderExtra {
    /// Azure: tenants accepted when the issuer is multi-tenant (`organizations`, `common`).
    pub allowed_tenants: Vec<String>,
    /// Azure: resolve group overage through Microsoft Graph instead of rejecting the login.
    pub resolve_group_overage: bool,
    /// Azure: Microsoft Graph base URL (sovereign clouds differ).
    pub graph_url: Option<Url>,
    /// GitHub: REST API base (`https://api.github.com`, or `<host>/api/v3` for Enterprise).
    pub api_url: Option<Url>,
    /// Generic OIDC and Keycloak: an email counts when `email_verified` is *absent* (for IdPs
    /// that never send it). An explicit `email_verified: false` never counts. Off by default.
    pub trust_email_without_email_verified: bool,
}

/// Entra's tenant segments that stand for "any tenant" (or any personal account): an issuer
/// naming one of these admits accounts anyone can create.
const ENTRA_OPEN_TENANTS: &[&str] = &["common", "organizations", "consumers", "{tenantid}"];

/// The tenant id of Microsoft's personal accounts (what `consumers` resolves to).
pub const ENTRA_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

impl ProviderConfig {
    /// Entra: the tenant segment of the issuer (`https://<authority>/<tenant>/v2.0`), decoded.
    fn entra_tenant(&self) -> Option<String> {
        let segment = self.issuer.path_segments()?.next()?;
        Some(
            segment
                .replace("%7B", "{")
                .replace("%7D", "}")
                .to_ascii_lowercase(),
        )
    }

    /// Whether this is Entra ID signing in users of any tenant (`common`, `organizations`,
    /// `consumers`, the `{tenantid}` template or the personal-accounts tenant), rather than
    /// one named tenant. False for every other kind.
    pub fn is_multi_tenant(&self) -> bool {
        self.kind == ProviderKind::Azure
            && self.entra_tenant().is_none_or(|t| {
                ENTRA_OPEN_TENANTS.contains(&t.as_str()) || t == ENTRA_CONSUMERS_TENANT
            })
    }

    /// Whether anyone can create an account this provider lets in: every GitHub account, or
    /// Entra ID for any tenant without an `allowed_tenants` list (personal Microsoft accounts
    /// always). A workspace on such a provider needs `[authz]` rules or `allow_any_account`.
    pub fn admits_anyone(&self) -> bool {
        match self.kind {
            ProviderKind::Github => true,
            ProviderKind::Azure if self.is_multi_tenant() => {
                let consumers = self
                    .entra_tenant()
                    .is_some_and(|t| t == "consumers" || t == ENTRA_CONSUMERS_TENANT);
                consumers
                    || self.extra.allowed_tenants.is_empty()
                    || self
                        .extra
                        .allowed_tenants
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(ENTRA_CONSUMERS_TENANT))
            }
            _ => false,
        }
    }
}

/// `[session]`.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Session cookie name.
    pub cookie_name: String,
    /// How long a session lasts.
    pub lifetime: Duration,
    /// Where the session lives.
    pub store: SessionStoreKind,
    /// Whether the IdP may end sessions by back-channel logout (needs the Redis store).
    pub backchannel_logout: bool,
    /// How old a session may get before it is refreshed at the provider; `None`: never.
    pub refresh_interval: Option<Duration>,
}

/// Where a workspace's sessions live (`session.store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(inline))]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreKind {
    /// In the sealed cookie itself (stateless; sign-out cannot revoke copies).
    Cookie,
    /// In Redis; the cookie holds a sealed ticket, sign-out revokes everywhere.
    Redis,
}

/// `[headers]`: the claim feeding each identity header.
#[derive(Debug, Clone, Default)]
pub struct HeaderMapping {
    /// Claim for `X-Auth-Request-User`.
    pub user: String,
    /// Claim for `X-Auth-Request-Email`.
    pub email: String,
    /// Claim for `X-Auth-Request-Preferred-Username`, if sent.
    pub preferred_username: Option<String>,
    /// Claim for `X-Auth-Request-Groups`, if sent.
    pub groups: Option<String>,
    /// Send the access token as `X-Auth-Request-Access-Token`.
    pub pass_access_token: bool,
    /// Send the access token as `Authorization: Bearer …`.
    pub pass_authorization_header: bool,
    /// Send the ID token as `X-Auth-Request-Id-Token`.
    pub pass_id_token: bool,
    /// More headers: (header name, lower-case and `x-auth-request-` prefixed; claim name).
    pub claims: Vec<(String, String)>,
}

/// `[authz]`: who may pass once authenticated. Empty lists allow everyone; validation refuses
/// empty lists behind a provider that admits anyone unless `allow_any_account` says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzRules {
    /// Exact addresses, lower-cased.
    pub emails: Vec<String>,
    /// Domains after the `@`, lower-cased.
    pub email_domains: Vec<String>,
    /// Groups or roles.
    pub groups: Vec<String>,
    /// The workspace means it: every account of its providers may pass (oauth2-proxy's
    /// `--email-domain=*`). Only ever set with empty lists; never read by [`AuthzRules::check`].
    pub allow_any_account: bool,
}

/// One workspace file, validated.
#[derive(Debug, Clone)]
pub struct WorkspaceConfig {
    /// File stem: `mcd` for `workspaces/mcd.toml`.
    pub name: String,
    /// The file it came from, for messages.
    pub file: PathBuf,
    /// Hosts served, `{domain}` expanded; may carry a port.
    pub hosts: Vec<Host>,
    /// Login or not.
    pub auth: AuthMode,
    /// Plain-http development: no `Secure`, no `__Host-`, http redirect targets allowed.
    pub insecure_http: bool,
    /// Whether a bearer JWT of its providers authenticates a request without a session.
    pub bearer: bool,
    /// The redirect URI registered at the IdP.
    pub callback_url: Url,
    /// Other hosts `rd` may point at.
    pub allowed_redirect_hosts: Vec<Host>,
    /// Providers, in sign-in page order.
    pub providers: Vec<ProviderConfig>,
    /// Session cookie settings.
    pub session: SessionConfig,
    /// Claim → header mapping.
    pub headers: HeaderMapping,
    /// Authorization rules.
    pub authz: AuthzRules,
    /// `[[public]]` then `[[rule]]`, compiled in the order they are tried (empty for most
    /// workspaces); `authz` when none matches.
    pub rules: crate::rules::RuleSet,
    /// `[[client]]`: machine clients by API key.
    pub clients: Vec<ClientConfig>,
    /// `[[client]]`: machine clients by JWT from an issuer of their own.
    pub jwt_clients: Vec<JwtClientConfig>,
}

/// One `[[client]]` with an `issuer`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtClientConfig {
    /// Its name.
    pub name: String,
    /// The issuer, as its tokens' `iss` names it.
    pub issuer: Url,
    /// The audience its tokens must name.
    pub audience: String,
    /// Claims its tokens must carry with exactly these values; never empty.
    pub claims: Vec<(String, String)>,
    /// A claim appended to the user apps see.
    pub user_claim: Option<String>,
    /// Signature algorithms accepted.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
}

/// One `[[client]]`, validated: a machine client and the SHA-256 digests of its valid keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Its name.
    pub name: String,
    /// SHA-256 of each valid key.
    pub key_hashes: Vec<[u8; 32]>,
    /// The lower-case header carrying the key; `None`: `Authorization: Bearer`.
    pub header: Option<String>,
    /// `api_keys_file`, when the hashes come from one: watched, so a rotation reloads.
    pub keys_file: Option<PathBuf>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("keys", &self.key_hashes.len())
            .field("header", &self.header)
            .finish()
    }
}

/// One problem in one file, at one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File, relative to the config directory where possible.
    pub file: PathBuf,
    /// Dotted field path (`provider[0].issuer`), or empty for the file itself.
    pub field: String,
    /// What is wrong and, where useful, what to do.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.problem)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.field,
                self.problem
            )
        }
    }
}

/// Every problem found in a configuration directory.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Relative path of a file under the config directory, for messages.
    pub fn relative<'a>(dir: &Path, file: &'a Path) -> &'a Path {
        file.strip_prefix(dir).unwrap_or(file)
    }
}
