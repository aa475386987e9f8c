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
//! A refresh takes `<session key>:refreshing` as a lock ([`RedisStore::lock`]): its value is
//! random, and only a holder of that value releases or extends it (compare-and-delete in one
//! `EVAL`), so a replica whose lock ran out never deletes the lock another replica took since.
//!
//! A request never waits for a connection to be made. A background task (`link`) connects
//! (each attempt bounded by [`COMMAND_TIMEOUT`], retried with [`backoff`]) and then watches the
//! connection; until it has one, every command fails at once with [`StoreError::Unavailable`],
//! so `/oauth2/auth` fails closed instead of queueing. A command waits at most
//! [`COMMAND_TIMEOUT`]. Where the server is (a URL or Sentinel), TLS and credentials: `link`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::link::{self, OpenError, Shared};
use crate::config::{RedisConfig, RedisSecrets};
use crate::metrics::Metrics;

/// How long one Redis command, or one connection attempt, may take.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// The first wait between connection attempts; doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The longest wait between connection attempts: how late at most authgate notices that an
/// unreachable Redis came up.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
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

/// A lock taken with [`RedisStore::lock`]: the random value only its owner knows, so that it
/// is released or extended only by its owner ([`RedisStore::unlock`]).
#[derive(Clone, PartialEq, Eq)]
pub struct LockToken(String);

#[cfg(test)]
impl LockToken {
    /// A token holding `value`, as if a lock had been taken.
    pub(crate) fn from_value(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl std::fmt::Debug for LockToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockToken(<redacted>)")
    }
}

/// Deletes `KEYS[1]` only while it holds `ARGV[1]`: the owner's release (compare-and-delete).
const UNLOCK: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// Sets a new time to live (`ARGV[2]` ms) on `KEYS[1]` only while it holds `ARGV[1]`.
const EXTEND: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end"#;

/// The Redis session store: a cheap handle on a connection made in the background.
pub struct RedisStore {
    /// What the connecting task shares with requests.
    shared: Arc<Shared>,
    /// The connecting task, started at construction when a Tokio runtime is running (else on
    /// first use); aborted when the store is dropped (a reload builds a new one).
    connector: OnceLock<AbortOnDrop>,
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
        f.write_str("RedisStore(<redacted>)")
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

/// `d` in whole milliseconds, at least one.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
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
    /// A store for `config` and its secrets. Starts connecting in the background when called
    /// inside a Tokio runtime; never waits for Redis.
    pub fn new(config: &RedisConfig, secrets: &RedisSecrets) -> Result<Self, OpenError> {
        let (shared, _) = link::open(config, secrets, &Metrics::default())?;
        Ok(Self::from_shared(shared))
    }

    fn from_shared(shared: Shared) -> Self {
        let store = Self {
            shared: Arc::new(shared),
            connector: OnceLock::new(),
        };
        store.start_connecting();
        store
    }

    /// Whether the store can reach Redis now, as its last check (at most
    /// [`link::HEALTH_INTERVAL`] ago, or the last failed command) found.
    pub fn is_connected(&self) -> bool {
        self.start_connecting();
        self.shared.is_connected()
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
            .get_or_init(|| AbortOnDrop(runtime.spawn(link::run(self.shared.clone()))));
    }

    /// The connection if one is made; never waits for one.
    fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.start_connecting();
        self.shared.current().ok_or(StoreError::Unavailable)
    }

    /// Runs `fut` for at most [`COMMAND_TIMEOUT`]; a failure has the connection checked now.
    async fn timed<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(r) => r.map_err(StoreError::Redis),
        };
        if result.is_err() {
            self.shared.command_failed();
        }
        result
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        self.timed(c.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1)))
            .await
    }

    /// The value under `key`, if it has not expired or been deleted.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn()?;
        self.timed(c.get::<_, Option<String>>(key)).await
    }

    /// Deletes `key` (sign-out).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        self.timed(c.del::<_, ()>(key)).await
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
        self.timed(pipe.query_async::<()>(&mut c)).await
    }

    /// Deletes every key the set `index` holds, and the set: the sessions a back-channel
    /// logout ends. Returns how many of them still existed.
    pub async fn delete_indexed(&self, index: &str) -> Result<usize, StoreError> {
        let mut c = self.conn()?;
        let members: Vec<String> = self.timed(c.smembers(index)).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !members.is_empty() {
            pipe.del(&members);
        }
        pipe.del(index).ignore();
        if members.is_empty() {
            self.timed(pipe.query_async::<()>(&mut c)).await?;
            return Ok(0);
        }
        let (deleted,): (usize,) = self.timed(pipe.query_async(&mut c)).await?;
        Ok(deleted)
    }

    /// The keys the set `index` holds, each with its value (`None` once it expired or was
    /// deleted).
    pub async fn indexed(&self, index: &str) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let mut c = self.conn()?;
        let members: Vec<String> = self.timed(c.smembers(index)).await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = self
            .timed(redis::cmd("MGET").arg(&members).query_async(&mut c))
            .await?;
        Ok(members.into_iter().zip(values).collect())
    }

    /// Deletes `keys` and takes them out of the set `index`, in one transaction. Returns how
    /// many of them still existed.
    pub async fn delete_from_index(
        &self,
        index: &str,
        keys: &[String],
    ) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut c = self.conn()?;
        let mut pipe = redis::pipe();
        pipe.atomic().del(keys).srem(index, keys).ignore();
        let (deleted,): (usize,) = self.timed(pipe.query_async(&mut c)).await?;
        Ok(deleted)
    }

    /// Replaces the value of an existing `key`, keeping its time to live (`SET XX KEEPTTL`):
    /// false when the key has expired or been deleted meanwhile (a refresh then writes nothing).
    pub async fn replace(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let set: Option<String> = self
            .timed(
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
        self.timed(c.exists::<_, bool>(key)).await
    }

    /// Takes the lock `key` for `ttl` unless someone holds it (`SET NX PX` with a random value):
    /// the token to release or extend it with, or `None` when it is held.
    pub async fn lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>, StoreError> {
        let token = LockToken(format!("{:032x}", rand::random::<u128>()));
        let mut c = self.conn()?;
        let set: Option<String> = self
            .timed(
                redis::cmd("SET")
                    .arg(key)
                    .arg(&token.0)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut c),
            )
            .await?;
        Ok(set.map(|_| token))
    }

    /// Releases the lock `key` if `token` still holds it: false when it expired meanwhile (and
    /// may be another's now, which stays).
    pub async fn unlock(&self, key: &str, token: &LockToken) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let deleted: i64 = self
            .timed(
                redis::cmd("EVAL")
                    .arg(UNLOCK)
                    .arg(1)
                    .arg(key)
                    .arg(&token.0)
                    .query_async(&mut c),
            )
            .await?;
        Ok(deleted == 1)
    }

    /// Holds the lock `key` for `ttl` more if `token` still holds it: false otherwise.
    pub async fn extend_lock(
        &self,
        key: &str,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let extended: i64 = self
            .timed(
                redis::cmd("EVAL")
                    .arg(EXTEND)
                    .arg(1)
                    .arg(key)
                    .arg(&token.0)
                    .arg(millis(ttl))
                    .query_async(&mut c),
            )
            .await?;
        Ok(extended == 1)
    }

    /// Sets `key` for `ttl` unless it exists (`SET NX`): true the first time, false after.
    pub async fn put_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let set: Option<String> = self
            .timed(
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

/// The Redis store a config names, shared across reloads: a reload that changes nothing the
/// connection is made from (URL or sentinels, TLS files, user, passwords) keeps the connected
/// store instead of opening a new one (which would fail closed until it connects). Keyed by a
/// digest of those, so no secret is kept here.
#[derive(Default)]
pub struct StoreCache {
    /// The last store opened, by digest; weak, so a store no registry uses is dropped.
    last: std::sync::Mutex<Option<([u8; 32], std::sync::Weak<RedisStore>)>>,
}

impl std::fmt::Debug for StoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCache")
    }
}

impl StoreCache {
    /// The live store for `config`, or a new one reporting its state into `metrics`.
    pub fn open(
        &self,
        config: &RedisConfig,
        secrets: &RedisSecrets,
        metrics: &Metrics,
    ) -> Result<Arc<RedisStore>, OpenError> {
        let (shared, digest) = link::open(config, secrets, metrics)?;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((d, weak)) = last.as_ref() {
            if *d == digest {
                if let Some(store) = weak.upgrade() {
                    return Ok(store);
                }
            }
        }
        let store = Arc::new(RedisStore::from_shared(shared));
        *last = Some((digest, Arc::downgrade(&store)));
        Ok(store)
    }
}
