//! The JWKS cache: keys per issuer, refetched on an unknown `kid` and when they get old, never
//! on the hot path.
//!
//! Owns key fetching. Readers get the current keys without waiting. A refetch for an unknown
//! `kid` happens at most once per [`JwksCache::min_refresh`] per JWKS URL, and at most one
//! background task per URL exists at a time, however many tokens miss; concurrent misses share
//! one fetch instead of starting their own. Keys are also refetched once they are
//! [`JwksCache::max_age`] old (the providers' refresh task calls [`JwksCache::refresh_if_older`]),
//! so a key the provider removed stops verifying without a restart. A failed fetch keeps the
//! last good keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use super::keys::KeySet;
use crate::metrics::FetchCounters;

/// How old discovery and JWKS documents may get before they are fetched again, unless the
/// cache is built with another [`JwksCache::with_max_age`].
pub const METADATA_MAX_AGE: Duration = Duration::from_secs(3600);

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

/// When one URL was fetched.
#[derive(Default)]
struct Fetches {
    /// When the last refetch for an unknown `kid` started (the rate limit's clock).
    on_demand: Option<Instant>,
    /// When the last fetch of any kind started (the age check's clock).
    any: Option<Instant>,
}

/// One JWKS URL's keys.
#[derive(Default)]
struct Entry {
    /// The last good keys, read without a lock.
    keys: ArcSwap<KeySet>,
    /// Held while fetching, so fetches of one URL never overlap.
    fetch: tokio::sync::Mutex<Fetches>,
    /// Set while a background refetch task for this URL exists: there is at most one.
    background: AtomicBool,
}

/// How a fetch is decided.
#[derive(Clone, Copy)]
enum When {
    /// Always (warm-up, a new `jwks_uri`).
    Now,
    /// Unless an unknown-`kid` refetch started less than `min_refresh` ago.
    RateLimited,
    /// Unless any fetch started less than this long ago.
    OlderThan(Duration),
}

/// Keys of every issuer the process knows, shared by all workspaces.
pub struct JwksCache {
    /// HTTP client for fetching (no redirects, timeouts set).
    http: reqwest::Client,
    /// Entries by JWKS URL. A std mutex: held only to find or insert an entry, never across I/O.
    entries: Mutex<HashMap<Url, Arc<Entry>>>,
    /// Smallest interval between two unknown-`kid` fetches of one URL.
    min_refresh: Duration,
    /// How often providers refetch their metadata and keys.
    max_age: Duration,
    /// Discovery and JWKS fetches, ok or failed (the metadata cells count theirs here too).
    fetches: FetchCounters,
}

impl JwksCache {
    /// A cache fetching through `http`, documents kept for [`METADATA_MAX_AGE`].
    pub fn new(http: reqwest::Client, min_refresh: Duration) -> Self {
        Self {
            http,
            entries: Mutex::default(),
            min_refresh,
            max_age: METADATA_MAX_AGE,
            fetches: FetchCounters::default(),
        }
    }

    /// The same cache with documents refetched every `max_age` instead (tests use a short one).
    pub fn with_max_age(self, max_age: Duration) -> Self {
        Self { max_age, ..self }
    }

    /// The minimum interval between unknown-`kid` fetches of one URL.
    pub fn min_refresh(&self) -> Duration {
        self.min_refresh
    }

    /// How old discovery and JWKS documents may get before they are fetched again.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The counters of discovery and JWKS fetches made through this cache's users.
    pub fn fetch_counters(&self) -> &FetchCounters {
        &self.fetches
    }

    fn entry(&self, url: &Url) -> Arc<Entry> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(url.clone()).or_default().clone()
    }

    /// The keys known now, without any I/O (empty before the first fetch).
    pub fn keys(&self, url: &Url) -> Arc<KeySet> {
        self.entry(url).keys.load_full()
    }

    /// Refetches for an unknown `kid`, unless such a refetch started less than `min_refresh`
    /// ago; callers arriving while a fetch runs wait for it and share its result. Returns the
    /// keys after that, and the error if this call's own fetch failed (the old keys are kept).
    pub async fn refresh(&self, url: &Url) -> (Arc<KeySet>, Option<JwksError>) {
        self.fetch_shared(url, When::RateLimited).await
    }

    /// Fetches now (start-up warm-up, a new `jwks_uri`), still sharing a fetch already running.
    pub async fn load(&self, url: &Url) -> (Arc<KeySet>, Option<JwksError>) {
        self.fetch_shared(url, When::Now).await
    }

    /// Refetches unless some fetch of `url` started less than `age` ago: the periodic refresh,
    /// which several providers of one issuer may ask for at the same moment.
    pub async fn refresh_if_older(
        &self,
        url: &Url,
        age: Duration,
    ) -> (Arc<KeySet>, Option<JwksError>) {
        self.fetch_shared(url, When::OlderThan(age)).await
    }

    /// The unknown-`kid` refetch for a caller that must not wait (a bearer token): starts one
    /// background task, unless one is running for `url` or the rate limit says no. Returns
    /// whether a task was started. Without a Tokio runtime it does nothing.
    pub fn refresh_in_background(self: &Arc<Self>, url: &Url) -> bool {
        let entry = self.entry(url);
        let limited = match entry.fetch.try_lock() {
            Ok(fetches) => fetches
                .on_demand
                .is_some_and(|t| t.elapsed() < self.min_refresh),
            Err(_) => true, // a fetch is running; its keys are on the way
        };
        if limited {
            return false;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if entry
            .background
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let (cache, url) = (self.clone(), url.clone());
        rt.spawn(async move {
            // Cleared however the task ends, even cancelled with the runtime.
            let _running = ClearOnDrop(entry);
            if let (_, Some(e)) = cache.refresh(&url).await {
                tracing::warn!(jwks_uri = %url, error = %e, "JWKS refetch failed; the last good keys stay");
            }
        });
        true
    }

    async fn fetch_shared(&self, url: &Url, when: When) -> (Arc<KeySet>, Option<JwksError>) {
        let entry = self.entry(url);
        let before = self.keys(url);
        let mut fetches = entry.fetch.lock().await;
        // Someone else's fetch completed while this call waited: share its result.
        if !Arc::ptr_eq(&self.keys(url), &before) {
            return (self.keys(url), None);
        }
        let now = Instant::now();
        let recent = |t: Option<Instant>, within: Duration| {
            t.is_some_and(|t| now.duration_since(t) < within)
        };
        match when {
            When::Now => {}
            When::RateLimited if recent(fetches.on_demand, self.min_refresh) => {
                return (self.keys(url), None)
            }
            When::RateLimited => fetches.on_demand = Some(now),
            When::OlderThan(age) if recent(fetches.any, age) => return (self.keys(url), None),
            When::OlderThan(_) => {}
        }
        fetches.any = Some(now);
        let mut error = None;
        let fetched = self.fetch(url).await;
        self.fetches.jwks(fetched.is_ok());
        match fetched {
            Ok(set) => entry.keys.store(Arc::new(set)),
            Err(e) => error = Some(e),
        }
        drop(fetches);
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

/// Clears an entry's background flag when its task ends.
struct ClearOnDrop(Arc<Entry>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.background.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
