//! Server-side sessions in Redis, for workspaces with `session.store = "redis"`.
//!
//! Owns the Redis conversation: one connection manager shared by every workspace, connected on
//! first use (start-up never waits for Redis), keys `authgate:session:<workspace>:<sha256 of the
//! ticket id>` with the session's lifetime as TTL. The ticket id itself travels only inside the
//! sealed cookie; Redis never sees it.

use std::time::Duration;

use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::secret::Secret;

/// How long one Redis command may take before the request gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    Url(String),
    /// Connection or command failure.
    #[error("Redis: {0}")]
    Redis(String),
    /// No answer in time.
    #[error("Redis did not answer within {COMMAND_TIMEOUT:?}")]
    Timeout,
}

/// The Redis session store.
pub struct RedisStore {
    /// Client built from the URL (no connection yet).
    client: redis::Client,
    /// The connection, made on first use and re-established by the manager itself.
    conn: OnceCell<redis::aio::ConnectionManager>,
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

impl RedisStore {
    /// A store for `url` (`redis://[:password@]host:port[/db]`); nothing is connected yet.
    pub fn new(url: &Secret) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(url.expose()).map_err(|e| StoreError::Url(e.to_string()))?;
        Ok(Self {
            client,
            conn: OnceCell::new(),
        })
    }

    async fn conn(&self) -> Result<redis::aio::ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(COMMAND_TIMEOUT)
                    .set_response_timeout(COMMAND_TIMEOUT)
                    .set_number_of_retries(1);
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), cfg)
                    .await
                    .map_err(|e| StoreError::Redis(e.to_string()))
            })
            .await?;
        Ok(conn.clone())
    }

    async fn timed<T>(
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(COMMAND_TIMEOUT, fut)
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(|e| StoreError::Redis(e.to_string()))
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        Self::timed(c.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1))).await
    }

    /// The value under `key`, if it has not expired or been deleted.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn().await?;
        Self::timed(c.get::<_, Option<String>>(key)).await
    }

    /// Deletes `key` (sign-out).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        Self::timed(c.del::<_, ()>(key)).await
    }
}
