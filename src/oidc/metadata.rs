//! One provider's metadata kept fresh: discovered on first need, then refetched in the
//! background every [`JwksCache::max_age`] together with its keys, the last good copy kept
//! when a refetch fails.
//!
//! Owns a provider's discovery cell and its refresh task. Readers get the current metadata
//! without waiting; no request ever waits for a refresh. The task holds only a weak reference
//! to its cell and is aborted when its [`RefreshTask`] guard drops, so a provider replaced by a
//! reload leaves no task behind.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use super::{discover, DiscoveryError, IssuerRule, JwksCache, ProviderMetadata};

/// How long after a failed discovery a caller may try again.
const DISCOVERY_BACKOFF: Duration = Duration::from_secs(5);

/// Discovered metadata and the issuer rule derived from it.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The metadata document.
    pub metadata: ProviderMetadata,
    /// How `iss` is checked in tokens.
    pub issuer_rule: IssuerRule,
}

/// Why metadata is not available.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Discovery failed just now.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Discovery failed less than [`DISCOVERY_BACKOFF`] ago; not retried yet.
    #[error("discovery failed moments ago")]
    Backoff,
}

/// Where and how one provider's metadata is discovered.
#[derive(Debug, Clone)]
pub struct MetadataSource {
    /// The configured issuer.
    pub issuer: Url,
    /// Whether a `{tenantid}` issuer template is accepted (Entra multi-tenant).
    pub tenant_template: bool,
    /// Tenants accepted under such a template.
    pub allowed_tenants: Vec<String>,
    /// The provider's id, for logs.
    pub provider: String,
}

/// A provider's metadata, discovered once and refreshed.
pub struct MetadataCell {
    /// What to discover.
    source: MetadataSource,
    /// Outbound HTTP.
    http: reqwest::Client,
    /// The shared key cache; its `max_age` paces the refresh.
    jwks: Arc<JwksCache>,
    /// The last good metadata, read without a lock.
    current: ArcSwapOption<Discovered>,
    /// Serialises discovery; holds when the last attempt failed.
    discovery: tokio::sync::Mutex<Option<Instant>>,
}

impl MetadataCell {
    /// A cell that has discovered nothing yet.
    pub fn new(source: MetadataSource, http: reqwest::Client, jwks: Arc<JwksCache>) -> Self {
        Self {
            source,
            http,
            jwks,
            current: ArcSwapOption::empty(),
            discovery: tokio::sync::Mutex::new(None),
        }
    }

    /// The metadata known now, without any I/O.
    pub fn current(&self) -> Option<Arc<Discovered>> {
        self.current.load_full()
    }

    fn set(&self, d: Arc<Discovered>) {
        self.current.store(Some(d));
    }

    /// The metadata, discovering it if needed (at most one attempt per backoff interval).
    pub async fn get(&self) -> Result<Arc<Discovered>, MetadataError> {
        if let Some(d) = self.current() {
            return Ok(d);
        }
        let mut failed_at = self.discovery.lock().await;
        if let Some(d) = self.current() {
            return Ok(d);
        }
        if failed_at.is_some_and(|t| t.elapsed() < DISCOVERY_BACKOFF) {
            return Err(MetadataError::Backoff);
        }
        match self.discover().await {
            Ok(d) => {
                let d = Arc::new(d);
                self.set(d.clone());
                *failed_at = None;
                Ok(d)
            }
            Err(e) => {
                *failed_at = Some(Instant::now());
                tracing::warn!(provider = %self.source.provider, error = %e, "discovery failed");
                Err(e.into())
            }
        }
    }

    async fn discover(&self) -> Result<Discovered, DiscoveryError> {
        let s = &self.source;
        let metadata = discover(&self.http, &s.issuer, s.tenant_template).await;
        self.jwks.fetch_counters().discovery(metadata.is_ok());
        let metadata = metadata?;
        let issuer_rule = if metadata.issuer.contains("{tenantid}") {
            IssuerRule::TenantTemplate {
                template: metadata.issuer.clone(),
                allowed_tenants: s.allowed_tenants.clone(),
            }
        } else {
            IssuerRule::Exact(metadata.issuer.clone())
        };
        Ok(Discovered {
            metadata,
            issuer_rule,
        })
    }

    /// Refetches the metadata, then the keys unless another provider of the same JWKS URL
    /// just did. A changed document replaces the old one, a new `jwks_uri` only once its keys
    /// are loaded; any failure keeps the last good copy and is logged.
    pub async fn refresh(&self) {
        let provider = &self.source.provider;
        let mut failed_at = self.discovery.lock().await;
        match self.discover().await {
            Ok(fresh) => {
                *failed_at = None;
                let old = self.current();
                let uri = &fresh.metadata.jwks_uri;
                if old.as_ref().is_some_and(|o| o.metadata == fresh.metadata) {
                    // Unchanged.
                } else if old.as_ref().is_some_and(|o| o.metadata.jwks_uri == *uri) {
                    tracing::info!(%provider, "provider metadata changed");
                    self.set(Arc::new(fresh));
                } else {
                    match self.jwks.load(uri).await {
                        (keys, Some(e)) if keys.is_empty() => {
                            tracing::warn!(%provider, jwks_uri = %uri, error = %e, "keys at the new jwks_uri cannot be fetched; the last good metadata stays");
                        }
                        _ => {
                            tracing::info!(%provider, jwks_uri = %uri, "provider metadata changed");
                            self.set(Arc::new(fresh));
                        }
                    }
                }
            }
            Err(e) => {
                if self.current().is_none() {
                    *failed_at = Some(Instant::now());
                }
                tracing::warn!(%provider, error = %e, "metadata refresh failed; the last good metadata stays");
            }
        }
        drop(failed_at);
        let Some(d) = self.current() else { return };
        let age = self.jwks.max_age() / 2;
        if let (_, Some(e)) = self.jwks.refresh_if_older(&d.metadata.jwks_uri, age).await {
            tracing::warn!(%provider, error = %e, "JWKS refresh failed; the last good keys stay");
        }
    }

    /// Starts refreshing this cell every [`JwksCache::max_age`]. The task ends when the guard
    /// drops or the cell is gone. `None` outside a Tokio runtime.
    pub fn spawn_refresh(self: &Arc<Self>) -> Option<RefreshTask> {
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let cell = Arc::downgrade(self);
        let every = self.jwks.max_age();
        let task = rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // Held only while refreshing: the sleeping task keeps nothing alive.
                let Some(cell) = cell.upgrade() else { return };
                cell.refresh().await;
            }
        });
        Some(RefreshTask(task.abort_handle()))
    }
}

/// Owns a cell's refresh task and aborts it when dropped, as the cell's provider is.
#[derive(Debug)]
pub struct RefreshTask(tokio::task::AbortHandle);

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell() -> Arc<MetadataCell> {
        let http = reqwest::Client::new();
        let jwks = Arc::new(JwksCache::new(http.clone(), Duration::from_secs(30)));
        let source = MetadataSource {
            issuer: Url::parse("http://127.0.0.1:9/never-contacted")
                .unwrap_or_else(|e| panic!("{e}")),
            tenant_template: false,
            allowed_tenants: Vec::new(),
            provider: "p".into(),
        };
        Arc::new(MetadataCell::new(source, http, jwks))
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaced_provider_leaves_no_refresh_task() {
        let metrics = tokio::runtime::Handle::current().metrics();
        let alive = || metrics.num_alive_tasks();
        let mut old = cell();
        let mut old_task = old.spawn_refresh();
        assert_eq!(alive(), 1);
        for _ in 0..5 {
            // A reload: the new provider starts its task, the old one is dropped.
            let new = cell();
            let new_task = new.spawn_refresh();
            drop((old_task, old));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while alive() != 1 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} tasks alive",
                    alive()
                );
                tokio::task::yield_now().await;
            }
            (old, old_task) = (new, new_task);
        }
        assert!(old_task.is_some());
        let weak = Arc::downgrade(&old);
        drop(old);
        assert!(
            weak.upgrade().is_none(),
            "the sleeping task keeps its cell alive"
        );
    }
}
