//! Shared application state: the live registry, the clock, and the outbound HTTP pieces.
//!
//! Owns what handlers share. `AppState` is a cheap-to-clone handle; the registry inside is
//! swapped whole on reload (readers never block), so a request sees one config from start to end.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::provider::ProviderContext;
use crate::session::LOGIN_LIFETIME;
use crate::workspace::Registry;

/// Seconds since the epoch; injected so expiry is tested without sleeping.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// Handle to everything handlers share.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts.
pub struct Inner {
    /// Current workspaces; replaced whole on reload.
    registry: ArcSwap<Registry>,
    /// `state` values already used at the callback, kept for a login's lifetime (single use).
    used_states: moka::sync::Cache<String, ()>,
    /// Time source.
    clock: Arc<dyn Clock>,
    /// HTTP client and JWKS cache for providers built on reload.
    ctx: ProviderContext,
}

impl AppState {
    /// State serving `registry`.
    pub fn new(registry: Registry, ctx: ProviderContext, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner {
            registry: ArcSwap::from_pointee(registry),
            used_states: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LOGIN_LIFETIME + Duration::from_secs(60))
                .build(),
            clock,
            ctx,
        }))
    }

    /// The registry as of now.
    pub fn registry(&self) -> Arc<Registry> {
        self.0.registry.load_full()
    }

    /// Replaces the registry (after the new config validated completely).
    pub fn replace_registry(&self, registry: Registry) {
        self.0.registry.store(Arc::new(registry));
    }

    /// Now, in seconds since the epoch.
    pub fn now(&self) -> u64 {
        self.0.clock.now()
    }

    /// Marks a callback `state` used; `false` if it already was (a replay).
    pub fn consume_state(&self, workspace: &str, state: &str) -> bool {
        let key = format!("{workspace}\n{state}");
        let entry = self.0.used_states.entry(key).or_insert(());
        entry.is_fresh()
    }

    /// Provider building blocks.
    pub fn provider_context(&self) -> &ProviderContext {
        &self.0.ctx
    }
}
