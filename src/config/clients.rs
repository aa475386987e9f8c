//! The checks on `[[client]]` tables: machine clients that authenticate with a static API key,
//! or with a JWT from an issuer of their own (`issuer`, `audience`, required `claims`).
//!
//! Owns reading the key hashes (written inline, in a file, or in an environment variable:
//! `sha256:<64 hex digits>` each, never a key) and the header a key travels in. Each problem
//! names `client[i].<field>`; a client with no valid hash, a name used twice, a header a proxy
//! writes (or that carries cookies) is refused.

use url::Url;

use super::provider::is_loopback;
use super::validate::Report;
use super::{ClientConfig, Env, JwtClientConfig};
use crate::config::raw::RawClient;

/// Headers a key may never travel in: the ones a proxy writes or overwrites, and the
/// credentials a browser sends anyway.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "forwarded",
    "x-real-ip",
    "x-request-id",
];

/// Validates every client: those with keys, then those with an issuer. Invalid ones are left
/// out (the report refuses the file anyway).
pub(super) fn validate(
    raw: Vec<RawClient>,
    env: &dyn Env,
    report: &mut Report<'_>,
) -> (Vec<ClientConfig>, Vec<JwtClientConfig>) {
    let mut out: Vec<ClientConfig> = Vec::new();
    let mut jwt: Vec<JwtClientConfig> = Vec::new();
    for (i, mut c) in raw.into_iter().enumerate() {
        if c.issuer.is_some() {
            let taken =
                out.iter().any(|o| o.name == c.name) || jwt.iter().any(|o| o.name == c.name);
            if let Some(j) = jwt_client(i, &mut c, taken, report) {
                jwt.push(j);
            }
            continue;
        }
        if c.audience.is_some() || !c.claims.is_empty() || c.user_claim.is_some() {
            report.error(
                format!("client[{i}]"),
                "audience, claims and user_claim belong to a client with an `issuer`",
            );
            continue;
        }
        let start = report.errors.len();
        let at = |field: &str| format!("client[{i}].{field}");
        if c.name.is_empty()
            || !c
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            report.error(
                at("name"),
                format!(
                    "`{}` is not a name of lower-case letters, digits, `-` and `_`",
                    c.name
                ),
            );
        } else if out.iter().any(|o| o.name == c.name) || jwt.iter().any(|o| o.name == c.name) {
            report.error(at("name"), format!("`{}` names two clients", c.name));
        }
        let mut hashes = Vec::new();
        for (j, h) in c.api_keys.iter().enumerate() {
            match parse_hash(h) {
                Ok(d) => hashes.push(d),
                Err(e) => report.error(at(&format!("api_keys[{j}]")), e),
            }
        }
        if let Some(file) = &c.api_keys_file {
            match std::fs::read_to_string(file) {
                Ok(text) => read_list(&text, &at("api_keys_file"), &mut hashes, report),
                Err(e) => report.error(at("api_keys_file"), format!("cannot read `{file}`: {e}")),
            }
        }
        if let Some(var) = &c.api_keys_env {
            match env.var(var) {
                Some(text) => read_list(&text, &at("api_keys_env"), &mut hashes, report),
                None => report.error(at("api_keys_env"), format!("`{var}` is not set")),
            }
        }
        if hashes.is_empty() && report.errors.len() == start {
            report.error(
                format!("client[{i}]"),
                "has no key hash: set api_keys, api_keys_file or api_keys_env",
            );
        }
        let header = c.header.map(|h| h.to_ascii_lowercase());
        if let Some(h) = &header {
            if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                report.error(at("header"), format!("`{h}` is not a header name"));
            } else if RESERVED_HEADERS.contains(&h.as_str())
                || h.starts_with("x-forwarded-")
                || h.starts_with("x-original-")
                || h.starts_with("x-auth-request-")
            {
                report.error(
                    at("header"),
                    format!(
                        "`{h}` is written by a proxy or carries other credentials; name a header \
                         of its own (`X-Api-Key`), or leave it out for `Authorization: Bearer`"
                    ),
                );
            }
        }
        if report.errors.len() == start {
            out.push(ClientConfig {
                name: c.name,
                key_hashes: hashes,
                header,
                keys_file: c.api_keys_file.map(std::path::PathBuf::from),
            });
        }
    }
    (out, jwt)
}

/// Signature algorithms a JWT client's tokens may use.
const JWT_ALGORITHMS: &[jsonwebtoken::Algorithm] = &[
    jsonwebtoken::Algorithm::RS256,
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::PS256,
];

/// A `[[client]]` with an `issuer`: https (or http on loopback), its own audience, and at
/// least one claim condition.
fn jwt_client(
    i: usize,
    c: &mut RawClient,
    taken: bool,
    report: &mut Report<'_>,
) -> Option<JwtClientConfig> {
    let start = report.errors.len();
    let at = |field: &str| format!("client[{i}].{field}");
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    if c.name.is_empty() || !c.name.bytes().all(plain) {
        report.error(
            at("name"),
            format!(
                "`{}` is not a name of lower-case letters, digits, `-` and `_`",
                c.name
            ),
        );
    } else if taken {
        report.error(at("name"), format!("`{}` names two clients", c.name));
    }
    if !c.api_keys.is_empty()
        || c.api_keys_file.is_some()
        || c.api_keys_env.is_some()
        || c.header.is_some()
    {
        report.error(
            format!("client[{i}]"),
            "has both an `issuer` and API keys: one client authenticates one way",
        );
    }
    let text = c.issuer.take().unwrap_or_default();
    let issuer = match Url::parse(&text) {
        Ok(u)
            if (u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)))
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Some(u)
        }
        _ => {
            report.error(at("issuer"), format!("`{text}` is not an https URL"));
            None
        }
    };
    let audience = c.audience.take().unwrap_or_default();
    if audience.is_empty() {
        report.error(
            at("audience"),
            "is required with `issuer`: the audience its tokens are issued for (authgate's own,              never another service's)",
        );
    }
    if c.claims.is_empty() {
        report.error(
            at("claims"),
            "is required with `issuer`: an issuer serves many clients (every workflow, every \
             service account), so name this one (`claims = { sub = \"…\" }`)",
        );
    }
    for (k, v) in &c.claims {
        if v.is_empty() {
            report.error(at(&format!("claims.{k}")), "is empty");
        }
    }
    if report.errors.len() > start {
        return None;
    }
    Some(JwtClientConfig {
        name: std::mem::take(&mut c.name),
        issuer: issuer?,
        audience,
        claims: std::mem::take(&mut c.claims).into_iter().collect(),
        user_claim: c.user_claim.take(),
        algorithms: JWT_ALGORITHMS.to_vec(),
    })
}

/// Hashes one per line (or comma-separated); blank lines and `#` comments skipped.
fn read_list(text: &str, field: &str, hashes: &mut Vec<[u8; 32]>, report: &mut Report<'_>) {
    let items = text
        .lines()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for (n, item) in items.enumerate() {
        match parse_hash(item) {
            Ok(d) => hashes.push(d),
            Err(e) => report.error(field, format!("entry {}: {e}", n + 1)),
        }
    }
}

/// `sha256:<64 hex digits>` → the digest. The problem never repeats the value: a key written
/// by mistake where its hash belongs stays out of logs.
fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text.strip_prefix("sha256:").ok_or_else(|| {
        "is not `sha256:<hex>`: write the SHA-256 of the key (`printf %s \"$KEY\" | sha256sum`), \
         never the key"
            .to_string()
    })?;
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("holds {} hex digits, not 64", bytes.len()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
            _ => return Err("holds a character that is not a hex digit".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sha2::{Digest, Sha256};

    use crate::config::load;

    const HASH: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn load_ws(
        text: &str,
        env: &[(&str, &str)],
    ) -> Result<crate::config::WorkspaceConfig, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("workspaces")).unwrap();
        std::fs::write(dir.path().join("keys"), format!("# ci\n{HASH}\n\n")).unwrap();
        let text = text.replace("KEYS_FILE", &dir.path().join("keys").display().to_string());
        std::fs::write(dir.path().join("workspaces/x.toml"), text).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(dir.path(), &env)
            .map(|c| c.workspaces.into_iter().next().unwrap())
            .map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
    }

    const WS: &str = "hosts = [\"x.example.com\"]\nauth = \"oidc\"\n[[provider]]\n\
        issuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n";

    #[test]
    fn hashes_come_inline_from_a_file_and_from_the_environment() {
        let ws = load_ws(
            &format!(
                "{WS}[[client]]\nname = \"ci\"\napi_keys = [\"{HASH}\"]\napi_keys_file = \"KEYS_FILE\"\n\
                 api_keys_env = \"CI_KEYS\"\nheader = \"X-Api-Key\"\n"
            ),
            &[("CI_KEYS", &format!("{HASH},{HASH}"))],
        )
        .unwrap();
        let c = &ws.clients[0];
        assert_eq!(c.name, "ci");
        assert_eq!(c.header.as_deref(), Some("x-api-key"));
        assert_eq!(c.key_hashes.len(), 4);
        let foo: [u8; 32] = Sha256::digest(b"foo").into();
        assert_eq!(c.key_hashes[0], foo);
        assert!(
            !format!("{c:?}").contains("2c26"),
            "hashes stay out of Debug"
        );
    }

    #[test]
    fn a_jwt_client_names_its_issuer_audience_and_claims() {
        let ws = load_ws(
            &format!(
                "{WS}[[client]]\nname = \"gha\"\nissuer = \"https://token.actions.githubusercontent.com\"\n\
                 audience = \"authgate-x\"\nclaims = {{ repository = \"devlabai/app\", ref = \"refs/heads/main\" }}\n\
                 user_claim = \"repository\"\n[[rule]]\nprefix = \"/api/\"\naction = \"allow\"\nclients = [\"gha\"]\n"
            ),
            &[],
        )
        .unwrap();
        let c = &ws.jwt_clients[0];
        assert_eq!(
            c.issuer.as_str(),
            "https://token.actions.githubusercontent.com/"
        );
        assert_eq!(c.claims.len(), 2);
        assert_eq!(c.user_claim.as_deref(), Some("repository"));
        assert!(ws.clients.is_empty());
    }

    #[test]
    fn each_bad_client_is_named_with_its_field() {
        for (client, env, want) in [
            (
                "name = \"CI\"\napi_keys = [\"H\"]",
                &[][..],
                "client[0].name: `CI` is not a name",
            ),
            ("name = \"ci\"", &[], "client[0]: has no key hash"),
            (
                "name = \"ci\"\napi_keys = [\"s3cr3t-key\"]",
                &[],
                "client[0].api_keys[0]: is not `sha256:<hex>`",
            ),
            (
                "name = \"ci\"\napi_keys = [\"sha256:abc\"]",
                &[],
                "client[0].api_keys[0]: holds 3 hex digits, not 64",
            ),
            (
                "name = \"ci\"\napi_keys_env = \"NOPE\"",
                &[],
                "client[0].api_keys_env: `NOPE` is not set",
            ),
            (
                "name = \"ci\"\napi_keys_env = \"K\"",
                &[("K", "key")],
                "client[0].api_keys_env: entry 1: is not `sha256:<hex>`",
            ),
            (
                "name = \"ci\"\napi_keys_file = \"/nonexistent/keys\"",
                &[],
                "client[0].api_keys_file: cannot read `/nonexistent/keys`",
            ),
            (
                "name = \"ci\"\napi_keys = [\"H\"]\nheader = \"Cookie\"",
                &[],
                "client[0].header: `cookie` is written by a proxy",
            ),
            (
                "name = \"ci\"\napi_keys = [\"H\"]\nheader = \"X-Forwarded-User\"",
                &[],
                "client[0].header: `x-forwarded-user` is written by a proxy",
            ),
            (
                "name = \"ci\"\napi_keys = [\"H\"]\nheader = \"a b\"",
                &[],
                "client[0].header: `a b` is not a header name",
            ),
        ] {
            let client = client.replace("\"H\"", &format!("\"{HASH}\""));
            let errs = load_ws(&format!("{WS}[[client]]\n{client}\n"), env).unwrap_err();
            assert_eq!(errs.len(), 1, "{client}: {errs:?}");
            assert!(
                errs[0].starts_with(&format!("workspaces/x.toml: {want}")),
                "{client}: {errs:?}"
            );
            assert!(
                !errs[0].contains("s3cr3t"),
                "a key is never repeated: {errs:?}"
            );
        }
        for (client, want) in [
            ("name = \"k8s\"\nissuer = \"ftp://x\"\naudience = \"a\"\nclaims = { sub = \"s\" }", "client[0].issuer: `ftp://x` is not an https URL"),
            ("name = \"k8s\"\nissuer = \"http://k8s.example.com\"\naudience = \"a\"\nclaims = { sub = \"s\" }", "client[0].issuer: `http://k8s.example.com` is not an https URL"),
            ("name = \"k8s\"\nissuer = \"https://k8s.example.com\"\nclaims = { sub = \"s\" }", "client[0].audience: is required with `issuer`"),
            ("name = \"k8s\"\nissuer = \"https://k8s.example.com\"\naudience = \"a\"", "client[0].claims: is required with `issuer`"),
            ("name = \"k8s\"\nissuer = \"https://k8s.example.com\"\naudience = \"a\"\nclaims = { sub = \"\" }", "client[0].claims.sub: is empty"),
            ("name = \"k8s\"\nissuer = \"https://k8s.example.com\"\naudience = \"a\"\nclaims = { sub = \"s\" }\napi_keys = [\"H\"]", "client[0]: has both an `issuer` and API keys"),
            ("name = \"ci\"\napi_keys = [\"H\"]\naudience = \"a\"", "client[0]: audience, claims and user_claim belong to a client with an `issuer`"),
        ] {
            let client = client.replace("\"H\"", &format!("\"{HASH}\""));
            let errs = load_ws(&format!("{WS}[[client]]\n{client}\n"), &[]).unwrap_err();
            assert_eq!(errs.len(), 1, "{client}: {errs:?}");
            assert!(errs[0].starts_with(&format!("workspaces/x.toml: {want}")), "{client}: {errs:?}");
        }
        let twice = format!("{WS}[[client]]\nname = \"ci\"\napi_keys = [\"{HASH}\"]\n[[client]]\nname = \"ci\"\napi_keys = [\"{HASH}\"]\n");
        assert!(
            load_ws(&twice, &[]).unwrap_err()[0].contains("client[1].name: `ci` names two clients")
        );
    }
}
