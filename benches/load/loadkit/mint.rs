//! Credentials for the load rows: bearer JWTs signed with the fixture RSA key (the one
//! mod_auth_openidc gets as a certificate file), and authgate session cookies sealed by the
//! workspace's own codec with the configured master secret (no login needed: the same code path
//! `/oauth2/callback` ends in).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use authgate::identity::Identity;
use authgate::oidc::JwksCache;
use authgate::provider::ProviderContext;
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::tokens;

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One RS256 bearer token for `aud`, valid for `valid_secs`, unique by `jti`.
pub(crate) fn bearer(issuer: &str, aud: &str, jti: &str, valid_secs: u64) -> String {
    let now = now();
    tokens::sign(
        Algorithm::RS256,
        Some(tokens::RSA_KID),
        &json!({
            "iss": issuer, "sub": "user-123", "aud": aud, "azp": aud,
            "iat": now, "exp": now + valid_secs, "jti": jti,
            "email": "alice@example.test", "email_verified": true, "preferred_username": "alice",
            "groups": ["g-admins", "g-staff"],
        }),
    )
}

/// A file of `count` distinct tokens, reused across runs while every token stays valid for
/// another day (RSA signing is slow: about 1,000 tokens per second per core).
pub(crate) fn token_pool(path: &Path, issuer: &str, aud: &str, count: u64) -> Result<(), String> {
    let meta = path.with_extension("meta");
    let want = format!("{issuer} {aud} {count}");
    if let (Ok(m), Ok(f)) = (std::fs::read_to_string(&meta), std::fs::File::open(path)) {
        let mut it = m.split('\n');
        let (key, exp) = (it.next().unwrap_or(""), it.next().unwrap_or("0"));
        let lines = BufReader::new(f).lines().count() as u64;
        if key == want && lines == count && exp.parse::<u64>().unwrap_or(0) > now() + 86_400 {
            return Ok(());
        }
    }
    let valid = 30 * 86_400;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let t0 = std::time::Instant::now();
    eprintln!("loadkit: minting {count} RS256 tokens on {threads} threads (cached for next runs)");
    let chunks: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(threads as usize)
                        .map(|i| bearer(issuer, aud, &format!("cold-{i}"), valid))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    for token in chunks.iter().flatten() {
        writeln!(out, "{token}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    std::fs::write(&meta, format!("{want}\n{}", now() + valid)).map_err(|e| e.to_string())?;
    eprintln!("loadkit: minted in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The session cookie value authgate would set after `alice` logged in at `host`, sealed with the
/// keys the config directory and `env` define.
pub(crate) fn session_cookie(
    config: &Path,
    env: &HashMap<String, String>,
    host: &str,
) -> Result<(String, String), String> {
    let http = authgate::server::http_client().map_err(|e| e.to_string())?;
    let ctx = ProviderContext::new(http.clone(), JwksCache::new(http, Duration::from_secs(30)));
    let (_, registry) =
        authgate::server::load_registry(config, env, &ctx).map_err(|e| e.to_string())?;
    let ws = registry
        .lookup(host)
        .ok_or_else(|| format!("no workspace serves {host}"))?;
    let identity = Identity {
        user: "alice@example.test".into(),
        email: "alice@example.test".into(),
        preferred_username: Some("alice".into()),
        groups: vec!["g-admins".into(), "g-staff".into()],
        subject: "user-123".into(),
        provider: ws
            .providers
            .first()
            .map(|p| p.id().to_string())
            .unwrap_or_default(),
        ..Identity::default()
    };
    let cookie = ws
        .session
        .issue(&identity, now())
        .map_err(|e| e.to_string())?;
    Ok((cookie.name().to_string(), cookie.value().to_string()))
}
