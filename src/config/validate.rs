//! Reading the config directory and turning raw files into the typed [`Config`].
//!
//! Every problem is collected, not just the first, and each names file, field and fix. Nothing
//! here panics on bad input; nothing here touches the network.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::parsed::{line_of, Parsed};
use super::provider::validate_provider;
use super::raw::{
    RawAuthz, RawHeaders, RawProvider, RawServer, RawServerSecrets, RawSession, RawWorkspace,
};
use super::{
    AuthMode, AuthzRules, Config, ConfigError, ConfigErrors, Env, HeaderMapping, ProviderConfig,
    ProviderKind, SecretSource, ServerConfig, SessionConfig, SessionStoreKind, WorkspaceConfig,
    DEFAULT_LISTEN, DEFAULT_TRUSTED_PROXIES,
};
use crate::host::{url_authority, Host};

/// The server file's name inside the config directory.
pub const SERVER_FILE: &str = "authgate.toml";

const DEFAULT_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Collects errors for one file.
pub(super) struct Report<'a> {
    pub(super) file: PathBuf,
    /// The file's text, for the line of a value serde refused.
    pub(super) source: &'a str,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

impl Report<'_> {
    pub(super) fn error(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            field: field.into(),
            problem: problem.into(),
        });
    }

    /// Reports a problem with the line holding byte `offset` of the file, as a syntax error is.
    pub(super) fn error_at(&mut self, field: impl Into<String>, problem: &str, offset: usize) {
        let line = line_of(self.source, offset);
        self.error(field, format!("{problem} (line {line})"));
    }

    /// The value serde read for `field`, or `None` with serde's refusal reported at its line.
    pub(super) fn parsed<T>(&mut self, field: impl Into<String>, p: Parsed<T>) -> Option<T> {
        match p.value {
            Ok(v) => Some(v),
            Err(problem) => {
                self.error_at(field, problem.message(), p.span.start);
                None
            }
        }
    }
}

/// Loads and validates `dir/authgate.toml` and `dir/workspaces/*.toml`.
///
/// `env` supplies `AUTHGATE_DOMAIN`; secrets are only *located* here, read later by the
/// caller that needs them, so `authgate check` works on a machine without the secrets.
pub fn load(dir: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let server_path = dir.join(SERVER_FILE);
    let (raw_server, server_text) = if server_path.exists() {
        parse_file::<RawServer>(dir, &server_path, &mut errors).unwrap_or_default()
    } else if dir.is_dir() {
        Default::default()
    } else {
        return Err(ConfigErrors(vec![ConfigError {
            file: dir.to_path_buf(),
            field: String::new(),
            problem: "not a directory: pass the folder holding authgate.toml and workspaces/"
                .into(),
        }]));
    };
    let (server, workspaces_dir) = validate_server(
        raw_server,
        env,
        &mut Report {
            file: PathBuf::from(SERVER_FILE),
            source: &server_text,
            errors: &mut errors,
        },
    );
    let ws_dir = dir.join(workspaces_dir.as_deref().unwrap_or("workspaces"));
    let workspaces = load_workspaces(dir, &ws_dir, &server, env, &mut errors);
    check_unique_hosts(dir, &workspaces, &mut errors);
    if errors.is_empty() {
        Ok(Config {
            dir: dir.to_path_buf(),
            server,
            workspaces,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Every `*.toml` of `ws_dir`, in name order, validated; a refused file is left out (its
/// problems are in `errors`).
fn load_workspaces(
    dir: &Path,
    ws_dir: &Path,
    server: &ServerConfig,
    env: &dyn Env,
    errors: &mut Vec<ConfigError>,
) -> Vec<WorkspaceConfig> {
    let files = match read_workspace_files(ws_dir) {
        Ok(files) if !files.is_empty() => files,
        result => {
            errors.push(ConfigError {
                file: Config::relative(dir, ws_dir).to_path_buf(),
                field: String::new(),
                problem: match result {
                    Err(e) => format!("cannot read the workspaces directory: {e}"),
                    Ok(_) => "no workspace files (*.toml) found".into(),
                },
            });
            return Vec::new();
        }
    };
    let mut workspaces = Vec::new();
    for path in files {
        let Some((raw, text)) = parse_file::<RawWorkspace>(dir, &path, errors) else {
            continue;
        };
        let mut report = Report {
            file: Config::relative(dir, &path).to_path_buf(),
            source: &text,
            errors,
        };
        let has_redis = server.redis.is_some();
        if let Some(ws) =
            validate_workspace(&path, raw, &server.domain, has_redis, env, &mut report)
        {
            workspaces.push(ws);
        }
    }
    workspaces
}

fn read_workspace_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Parses one TOML file, returned with its text; a syntax or type error is reported with its
/// line and the key there.
fn parse_file<T: serde::de::DeserializeOwned>(
    dir: &Path,
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<(T, String)> {
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
        Ok(v) => Some((v, text)),
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

/// The server file: each setting its own check. Returns the config and `workspaces_dir`.
fn validate_server(
    raw: RawServer,
    env: &dyn Env,
    report: &mut Report<'_>,
) -> (ServerConfig, Option<String>) {
    let server = ServerConfig {
        listen: listen(raw.listen, report),
        domain: domain(env, raw.domain, report),
        trusted_proxies: trusted_proxies(raw.trusted_proxies, report),
        cookie_secrets: cookie_secrets(raw.secrets),
        redis: raw.redis.map(|r| super::redis::validate_redis(r, report)),
    };
    (server, raw.workspaces_dir)
}

fn listen(written: Option<String>, report: &mut Report<'_>) -> SocketAddr {
    let text = written.unwrap_or_else(|| DEFAULT_LISTEN.into());
    text.parse::<SocketAddr>().unwrap_or_else(|_| {
        report.error(
            "listen",
            format!("`{text}` is not an address:port like 0.0.0.0:4180"),
        );
        SocketAddr::from(([0, 0, 0, 0], 4180))
    })
}

/// The platform domain: `AUTHGATE_DOMAIN` when set, else the file's; lower-case.
fn domain(env: &dyn Env, written: Option<String>, report: &mut Report<'_>) -> String {
    let domain = env
        .var("AUTHGATE_DOMAIN")
        .filter(|d| !d.is_empty())
        .or(written)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !domain.is_empty() && Host::parse(&domain).is_err() {
        report.error("domain", format!("`{domain}` is not a DNS name"));
    }
    domain
}

/// CIDR ranges or single addresses; the private ranges when the file names none.
fn trusted_proxies(written: Option<Vec<String>>, report: &mut Report<'_>) -> Vec<IpNet> {
    let proxies = written.unwrap_or_else(|| {
        DEFAULT_TRUSTED_PROXIES
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut out = Vec::new();
    for (i, p) in proxies.iter().enumerate() {
        match p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
        {
            Ok(net) => out.push(net),
            Err(_) => report.error(
                format!("trusted_proxies[{i}]"),
                format!("`{p}` is not an IP address or CIDR range like 10.0.0.0/8"),
            ),
        }
    }
    out
}

fn cookie_secrets(raw: RawServerSecrets) -> SecretSource {
    SecretSource {
        env: Some(
            raw.cookie_secrets_env
                .unwrap_or_else(|| "AUTHGATE_COOKIE_SECRETS".into()),
        ),
        file: raw.cookie_secrets_file.map(PathBuf::from),
    }
}

/// One workspace file: each part its own check, every problem reported. `None` when any.
fn validate_workspace(
    path: &Path,
    raw: RawWorkspace,
    domain: &str,
    has_redis: bool,
    env: &dyn Env,
    report: &mut Report<'_>,
) -> Option<WorkspaceConfig> {
    let start = report.errors.len();
    let name = workspace_name(path, report);
    let hosts = validate_hosts("hosts", &raw.hosts, domain, report);
    if raw.hosts.is_empty() {
        report.error("hosts", "a workspace serves at least one host");
    }
    let auth = report.parsed("auth", raw.auth).unwrap_or(AuthMode::None);
    let insecure_http = raw.insecure_http;
    let callback_url = callback_url(raw.callback_url, &hosts, insecure_http, report);
    let allowed_redirect_hosts = validate_hosts(
        "allowed_redirect_hosts",
        &raw.allowed_redirect_hosts,
        domain,
        report,
    );
    let providers = providers(raw.provider, report);
    check_auth_providers(auth, &providers, report.errors.len() == start, report);
    let session = session(raw.session, insecure_http, has_redis, report);
    let headers = headers(raw.headers, report);
    let authz = authz(raw.authz, report);
    check_open_providers(&providers, &authz, report);
    let public = super::public::validate(raw.public, report);
    let (clients, jwt_clients) = super::clients::validate(raw.client, env, report);
    let client_names: Vec<String> = clients
        .iter()
        .map(|c| c.name.clone())
        .chain(jwt_clients.iter().map(|c| c.name.clone()))
        .collect();
    let rules = super::rules::compile(
        public,
        raw.rule,
        &super::rules::Context {
            hosts: &hosts,
            domain,
            auth,
            headers: &headers,
            clients: &client_names,
        },
        report,
    );
    if report.errors.len() > start {
        return None;
    }
    Some(WorkspaceConfig {
        name,
        file: path.to_path_buf(),
        hosts,
        auth,
        insecure_http,
        bearer: raw.bearer.unwrap_or(true),
        callback_url: callback_url?,
        allowed_redirect_hosts,
        providers,
        session,
        headers,
        authz,
        rules,
        clients,
        jwt_clients,
    })
}

/// The file stem names the workspace: it goes into routes and keys, so it is plain.
fn workspace_name(path: &Path, report: &mut Report<'_>) -> String {
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
    name
}

/// `callback_url`: on one of the workspace's hosts, in its scheme; by default
/// `<scheme>://<first host>/oauth2/callback`.
fn callback_url(
    written: Option<String>,
    hosts: &[Host],
    insecure_http: bool,
    report: &mut Report<'_>,
) -> Option<Url> {
    let scheme = if insecure_http { "http" } else { "https" };
    let Some(text) = written else {
        return hosts
            .first()
            .and_then(|h| Url::parse(&format!("{scheme}://{h}/oauth2/callback")).ok());
    };
    let problem = match Url::parse(&text) {
        Ok(u) if u.scheme() != scheme => {
            format!("must be an {scheme} URL (insecure_http = {insecure_http})")
        }
        Ok(u) if !Host::parse(&url_authority(&u)).is_ok_and(|h| hosts.contains(&h)) => {
            format!(
                "host `{}` is not one of this workspace's hosts",
                url_authority(&u)
            )
        }
        Ok(u) => return Some(u),
        Err(e) => format!("not a URL: {e}"),
    };
    report.error("callback_url", problem);
    None
}

/// Every `[[provider]]`, in order; an id used twice is refused.
fn providers(raw: Vec<RawProvider>, report: &mut Report<'_>) -> Vec<ProviderConfig> {
    let mut providers: Vec<ProviderConfig> = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        if let Some(p) = validate_provider(&format!("provider[{i}]"), p, report) {
            if providers.iter().any(|q| q.id == p.id) {
                report.error(
                    format!("provider[{i}].id"),
                    format!("`{}` is used twice in this workspace", p.id),
                );
            }
            providers.push(p);
        }
    }
    providers
}

/// A login needs a provider (said only when nothing else is wrong: a refused provider is
/// missing from `providers`); `auth = "none"` takes none.
fn check_auth_providers(
    auth: AuthMode,
    providers: &[ProviderConfig],
    clean_so_far: bool,
    report: &mut Report<'_>,
) {
    match auth {
        AuthMode::Login if providers.is_empty() && clean_so_far => report.error(
            "provider",
            "auth = \"oidc\" needs at least one [[provider]]",
        ),
        AuthMode::None if !providers.is_empty() => report.error(
            "provider",
            "auth = \"none\" takes no [[provider]]: remove them or set auth = \"oidc\"",
        ),
        _ => {}
    }
}

/// `[session]`: the cookie's name, where sessions live, how long they last.
fn session(
    raw: RawSession,
    insecure_http: bool,
    has_redis: bool,
    report: &mut Report<'_>,
) -> SessionConfig {
    let cookie_name = cookie_name(raw.cookie_name, insecure_http, report);
    let store = session_store(raw.store, has_redis, report);
    if raw.backchannel_logout && store != SessionStoreKind::Redis {
        report.error(
            "session.backchannel_logout",
            "requires store = \"redis\": a logout token names sessions by the IdP's sid or sub, \
             and only sessions kept in Redis can be found that way and ended before they expire",
        );
    }
    let lifetime = raw.lifetime.unwrap_or(DEFAULT_LIFETIME);
    if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(30 * 86400) {
        report.error("session.lifetime", "must be between 1m and 30d");
    }
    SessionConfig {
        cookie_name,
        refresh_interval: refresh_interval(raw.refresh_interval, lifetime, report),
        lifetime,
        store,
        backchannel_logout: raw.backchannel_logout,
    }
}

/// `session.refresh_interval`: within the session's lifetime, never past it; unset, never.
fn refresh_interval(
    written: Option<Duration>,
    lifetime: Duration,
    report: &mut Report<'_>,
) -> Option<Duration> {
    if let Some(interval) = written {
        if interval < Duration::from_secs(1) || interval >= lifetime {
            report.error(
                "session.refresh_interval",
                format!(
                    "must be at least 1s and shorter than session.lifetime ({}): a session is \
                     refreshed within its lifetime, never past it",
                    humantime::format_duration(lifetime)
                ),
            );
        }
    }
    written
}

/// `session.cookie_name`: a cookie token; `__Host-` (the default over https) only over https.
fn cookie_name(written: Option<String>, insecure_http: bool, report: &mut Report<'_>) -> String {
    let default = if insecure_http {
        "authgate"
    } else {
        "__Host-authgate"
    };
    let name = written.unwrap_or_else(|| default.into());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        report.error(
            "session.cookie_name",
            "use letters, digits, '-', '_' and '.' only",
        );
    }
    if insecure_http && name.starts_with("__Host-") {
        report.error(
            "session.cookie_name",
            "browsers accept `__Host-` cookies only over https: drop the prefix or insecure_http",
        );
    }
    name
}

/// `session.store`: the cookie by default; Redis only when the server file configures it.
fn session_store(
    written: Option<Parsed<SessionStoreKind>>,
    has_redis: bool,
    report: &mut Report<'_>,
) -> SessionStoreKind {
    match written.and_then(|p| report.parsed("session.store", p)) {
        Some(SessionStoreKind::Redis) if !has_redis => {
            report.error(
                "session.store",
                "\"redis\" needs a [redis] table in authgate.toml",
            );
            SessionStoreKind::Cookie
        }
        Some(store) => store,
        None => SessionStoreKind::Cookie,
    }
}

/// `[headers]`: the claim behind each identity header (`email` by default) and the tokens
/// passed on.
fn headers(raw: RawHeaders, report: &mut Report<'_>) -> HeaderMapping {
    HeaderMapping {
        claims: claim_headers(raw.claims, report),
        user: raw.user.unwrap_or_else(|| "email".into()),
        email: raw.email.unwrap_or_else(|| "email".into()),
        preferred_username: raw.preferred_username,
        groups: raw.groups,
        pass_access_token: raw.pass_access_token,
        pass_authorization_header: raw.pass_authorization_header,
        pass_id_token: raw.pass_id_token,
    }
}

/// `[authz]`: addresses and domains lower-cased (a domain's `@` dropped), empty groups dropped.
fn authz(raw: RawAuthz, report: &mut Report<'_>) -> AuthzRules {
    let emails: Vec<String> = raw
        .emails
        .iter()
        .map(|e| e.trim().to_ascii_lowercase())
        .collect();
    for (i, e) in emails.iter().enumerate() {
        if !e.contains('@') {
            report.error(
                format!("authz.emails[{i}]"),
                format!("`{e}` is not an email address"),
            );
        }
    }
    let email_domains: Vec<String> = raw
        .email_domains
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .collect();
    for (i, d) in email_domains.iter().enumerate() {
        if Host::parse(d).is_err() {
            report.error(
                format!("authz.email_domains[{i}]"),
                format!("`{d}` is not a domain"),
            );
        }
    }
    AuthzRules {
        emails,
        email_domains,
        groups: raw.groups.into_iter().filter(|g| !g.is_empty()).collect(),
        allow_any_account: raw.allow_any_account,
    }
}

/// Headers authgate sends itself; `[headers.claims]` may not name them.
const OWN_HEADERS: &[&str] = &[
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-auth-request-groups",
    "x-auth-request-access-token",
    "x-auth-request-id-token",
    "x-auth-request-redirect",
];

/// `[headers.claims]`: each key a header name starting `X-Auth-Request-` (so a claim can never
/// set `Authorization`, `Cookie` or a header NGINX acts on), not one authgate sends itself;
/// each value a claim name.
fn claim_headers(raw: BTreeMap<String, String>, report: &mut Report<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (header, claim) in raw {
        let field = format!("headers.claims.\"{header}\"");
        let lower = header.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            report.error(field, format!("`{header}` is not an HTTP header name"));
        } else if !lower.starts_with("x-auth-request-") || lower.len() == "x-auth-request-".len() {
            report.error(
                field,
                format!(
                    "`{header}` must start with X-Auth-Request- (as every header authgate sends)"
                ),
            );
        } else if OWN_HEADERS.contains(&lower.as_str()) {
            report.error(field, format!("`{header}` is one authgate sends itself; map its claim under [headers] instead"));
        } else if claim.trim().is_empty() {
            report.error(field, "names no claim");
        } else {
            out.push((lower, claim));
        }
    }
    out
}

/// Deny by default: a provider that admits accounts anyone can create (GitHub, multi-tenant
/// Entra ID without `allowed_tenants`) behind an empty `[authz]` would let the whole world in,
/// so the workspace must either narrow it or say `allow_any_account = true` (as oauth2-proxy
/// asks for `--email-domain=*`). `allow_any_account` next to rules is refused too: the file
/// would then say two things, and whoever reads one half is misled.
fn check_open_providers(providers: &[ProviderConfig], authz: &AuthzRules, report: &mut Report<'_>) {
    let has_rules = !authz.is_empty();
    if authz.allow_any_account && has_rules {
        report.error(
            "authz.allow_any_account",
            "says every account may pass, but emails, email_domains or groups narrow who does: keep one or the other",
        );
        return;
    }
    if has_rules || authz.allow_any_account {
        return;
    }
    for (i, p) in providers.iter().enumerate() {
        if !p.admits_anyone() {
            continue;
        }
        let who = match p.kind {
            ProviderKind::Github => "every GitHub account".to_string(),
            _ => format!(
                "accounts of any Microsoft tenant (issuer `{}`, no allowed_tenants)",
                p.issuer
            ),
        };
        report.error(
            "authz",
            format!(
                "provider[{i}] ({}) admits {who} and [authz] is empty: add emails, email_domains or groups, or set authz.allow_any_account = true",
                p.kind.as_str()
            ),
        );
    }
}

pub(super) fn validate_hosts(
    field: &str,
    raw: &[String],
    domain: &str,
    report: &mut Report<'_>,
) -> Vec<Host> {
    let mut out = Vec::new();
    for (i, h) in raw.iter().enumerate() {
        if h.contains("{domain}") && domain.is_empty() {
            report.error(
                format!("{field}[{i}]"),
                "uses {domain} but the server file sets no domain",
            );
            continue;
        }
        let expanded = h.replace("{domain}", domain);
        match Host::parse(&expanded) {
            Ok(host) => out.push(host),
            Err(_) => report.error(
                format!("{field}[{i}]"),
                format!("`{h}` is not a host name (write `app.example.com` or `app.example.com:8443`, no scheme or path)"),
            ),
        }
    }
    out
}

fn check_unique_hosts(dir: &Path, workspaces: &[WorkspaceConfig], errors: &mut Vec<ConfigError>) {
    let mut owner: HashMap<&Host, &WorkspaceConfig> = HashMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of one workspace file `workspaces/x.toml`, as `field: problem`.
    fn errors(toml_text: &str) -> Vec<String> {
        let raw: RawWorkspace = toml::from_str(toml_text).unwrap();
        let mut errors = Vec::new();
        let mut report = Report {
            file: PathBuf::from("workspaces/x.toml"),
            source: toml_text,
            errors: &mut errors,
        };
        validate_workspace(
            Path::new("x.toml"),
            raw,
            "",
            false,
            &HashMap::new(),
            &mut report,
        );
        errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.problem))
            .collect()
    }

    fn workspace(provider: &str, authz: &str) -> String {
        format!("hosts = [\"x.example.com\"]\nauth = \"oidc\"\n[[provider]]\nclient_id = \"c\"\nclient_secret_env = \"S\"\n{provider}\n[authz]\n{authz}\n")
    }

    const GITHUB: &str = "kind = \"github\"";
    const ENTRA: &str = "kind = \"azure\"";

    fn entra(tenant: &str, more: &str) -> String {
        format!("{ENTRA}\nissuer = \"https://login.microsoftonline.com/{tenant}/v2.0\"\n{more}")
    }

    #[test]
    fn claim_headers_and_idp_logout_are_checked_with_their_field() {
        let oidc = "kind = \"oidc\"\nissuer = \"https://idp.example.com\"";
        let with_claims = |claims: &str| {
            format!(
                "{}\n[headers.claims]\n{claims}\n",
                workspace(oidc, "allow_any_account = true")
            )
        };
        let cases = [
            ("\"X-Auth-Request-Tenant\" = \"tid\"", None),
            (
                "\"X-Tenant\" = \"tid\"",
                Some("headers.claims.\"X-Tenant\": `X-Tenant` must start with X-Auth-Request-"),
            ),
            (
                "\"Authorization\" = \"tid\"",
                Some("must start with X-Auth-Request-"),
            ),
            (
                "\"X-Auth-Request-User\" = \"tid\"",
                Some("is one authgate sends itself"),
            ),
            (
                "\"X-Auth-Request-Bad Name\" = \"tid\"",
                Some("is not an HTTP header name"),
            ),
            ("\"X-Auth-Request-Tenant\" = \" \"", Some("names no claim")),
        ];
        for (claims, want) in cases {
            let got = errors(&with_claims(claims));
            match want {
                None => assert!(got.is_empty(), "{claims}: {got:?}"),
                Some(w) => assert!(got.len() == 1 && got[0].contains(w), "{claims}: {got:?}"),
            }
        }
        let got = errors(&workspace(
            &format!("{GITHUB}\nlogout_at_idp = true"),
            "allow_any_account = true",
        ));
        assert!(
            got.iter()
                .any(|e| e.starts_with("provider[0].logout_at_idp: ")),
            "{got:?}"
        );
    }

    #[test]
    fn providers_anyone_can_join_need_a_rule_or_the_explicit_opt_in() {
        let open = [
            GITHUB.to_string(),
            entra("common", ""),
            entra("organizations", ""),
            entra("consumers", ""),
            entra("{tenantid}", ""),
            entra("Common", ""),
            entra(crate::config::ENTRA_CONSUMERS_TENANT, ""),
            format!("{ENTRA}\ntenant = \"organizations\""),
            // Personal accounts cannot be narrowed by tenant.
            entra(
                "consumers",
                "allowed_tenants = [\"9188040d-6c67-4c5b-b112-36a304b66dad\"]",
            ),
            entra(
                "common",
                "allowed_tenants = [\"9188040d-6c67-4c5b-b112-36a304b66dad\"]",
            ),
        ];
        for p in &open {
            let errs = errors(&workspace(p, ""));
            assert_eq!(errs.len(), 1, "{p}: {errs:?}");
            assert!(
                errs[0].starts_with("authz: provider[0] (")
                    && errs[0].contains("[authz] is empty: add emails, email_domains or groups, or set authz.allow_any_account = true"),
                "{p}: {errs:?}"
            );
            for authz in [
                "allow_any_account = true",
                "emails = [\"a@x.test\"]",
                "email_domains = [\"x.test\"]",
                "groups = [\"admins\"]",
            ] {
                assert_eq!(
                    errors(&workspace(p, authz)),
                    Vec::<String>::new(),
                    "{p} + {authz}"
                );
            }
        }
        assert!(errors(&workspace(GITHUB, ""))[0]
            .starts_with("authz: provider[0] (github) admits every GitHub account"));
    }

    #[test]
    fn providers_of_one_organisation_need_no_rule() {
        let closed = [
            "issuer = \"https://idp.example.com\"".to_string(),
            "kind = \"keycloak\"\nissuer = \"https://kc.example.com/realms/x\"".to_string(),
            entra("72f988bf-86f1-41af-91ab-2d7cd011db47", ""),
            entra("contoso.onmicrosoft.com", ""),
            entra(
                "organizations",
                "allowed_tenants = [\"72f988bf-86f1-41af-91ab-2d7cd011db47\"]",
            ),
            entra(
                "common",
                "allowed_tenants = [\"72f988bf-86f1-41af-91ab-2d7cd011db47\"]",
            ),
        ];
        for p in &closed {
            assert_eq!(errors(&workspace(p, "")), Vec::<String>::new(), "{p}");
        }
    }

    #[test]
    fn refresh_interval_lies_within_the_session_lifetime() {
        let p = "issuer = \"https://idp.example.com\"";
        for (session, refused) in [
            ("refresh_interval = \"5m\"\n", false),
            ("refresh_interval = \"1s\"\n", false),
            ("refresh_interval = \"0s\"\n", true),
            ("refresh_interval = \"12h\"\n", true),
            ("lifetime = \"1h\"\nrefresh_interval = \"2h\"\n", true),
        ] {
            let errs = errors(&format!("{}[session]\n{session}", workspace(p, "")));
            if refused {
                assert_eq!(errs.len(), 1, "{session}: {errs:?}");
                assert!(
                    errs[0].starts_with("session.refresh_interval: must be at least 1s and shorter than session.lifetime"),
                    "{errs:?}"
                );
            } else {
                assert!(errs.is_empty(), "{session}: {errs:?}");
            }
        }
        let unparsed = toml::from_str::<RawWorkspace>(&format!(
            "{}[session]\nrefresh_interval = \"soon\"\n",
            workspace(p, "")
        ))
        .unwrap_err()
        .to_string();
        assert!(unparsed.contains("refresh_interval"), "{unparsed}");
    }

    #[test]
    fn backchannel_logout_needs_the_redis_store() {
        let p = "issuer = \"https://idp.example.com\"";
        let errs = errors(&format!(
            "{}[session]\nbackchannel_logout = true\n",
            workspace(p, "")
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("session.backchannel_logout: requires store = \"redis\""),
            "{errs:?}"
        );
        let raw: RawWorkspace = toml::from_str(&format!(
            "{}[session]\nstore = \"redis\"\nbackchannel_logout = true\n",
            workspace(p, "")
        ))
        .unwrap();
        let mut errors = Vec::new();
        let mut report = Report {
            file: PathBuf::from("workspaces/x.toml"),
            source: "",
            errors: &mut errors,
        };
        let ws = validate_workspace(
            Path::new("x.toml"),
            raw,
            "",
            true,
            &HashMap::new(),
            &mut report,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(ws.unwrap().session.backchannel_logout);
    }

    #[test]
    fn allow_any_account_next_to_rules_is_a_contradiction() {
        let errs = errors(&workspace(
            GITHUB,
            "allow_any_account = true\ngroups = [\"admins\"]",
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("authz.allow_any_account: says every account may pass"));
    }

    #[test]
    fn multi_tenant_is_read_from_the_issuer() {
        let mut errs = Vec::new();
        let mut report = Report {
            file: PathBuf::from("x.toml"),
            source: "",
            errors: &mut errs,
        };
        let mut is_multi = |p: &str| {
            let raw: RawWorkspace = toml::from_str(&workspace(p, "")).unwrap();
            let p = raw.provider.into_iter().next().unwrap();
            validate_provider("p", p, &mut report)
                .unwrap()
                .is_multi_tenant()
        };
        assert!(is_multi(&entra("organizations", "")));
        assert!(is_multi(&entra("{tenantid}", "")));
        assert!(!is_multi(&entra(
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            ""
        )));
        assert!(!is_multi("issuer = \"https://idp.example.com/common\""));
    }

    #[test]
    fn trust_email_without_email_verified_is_a_known_key_of_oidc_and_keycloak_only() {
        for kind in ["oidc", "keycloak"] {
            let p = format!("kind = \"{kind}\"\nissuer = \"https://idp.example.com\"\ntrust_email_without_email_verified = true");
            assert_eq!(errors(&workspace(&p, "")), Vec::<String>::new(), "{kind}");
            let p = format!("kind = \"{kind}\"\nissuer = \"https://idp.example.com\"\ntrust_email_without_email_verified = \"yes\"");
            assert_eq!(
                errors(&workspace(&p, "")),
                vec!["provider[0].trust_email_without_email_verified: invalid type: string \"yes\", expected a boolean (line 8)"]
            );
            let p = format!(
                "kind = \"{kind}\"\nissuer = \"https://idp.example.com\"\ntrust_emial = true"
            );
            assert_eq!(
                errors(&workspace(&p, "")),
                vec![format!("provider[0].trust_emial: unknown field for kind = \"{kind}\" (known: trust_email_without_email_verified) (line 8)")]
            );
        }
        let p = entra(
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "trust_email_without_email_verified = true",
        );
        assert!(errors(&workspace(&p, ""))[0].starts_with(
            "provider[0].trust_email_without_email_verified: unknown field for kind = \"azure\""
        ));
    }
}
