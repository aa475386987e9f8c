//! `authgate import oauth2-proxy`: an oauth2-proxy config file turned into a workspace file.
//!
//! Owns the mapping of oauth2-proxy's options (its TOML `.cfg`, the command-line flags'
//! names with `_`) onto a workspace file, and naming each option it cannot carry over, with
//! why. Pure: text in, text and notes out; the command prints them. Never writes a secret into
//! the workspace file: `client_secret` becomes `client_secret_env`, `cookie_secret` is left to
//! `authgate.toml`'s secret source.

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
    ("github_repo", "GitHub access is by organisation or team only"),
    ("github_user", "GitHub access is by organisation or team only; list the users' emails in [authz] emails"),
    ("authenticated_emails_file", "list the addresses in [authz] emails"),
    ("htpasswd_file", "no local password logins"),
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
];

/// Converts the text of an oauth2-proxy config file. `host` names the workspace's host when
/// `redirect_url` does not; `secret_env` is the variable the client secret will be read from.
pub fn oauth2_proxy(
    text: &str,
    host: Option<&str>,
    secret_env: &str,
) -> Result<Imported, ImportError> {
    let mut cfg: Table =
        toml::from_str(text).map_err(|e| ImportError::Syntax(e.message().to_string()))?;
    let mut notes = Vec::new();
    let mut take = |k: &str| cfg.remove(k);
    let provider = str_of(take("provider")).unwrap_or_else(|| "google".into());
    let issuer_url = str_of(take("oidc_issuer_url"));
    let tenant = str_of(take("azure_tenant"));
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
    let client_id = need(str_of(take("client_id")), "client_id is missing")?;
    let mut secret_line = format!("client_secret_env = {}", quote(secret_env));
    if take("client_secret").is_some() {
        notes.push(format!("client_secret: secrets never go into workspace files; set the environment variable {secret_env} to it (client_secret_env), or point client_secret_file at a file holding it"));
    }
    if let Some(file) = str_of(take("client_secret_file")) {
        secret_line = format!("client_secret_file = {}", quote(&file));
    }
    let redirect = str_of(take("redirect_url"));
    let redirect_url = redirect.as_deref().and_then(|r| url::Url::parse(r).ok());
    let host = match (&redirect_url, host) {
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
    let bearer = is_true(take("skip_jwt_bearer_tokens"));

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
    let redirect_hosts: Vec<String> = strings(take("whitelist_domains"))
        .into_iter()
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
    if let Some(scope) = str_of(take("scope")) {
        let scopes: Vec<String> = scope.split_whitespace().map(str::to_string).collect();
        let _ = writeln!(out, "scopes = {}", list(&scopes));
    }
    if kind != "azure" && tenant.is_some() {
        notes.push("azure_tenant: used only by the azure provider".into());
    }

    let mut session = String::new();
    if let Some(name) = str_of(take("cookie_name")) {
        let _ = writeln!(session, "cookie_name = {}", quote(&name));
    }
    if let Some(expire) = str_of(take("cookie_expire")) {
        match humantime::parse_duration(&expire) {
            Ok(d) if (60..=30 * 86400).contains(&d.as_secs()) => {
                let _ = writeln!(session, "lifetime = {}", quote(&expire));
            }
            _ => notes.push(format!("cookie_expire: `{expire}` is not a duration between 1m and 30d; the default 12h applies")),
        }
    }
    if let Some(refresh) = str_of(take("cookie_refresh")) {
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
    if is_true(take("pass_access_token")) {
        let _ = writeln!(headers, "pass_access_token = true");
    }
    let id_as_bearer = ["set_authorization_header", "pass_authorization_header"]
        .into_iter()
        .filter(|k| is_true(take(k)))
        .collect::<Vec<_>>();
    if let Some(first) = id_as_bearer.first() {
        let _ = writeln!(headers, "pass_id_token = true");
        notes.push(format!("{first}: oauth2-proxy sends the ID token as `Authorization: Bearer`; authgate sends it as X-Auth-Request-Id-Token (pass_id_token, carried over), and its pass_authorization_header is the access token: list X-Auth-Request-Id-Token in auth-response-headers and read it in the app"));
    }
    if let Some(c) = str_of(take("oidc_email_claim")) {
        let _ = writeln!(headers, "email = {}", quote(&c));
    }
    if let Some(c) = str_of(take("user_id_claim")) {
        let _ = writeln!(headers, "user = {}", quote(&c));
    }
    if let Some(c) = str_of(take("oidc_groups_claim")) {
        notes.push(format!("oidc_groups_claim: `{c}` is not carried over: groups come from the provider's own claims (Entra `groups`/`roles`, Keycloak roles and group paths)"));
    }
    if !headers.is_empty() {
        let _ = write!(out, "\n[headers]\n{headers}");
    }

    let mut groups = strings(take("allowed_groups"));
    let org = str_of(take("github_org"));
    let teams = strings(take("github_team"));
    match (org, teams.is_empty()) {
        (Some(org), true) => groups.push(org),
        (Some(org), false) => groups.extend(teams.iter().map(|t| format!("{org}/{t}"))),
        (None, false) => notes.push("github_team: needs github_org; not carried over".into()),
        (None, true) => {}
    }
    let domains = strings(take("email_domains"));
    let any = domains.iter().any(|d| d == "*");
    let domains: Vec<String> = domains.into_iter().filter(|d| d != "*").collect();
    let mut authz = String::new();
    if !domains.is_empty() {
        let _ = writeln!(authz, "email_domains = {}", list(&domains));
    }
    if !groups.is_empty() {
        let _ = writeln!(authz, "groups = {}", list(&groups));
    }
    if authz.is_empty()
        && (any
            || kind == "github"
            || issuer.contains("/common/")
            || issuer.contains("/organizations/"))
    {
        let _ = writeln!(authz, "allow_any_account = true");
        notes.push("email_domains: `*` or none lets every account of the provider in; the file says so with allow_any_account = true".into());
    } else if any && !authz.is_empty() {
        notes.push(
            "email_domains: `*` next to other rules is dropped: each rule must match in authgate"
                .into(),
        );
    }
    if !authz.is_empty() {
        let _ = write!(out, "\n[authz]\n{authz}");
    }

    let preflight = take("skip_auth_preflight")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut public = String::new();
    for route in strings(take("skip_auth_routes"))
        .into_iter()
        .chain(strings(take("skip_auth_regex")))
    {
        match public_rule(&route) {
            Some(rule) => public.push_str(&rule),
            None => notes.push(format!("skip_auth_routes: `{route}` is a regular expression with no [[public]] path or prefix equal to it; write the rule by hand")),
        }
    }
    if preflight {
        public.push_str("\n[[public]]\nprefix = \"/\"\nmethods = []\ncors_preflight = true\n");
    }
    out.push_str(&public);

    for (k, _) in std::mem::take(&mut cfg) {
        if SILENT.contains(&k.as_str()) {
            continue;
        }
        match DROPPED.iter().find(|(name, _)| *name == k) {
            Some((_, why)) => notes.push(format!("{k}: not carried over: {why}")),
            None => notes.push(format!(
                "{k}: not carried over: authgate has no such option"
            )),
        }
    }
    notes.sort();
    Ok(Imported {
        workspace: out,
        notes,
    })
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

#[cfg(test)]
mod tests {
    use super::public_rule;

    #[test]
    fn only_anchored_literal_routes_become_public_rules() {
        for (route, want) in [
            ("^/healthz$", Some("path = \"/healthz\"")),
            (
                "GET=^/healthz$",
                Some("path = \"/healthz\"\nmethods = [\"GET\"]"),
            ),
            ("^/static/", Some("prefix = \"/static/\"")),
            ("^/static/.*", Some("prefix = \"/static/\"")),
            ("^/app\\.js$", Some("path = \"/app.js\"")),
            ("/healthz", None),
            ("^/static", None),
            ("^/static/../admin/", None),
            ("^/(a|b)$", None),
            ("^/a.*b$", None),
            ("^//x$", None),
            ("^/a;b$", None),
            ("^/a%2fb$", None),
            ("get=^/healthz$", None),
        ] {
            let got = public_rule(route);
            match want {
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{route}: {got:?}"
                ),
                None => assert_eq!(got, None, "{route}"),
            }
        }
    }
}
