//! Shared application state: the live registry, the clock, and the outbound HTTP pieces.
//!
//! Owns what handlers share. `AppState` is a cheap-to-clone handle; the registry inside is
//! swapped whole on reload (readers never block), so a request sees one config from start to end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::provider::ProviderContext;
use crate::session::LOGIN_LIFETIME;
use crate::spent::{Spend, SpentStates};
use crate::throttle::{LoginThrottle, Slot};

/// Login requests one client address may have in flight at once (each may wait on the IdP).
pub const LOGINS_PER_CLIENT: u32 = 8;

/// Login states remembered as spent at once. About 150 bytes each: 100 000 is ~15 MB at worst,
/// reached only by 100 000 completed logins within one login lifetime (11 minutes).
pub const SPENT_STATES_CAPACITY: usize = 100_000;
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
    spent: SpentStates,
    /// Login requests in flight per client address.
    logins: Arc<LoginThrottle>,
    /// Time source.
    clock: Arc<dyn Clock>,
    /// HTTP client and JWKS cache for providers built on reload.
    ctx: ProviderContext,
    /// Set on SIGTERM: `/ready` answers 503 while in-flight requests finish.
    draining: AtomicBool,
}

impl AppState {
    /// State serving `registry`.
    pub fn new(registry: Registry, ctx: ProviderContext, clock: Arc<dyn Clock>) -> Self {
        Self::with_spent_capacity(registry, ctx, clock, SPENT_STATES_CAPACITY)
    }

    /// Same, with room for `capacity` spent login states (tests fill a small set).
    pub fn with_spent_capacity(
        registry: Registry,
        ctx: ProviderContext,
        clock: Arc<dyn Clock>,
        capacity: usize,
    ) -> Self {
        Self::new_shared(Arc::new(registry), ctx, clock, capacity)
    }

    fn new_shared(
        registry: Arc<Registry>,
        ctx: ProviderContext,
        clock: Arc<dyn Clock>,
        capacity: usize,
    ) -> Self {
        Self(Arc::new(Inner {
            registry: ArcSwap::new(registry),
            logins: LoginThrottle::new(LOGINS_PER_CLIENT),
            spent: SpentStates::new(
                capacity,
                (LOGIN_LIFETIME + Duration::from_secs(60)).as_secs(),
            ),
            clock,
            ctx,
            draining: AtomicBool::new(false),
        }))
    }

    /// A state serving the same registry with another clock (tests that move time on).
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        Self::new_shared(
            self.registry(),
            self.0.ctx.clone(),
            clock,
            SPENT_STATES_CAPACITY,
        )
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

    /// Spends a callback `state`: fresh, replayed, or refused because the set is full.
    pub fn spend_state(&self, workspace: &str, state: &str) -> Spend {
        self.0
            .spent
            .spend(format!("{workspace}\n{state}"), self.now())
    }

    /// A slot for one login request of `client`, held until the request ends; `Err` with the
    /// bound when the client has that many in flight already.
    pub fn enter_login(&self, client: std::net::IpAddr) -> Result<Slot, u32> {
        self.0
            .logins
            .enter(client)
            .ok_or(self.0.logins.per_client())
    }

    /// Whether a new login's state could still be made single-use; `Err` with the capacity
    /// when the spent-state set is full.
    pub fn login_room(&self) -> Result<(), usize> {
        if self.0.spent.has_room(self.now()) {
            Ok(())
        } else {
            Err(self.0.spent.capacity())
        }
    }

    /// Marks the process as stopping: `/ready` answers 503 from now on.
    pub fn begin_drain(&self) {
        self.0.draining.store(true, Ordering::Relaxed);
    }

    /// Whether the process is stopping.
    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }

    /// The process's metrics (they outlive every registry).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.0.ctx.metrics
    }

    /// Provider building blocks.
    pub fn provider_context(&self) -> &ProviderContext {
        &self.0.ctx
    }
}
