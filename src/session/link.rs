//! How the Redis store reaches its server, and whether it can now.
//!
//! Owns turning `[redis]` into a client (one server by URL, or the master the sentinels name;
//! `rediss://` verified against the configured CA or the Mozilla roots; the ACL user and the
//! password from their files), and the task that connects, then watches the connection. Never
//! logs a URL or a password, and never makes a request wait for a connection.
//!
//! The watch: every [`HEALTH_INTERVAL`], or at once when a command fails, the task asks the
//! server `PING` (one server) or `ROLE` (Sentinel). The answer is the state `/ready` reports.
//! A failed check, or a `ROLE` other than master (the old master came back as a replica after
//! a failover), makes the task connect anew, swapping in the new connection once made (the old
//! one serves until then). With Sentinel that means asking the sentinels again: the connection
//! manager of redis 0.32 reconnects only to the address it was made for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use prometheus_client::metrics::gauge::Gauge;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, TlsCertificates, TlsMode};
use sha2::{Digest, Sha256};

use crate::config::{RedisConfig, RedisSecrets, RedisTarget, SentinelAddr};
use crate::metrics::Metrics;

use super::store::{backoff, COMMAND_TIMEOUT};

/// How often the task checks a made connection when nothing failed in between.
pub(super) const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// The least time between two checks.
const CHECK_GAP: Duration = Duration::from_millis(100);

/// A `[redis]` setting the store cannot be opened with: the key (under `redis.`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct OpenError {
    /// The key of `[redis]` at fault (`url`, `password`, `ca_file`…).
    pub field: &'static str,
    /// What is wrong; never a secret's value.
    pub problem: String,
}

impl OpenError {
    fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// Where connections go: one server, or the master the sentinels name.
pub(super) enum Endpoint {
    /// One server, by URL.
    Direct(redis::Client),
    /// Asked of the sentinels before each (re)connection; only the connecting task locks it.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The store's connection and state, shared by requests and the connecting task.
pub(super) struct Shared {
    /// Where to connect.
    endpoint: Endpoint,
    /// The current connection; `None` until the first is made. Swapped after a failover.
    conn: ArcSwapOption<ConnectionManager>,
    /// Whether the last check (or the first connection) succeeded: what `/ready` reports.
    connected: AtomicBool,
    /// Wakes the task to check now: a command failed.
    check_now: tokio::sync::Notify,
    /// `authgate_redis_connected`: 1 while `connected`.
    gauge: Gauge,
}

/// Builds the endpoint from `config` and its secrets (read by `config::Secrets::read`); also
/// returns a digest of everything the connection is made from (secrets included), so a reload
/// that changes none of it keeps the connected store.
pub(super) fn open(
    config: &RedisConfig,
    secrets: &RedisSecrets,
    metrics: &Metrics,
) -> Result<(Shared, [u8; 32]), OpenError> {
    let mut digest = Sha256::new();
    let mut note = |part: &[u8]| {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    };
    let password = exposed(config.password.as_ref(), &secrets.password, "password")?;
    let certs = tls_certificates(config, secrets)?;
    if let Some(c) = &config.ca {
        note(&c.pem);
    }
    if let Some(ClientTlsConfig {
        client_cert,
        client_key,
    }) = certs.as_ref().and_then(|c| c.client_tls.as_ref())
    {
        note(client_cert);
        note(client_key);
    }
    note(config.username.as_deref().unwrap_or("").as_bytes());
    note(password.as_deref().unwrap_or("").as_bytes());
    let endpoint = match &config.target {
        RedisTarget::Url(src) => {
            let url = exposed(Some(src), &secrets.url, "url")?.unwrap_or_default();
            note(b"url");
            note(url.as_bytes());
            Endpoint::Direct(direct_client(&url, config, password, certs)?)
        }
        RedisTarget::Sentinel {
            sentinels,
            master,
            tls,
        } => {
            note(b"sentinel");
            note(master.as_bytes());
            note(&[u8::from(*tls)]);
            for s in sentinels {
                note(s.host.as_bytes());
                note(&s.port.to_be_bytes());
            }
            let sentinel_password = exposed(
                config.sentinel_password.as_ref(),
                &secrets.sentinel_password,
                "sentinel_password",
            )?;
            note(sentinel_password.as_deref().unwrap_or("").as_bytes());
            let client = sentinel_client(
                config,
                (sentinels, master, *tls),
                password,
                sentinel_password,
                certs,
            )?;
            Endpoint::Sentinel(tokio::sync::Mutex::new(client))
        }
    };
    let gauge = metrics.redis_connected(matches!(endpoint, Endpoint::Sentinel(_)));
    Ok((
        Shared {
            gauge,
            endpoint,
            conn: ArcSwapOption::empty(),
            connected: AtomicBool::new(false),
            check_now: tokio::sync::Notify::new(),
        },
        digest.finalize().into(),
    ))
}

/// The value of a secret `[redis]` names, if it names one (`named`); a secret it names but
/// that was not read is an error at `field`.
fn exposed<T>(
    named: Option<&T>,
    read: &Option<crate::secret::Secret>,
    field: &'static str,
) -> Result<Option<String>, OpenError> {
    match (named, read) {
        (None, _) => Ok(None),
        (Some(_), Some(secret)) => Ok(Some(secret.expose().to_string())),
        (Some(_), None) => Err(OpenError::new(field, "not read with the config's secrets")),
    }
}

/// The client that asks `sentinels` for `master`, reaching both with the configured TLS and
/// credentials (the password to the master, `sentinel_password` to the sentinels).
fn sentinel_client(
    config: &RedisConfig,
    (sentinels, master, tls): (&[SentinelAddr], &str, bool),
    password: Option<String>,
    sentinel_password: Option<String>,
    certs: Option<TlsCertificates>,
) -> Result<SentinelClient, OpenError> {
    let addrs = sentinels.iter().map(|s| {
        if tls {
            ConnectionAddr::TcpTls {
                host: s.host.clone(),
                port: s.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(s.host.clone(), s.port)
        }
    });
    let bad = |e: redis::RedisError| OpenError::new("sentinels", e.to_string());
    let mut b = SentinelClientBuilder::new(addrs, master.to_string(), SentinelServerType::Master)
        .map_err(bad)?;
    if tls {
        b = b
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            b = b
                .set_client_to_redis_certificates(certs.clone())
                .set_client_to_sentinel_certificates(certs);
        }
    }
    if let Some(u) = &config.username {
        b = b.set_client_to_redis_username(u.clone());
    }
    if let Some(p) = password {
        b = b.set_client_to_redis_password(p);
    }
    if let Some(p) = sentinel_password {
        b = b.set_client_to_sentinel_password(p);
    }
    b.build().map_err(bad)
}

/// The CA and client certificate of `config`, with the client key read from its file.
fn tls_certificates(
    config: &RedisConfig,
    secrets: &RedisSecrets,
) -> Result<Option<TlsCertificates>, OpenError> {
    if !config.has_tls_options() {
        return Ok(None);
    }
    let client_tls = match &config.client_cert {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: cert.pem.clone(),
            client_key: exposed(Some(key), &secrets.client_key, "client_key_file")?
                .unwrap_or_default()
                .into_bytes(),
        }),
        None => None,
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert: config.ca.as_ref().map(|c| c.pem.clone()),
    }))
}

/// The client for one server at `url`, with the configured credentials and TLS material.
fn direct_client(
    url: &str,
    config: &RedisConfig,
    password: Option<String>,
    certs: Option<TlsCertificates>,
) -> Result<redis::Client, OpenError> {
    // The crate's message names what is wrong, never the URL itself.
    let mut info = url
        .into_connection_info()
        .map_err(|e| OpenError::new("url", format!("not a Redis URL: {e}")))?;
    let tls = match &info.addr {
        ConnectionAddr::TcpTls { insecure: true, .. } => {
            return Err(OpenError::new(
                "url",
                "#insecure turns off the server certificate check: give the server's CA in ca_file instead",
            ))
        }
        ConnectionAddr::TcpTls { .. } => true,
        _ => false,
    };
    if certs.is_some() && !tls {
        let field = if config.ca.is_some() {
            "ca_file"
        } else {
            "client_cert_file"
        };
        return Err(OpenError::new(
            field,
            "set, but the URL is not rediss://: TLS options need a TLS connection",
        ));
    }
    if let Some(p) = password {
        if info.redis.password.is_some() {
            return Err(OpenError::new(
                "password",
                "set, and the URL carries a password too: keep one",
            ));
        }
        info.redis.password = Some(p);
    }
    if let Some(u) = &config.username {
        info.redis.username = Some(u.clone());
    }
    let client = match certs {
        Some(certs) => redis::Client::build_with_tls(info, certs),
        None => redis::Client::open(info),
    };
    client.map_err(|e| OpenError::new("url", e.to_string()))
}

// === impl Shared ===

impl Shared {
    /// The connection if one is made; never waits for one.
    pub(super) fn current(&self) -> Option<ConnectionManager> {
        self.conn.load().as_deref().cloned()
    }

    /// Whether the last check succeeded.
    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// A command failed: have the task check the connection now.
    pub(super) fn command_failed(&self) {
        self.check_now.notify_one();
    }

    fn set_connected(&self, now: bool) {
        let before = self.connected.swap(now, Ordering::Relaxed);
        self.gauge.set(i64::from(now));
        if before && !now {
            tracing::warn!(
                "lost the connection to Redis; sessions kept there fail until it is back"
            );
        } else if !before && now && self.conn.load().is_some() {
            tracing::info!("connected to Redis");
        }
    }

    /// Makes a connection: to the URL's server, or to the master the sentinels name now.
    async fn make(&self) -> Result<ConnectionManager, ConnectError> {
        // One attempt each time: the loop in `run` retries the first connection, and the
        // checks every second drive the manager's reconnections. Its own retries would hide
        // the reason (a refused certificate, WRONGPASS) behind the attempt's time bound.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(0);
        let client = match &self.endpoint {
            Endpoint::Direct(client) => client.clone(),
            Endpoint::Sentinel(sentinel) => {
                let mut sentinel = sentinel.lock().await;
                tokio::time::timeout(COMMAND_TIMEOUT * 4, sentinel.async_get_client())
                    .await
                    .map_err(|_| ConnectError::NoMaster)?
                    .map_err(ConnectError::Sentinels)?
            }
        };
        tokio::time::timeout(
            COMMAND_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| ConnectError::Timeout)?
        .map_err(ConnectError::Redis)
    }

    /// Whether the connection works, and for Sentinel whether it still reaches the master.
    async fn check(&self, conn: &ConnectionManager) -> Check {
        let mut conn = conn.clone();
        match &self.endpoint {
            Endpoint::Direct(_) => {
                let ping = redis::cmd("PING");
                match tokio::time::timeout(COMMAND_TIMEOUT, ping.query_async::<String>(&mut conn))
                    .await
                {
                    Ok(Ok(_)) => Check::Up,
                    _ => Check::Down,
                }
            }
            Endpoint::Sentinel(_) => {
                let role = redis::cmd("ROLE");
                match tokio::time::timeout(
                    COMMAND_TIMEOUT,
                    role.query_async::<redis::Role>(&mut conn),
                )
                .await
                {
                    Ok(Ok(redis::Role::Primary { .. })) => Check::Up,
                    Ok(Ok(_)) => Check::NotMaster,
                    _ => Check::Down,
                }
            }
        }
    }
}

/// What a check found.
enum Check {
    /// Answers, and is the master where that matters.
    Up,
    /// No answer.
    Down,
    /// Answers as a replica: a failover happened.
    NotMaster,
}

/// Why one connection attempt failed.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    /// The sentinels did not name a master in time.
    #[error("the sentinels named no master in time")]
    NoMaster,
    /// Asking the sentinels failed.
    #[error("asking the sentinels: {0}")]
    Sentinels(#[source] redis::RedisError),
    /// The server did not answer in time.
    #[error("no answer within {COMMAND_TIMEOUT:?}")]
    Timeout,
    /// The server refused or failed.
    #[error("{0}")]
    Redis(#[source] redis::RedisError),
}

/// Connects until it succeeds (each attempt bounded, retried with [`backoff`]), then checks
/// the connection every [`HEALTH_INTERVAL`] or when a command failed; a failed check, or a
/// master turned replica, means connecting again (with Sentinel, through the sentinels).
pub(super) async fn run(shared: Arc<Shared>) {
    loop {
        let mut attempt: u32 = 0;
        let conn = loop {
            match shared.make().await {
                Ok(conn) => break conn,
                Err(problem) => {
                    let retry_in = backoff(attempt);
                    if attempt == 0 {
                        tracing::warn!(%problem, ?retry_in, "cannot connect to Redis; sessions kept there fail until it answers");
                    } else {
                        tracing::debug!(%problem, attempt, ?retry_in, "cannot connect to Redis yet");
                    }
                    tokio::time::sleep(retry_in).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        };
        shared.conn.store(Some(Arc::new(conn.clone())));
        shared.set_connected(true);
        loop {
            tokio::select! {
                () = tokio::time::sleep(HEALTH_INTERVAL) => {}
                () = shared.check_now.notified() => {}
            }
            // A burst of failing commands asks for a check each; one per gap is enough.
            tokio::time::sleep(CHECK_GAP).await;
            match shared.check(&conn).await {
                Check::Up => shared.set_connected(true),
                Check::Down => {
                    shared.set_connected(false);
                    break;
                }
                Check::NotMaster => {
                    shared.set_connected(false);
                    tracing::warn!(
                        "the Redis server is no longer the master; asking the sentinels"
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{PemFile, SecretSource};

    fn config(url: &str) -> (RedisConfig, HashMap<String, String>) {
        let config = crate::config::RedisConfig::url_from_env("URL");
        (
            config,
            HashMap::from([("URL".to_string(), url.to_string())]),
        )
    }

    fn ca() -> PemFile {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/redis-ca.pem");
        PemFile {
            path: path.into(),
            pem: std::fs::read(path).unwrap(),
        }
    }

    /// The field and problem reading the secrets or `open` refuses with, never naming a
    /// secret.
    fn refused(config: &RedisConfig, env: &HashMap<String, String>) -> (String, String) {
        let secrets = match RedisSecrets::read(config, env) {
            Ok(s) => s,
            Err(problems) => return (problems[0].0.to_string(), problems[0].1.to_string()),
        };
        match open(config, &secrets, &Metrics::default()) {
            Ok(_) => panic!("opened"),
            Err(e) => (e.field.to_string(), e.problem),
        }
    }

    #[test]
    fn what_needs_the_url_is_checked_when_it_is_read() {
        let (mut c, env) = config("redis://127.0.0.1:6379");
        c.ca = Some(ca());
        let (field, problem) = refused(&c, &env);
        assert_eq!(field, "ca_file");
        assert!(problem.contains("not rediss://"), "{problem}");

        let (c, env) = config("rediss://127.0.0.1:6379/#insecure");
        assert_eq!(refused(&c, &env).0, "url");

        let (mut c, env) = config("redis://:in-url@127.0.0.1:6379");
        c.password = Some(SecretSource {
            env: Some("PW".into()),
            file: None,
        });
        let env: HashMap<_, _> = env
            .into_iter()
            .chain([("PW".to_string(), "in-env".to_string())])
            .collect();
        let (field, problem) = refused(&c, &env);
        assert_eq!(field, "password");
        assert!(
            !problem.contains("in-url") && !problem.contains("in-env"),
            "{problem}"
        );

        let (mut c, env) = config("redis://127.0.0.1:6379");
        c.password = Some(SecretSource {
            env: None,
            file: Some("/nonexistent/redis-password".into()),
        });
        let (field, problem) = refused(&c, &env);
        assert_eq!(field, "password");
        assert!(problem.contains("/nonexistent/redis-password"), "{problem}");

        let (c, env) = config("http://127.0.0.1:6379");
        assert_eq!(refused(&c, &env).0, "url");
    }

    #[test]
    fn the_digest_changes_with_what_a_connection_is_made_from() {
        let digest = |c: &RedisConfig, env: &HashMap<String, String>| match open(
            c,
            &RedisSecrets::read(c, env).unwrap(),
            &Metrics::default(),
        ) {
            Ok((_, d)) => d,
            Err(e) => panic!("{e}"),
        };
        let (c, env) = config("rediss://127.0.0.1:6379");
        let plain = digest(&c, &env);
        assert_eq!(plain, digest(&c, &env));
        let mut with_ca = c.clone();
        with_ca.ca = Some(ca());
        assert_ne!(plain, digest(&with_ca, &env));
        let mut with_user = c.clone();
        with_user.username = Some("authgate".into());
        assert_ne!(plain, digest(&with_user, &env));
        let (c, env) = config("rediss://127.0.0.1:6380");
        assert_ne!(plain, digest(&c, &env));
    }
}
