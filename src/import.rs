//! `authgate import oauth2-proxy`: an oauth2-proxy config file turned into a workspace file.
//!
//! Owns the mapping of oauth2-proxy's options (its TOML `.cfg`, the command-line flags'
//! names with `_`) onto a workspace file, and naming each option it cannot carry over, with
//! why. Pure: text in, text and notes out; the command prints them, and reads the one file an
//! option names (`authenticated_emails_file`) through [`Options::read_file`]. Never widens
//! access: a restriction it cannot carry (`import/access.rs`) refuses the import, or with
//! `accept_loss` gives a workspace that lets nobody in. Never writes a secret into the
//! workspace file: `client_secret` becomes `client_secret_env`, `cookie_secret` is left to
//! `authgate.toml`'s secret source.

mod access;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use toml::{Table, Value};

/// The workspace file and what was not carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The workspace file's text.
    pub workspace: String,
    /// One line per option not carried over (or carried over differently), with why.
    pub notes: Vec<String>,
}

/// What the import is told besides the config's text.
pub struct Options<'a> {
    /// The workspace's host, when `redirect_url` does not name it.
    pub host: Option<&'a str>,
    /// The environment variable the client secret will be read from.
    pub secret_env: &'a str,
    /// Write the workspace even when a restriction cannot be carried: it then lets nobody in,
    /// and names each lost option in a comment.
    pub accept_loss: bool,
    /// Reads a file an option names (`authenticated_emails_file`), as written in the config.
    pub read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
}

/// A restriction of the oauth2-proxy config that authgate cannot express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The option, as written.
    pub option: String,
    /// What it restricted, and why it cannot be carried.
    pub why: String,
}

/// Why no workspace file could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file is not TOML.
    #[error("not an oauth2-proxy config file (TOML): {0}")]
    Syntax(String),
    /// A value authgate needs is missing or unusable.
    #[error("{0}")]
    Unusable(String),
    /// Restrictions authgate cannot express: dropping them would let more users in. One line
    /// each, `option: why`.
    #[error("{}\nnothing written: carrying the rest would let in users oauth2-proxy refused; --accept-loss writes a workspace that lets nobody in, naming these options", lost_lines(.0))]
    Lost(Vec<Lost>),
}

fn lost_lines(lost: &[Lost]) -> String {
    let lines: Vec<String> = lost
        .iter()
        .map(|l| format!("{}: {}", l.option, l.why))
        .collect();
    lines.join("\n")
}

/// Options with nothing to carry: what authgate always does, or what only a reverse proxy
/// needs.
const SILENT: &[&str] = &[
    "set_xauthrequest",
    "code_challenge_method",
    "reverse_proxy",
    "http_address",
    "https_address",
    "upstreams",
    "skip_provider_button",
];

/// Options dropped with the reason, for those with no authgate counterpart worth a sentence.
const DROPPED: &[(&str, &str)] = &[
    ("cookie_secret", "the master secret belongs in authgate.toml's [secrets] (cookie_secrets_env or cookie_secrets_file; `authgate secret` makes one); existing oauth2-proxy sessions do not carry over"),
    ("cookie_secret_file", "the master secret belongs in authgate.toml's [secrets] cookie_secrets_file; existing oauth2-proxy sessions do not carry over"),
    ("pass_user_headers", "authgate is not a proxy: NGINX copies X-Auth-Request-* (auth-response-headers)"),
    ("cookie_domains", "session cookies are host-only (`__Host-`), one workspace per host list"),
    ("cookie_domain", "session cookies are host-only (`__Host-`), one workspace per host list"),
    ("cookie_secure", "cookies are Secure unless the workspace sets insecure_http = true"),
    ("cookie_samesite", "cookies are SameSite=Lax"),
    ("cookie_httponly", "cookies are always HttpOnly"),
    ("insecure_oidc_allow_unverified_email", "never an unverified email; the closest is trust_email_without_email_verified (an absent claim only)"),
    ("htpasswd_file", "no local password logins: its users no longer get in"),
    ("htpasswd_user_groups", "no local password logins"),
    ("trusted_ips", "no address passes without a login: those clients now sign in"),
    ("oidc_extra_audiences", "tokens must name the client_id as audience"),
    ("oidc_audience_claims", "tokens must name the client_id in `aud`"),
    ("api_routes", "it changes no access: authgate answers /oauth2/auth with 401, NGINX's auth-signin makes the redirect, and on the Traefik/Caddy route only a browser (Accept: text/html, no bearer token) is redirected, every other client gets the 401"),
    ("ping_user_agent", "/ping answers by path only; no User-Agent passes without a login"),
    ("gcp_healthchecks", "/ping and /ready answer by path only"),
    ("acr_values", "authgate does not ask the provider for an authentication level: require it at the provider (a Keycloak flow, Entra Conditional Access)"),
    ("prefer_email_to_user", "set [headers] user = \"email\""),
    ("google_admin_email", "it served google_groups, which authgate does not read"),
    ("google_service_account_json", "it served google_groups, which authgate does not read"),
    ("google_use_application_default_credentials", "it served google_groups, which authgate does not read"),
    ("google_target_principal", "it served google_groups, which authgate does not read"),
    ("google_use_organization_id", "it served google_groups, which authgate does not read"),
    ("google_admin_api_user_scope", "it served google_groups, which authgate does not read"),
    ("session_store_type", "set [session] store = \"redis\" and authgate.toml's [redis] by hand"),
    ("redis_connection_url", "the Redis URL belongs in authgate.toml's [redis] (url_env or url_file)"),
    ("redis_password", "the Redis password belongs in authgate.toml's [redis] (password_env or password_file)"),
    ("redis_username", "set authgate.toml's [redis] username"),
    ("redis_ca_path", "set authgate.toml's [redis] ca_file (with a rediss:// URL)"),
    ("redis_insecure_skip_tls_verify", "authgate always verifies Redis's certificate: give its CA in [redis] ca_file"),
    ("redis_use_sentinel", "set authgate.toml's [redis] sentinels and sentinel_master instead of a URL"),
    ("redis_sentinel_master_name", "set authgate.toml's [redis] sentinel_master"),
    ("redis_sentinel_connection_urls", "list the sentinels as host:port in authgate.toml's [redis] sentinels"),
    ("redis_sentinel_password", "the sentinels' password belongs in authgate.toml's [redis] (sentinel_password_env or sentinel_password_file)"),
    ("redis_use_cluster", "Redis Cluster is not supported: one server or Sentinel"),
    ("redis_cluster_connection_urls", "Redis Cluster is not supported: one server or Sentinel"),
    ("allow_query_semicolons", "authgate has no such option"),
];

/// Words in an option's name that say it may narrow who passes: an option this importer does
/// not know and whose name has one is refused, never dropped.
const RESTRICTION_WORDS: &[&str] = &[
    "allow", "group", "role", "user", "team", "org", "repo", "project", "tenant", "email", "domain",
];

/// The config with its option names in lower case, as oauth2-proxy reads them (its config
/// loader, viper, ignores the case of keys: `Allowed_Groups` is `allowed_groups`). Two
/// spellings of one option are refused: which one oauth2-proxy kept is not for us to guess.
fn lower_case_keys(cfg: Table) -> Result<Table, ImportError> {
    let mut out = Table::new();
    for (k, v) in cfg {
        let lower = k.to_ascii_lowercase();
        if out.contains_key(&lower) {
            return Err(ImportError::Unusable(format!(
                "{k}: the option is written twice, in different cases; keep one"
            )));
        }
        out.insert(lower, v);
    }
    Ok(out)
}

/// Converts the text of an oauth2-proxy config file.
pub fn oauth2_proxy(text: &str, opts: &Options<'_>) -> Result<Imported, ImportError> {
    let cfg: Table =
        toml::from_str(text).map_err(|e| ImportError::Syntax(e.message().to_string()))?;
    let mut cfg = lower_case_keys(cfg)?;
    let mut notes = Vec::new();
    let provider = str_of(cfg.remove("provider")).unwrap_or_else(|| "google".into());
    let issuer_url = str_of(cfg.remove("oidc_issuer_url"));
    let tenant = str_of(cfg.remove("azure_tenant"));
    let (kind, issuer) = match provider.as_str() {
        "azure" | "entra-id" => (
            "azure",
            issuer_url.unwrap_or_else(|| {
                format!(
                    "https://login.microsoftonline.com/{}/v2.0",
                    tenant.as_deref().unwrap_or("common")
                )
            }),
        ),
        "keycloak-oidc" => (
            "keycloak",
            need(issuer_url, "keycloak-oidc needs oidc_issuer_url")?,
        ),
        "github" => ("github", "https://github.com".to_string()),
        "oidc" => {
            let issuer = need(issuer_url, "provider \"oidc\" needs oidc_issuer_url")?;
            let kind = if issuer.contains("login.microsoftonline.com") {
                "azure"
            } else {
                "oidc"
            };
            (kind, issuer)
        }
        other => match issuer_url {
            Some(issuer) => {
                notes.push(format!(
                    "provider: `{other}` is read as generic OIDC at {issuer}"
                ));
                ("oidc", issuer)
            }
            None => {
                return Err(ImportError::Unusable(format!(
                    "provider: `{other}` has no authgate counterpart without oidc_issuer_url"
                )))
            }
        },
    };
    let client_id = need(str_of(cfg.remove("client_id")), "client_id is missing")?;
    let mut access = access::carry(
        &mut cfg,
        &access::Context {
            provider: &provider,
            kind,
            client_id: &client_id,
            issuer: &issuer,
        },
        opts.read_file,
    );
    notes.append(&mut access.notes);

    let mut secret_line = format!("client_secret_env = {}", quote(opts.secret_env));
    if cfg.remove("client_secret").is_some() {
        notes.push(format!("client_secret: secrets never go into workspace files; set the environment variable {} to it (client_secret_env), or point client_secret_file at a file holding it", opts.secret_env));
    }
    if let Some(file) = str_of(cfg.remove("client_secret_file")) {
        secret_line = format!("client_secret_file = {}", quote(&file));
    }
    let redirect = str_of(cfg.remove("redirect_url"));
    let redirect_url = redirect.as_deref().and_then(|r| url::Url::parse(r).ok());
    let host = match (&redirect_url, opts.host) {
        (_, Some(h)) => h.to_string(),
        (Some(u), None) if u.host_str().is_some() => crate::host::url_authority(u),
        _ => {
            return Err(ImportError::Unusable(
                "no host: redirect_url is missing or relative; name the host with --host".into(),
            ))
        }
    };
    let insecure = redirect_url.as_ref().is_some_and(|u| u.scheme() == "http");
    // oauth2-proxy accepts bearer JWTs only with skip_jwt_bearer_tokens; authgate by default:
    // the file says which, so an import never turns them on unasked.
    let bearer = is_true(cfg.remove("skip_jwt_bearer_tokens"));

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from an oauth2-proxy config by `authgate import oauth2-proxy`."
    );
    let _ = writeln!(out, "hosts = [{}]", quote(&host));
    let _ = writeln!(out, "auth = \"oidc\"");
    let _ = writeln!(out, "bearer = {bearer}");
    if insecure {
        let _ = writeln!(out, "insecure_http = true");
    }
    if let Some(r) = &redirect_url {
        let _ = writeln!(out, "callback_url = {}", quote(r.as_str()));
    }
    let redirect_hosts: Vec<String> = strings(cfg.remove("whitelist_domains"))
        .into_iter()
        .chain(strings(cfg.remove("whitelist_domain")))
        .filter_map(|d| {
            if d.starts_with('.') || d.contains('*') {
                notes.push(format!("whitelist_domains: `{d}` (a wildcard) is not carried over; list each host in allowed_redirect_hosts"));
                None
            } else {
                Some(d)
            }
        })
        .collect();
    if !redirect_hosts.is_empty() {
        let _ = writeln!(out, "allowed_redirect_hosts = {}", list(&redirect_hosts));
    }

    let _ = writeln!(
        out,
        "\n[[provider]]\nkind = {}\nissuer = {}",
        quote(kind),
        quote(&issuer)
    );
    let _ = writeln!(out, "client_id = {}\n{secret_line}", quote(&client_id));
    if let Some(scope) = str_of(cfg.remove("scope")) {
        let mut scopes: Vec<String> = scope.split_whitespace().map(str::to_string).collect();
        if let Some(needed) = access.scope {
            if !scopes.iter().any(|s| s == needed || s == "user") {
                notes.push(format!("scope: `{needed}` is added: without it GitHub names no organisation or team, and the groups rule lets nobody in"));
                scopes.push(needed.to_string());
            }
        }
        let _ = writeln!(out, "scopes = {}", list(&scopes));
    }
    for line in &access.provider_lines {
        let _ = writeln!(out, "{line}");
    }
    if kind != "azure" && tenant.is_some() {
        notes.push("azure_tenant: used only by the azure provider".into());
    }

    let mut session = String::new();
    if let Some(name) = str_of(cfg.remove("cookie_name")) {
        let name = cookie_name(&name, insecure, &mut notes);
        let _ = writeln!(session, "cookie_name = {}", quote(&name));
    }
    if let Some(expire) = str_of(cfg.remove("cookie_expire")) {
        match humantime::parse_duration(&expire) {
            Ok(d) if (60..=30 * 86400).contains(&d.as_secs()) => {
                let _ = writeln!(session, "lifetime = {}", quote(&expire));
            }
            _ => notes.push(format!("cookie_expire: `{expire}` is not a duration between 1m and 30d; the default 12h applies")),
        }
    }
    if let Some(refresh) = str_of(cfg.remove("cookie_refresh")) {
        match humantime::parse_duration(&refresh) {
            Ok(d) if d.is_zero() => {}
            Ok(_) => {
                let _ = writeln!(session, "refresh_interval = {}", quote(&refresh));
            }
            Err(_) => notes.push(format!(
                "cookie_refresh: `{refresh}` is not a duration; sessions are not refreshed"
            )),
        }
    }
    if !session.is_empty() {
        let _ = write!(out, "\n[session]\n{session}");
    }

    let mut headers = String::new();
    if is_true(cfg.remove("pass_access_token")) {
        let _ = writeln!(headers, "pass_access_token = true");
    }
    let id_as_bearer = ["set_authorization_header", "pass_authorization_header"]
        .into_iter()
        .filter(|k| is_true(cfg.remove(*k)))
        .collect::<Vec<_>>();
    if let Some(first) = id_as_bearer.first() {
        let _ = writeln!(headers, "pass_id_token = true");
        notes.push(format!("{first}: oauth2-proxy sends the ID token as `Authorization: Bearer`; authgate sends it as X-Auth-Request-Id-Token (pass_id_token, carried over), and its pass_authorization_header is the access token: list X-Auth-Request-Id-Token in auth-response-headers and read it in the app"));
    }
    if let Some(c) = str_of(cfg.remove("oidc_email_claim")) {
        let _ = writeln!(headers, "email = {}", quote(&c));
    }
    if let Some(c) = str_of(cfg.remove("user_id_claim")) {
        let _ = writeln!(headers, "user = {}", quote(&c));
    }
    if let Some(c) = &access.groups_claim {
        let _ = writeln!(headers, "groups = {}", quote(c));
        notes.push(format!("oidc_groups_claim: carried over as [headers] groups = `{c}`, the claim groups are read from (also sent as X-Auth-Request-Groups)"));
    }
    if !headers.is_empty() {
        let _ = write!(out, "\n[headers]\n{headers}");
    }

    let preflight = cfg
        .remove("skip_auth_preflight")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut public = String::new();
    let routes: Vec<(&str, String)> = ["skip_auth_routes", "skip_auth_route", "skip_auth_regex"]
        .into_iter()
        .flat_map(|option| {
            strings(cfg.remove(option))
                .into_iter()
                .map(move |r| (option, r))
        })
        .collect();
    for (option, route) in routes {
        match public_rule(&route) {
            Some(rule) => {
                let _ = write!(public, "\n# From {option} `{route}`: passes without a login.{rule}");
                notes.push(format!("{option}: `{route}` is carried over as a [[public]] rule: it passes without a login"));
            }
            None => notes.push(format!("{option}: `{route}` is not carried over (it now needs a login): a regular expression with no [[public]] path or prefix equal to it; write the rule by hand")),
        }
    }
    for (i, entry) in strings(cfg.remove("extra_jwt_issuers")).iter().enumerate() {
        public.push_str(&jwt_client(i, entry, &mut notes));
    }
    if preflight {
        public.push_str("\n# From skip_auth_preflight: CORS preflights pass without a login.\n[[public]]\nprefix = \"/\"\nmethods = []\ncors_preflight = true\n");
    }
    out.push_str(&public);

    for (k, _) in std::mem::take(&mut cfg) {
        if SILENT.contains(&k.as_str()) {
            continue;
        }
        match DROPPED.iter().find(|(name, _)| *name == k) {
            Some((_, why)) => notes.push(format!("{k}: not carried over: {why}")),
            None if RESTRICTION_WORDS.iter().any(|w| k.contains(w)) => access.lost.push(Lost {
                option: k,
                why: "unknown to this importer, and its name says it may restrict who passes: carry it by hand".into(),
            }),
            None => notes.push(format!(
                "{k}: not carried over: authgate has no such option"
            )),
        }
    }
    if !access.lost.is_empty() && !opts.accept_loss {
        return Err(ImportError::Lost(access.lost));
    }
    notes.extend(access.lost.iter().map(|l| {
        format!(
            "{}: not carried over (accepted with --accept-loss): {}; the workspace lets nobody in",
            l.option, l.why
        )
    }));
    out.push_str(&access::authz_table(&access));
    notes.sort();
    Ok(Imported {
        workspace: out,
        notes,
    })
}

/// `cookie_name` for the workspace: over https always `__Host-` (host-only, Secure, `Path=/`,
/// so no other host under the domain can set it), the name kept after the prefix; over plain
/// http without it, which browsers would refuse there.
fn cookie_name(name: &str, insecure: bool, notes: &mut Vec<String>) -> String {
    let bare = name
        .strip_prefix("__Host-")
        .or_else(|| name.strip_prefix("__Secure-"))
        .unwrap_or(name);
    let carried = if insecure {
        bare.to_string()
    } else {
        format!("__Host-{bare}")
    };
    if carried != name {
        notes.push(format!("cookie_name: `{name}` becomes `{carried}`: {}", if insecure { "browsers refuse a `__Host-` or `__Secure-` cookie over plain http" } else { "a session cookie over https is `__Host-`, so no other host under the domain can set it" }));
    }
    carried
}

/// A `skip_auth_routes` entry (`[METHOD=]regex`) as a `[[public]]` rule, when the regex is an
/// anchored literal path (`^/healthz$`) or directory (`^/static/`, `^/static/.*`).
fn public_rule(route: &str) -> Option<String> {
    let (methods, regex) = match route.split_once('=') {
        Some((m, r)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            (format!("methods = [{}]\n", quote(m)), r)
        }
        _ => (
            "methods = [\"GET\", \"HEAD\", \"POST\", \"PUT\", \"PATCH\", \"DELETE\", \"OPTIONS\"]\n".to_string(),
            route,
        ),
    };
    let body = regex.strip_prefix('^')?;
    let (key, path) = if let Some(p) = body.strip_suffix('$') {
        ("path", p)
    } else {
        ("prefix", body.strip_suffix(".*").unwrap_or(body))
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'~');
    let path = path.replace("\\.", ".");
    if !path.starts_with('/') || !path.bytes().all(|b| plain(b) || b == b'.') {
        return None;
    }
    if key == "prefix" && !path.ends_with('/') {
        return None;
    }
    if path.split('/').any(|s| s == "." || s == "..") || path.contains("//") {
        return None;
    }
    Some(format!("\n[[public]]\n{key} = {}\n{methods}", quote(&path)))
}

/// An `extra_jwt_issuers` entry (`issuer=audience`) as a machine client, written commented
/// out: oauth2-proxy let every token of the issuer for that audience in as a user, and
/// authgate's `[[client]]` passes only tokens with the claims it names (an issuer serves many
/// clients) and only where a `[[rule]]` names it. Until the operator names them, the issuer's
/// tokens no longer pass: the import narrows, never widens.
fn jwt_client(i: usize, entry: &str, notes: &mut Vec<String>) -> String {
    let Some((issuer, audience)) = entry
        .split_once('=')
        .filter(|(i, a)| i.starts_with("https://") && !a.is_empty())
    else {
        notes.push(format!("extra_jwt_issuers: `{entry}` is not `https://issuer=audience`; not carried over: its tokens no longer pass"));
        return String::new();
    };
    let name = format!("issuer-{i}");
    notes.push(format!("extra_jwt_issuers: `{entry}` is written as a commented [[client]] `{name}`: its tokens no longer pass until you name the claims that identify the client (claims = {{ sub = \"…\" }}) and a [[rule]] that lets it in (clients = [\"{name}\"])"));
    format!(
        "\n# From extra_jwt_issuers `{entry}`: a machine client once its claims are named; it then\n\
         # passes only the [[rule]]s that list it in `clients`, never [authz].\n\
         # [[client]]\n# name = {}\n# issuer = {}\n# audience = {}\n# claims = {{ sub = \"…\" }}\n",
        quote(&name),
        quote(issuer),
        quote(audience)
    )
}

fn need(v: Option<String>, why: &str) -> Result<String, ImportError> {
    v.ok_or_else(|| ImportError::Unusable(why.into()))
}

/// Whether an option is set to `true`.
fn is_true(v: Option<Value>) -> bool {
    matches!(v, Some(Value::Boolean(true)))
}

fn str_of(v: Option<Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// A list option: a TOML array, or one string with commas (the flags' form).
fn strings(v: Option<Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.into_iter().filter_map(|i| str_of(Some(i))).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}
