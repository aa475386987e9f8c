//! Keys and metadata kept fresh behind bearer tokens: one JWKS fetch for a storm of unknown
//! `kid`s, a key the provider removed refused after the periodic refresh, the last good keys
//! kept through an outage, a new `jwks_uri` picked up. One workspace, so `/oauth2/auth` needs
//! no workspace name; refreshes come every [`MAX_AGE`] and are awaited by watching the forge.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authgate::oidc::JwksCache;
use authgate::provider::ProviderContext;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use testkit::config::oidc_workspace;

use crate::helpers::forge::{spawn_forge, tokens, Forge};
use crate::helpers::{env_with, spawn_in_process_with_context, Client, ConfigDir, InProcess};

const HOST: &str = "mcd.test";
const CLIENT_ID: &str = "authgate-mcd";

/// The refresh interval the tests inject instead of an hour.
const MAX_AGE: Duration = Duration::from_millis(300);

/// The unknown-`kid` rate limit, as in production.
const MIN_REFRESH: Duration = Duration::from_secs(30);

struct Env {
    forge: Forge,
    app: InProcess,
    client: Client,
}

async fn setup(max_age: Duration, jwks: Value) -> Env {
    let forge = spawn_forge().await;
    *forge.shared.jwks.lock().unwrap() = jwks;
    let config = ConfigDir::new("").workspace(
        "mcd",
        &format!(
            "{}[session]\ncookie_name = \"authgate-mcd\"\n",
            oidc_workspace(HOST, &forge.issuer, CLIENT_ID, "MCD_SECRET")
        ),
    );
    let http = authgate::server::http_client().unwrap();
    let ctx = ProviderContext::new(
        http.clone(),
        JwksCache::new(http, MIN_REFRESH).with_max_age(max_age),
    );
    let app = spawn_in_process_with_context(&config, env_with(&[("MCD_SECRET", "s3cret")]), ctx)
        .await
        .owning(config);
    let mut env = Env {
        forge,
        app,
        client: Client::new(),
    };
    // The warm-up has discovered the provider and loaded its keys once a token verifies.
    let deadline = Deadline::in_20s("the warm-up");
    loop {
        let token = env.rs256(tokens::RSA_KID);
        if env.bearer(&token).await == 202 {
            break env;
        }
        deadline.check().await;
    }
}

/// Claims never presented before (a fresh `jti`), so the verified-token cache cannot answer.
fn fresh_claims(issuer: &str) -> Value {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({"iss": issuer, "sub": "user-123", "aud": CLIENT_ID, "exp": now + 300, "iat": now,
           "email": "alice@example.test", "jti": SEQ.fetch_add(1, Ordering::SeqCst)})
}

impl Env {
    /// A fresh token signed with the first RSA key, under `kid`.
    fn rs256(&self, kid: &str) -> String {
        tokens::sign(
            Algorithm::RS256,
            Some(kid),
            &fresh_claims(&self.forge.issuer),
        )
    }

    /// A fresh token signed with the second RSA key, under `kid`.
    fn rsa2(&self, kid: &str) -> String {
        tokens::sign_rsa2(Some(kid), &fresh_claims(&self.forge.issuer))
    }

    /// `/oauth2/auth` with this bearer token; the status.
    async fn bearer(&mut self, token: &str) -> u16 {
        let url = format!("http://authgate.svc:{}/oauth2/auth", self.app.port);
        let original = format!("http://{HOST}/api");
        let h = format!("Bearer {token}");
        self.client
            .get(
                &url,
                &[("x-original-url", &original), ("authorization", &h)],
            )
            .await
            .status
    }
}

/// A readiness wait: yields to the other tasks until the condition holds, 20 s at most.
struct Deadline {
    what: &'static str,
    at: Instant,
}

impl Deadline {
    fn in_20s(what: &'static str) -> Self {
        Self {
            what,
            at: Instant::now() + Duration::from_secs(20),
        }
    }

    async fn check(&self) {
        assert!(Instant::now() < self.at, "never happened: {}", self.what);
        tokio::task::yield_now().await;
    }

    /// Until `done` holds.
    async fn until(self, done: impl Fn() -> bool) {
        while !done() {
            self.check().await;
        }
    }
}

#[tokio::test]
async fn a_storm_of_unknown_kids_starts_one_jwks_fetch_and_no_request_waits_for_it() {
    // No periodic refresh during this test: every JWKS fetch is the storm's.
    let mut env = setup(Duration::from_secs(3600), tokens::jwks()).await;
    let before = env.forge.jwks_hits();
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let shared = env.forge.shared.clone();
    let held = shared.jwks_gate.write().await;
    for i in 0..200 {
        let token = env.rsa2(&format!("unknown-{i}"));
        assert_eq!(
            env.bearer(&token).await,
            401,
            "refused at once while the refetch is held back at the provider"
        );
    }
    Deadline::in_20s("the refetch reached the provider")
        .until(|| env.forge.jwks_hits() > before)
        .await;
    let extra = metrics.num_alive_tasks().saturating_sub(tasks_before);
    assert!(
        extra < 20,
        "{extra} more tasks alive after 200 unknown kids"
    );
    drop(held);
    for i in 200..400 {
        let token = env.rsa2(&format!("unknown-{i}"));
        assert_eq!(env.bearer(&token).await, 401);
    }
    assert_eq!(
        env.forge.jwks_hits(),
        before + 1,
        "one JWKS fetch inside the rate-limit interval"
    );
}

#[tokio::test]
async fn a_key_the_provider_removed_stops_verifying_after_the_periodic_refresh() {
    let mut env = setup(MAX_AGE, tokens::jwks_rotated()).await;
    let token = env.rsa2(tokens::RSA2_KID);
    assert_eq!(env.bearer(&token).await, 202, "rsa-2 is published");
    *env.forge.shared.jwks.lock().unwrap() = tokens::jwks();
    let seen = env.forge.jwks_hits();
    // The fetch after `seen` reads the new JWKS; the one after it starts once that one's keys
    // are stored.
    Deadline::in_20s("two JWKS refreshes after the rotation")
        .until(|| env.forge.jwks_hits() >= seen + 2)
        .await;
    let token = env.rsa2(tokens::RSA2_KID);
    assert_eq!(
        env.bearer(&token).await,
        401,
        "a removed key verifies nothing new"
    );
    let token = env.rs256(tokens::RSA_KID);
    assert_eq!(
        env.bearer(&token).await,
        202,
        "the remaining key still does"
    );
}

#[tokio::test]
async fn with_the_provider_down_the_last_good_metadata_and_keys_keep_verifying() {
    let mut env = setup(MAX_AGE, tokens::jwks()).await;
    env.forge.shared.outage.store(true, Ordering::SeqCst);
    let (discovery, jwks) = (env.forge.discovery_hits(), env.forge.jwks_hits());
    Deadline::in_20s("two refreshes during the outage")
        .until(|| env.forge.discovery_hits() >= discovery + 2 && env.forge.jwks_hits() >= jwks + 2)
        .await;
    let token = env.rs256(tokens::RSA_KID);
    assert_eq!(env.bearer(&token).await, 202, "a token never seen before");
    let token = tokens::sign(
        Algorithm::ES256,
        Some(tokens::EC_KID),
        &fresh_claims(&env.forge.issuer),
    );
    assert_eq!(env.bearer(&token).await, 202);
}

#[tokio::test]
async fn a_new_jwks_uri_in_the_discovery_document_is_picked_up() {
    let mut env = setup(MAX_AGE, tokens::jwks()).await;
    let other = spawn_forge().await;
    *other.shared.jwks.lock().unwrap() =
        json!({"keys": [tokens::rsa_jwk(tokens::RSA2_PUBLIC, tokens::RSA2_KID)]});
    *env.forge.shared.jwks_uri.lock().unwrap() = Some(format!("{}/jwks", other.issuer));
    let seen = env.forge.discovery_hits();
    // The discovery after `seen` advertises the new URL; the one after it starts once the new
    // keys are loaded and the document swapped.
    Deadline::in_20s("two discoveries after the change")
        .until(|| env.forge.discovery_hits() >= seen + 2)
        .await;
    assert!(other.jwks_hits() >= 1, "keys fetched from the new jwks_uri");
    let token = env.rsa2(tokens::RSA2_KID);
    assert_eq!(
        env.bearer(&token).await,
        202,
        "a key only the new URL publishes"
    );
    let token = env.rs256(tokens::RSA_KID);
    assert_eq!(
        env.bearer(&token).await,
        401,
        "the old URL's keys are no longer used"
    );
}
