//! Validation of one `[[provider]]` table: kind, issuer, client, secret source, scopes,
//! algorithms, and the keys only some kinds have.
//!
//! Part of `validate`; reports through its `Report`, never panics, never touches the network.

use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use url::Url;

use super::parsed::Parsed;
use super::raw::{JwsAlgorithm, KindKeys, RawProvider};
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

/// Validates one `[[provider]]` as `field` (`provider[0]`): every key serde refused, then each
/// value's own check. `None` when anything is wrong (all of it reported).
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
    for r in raw.refused {
        report.error_at(format!("{field}.{}", r.path), &r.problem, r.span.start);
    }
    let common = raw.common?;
    let id = provider_id(field, kind, common.id, report);
    let issuer = issuer(field, kind, common.issuer, raw.keys.as_ref(), report);
    let client_id = client_id(field, common.client_id, report);
    let client_secret = client_secret(
        field,
        common.client_secret.is_some(),
        common.client_secret_env,
        common.client_secret_file,
        report,
    );
    let scopes = scopes(field, kind, common.scopes, report);
    let algorithms = algorithms(field, raw.algorithms.unwrap_or_default(), report);
    let extra = raw.keys.map(|keys| kind_settings(field, keys, report));
    let logout_at_idp = common.logout_at_idp.unwrap_or(false);
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
        display_name: common
            .display_name
            .unwrap_or_else(|| default_display_name(kind, &id)),
        id,
        kind,
        issuer: issuer?,
        client_id,
        client_secret,
        scopes,
        algorithms,
        extra: extra?,
    })
}

/// `id`: the kind's name when absent; letters, digits, `-` and `_`, as it goes into a URL.
fn provider_id(
    field: &str,
    kind: ProviderKind,
    written: Option<String>,
    report: &mut Report<'_>,
) -> String {
    let id = written.unwrap_or_else(|| kind.as_str().to_string());
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
    id
}

/// `issuer`: as written, else Entra's from its tenant (and a sovereign cloud's authority
/// host), else GitHub's web base. https, or http on a loopback host; no query or fragment.
fn issuer(
    field: &str,
    kind: ProviderKind,
    written: Option<String>,
    keys: Option<&KindKeys>,
    report: &mut Report<'_>,
) -> Option<Url> {
    let azure_issuer = match keys {
        Some(KindKeys::Azure(k)) => k.tenant.as_ref().map(|tenant| {
            let authority = k
                .authority
                .as_deref()
                .unwrap_or("login.microsoftonline.com");
            format!("https://{authority}/{tenant}/v2.0")
        }),
        _ => None,
    };
    let text = written
        .or(azure_issuer)
        .or_else(|| (kind == ProviderKind::Github).then(|| "https://github.com".into()));
    let field = format!("{field}.issuer");
    let Some(text) = text else {
        report.error(field, "missing: the provider's issuer URL");
        return None;
    };
    match Url::parse(&text) {
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
            if u.query().is_some() || u.fragment().is_some() {
                report.error(field, "an issuer has no query or fragment");
            }
            Some(u)
        }
        Ok(_) => {
            report.error(field, format!("`{text}` is not an https URL"));
            None
        }
        Err(e) => {
            report.error(field, format!("`{text}` is not a URL: {e}"));
            None
        }
    }
}

fn client_id(field: &str, written: Option<String>, report: &mut Report<'_>) -> String {
    let client_id = written.unwrap_or_default();
    if client_id.trim().is_empty() {
        report.error(
            format!("{field}.client_id"),
            "missing: the client (application) id registered at the provider",
        );
    }
    client_id
}

/// Where the client secret comes from: an environment variable or a file, never the config.
fn client_secret(
    field: &str,
    inline: bool,
    env: Option<String>,
    file: Option<String>,
    report: &mut Report<'_>,
) -> SecretSource {
    if inline {
        report.error(
            format!("{field}.client_secret"),
            "secrets do not belong in config files: use client_secret_env or client_secret_file",
        );
    }
    if env.is_none() && file.is_none() {
        report.error(
            format!("{field}.client_secret_env"),
            "set client_secret_env or client_secret_file",
        );
    }
    SecretSource {
        env,
        file: file.map(PathBuf::from),
    }
}

/// `scopes`: the kind's defaults when absent; an OpenID Connect login asks for `openid`.
fn scopes(
    field: &str,
    kind: ProviderKind,
    written: Option<Vec<String>>,
    report: &mut Report<'_>,
) -> Vec<String> {
    let scopes = written.unwrap_or_else(|| match kind {
        ProviderKind::Github => vec!["read:user".into(), "user:email".into(), "read:org".into()],
        _ => vec!["openid".into(), "email".into(), "profile".into()],
    });
    if kind != ProviderKind::Github && !scopes.iter().any(|s| s == "openid") {
        report.error(
            format!("{field}.scopes"),
            "an OpenID Connect login needs the `openid` scope",
        );
    }
    scopes
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

/// The settings of the provider's kind, from the keys serde read for it.
fn kind_settings(field: &str, keys: KindKeys, report: &mut Report<'_>) -> ProviderExtra {
    match keys {
        KindKeys::Oidc(k) | KindKeys::Keycloak(k) => ProviderExtra {
            trust_email_without_email_verified: k
                .trust_email_without_email_verified
                .unwrap_or(false),
            ..ProviderExtra::default()
        },
        KindKeys::Azure(k) => ProviderExtra {
            allowed_tenants: k.allowed_tenants.unwrap_or_default(),
            resolve_group_overage: k.resolve_group_overage.unwrap_or(false),
            graph_url: https_url(
                &format!("{field}.graph_url"),
                k.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH_URL),
                report,
            ),
            ..ProviderExtra::default()
        },
        KindKeys::Github(k) => ProviderExtra {
            api_url: k
                .api_url
                .and_then(|u| https_url(&format!("{field}.api_url"), &u, report)),
            ..ProviderExtra::default()
        },
    }
}

/// Microsoft Graph in Microsoft's global cloud.
const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/";

/// An API base the provider calls with its tokens: https, or http on a loopback host.
fn https_url(field: &str, text: &str, report: &mut Report<'_>) -> Option<Url> {
    match Url::parse(text) {
        Ok(u) if u.scheme() == "https" || is_loopback(&u) => Some(u),
        _ => {
            report.error(field, "must be an https URL");
            None
        }
    }
}
