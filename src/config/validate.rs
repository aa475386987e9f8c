//! Reading the config directory and turning raw files into the typed [`Config`].
//!
//! Every problem is collected, not just the first, and each names file, field and fix. Nothing
//! here panics on bad input; nothing here touches the network.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use jsonwebtoken::Algorithm;
use url::Url;

use super::raw::{RawProvider, RawServer, RawWorkspace};
use super::{
    AuthMode, AuthzRules, Config, ConfigError, ConfigErrors, Env, HeaderMapping, ProviderConfig,
    ProviderExtra, ProviderKind, SecretSource, ServerConfig, SessionConfig, WorkspaceConfig,
    DEFAULT_LISTEN, DEFAULT_TRUSTED_PROXIES,
};

/// The server file's name inside the config directory.
pub const SERVER_FILE: &str = "authgate.toml";

const DEFAULT_LIFETIME: Duration = Duration::from_secs(12 * 3600);
const DEFAULT_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::PS256];

/// Collects errors for one file.
struct Report<'a> {
    file: PathBuf,
    errors: &'a mut Vec<ConfigError>,
}

impl Report<'_> {
    fn error(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            field: field.into(),
            problem: problem.into(),
        });
    }
}

/// Loads and validates `dir/authgate.toml` and `dir/workspaces/*.toml`.
///
/// `env` supplies `AUTHGATE_DOMAIN`; secrets are only *located* here, read later by the
/// caller that needs them, so `authgate check` works on a machine without the secrets.
pub fn load(dir: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let server_path = dir.join(SERVER_FILE);
    let raw_server = if server_path.exists() {
        parse_file::<RawServer>(dir, &server_path, &mut errors).unwrap_or_default()
    } else if dir.is_dir() {
        RawServer::default()
    } else {
        return Err(ConfigErrors(vec![ConfigError {
            file: dir.to_path_buf(),
            field: String::new(),
            problem: "not a directory: pass the folder holding authgate.toml and workspaces/"
                .into(),
        }]));
    };
    let server = validate_server(
        raw_server,
        env,
        &mut Report {
            file: PathBuf::from(SERVER_FILE),
            errors: &mut errors,
        },
    );
    let ws_dir = dir.join(server.1.as_deref().unwrap_or("workspaces"));
    let mut workspaces = Vec::new();
    match read_workspace_files(&ws_dir) {
        Ok(files) if files.is_empty() => errors.push(ConfigError {
            file: Config::relative(dir, &ws_dir).to_path_buf(),
            field: String::new(),
            problem: "no workspace files (*.toml) found".into(),
        }),
        Ok(files) => {
            for path in files {
                let Some(raw) = parse_file::<RawWorkspace>(dir, &path, &mut errors) else {
                    continue;
                };
                let rel = Config::relative(dir, &path).to_path_buf();
                let mut report = Report {
                    file: rel,
                    errors: &mut errors,
                };
                if let Some(ws) = validate_workspace(&path, raw, &server.0.domain, &mut report) {
                    workspaces.push(ws);
                }
            }
        }
        Err(e) => errors.push(ConfigError {
            file: Config::relative(dir, &ws_dir).to_path_buf(),
            field: String::new(),
            problem: format!("cannot read the workspaces directory: {e}"),
        }),
    }
    check_unique_hosts(dir, &workspaces, &mut errors);
    if errors.is_empty() {
        Ok(Config {
            dir: dir.to_path_buf(),
            server: server.0,
            workspaces,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

fn read_workspace_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Parses one TOML file; a syntax or type error is reported with its line and the key there.
fn parse_file<T: serde::de::DeserializeOwned>(
    dir: &Path,
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let file = Config::relative(dir, path).to_path_buf();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            errors.push(ConfigError {
                file,
                field: String::new(),
                problem: format!("cannot read: {e}"),
            });
            return None;
        }
    };
    match toml::from_str::<T>(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let (field, line) = e.span().map(|s| key_at(&text, s.start)).unwrap_or_default();
            let problem = match line {
                0 => e.message().to_string(),
                n => format!("{} (line {n})", e.message()),
            };
            errors.push(ConfigError {
                file,
                field,
                problem,
            });
            None
        }
    }
}

/// The dotted key written on the line holding byte `offset`, and that line's number.
fn key_at(text: &str, offset: usize) -> (String, usize) {
    let before = &text[..offset.min(text.len())];
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().to_string())
        .filter(|k| !k.starts_with('['));
    let field = match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k,
        (Some(t), None) => t,
        (None, None) => String::new(),
    };
    (field, line_no)
}

fn validate_server(
    raw: RawServer,
    env: &dyn Env,
    report: &mut Report<'_>,
) -> (ServerConfig, Option<String>) {
    let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        report.error(
            "listen",
            format!("`{listen_text}` is not an address:port like 0.0.0.0:4180"),
        );
        SocketAddr::from(([0, 0, 0, 0], 4180))
    });
    let domain = env
        .var("AUTHGATE_DOMAIN")
        .filter(|d| !d.is_empty())
        .or(raw.domain)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !domain.is_empty() && parse_host(&domain).is_none() {
        report.error("domain", format!("`{domain}` is not a DNS name"));
    }
    let proxies = raw.trusted_proxies.unwrap_or_else(|| {
        DEFAULT_TRUSTED_PROXIES
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut trusted_proxies = Vec::new();
    for (i, p) in proxies.iter().enumerate() {
        match p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
        {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => report.error(
                format!("trusted_proxies[{i}]"),
                format!("`{p}` is not an IP address or CIDR range like 10.0.0.0/8"),
            ),
        }
    }
    let cookie_secrets = SecretSource {
        env: Some(
            raw.secrets
                .cookie_secrets_env
                .unwrap_or_else(|| "AUTHGATE_COOKIE_SECRETS".into()),
        ),
        file: raw.secrets.cookie_secrets_file.map(PathBuf::from),
    };
    (
        ServerConfig {
            listen,
            domain,
            trusted_proxies,
            cookie_secrets,
        },
        raw.workspaces_dir,
    )
}

fn validate_workspace(
    path: &Path,
    raw: RawWorkspace,
    domain: &str,
    report: &mut Report<'_>,
) -> Option<WorkspaceConfig> {
    let start = report.errors.len();
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        report.error(
            "",
            "the file name (the workspace's name) must be lower-case letters, digits and '-'",
        );
    }
    let hosts = validate_hosts("hosts", &raw.hosts, domain, report);
    if raw.hosts.is_empty() {
        report.error("hosts", "a workspace serves at least one host");
    }
    let auth = match raw.auth.as_str() {
        "none" => AuthMode::None,
        "oidc" | "login" => AuthMode::Login,
        other => {
            report.error(
                "auth",
                format!("`{other}` is not one of \"oidc\", \"none\""),
            );
            AuthMode::None
        }
    };
    let insecure_http = raw.insecure_http;
    let scheme = if insecure_http { "http" } else { "https" };
    let callback_url = match raw.callback_url {
        Some(text) => match Url::parse(&text) {
            Ok(u) if u.scheme() != scheme => {
                report.error(
                    "callback_url",
                    format!("must be an {scheme} URL (insecure_http = {insecure_http})"),
                );
                None
            }
            Ok(u) if !hosts.contains(&authority(&u)) => {
                report.error(
                    "callback_url",
                    format!(
                        "host `{}` is not one of this workspace's hosts",
                        authority(&u)
                    ),
                );
                None
            }
            Ok(u) => Some(u),
            Err(e) => {
                report.error("callback_url", format!("not a URL: {e}"));
                None
            }
        },
        None => hosts
            .first()
            .and_then(|h| Url::parse(&format!("{scheme}://{h}/oauth2/callback")).ok()),
    };
    let allowed_redirect_hosts = validate_hosts(
        "allowed_redirect_hosts",
        &raw.allowed_redirect_hosts,
        domain,
        report,
    );

    let mut providers = Vec::new();
    for (i, p) in raw.provider.into_iter().enumerate() {
        if let Some(p) = validate_provider(&format!("provider[{i}]"), p, report) {
            if providers.iter().any(|q: &ProviderConfig| q.id == p.id) {
                report.error(
                    format!("provider[{i}].id"),
                    format!("`{}` is used twice in this workspace", p.id),
                );
            }
            providers.push(p);
        }
    }
    match auth {
        AuthMode::Login if providers.is_empty() && report.errors.len() == start => report.error(
            "provider",
            "auth = \"oidc\" needs at least one [[provider]]",
        ),
        AuthMode::None if !providers.is_empty() => report.error(
            "provider",
            "auth = \"none\" takes no [[provider]]: remove them or set auth = \"oidc\"",
        ),
        _ => {}
    }

    let default_cookie = if insecure_http {
        "authgate"
    } else {
        "__Host-authgate"
    };
    let cookie_name = raw
        .session
        .cookie_name
        .unwrap_or_else(|| default_cookie.into());
    if cookie_name.is_empty()
        || !cookie_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        report.error(
            "session.cookie_name",
            "use letters, digits, '-', '_' and '.' only",
        );
    }
    if insecure_http && cookie_name.starts_with("__Host-") {
        report.error(
            "session.cookie_name",
            "browsers accept `__Host-` cookies only over https: drop the prefix or insecure_http",
        );
    }
    let lifetime = raw.session.lifetime.unwrap_or(DEFAULT_LIFETIME);
    if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(30 * 86400) {
        report.error("session.lifetime", "must be between 1m and 30d");
    }
    let headers = HeaderMapping {
        user: raw.headers.user.unwrap_or_else(|| "email".into()),
        email: raw.headers.email.unwrap_or_else(|| "email".into()),
        preferred_username: raw.headers.preferred_username,
        groups: raw.headers.groups,
    };
    let mut authz = AuthzRules {
        emails: raw
            .authz
            .emails
            .iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .collect(),
        email_domains: raw
            .authz
            .email_domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect(),
        groups: raw.authz.groups,
    };
    for (i, e) in authz.emails.iter().enumerate() {
        if !e.contains('@') {
            report.error(
                format!("authz.emails[{i}]"),
                format!("`{e}` is not an email address"),
            );
        }
    }
    for (i, d) in authz.email_domains.iter().enumerate() {
        if parse_host(d).is_none() {
            report.error(
                format!("authz.email_domains[{i}]"),
                format!("`{d}` is not a domain"),
            );
        }
    }
    authz.groups.retain(|g| !g.is_empty());

    if report.errors.len() > start {
        return None;
    }
    Some(WorkspaceConfig {
        name,
        file: path.to_path_buf(),
        hosts,
        auth,
        insecure_http,
        callback_url: callback_url?,
        allowed_redirect_hosts,
        providers,
        session: SessionConfig {
            cookie_name,
            lifetime,
        },
        headers,
        authz,
    })
}

fn validate_hosts(
    field: &str,
    raw: &[String],
    domain: &str,
    report: &mut Report<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, h) in raw.iter().enumerate() {
        if h.contains("{domain}") && domain.is_empty() {
            report.error(
                format!("{field}[{i}]"),
                "uses {domain} but the server file sets no domain",
            );
            continue;
        }
        let expanded = h.replace("{domain}", domain).to_ascii_lowercase();
        match parse_host(&expanded) {
            Some(host) => out.push(host),
            None => report.error(
                format!("{field}[{i}]"),
                format!("`{h}` is not a host name (write `app.example.com` or `app.example.com:8443`, no scheme or path)"),
            ),
        }
    }
    out
}

/// Parses `name` or `name:port` into its canonical lower-case form.
pub fn parse_host(text: &str) -> Option<String> {
    if text.is_empty()
        || text.contains(['/', '@', '*', '?', '#', '\\'])
        || text.contains(char::is_whitespace)
    {
        return None;
    }
    let url = Url::parse(&format!("http://{text}/")).ok()?;
    url.host_str()?;
    let canon = authority(&url);
    // The default http port would vanish in parsing; keep what was written.
    (canon == text.to_ascii_lowercase() || text.ends_with(":80"))
        .then_some(text.to_ascii_lowercase())
}

/// `host` or `host:port` of a URL, lower-case, as compared against workspace hosts.
pub fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        None => false,
    }
}

fn validate_provider(
    field: &str,
    raw: RawProvider,
    report: &mut Report<'_>,
) -> Option<ProviderConfig> {
    let start = report.errors.len();
    let kind = match raw.kind.as_deref().unwrap_or("oidc") {
        "oidc" => ProviderKind::Oidc,
        "azure" => ProviderKind::Azure,
        "keycloak" => ProviderKind::Keycloak,
        "github" => ProviderKind::Github,
        other => {
            report.error(
                format!("{field}.kind"),
                format!("`{other}` is not one of oidc, azure, keycloak, github"),
            );
            ProviderKind::Oidc
        }
    };
    let id = raw.id.unwrap_or_else(|| kind.as_str().to_string());
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        report.error(
            format!("{field}.id"),
            "use letters, digits, '-' and '_' only",
        );
    }
    // Entra may be written as a tenant (and a sovereign cloud's authority host) instead of an issuer.
    let azure_issuer = (kind == ProviderKind::Azure).then(|| {
        let tenant = raw.extra.get("tenant").and_then(|v| v.as_str())?;
        let authority = raw
            .extra
            .get("authority")
            .and_then(|v| v.as_str())
            .unwrap_or("login.microsoftonline.com");
        Some(format!("https://{authority}/{tenant}/v2.0"))
    });
    let issuer_text = raw
        .issuer
        .clone()
        .or(azure_issuer.flatten())
        .or_else(|| (kind == ProviderKind::Github).then(|| "https://github.com".into()));
    let issuer = match issuer_text {
        None => {
            report.error(
                format!("{field}.issuer"),
                "missing: the provider's issuer URL",
            );
            None
        }
        Some(text) => match Url::parse(&text) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
                if u.query().is_some() || u.fragment().is_some() {
                    report.error(
                        format!("{field}.issuer"),
                        "an issuer has no query or fragment",
                    );
                }
                Some(u)
            }
            Ok(_) => {
                report.error(
                    format!("{field}.issuer"),
                    format!("`{text}` is not an https URL"),
                );
                None
            }
            Err(e) => {
                report.error(
                    format!("{field}.issuer"),
                    format!("`{text}` is not a URL: {e}"),
                );
                None
            }
        },
    };
    let client_id = raw.client_id.unwrap_or_default();
    if client_id.trim().is_empty() {
        report.error(
            format!("{field}.client_id"),
            "missing: the client (application) id registered at the provider",
        );
    }
    if raw.client_secret.is_some() {
        report.error(
            format!("{field}.client_secret"),
            "secrets do not belong in config files: use client_secret_env or client_secret_file",
        );
    }
    if raw.client_secret_env.is_none() && raw.client_secret_file.is_none() {
        report.error(
            format!("{field}.client_secret_env"),
            "set client_secret_env or client_secret_file",
        );
    }
    let client_secret = SecretSource {
        env: raw.client_secret_env,
        file: raw.client_secret_file.map(PathBuf::from),
    };
    let scopes = raw.scopes.unwrap_or_else(|| match kind {
        ProviderKind::Github => vec!["read:user".into(), "user:email".into(), "read:org".into()],
        _ => vec!["openid".into(), "email".into(), "profile".into()],
    });
    if kind != ProviderKind::Github && !scopes.iter().any(|s| s == "openid") {
        report.error(
            format!("{field}.scopes"),
            "an OpenID Connect login needs the `openid` scope",
        );
    }
    let mut algorithms = Vec::new();
    for (i, a) in raw.algorithms.unwrap_or_default().iter().enumerate() {
        match a.as_str() {
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "EdDSA" => {
                algorithms.push(a.parse::<Algorithm>().ok()?)
            }
            "none" | "HS256" | "HS384" | "HS512" => report.error(
                format!("{field}.algorithms[{i}]"),
                format!("`{a}` is never accepted: ID tokens must be signed with the provider's private key"),
            ),
            _ => report.error(format!("{field}.algorithms[{i}]"), format!("`{a}` is not a JWS algorithm")),
        }
    }
    if algorithms.is_empty() {
        algorithms = DEFAULT_ALGORITHMS.to_vec();
    }
    let extra = validate_extra(field, kind, raw.extra, report);
    if report.errors.len() > start {
        return None;
    }
    Some(ProviderConfig {
        display_name: raw
            .display_name
            .unwrap_or_else(|| default_display_name(kind, &id)),
        id,
        kind,
        issuer: issuer?,
        client_id,
        client_secret,
        scopes,
        algorithms,
        extra,
    })
}

fn default_display_name(kind: ProviderKind, id: &str) -> String {
    match kind {
        ProviderKind::Azure => "Microsoft".into(),
        ProviderKind::Github => "GitHub".into(),
        ProviderKind::Keycloak => "Keycloak".into(),
        ProviderKind::Oidc => id.to_string(),
    }
}

fn validate_extra(
    field: &str,
    kind: ProviderKind,
    extra: BTreeMap<String, toml::Value>,
    report: &mut Report<'_>,
) -> ProviderExtra {
    let known: &[&str] = match kind {
        ProviderKind::Azure => &[
            "tenant",
            "authority",
            "allowed_tenants",
            "resolve_group_overage",
            "graph_url",
        ],
        ProviderKind::Github => &["api_url"],
        ProviderKind::Oidc | ProviderKind::Keycloak => &[],
    };
    let mut out = ProviderExtra::default();
    let mut values: HashMap<String, toml::Value> = HashMap::new();
    for (k, v) in extra {
        if known.contains(&k.as_str()) {
            values.insert(k, v);
        } else {
            let hint = if known.is_empty() {
                String::new()
            } else {
                format!(" (known: {})", known.join(", "))
            };
            report.error(
                format!("{field}.{k}"),
                format!("unknown field for kind = \"{}\"{hint}", kind.as_str()),
            );
        }
    }
    if kind == ProviderKind::Azure {
        out.graph_url = Url::parse("https://graph.microsoft.com/").ok();
    }
    for key in ["tenant", "authority"] {
        if values.remove(key).is_some_and(|v| !v.is_str()) {
            report.error(format!("{field}.{key}"), "must be a string");
        }
    }
    if let Some(v) = values.remove("allowed_tenants") {
        match v.as_array().map(|a| {
            a.iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        }) {
            Some(Some(list)) => out.allowed_tenants = list,
            _ => report.error(
                format!("{field}.allowed_tenants"),
                "must be a list of tenant ids",
            ),
        }
    }
    if let Some(v) = values.remove("resolve_group_overage") {
        match v.as_bool() {
            Some(b) => out.resolve_group_overage = b,
            None => report.error(
                format!("{field}.resolve_group_overage"),
                "must be true or false",
            ),
        }
    }
    for key in ["graph_url", "api_url"] {
        if let Some(v) = values.remove(key) {
            match v.as_str().map(Url::parse) {
                Some(Ok(u)) if u.scheme() == "https" || is_loopback(&u) => {
                    if key == "graph_url" {
                        out.graph_url = Some(u)
                    } else {
                        out.api_url = Some(u)
                    }
                }
                _ => report.error(format!("{field}.{key}"), "must be an https URL"),
            }
        }
    }
    out
}

fn check_unique_hosts(dir: &Path, workspaces: &[WorkspaceConfig], errors: &mut Vec<ConfigError>) {
    let mut owner: HashMap<&str, &WorkspaceConfig> = HashMap::new();
    for ws in workspaces {
        for (i, h) in ws.hosts.iter().enumerate() {
            if let Some(first) = owner.insert(h, ws) {
                if first.name != ws.name {
                    errors.push(ConfigError {
                        file: Config::relative(dir, &ws.file).to_path_buf(),
                        field: format!("hosts[{i}]"),
                        problem: format!(
                            "`{h}` is already served by workspace `{}` ({}): a host belongs to one workspace",
                            first.name,
                            Config::relative(dir, &first.file).display()
                        ),
                    });
                }
            }
        }
    }
}
