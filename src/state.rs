//! Shared application state: the live registry, the clock, and the outbound HTTP pieces.
//!
//! Owns what handlers share. `AppState` is a cheap-to-clone handle; the registry inside is
//! swapped whole on reload (readers never block), so a request sees one config from start to end.

use std::net::IpAddr;
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

/// Login states remembered as spent at once, for the process. About 100 bytes each: 100 000 is
/// ~10 MB at worst. A full set forgets its oldest behind a floor instead of refusing
/// ([`SpentStates`]).
pub const SPENT_STATES_CAPACITY: usize = 100_000;

/// Login states one client (address, IPv6 /64) may have spent within a login lifetime (11
/// minutes); beyond it that client alone is refused new logins until they age out.
pub const SPENT_STATES_PER_CLIENT: u32 = 256;
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
    /// `state` values already used at the callback, kept for a login's lifetime (single use),
    /// bounded per client and in all.
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
        Self::with_spent_limits(
            registry,
            ctx,
            clock,
            SPENT_STATES_CAPACITY,
            SPENT_STATES_PER_CLIENT,
        )
    }

    /// Same, with room for `capacity` spent login states (tests fill a small set).
    pub fn with_spent_capacity(
        registry: Registry,
        ctx: ProviderContext,
        clock: Arc<dyn Clock>,
        capacity: usize,
    ) -> Self {
        Self::with_spent_limits(registry, ctx, clock, capacity, SPENT_STATES_PER_CLIENT)
    }

    /// Same, with room for `capacity` spent login states, `per_client` of them for one client.
    pub fn with_spent_limits(
        registry: Registry,
        ctx: ProviderContext,
        clock: Arc<dyn Clock>,
        capacity: usize,
        per_client: u32,
    ) -> Self {
        Self::new_shared(Arc::new(registry), ctx, clock, (capacity, per_client))
    }

    fn new_shared(
        registry: Arc<Registry>,
        ctx: ProviderContext,
        clock: Arc<dyn Clock>,
        (capacity, per_client): (usize, u32),
    ) -> Self {
        Self(Arc::new(Inner {
            registry: ArcSwap::new(registry),
            logins: LoginThrottle::new(LOGINS_PER_CLIENT),
            spent: SpentStates::new(
                capacity,
                per_client,
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
            (SPENT_STATES_CAPACITY, SPENT_STATES_PER_CLIENT),
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

    /// Spends the `state` of a login of `workspace` started at `created`, whose callback came
    /// from `client` ([`SpentStates::spend`]).
    pub fn spend_state(&self, workspace: &str, state: &str, client: IpAddr, created: u64) -> Spend {
        self.0
            .spent
            .spend(workspace, state, client, created, self.now())
    }

    /// A slot for one login request of `client`, held until the request ends; `Err` with the
    /// bound when the client has that many in flight already.
    pub fn enter_login(&self, client: std::net::IpAddr) -> Result<Slot, u32> {
        self.0
            .logins
            .enter(client)
            .ok_or(self.0.logins.per_client())
    }

    /// Whether `client` may start a login: `Err` with its bound when it holds that many spent
    /// login states already (its callback would be refused). Other clients are never refused
    /// here: a full set makes room ([`SpentStates`]).
    pub fn login_room(&self, client: IpAddr) -> Result<(), u32> {
        if self.0.spent.has_room_for(client, self.now()) {
            Ok(())
        } else {
            Err(self.0.spent.per_client())
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
