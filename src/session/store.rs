//! Server-side sessions in Redis, for workspaces with `session.store = "redis"`.
//!
//! Owns the Redis conversation: one connection manager shared by every workspace, keys
//! `authgate:session:<workspace>:<sha256 of the ticket id>` with the session's lifetime as TTL.
//! The ticket id itself travels only inside the sealed cookie; Redis never sees it.
//!
//! For back-channel logout, sets `authgate:sid:<workspace>:<sha256 of provider id, NUL, IdP
//! sid>` and `authgate:sub:<workspace>:<sha256 of provider id, NUL, sub>` hold the session keys
//! an IdP session and a user have (TTL: the session lifetime, renewed by each login), and
//! `authgate:jti:<workspace>:<sha256 of issuer, NUL, jti>` marks a logout token as used.
//!
//! A request never waits for a connection to be made. A background task connects (each attempt
//! bounded by [`COMMAND_TIMEOUT`], retried with [`backoff`]); until it has, every command fails
//! at once with [`StoreError::Unavailable`], so `/oauth2/auth` fails closed instead of queueing.
//! Once made, the connection manager re-establishes a lost connection by itself, and a command
//! on it waits at most [`COMMAND_TIMEOUT`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// How long one Redis command, or one connection attempt, may take.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// The first wait between connection attempts; doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The longest wait between connection attempts: how late at most authgate notices that an
/// unreachable Redis came up.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Not connected (yet, or not since start-up); the background task keeps trying.
    #[error("not connected to Redis")]
    Unavailable,
    /// The command failed.
    #[error("Redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// No answer in time.
    #[error("Redis did not answer within {COMMAND_TIMEOUT:?}")]
    Timeout,
}

/// The Redis session store: a cheap handle on a connection made in the background.
pub struct RedisStore {
    /// What the connecting task shares with requests.
    shared: Arc<Shared>,
    /// The connecting task, started at construction when a Tokio runtime is running (else on
    /// first use); aborted when the store is dropped (a reload builds a new one).
    connector: OnceLock<AbortOnDrop>,
}

/// The part of the store the connecting task holds.
struct Shared {
    /// Client built from the URL.
    client: redis::Client,
    /// Set once by the connecting task; the manager reconnects by itself from then on.
    conn: OnceLock<ConnectionManager>,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore(<url redacted>)")
    }
}

/// The Redis key for one ticket of one workspace.
pub fn key(workspace: &str, ticket: &str) -> String {
    let digest = Sha256::digest(ticket.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("authgate:session:{workspace}:{hex}")
}

/// The kinds of back-channel logout keys: an index set of sessions, or a used `jti`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// The sessions of one IdP session (`sid`) of one provider.
    Sid,
    /// The sessions of one user (`sub`) of one provider.
    Sub,
    /// A logout token's `jti`, by issuer.
    Jti,
}

/// The Redis key of a back-channel logout index (or used `jti`) in `workspace`: `scope` is the
/// provider id (the issuer for [`IndexKind::Jti`]), `value` the IdP's `sid`, `sub` or `jti`.
pub fn index_key(kind: IndexKind, workspace: &str, scope: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let kind = match kind {
        IndexKind::Sid => "sid",
        IndexKind::Sub => "sub",
        IndexKind::Jti => "jti",
    };
    format!("authgate:{kind}:{workspace}:{hex}")
}

/// The wait after failed connection attempt number `attempt` (from 0): doubling from
/// [`FIRST_RETRY`], capped at [`MAX_RETRY`].
pub(super) fn backoff(attempt: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_RETRY)
}

// === impl RedisStore ===

impl RedisStore {
    /// A store for `url` (`redis://[:password@]host:port[/db]`). Starts connecting in the
    /// background when called inside a Tokio runtime; never waits for Redis.
    pub fn new(url: &Secret) -> Result<Self, StoreError> {
        let client = redis::Client::open(url.expose()).map_err(StoreError::Url)?;
        let store = Self {
            shared: Arc::new(Shared {
                client,
                conn: OnceLock::new(),
            }),
            connector: OnceLock::new(),
        };
        store.start_connecting();
        Ok(store)
    }

    /// Starts the connecting task unless it runs already or no runtime is there to run it.
    fn start_connecting(&self) {
        if self.connector.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.connector
            .get_or_init(|| AbortOnDrop(runtime.spawn(connect(self.shared.clone()))));
    }

    /// The connection if one is made; never waits for one.
    fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.start_connecting();
        self.shared
            .conn
            .get()
            .cloned()
            .ok_or(StoreError::Unavailable)
    }

    async fn timed<T>(
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(COMMAND_TIMEOUT, fut)
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(StoreError::Redis)
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        Self::timed(c.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1))).await
    }

    /// The value under `key`, if it has not expired or been deleted.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn()?;
        Self::timed(c.get::<_, Option<String>>(key)).await
    }

    /// Deletes `key` (sign-out).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        Self::timed(c.del::<_, ()>(key)).await
    }

    /// Stores `value` under `key` for `ttl` and adds `key` to each set of `indexes`, whose TTL
    /// becomes `ttl` too: one transaction, so a session is never saved unindexed.
    pub async fn put_indexed(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        indexes: &[String],
    ) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let secs = ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic().set_ex(key, value, secs).ignore();
        for index in indexes {
            pipe.sadd(index, key)
                .ignore()
                .expire(index, i64::try_from(secs).unwrap_or(i64::MAX))
                .ignore();
        }
        Self::timed(pipe.query_async::<()>(&mut c)).await
    }

    /// Deletes every key the set `index` holds, and the set: the sessions a back-channel
    /// logout ends. Returns how many of them still existed.
    pub async fn delete_indexed(&self, index: &str) -> Result<usize, StoreError> {
        let mut c = self.conn()?;
        let members: Vec<String> = Self::timed(c.smembers(index)).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !members.is_empty() {
            pipe.del(&members);
        }
        pipe.del(index).ignore();
        if members.is_empty() {
            Self::timed(pipe.query_async::<()>(&mut c)).await?;
            return Ok(0);
        }
        let (deleted,): (usize,) = Self::timed(pipe.query_async(&mut c)).await?;
        Ok(deleted)
    }

    /// Replaces the value of an existing `key`, keeping its time to live (`SET XX KEEPTTL`):
    /// false when the key has expired or been deleted meanwhile (a refresh then writes nothing).
    pub async fn replace(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let set: Option<String> = Self::timed(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("XX")
                .arg("KEEPTTL")
                .query_async(&mut c),
        )
        .await?;
        Ok(set.is_some())
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        Self::timed(c.exists::<_, bool>(key)).await
    }

    /// Sets `key` for `ttl` unless it exists (`SET NX`): true the first time, false after.
    pub async fn put_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let set: Option<String> = Self::timed(
            redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .query_async(&mut c),
        )
        .await?;
        Ok(set.is_some())
    }
}

/// Connects until it succeeds, each attempt bounded by [`COMMAND_TIMEOUT`], then hands the
/// manager to the store and ends: from then on the manager reconnects by itself.
async fn connect(shared: Arc<Shared>) {
    // The manager's own retries serve its reconnections; the bound and the loop here serve
    // the first connection.
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(COMMAND_TIMEOUT)
        .set_response_timeout(COMMAND_TIMEOUT)
        .set_number_of_retries(1);
    let mut attempt: u32 = 0;
    loop {
        let made = tokio::time::timeout(
            COMMAND_TIMEOUT,
            ConnectionManager::new_with_config(shared.client.clone(), config.clone()),
        )
        .await;
        let problem = match made {
            Ok(Ok(conn)) => {
                // Only this task sets it, once.
                let _ = shared.conn.set(conn);
                tracing::info!(attempts = attempt.saturating_add(1), "connected to Redis");
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {COMMAND_TIMEOUT:?}"),
        };
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

/// The Redis store a config names, shared across reloads: a reload whose Redis URL is
/// unchanged keeps the connected store instead of opening a new one (which would fail closed
/// until it connects). Keyed by a digest of the URL, so the URL itself is not kept here.
#[derive(Default)]
pub struct StoreCache {
    /// The last store opened, by URL digest; weak, so a store no registry uses is dropped.
    last: std::sync::Mutex<Option<([u8; 32], std::sync::Weak<RedisStore>)>>,
}

impl std::fmt::Debug for StoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCache")
    }
}

impl StoreCache {
    /// The live store for `url`, or a new one.
    pub fn open(&self, url: &Secret) -> Result<Arc<RedisStore>, StoreError> {
        let digest: [u8; 32] = Sha256::digest(url.expose().as_bytes()).into();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((d, weak)) = last.as_ref() {
            if *d == digest {
                if let Some(store) = weak.upgrade() {
                    return Ok(store);
                }
            }
        }
        let store = Arc::new(RedisStore::new(url)?);
        *last = Some((digest, Arc::downgrade(&store)));
        Ok(store)
    }
}
