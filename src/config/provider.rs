//! Validation of one `[[provider]]` table: kind, issuer, client, secret source, scopes,
//! algorithms, and the keys only some kinds have.
//!
//! Part of `validate`; reports through its `Report`, never panics, never touches the network.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use url::Url;

use super::parsed::Parsed;
use super::raw::{JwsAlgorithm, RawProvider};
use super::validate::Report;
use super::{ProviderConfig, ProviderExtra, ProviderKind, SecretSource};

const DEFAULT_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::PS256];

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        None => false,
    }
}

pub(super) fn validate_provider(
    field: &str,
    raw: RawProvider,
    report: &mut Report<'_>,
) -> Option<ProviderConfig> {
    let start = report.errors.len();
    let kind = raw
        .kind
        .and_then(|k| report.parsed(format!("{field}.kind"), k))
        .unwrap_or(ProviderKind::Oidc);
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
    let algorithms = algorithms(field, raw.algorithms.unwrap_or_default(), report);
    let extra = validate_extra(field, kind, raw.extra, report);
    let logout_at_idp = raw.logout_at_idp.unwrap_or(false);
    if logout_at_idp && kind == ProviderKind::Github {
        report.error(
            format!("{field}.logout_at_idp"),
            "GitHub has no end_session_endpoint: sign-out can only end authgate's session",
        );
    }
    if report.errors.len() > start {
        return None;
    }
    Some(ProviderConfig {
        logout_at_idp,
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

/// The signature algorithms accepted for ID tokens: asymmetric ones only (a shared secret
/// would let the client forge tokens, `none` anyone), the defaults when none are named.
fn algorithms(
    field: &str,
    raw: Vec<Parsed<JwsAlgorithm>>,
    report: &mut Report<'_>,
) -> Vec<Algorithm> {
    let mut out = Vec::new();
    for (i, a) in raw.into_iter().enumerate() {
        let field = format!("{field}.algorithms[{i}]");
        let accepted = match report.parsed(&field, a) {
            Some(JwsAlgorithm::RS256) => Algorithm::RS256,
            Some(JwsAlgorithm::RS384) => Algorithm::RS384,
            Some(JwsAlgorithm::RS512) => Algorithm::RS512,
            Some(JwsAlgorithm::PS256) => Algorithm::PS256,
            Some(JwsAlgorithm::PS384) => Algorithm::PS384,
            Some(JwsAlgorithm::PS512) => Algorithm::PS512,
            Some(JwsAlgorithm::ES256) => Algorithm::ES256,
            Some(JwsAlgorithm::ES384) => Algorithm::ES384,
            Some(JwsAlgorithm::EdDSA) => Algorithm::EdDSA,
            Some(
                symmetric @ (JwsAlgorithm::HS256
                | JwsAlgorithm::HS384
                | JwsAlgorithm::HS512
                | JwsAlgorithm::None),
            ) => {
                let name = match symmetric {
                    JwsAlgorithm::None => "none".to_string(),
                    alg => format!("{alg:?}"),
                };
                report.error(
                    field,
                    format!("`{name}` is never accepted: ID tokens must be signed with the provider's private key"),
                );
                continue;
            }
            None => continue,
        };
        out.push(accepted);
    }
    if out.is_empty() {
        out = DEFAULT_ALGORITHMS.to_vec();
    }
    out
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
        ProviderKind::Oidc | ProviderKind::Keycloak => &["trust_email_without_email_verified"],
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
    for key in [
        "resolve_group_overage",
        "trust_email_without_email_verified",
    ] {
        if let Some(v) = values.remove(key) {
            match v.as_bool() {
                Some(b) if key == "resolve_group_overage" => out.resolve_group_overage = b,
                Some(b) => out.trust_email_without_email_verified = b,
                None => report.error(format!("{field}.{key}"), "must be true or false"),
            }
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
