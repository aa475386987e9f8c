//! The JWKS cache: keys per issuer, refetched on an unknown `kid`, never on the hot path.
//!
//! Owns key fetching. Readers get the current keys without waiting; a refetch happens at most
//! once per [`JwksCache::min_refresh`] per JWKS URL, and concurrent misses wait for that one
//! fetch instead of starting their own. A failed fetch keeps the last good keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use super::keys::KeySet;

/// Why keys could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Network or HTTP failure.
    #[error("cannot fetch JWKS {url}: {source}")]
    Fetch {
        /// JWKS URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// Not a JWKS.
    #[error("{url} is not a JWKS: {source}")]
    Parse {
        /// JWKS URL.
        url: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// One JWKS URL's keys.
#[derive(Default)]
struct Entry {
    /// The last good keys.
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching; records when the last refetch for an unknown `kid` started.
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// Keys of every issuer the process knows, shared by all workspaces.
pub struct JwksCache {
    /// HTTP client for fetching (no redirects, timeouts set).
    http: reqwest::Client,
    /// Entries by JWKS URL. A std mutex: held only to find or insert an entry, never across I/O.
    entries: Mutex<HashMap<Url, Arc<Entry>>>,
    /// Smallest interval between two fetches of one URL.
    min_refresh: Duration,
}

impl JwksCache {
    /// A cache fetching through `http`.
    pub fn new(http: reqwest::Client, min_refresh: Duration) -> Self {
        Self {
            http,
            entries: Mutex::default(),
            min_refresh,
        }
    }

    /// The minimum interval between fetches of one URL.
    pub fn min_refresh(&self) -> Duration {
        self.min_refresh
    }

    fn entry(&self, url: &Url) -> Arc<Entry> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(url.clone()).or_default().clone()
    }

    /// The keys known now, without any I/O (empty before the first fetch).
    pub fn keys(&self, url: &Url) -> Arc<KeySet> {
        let entry = self.entry(url);
        let keys = entry.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        keys
    }

    /// Refetches for an unknown `kid`, unless such a refetch started less than `min_refresh`
    /// ago; callers arriving while a fetch runs wait for it and share its result. Returns the
    /// keys after that, and the error if this call's own fetch failed (the old keys are kept).
    pub async fn refresh(&self, url: &Url) -> (Arc<KeySet>, Option<JwksError>) {
        self.fetch_shared(url, true).await
    }

    /// Fetches now (start-up warm-up, reload), still sharing a fetch already running.
    pub async fn load(&self, url: &Url) -> (Arc<KeySet>, Option<JwksError>) {
        self.fetch_shared(url, false).await
    }

    async fn fetch_shared(
        &self,
        url: &Url,
        rate_limited: bool,
    ) -> (Arc<KeySet>, Option<JwksError>) {
        let entry = self.entry(url);
        let before = self.keys(url);
        let mut last_refetch = entry.fetch.lock().await;
        // Someone else's fetch completed while this call waited: share its result.
        if !Arc::ptr_eq(&self.keys(url), &before) {
            return (self.keys(url), None);
        }
        let now = Instant::now();
        if rate_limited {
            if last_refetch.is_some_and(|t| now.duration_since(t) < self.min_refresh) {
                return (self.keys(url), None);
            }
            *last_refetch = Some(now);
        }
        let mut error = None;
        match self.fetch(url).await {
            Ok(set) => *entry.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set),
            Err(e) => error = Some(e),
        }
        drop(last_refetch);
        (self.keys(url), error)
    }

    async fn fetch(&self, url: &Url) -> Result<KeySet, JwksError> {
        let fail = |source| JwksError::Fetch {
            url: url.to_string(),
            source,
        };
        let body = self
            .http
            .get(url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(fail)?
            .bytes()
            .await
            .map_err(fail)?;
        KeySet::from_jwks_json(&body).map_err(|source| JwksError::Parse {
            url: url.to_string(),
            source,
        })
    }
}
