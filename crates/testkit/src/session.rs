//! A config directory loaded as `authgate serve` loads it (minus the listener), and the session
//! cookie a login of the test user would leave: what the benchmarks and the cross-build smoke
//! test present to a server they did not log in to.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use authgate::identity::Identity;
use authgate::oidc::JwksCache;
use authgate::provider::ProviderContext;
use authgate::workspace::Registry;

use crate::COOKIE_SECRET;

/// The environment of a test server: the test cookie secret and `secrets` (client secrets,
/// settings), as `name = value`.
pub fn env_with(secrets: &[(&str, &str)]) -> HashMap<String, String> {
    std::iter::once(("AUTHGATE_COOKIE_SECRETS", COOKIE_SECRET))
        .chain(secrets.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The providers' context and the registry of the config in `dir`, read with `env`.
pub fn load(
    dir: &Path,
    env: &HashMap<String, String>,
) -> Result<(ProviderContext, Registry), String> {
    let http = authgate::server::http_client().map_err(|e| e.to_string())?;
    let ctx = ProviderContext::new(http.clone(), JwksCache::new(http, Duration::from_secs(30)));
    let (_, registry) = authgate::server::load_registry(dir, env, &ctx)
        .map_err(|e| format!("{}: config rejected: {e}", dir.display()))?;
    Ok((ctx, registry))
}

/// The test user as a login at `provider` yields it (the claims of [`crate::tokens::id_claims`]).
pub fn alice(provider: &str) -> Identity {
    Identity {
        user: "alice@example.test".into(),
        email: "alice@example.test".into(),
        preferred_username: Some("alice".into()),
        groups: vec!["g-admins".into(), "g-staff".into()],
        subject: "user-123".into(),
        provider: provider.into(),
        ..Identity::default()
    }
}

/// The session cookie (`name`, `value`) authgate would set after [`alice`] logged in at
/// `host`'s workspace (its first provider), sealed with the keys of the config in `dir` and
/// `env`.
pub fn session_cookie(
    dir: &Path,
    env: &HashMap<String, String>,
    host: &str,
) -> Result<(String, String), String> {
    let (_, registry) = load(dir, env)?;
    let ws = registry
        .lookup(host)
        .ok_or_else(|| format!("no workspace serves {host}"))?;
    let provider = ws.providers.first().map(|p| p.id().to_string());
    let cookie = ws
        .session
        .issue(&alice(&provider.unwrap_or_default()), crate::now())
        .map_err(|e| e.to_string())?;
    Ok((cookie.name().to_string(), cookie.value().to_string()))
}
