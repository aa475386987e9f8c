//! Process metrics in the Prometheus text format: what `/oauth2/auth` decided, how long it
//! took, how logins ended, how the identity providers' documents were fetched, reloads, Redis.
//!
//! Owns every metric and the set of label values they may carry. Labels are bounded: workspace
//! and provider names come from the config, every other label from a fixed list in this module
//! ([`Decision`], [`LoginFailure`], [`RedisOp`]); nothing a client writes becomes a label, and a
//! refusal for a workspace the config does not have is counted under [`UNKNOWN`].
//!
//! Recording never locks and never allocates: the counters a request touches are created when
//! the registry is built ([`Metrics::workspace`], kept in each `Workspace`) and recording is an
//! atomic increment; the latency histogram is [`AtomicHistogram`]. [`Metrics`] lives as long as
//! the process (in `ProviderContext`), so a reload's registry finds the same series again and
//! counts go on. Series of a workspace removed by a reload stay, frozen, until the restart.
//! Never does I/O.

mod histogram;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use histogram::{AtomicHistogram, AUTH_BUCKETS_NS};

/// The `workspace` (and `provider`) label of what cannot be attributed to a configured one: a
/// route naming a workspace the config lacks, or several workspaces and none named. Workspace
/// names are lower-case letters, digits and `-`, so no workspace can be called this.
pub const UNKNOWN: &str = "(unknown)";

/// The `Content-Type` of [`Metrics::encode`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What `/oauth2/auth` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 202: a session or bearer token, and the rules allow the user.
    Allowed,
    /// 401: no valid session or bearer token.
    Unauthenticated,
    /// 403: the user is not allowed.
    Forbidden,
    /// 403: the host is malformed or not one of the named workspace's, or no workspace is named.
    RefusedHost,
}

impl Decision {
    /// Every decision, in label order.
    pub const ALL: [Decision; 4] = [
        Decision::Allowed,
        Decision::Unauthenticated,
        Decision::Forbidden,
        Decision::RefusedHost,
    ];

    /// The `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Unauthenticated => "unauthenticated",
            Decision::Forbidden => "forbidden",
            Decision::RefusedHost => "refused-host",
        }
    }
}

/// Why a login failed: the `reason` label, one value per kind of failure, never the error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// The callback's state is missing, expired, foreign or already used.
    State,
    /// The provider answered the authorization request with an error.
    ProviderError,
    /// The callback has no code.
    CodeMissing,
    /// No provider of the workspace has the requested id.
    UnknownProvider,
    /// The provider cannot be reached or answers garbage.
    ProviderUnavailable,
    /// RFC 9207: the response names another issuer.
    IssuerMismatch,
    /// The token endpoint refused the code.
    ExchangeRefused,
    /// The ID or access token did not verify.
    TokenRejected,
    /// The identity lacks something required or does not fit a cookie or header.
    IdentityUnusable,
    /// The provider's or the workspace's rules refuse the user.
    Denied,
    /// The client holds its bound of spent login states.
    TooManyLogins,
    /// Redis cannot store the session.
    StoreUnavailable,
    /// Anything else.
    Other,
}

impl LoginFailure {
    /// Every reason, in label order.
    pub const ALL: [LoginFailure; 13] = [
        LoginFailure::State,
        LoginFailure::ProviderError,
        LoginFailure::CodeMissing,
        LoginFailure::UnknownProvider,
        LoginFailure::ProviderUnavailable,
        LoginFailure::IssuerMismatch,
        LoginFailure::ExchangeRefused,
        LoginFailure::TokenRejected,
        LoginFailure::IdentityUnusable,
        LoginFailure::Denied,
        LoginFailure::TooManyLogins,
        LoginFailure::StoreUnavailable,
        LoginFailure::Other,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::State => "state",
            LoginFailure::ProviderError => "provider-error",
            LoginFailure::CodeMissing => "code-missing",
            LoginFailure::UnknownProvider => "unknown-provider",
            LoginFailure::ProviderUnavailable => "provider-unavailable",
            LoginFailure::IssuerMismatch => "issuer-mismatch",
            LoginFailure::ExchangeRefused => "exchange-refused",
            LoginFailure::TokenRejected => "token-rejected",
            LoginFailure::IdentityUnusable => "identity-unusable",
            LoginFailure::Denied => "denied",
            LoginFailure::TooManyLogins => "too-many-logins",
            LoginFailure::StoreUnavailable => "store-unavailable",
            LoginFailure::Other => "other",
        }
    }
}

/// What became of a session due for refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshResult {
    /// Renewed at the provider (or by another request's, or replica's, refresh).
    Renewed,
    /// Ended: the provider refused it.
    Ended,
    /// Kept as it was: the provider could not be reached.
    Kept,
}

impl RefreshResult {
    /// Every result, in label order.
    pub const ALL: [RefreshResult; 3] = [Self::Renewed, Self::Ended, Self::Kept];

    /// The `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Renewed => "renewed",
            Self::Ended => "ended",
            Self::Kept => "kept",
        }
    }
}

/// Which Redis call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisOp {
    /// Reading a session at `/oauth2/auth`.
    Read,
    /// Saving a session at the end of a login.
    Write,
    /// Deleting a session at sign-out.
    Delete,
}

impl RedisOp {
    /// Every operation, in label order.
    pub const ALL: [RedisOp; 3] = [RedisOp::Read, RedisOp::Write, RedisOp::Delete];

    /// The `operation` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisOp::Read => "read",
            RedisOp::Write => "write",
            RedisOp::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    workspace: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    workspace: String,
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    workspace: String,
    provider: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkspaceResultLabels {
    workspace: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RedisLabels {
    workspace: String,
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RedisModeLabels {
    /// `url` or `sentinel`.
    mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    document: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Fetches of discovery and JWKS documents, ok or failed. Owned by the `JwksCache` (which every
/// provider's metadata cell shares), registered by [`Metrics::new`]; clones share the counts.
#[derive(Debug, Clone)]
pub struct FetchCounters {
    family: Family<FetchLabels, Counter>,
    /// `[discovery ok, discovery error, jwks ok, jwks error]`.
    handles: [Counter; 4],
}

impl Default for FetchCounters {
    fn default() -> Self {
        let family = Family::<FetchLabels, Counter>::default();
        let handle =
            |document, result| family.get_or_create_owned(&FetchLabels { document, result });
        let handles = [
            handle("discovery", "ok"),
            handle("discovery", "error"),
            handle("jwks", "ok"),
            handle("jwks", "error"),
        ];
        Self { family, handles }
    }
}

impl FetchCounters {
    /// Counts a discovery document fetch.
    pub fn discovery(&self, ok: bool) {
        self.handles[usize::from(!ok)].inc();
    }

    /// Counts a JWKS fetch.
    pub fn jwks(&self, ok: bool) {
        self.handles[2 + usize::from(!ok)].inc();
    }
}

/// Every metric of the process. One per process, kept across reloads.
#[derive(Debug)]
pub struct Metrics {
    /// What `/metrics` encodes. Only read after [`Metrics::new`]; families add series without it.
    registry: Registry,
    /// Off (`--metrics off`): nothing is recorded and `/metrics` is not served.
    enabled: AtomicBool,
    decisions: Family<DecisionLabels, Counter>,
    auth_duration: AtomicHistogram,
    logins_started: Family<ProviderLabels, Counter>,
    logins_completed: Family<ProviderLabels, Counter>,
    logins_failed: Family<FailureLabels, Counter>,
    bearer_cache: Family<WorkspaceResultLabels, Counter>,
    refreshes: Family<WorkspaceResultLabels, Counter>,
    redis_errors: Family<RedisLabels, Counter>,
    /// The session store's state; a series only once a store is opened.
    redis_connected: Family<RedisModeLabels, Gauge>,
    /// `[ok, refused]`.
    reloads: [Counter; 2],
    /// Decisions about requests no configured workspace can be named for.
    unknown: DecisionCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(&FetchCounters::default())
    }
}

impl Metrics {
    /// Every metric registered, `fetches` (the JWKS cache's) among them.
    pub fn new(fetches: &FetchCounters) -> Self {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let auth_duration = AtomicHistogram::new(AUTH_BUCKETS_NS);
        let logins_started = Family::<ProviderLabels, Counter>::default();
        let logins_completed = Family::<ProviderLabels, Counter>::default();
        let logins_failed = Family::<FailureLabels, Counter>::default();
        let bearer_cache = Family::<WorkspaceResultLabels, Counter>::default();
        let refreshes = Family::<WorkspaceResultLabels, Counter>::default();
        let redis_errors = Family::<RedisLabels, Counter>::default();
        let redis_connected = Family::<RedisModeLabels, Gauge>::default();
        let reload_family = Family::<ResultLabels, Counter>::default();
        registry.register(
            "authgate_auth_decisions",
            "Answers of /oauth2/auth by workspace and result",
            decisions.clone(),
        );
        registry.register(
            "authgate_auth_duration_seconds",
            "Time to answer /oauth2/auth, from the extracted request to the response",
            auth_duration.clone(),
        );
        registry.register(
            "authgate_logins_started",
            "Logins sent to an identity provider",
            logins_started.clone(),
        );
        registry.register(
            "authgate_logins_completed",
            "Logins that ended with a session",
            logins_completed.clone(),
        );
        registry.register(
            "authgate_logins_failed",
            "Logins that failed, by reason",
            logins_failed.clone(),
        );
        registry.register(
            "authgate_idp_fetches",
            "Fetches of identity providers' discovery and JWKS documents",
            fetches.family.clone(),
        );
        registry.register(
            "authgate_session_refreshes",
            "Sessions due for refresh, by what became of them: renewed, ended (refused by the provider), kept (the provider unreachable)",
            refreshes.clone(),
        );
        registry.register(
            "authgate_bearer_cache_lookups",
            "Bearer tokens found (hit) or not (miss) in the verified-token cache",
            bearer_cache.clone(),
        );
        registry.register(
            "authgate_config_reloads",
            "Configuration reloads, applied (ok) or refused",
            reload_family.clone(),
        );
        registry.register(
            "authgate_redis_errors",
            "Session store (Redis) calls that failed",
            redis_errors.clone(),
        );
        registry.register(
            "authgate_redis_connected",
            "Whether the session store (Redis) answered its last check: 1 yes, 0 no",
            redis_connected.clone(),
        );
        registry.register(
            "authgate_build",
            "The running authgate",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let reloads = ["ok", "refused"]
            .map(|result| reload_family.get_or_create_owned(&ResultLabels { result }));
        let unknown = DecisionCounters::new(&decisions, UNKNOWN);
        Self {
            registry,
            enabled: AtomicBool::new(true),
            decisions,
            auth_duration,
            logins_started,
            logins_completed,
            logins_failed,
            bearer_cache,
            refreshes,
            redis_errors,
            redis_connected,
            reloads,
            unknown,
        }
    }

    /// The gauge of the Redis store's state, `sentinel` or by URL; the series appears now.
    pub fn redis_connected(&self, sentinel: bool) -> Gauge {
        let mode = if sentinel { "sentinel" } else { "url" };
        self.redis_connected
            .get_or_create_owned(&RedisModeLabels { mode })
    }

    /// The counters of workspace `name` and its providers (ids in config order), created now if
    /// a previous registry did not already. May lock: called while a registry is built.
    pub fn workspace(&self, name: &str, providers: &[&str]) -> WorkspaceMetrics {
        let ws = || name.to_string();
        let login = |provider: &str| {
            let labels = ProviderLabels {
                workspace: ws(),
                provider: provider.to_string(),
            };
            ProviderLogins {
                provider: provider.to_string(),
                started: self.logins_started.get_or_create_owned(&labels),
                completed: self.logins_completed.get_or_create_owned(&labels),
                failed: LoginFailure::ALL.map(|reason| {
                    self.logins_failed.get_or_create_owned(&FailureLabels {
                        workspace: ws(),
                        provider: provider.to_string(),
                        reason: reason.as_str(),
                    })
                }),
            }
        };
        let cache = |result| {
            self.bearer_cache
                .get_or_create_owned(&WorkspaceResultLabels {
                    workspace: ws(),
                    result,
                })
        };
        WorkspaceMetrics {
            decisions: DecisionCounters::new(&self.decisions, name),
            bearer_hit: cache("hit"),
            bearer_miss: cache("miss"),
            refreshes: RefreshResult::ALL.map(|r| {
                self.refreshes.get_or_create_owned(&WorkspaceResultLabels {
                    workspace: ws(),
                    result: r.as_str(),
                })
            }),
            redis: RedisOp::ALL.map(|op| {
                self.redis_errors.get_or_create_owned(&RedisLabels {
                    workspace: ws(),
                    operation: op.as_str(),
                })
            }),
            logins: providers.iter().map(|p| login(p)).collect(),
            unknown_login: login(UNKNOWN),
        }
    }

    /// Whether anything is recorded (and `/metrics` served).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns recording off or on (the `--metrics` switch, read once at start).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Decisions about requests for no configured workspace.
    pub fn unknown_workspace(&self) -> &DecisionCounters {
        &self.unknown
    }

    /// Records how long `/oauth2/auth` took.
    pub fn observe_auth(&self, took: Duration) {
        self.auth_duration.observe(took);
    }

    /// Counts a reload, applied or refused.
    pub fn reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].inc();
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// One workspace's `/oauth2/auth` decision counters.
#[derive(Debug, Clone)]
pub struct DecisionCounters([Counter; 4]);

impl DecisionCounters {
    fn new(family: &Family<DecisionLabels, Counter>, workspace: &str) -> Self {
        Self(Decision::ALL.map(|d| {
            family.get_or_create_owned(&DecisionLabels {
                workspace: workspace.to_string(),
                result: d.as_str(),
            })
        }))
    }

    /// Counts one decision: an atomic increment.
    pub fn record(&self, d: Decision) {
        self.0[d as usize].inc();
    }
}

/// One provider's login counters (or [`UNKNOWN`]'s, when the login names no known provider).
#[derive(Debug, Clone)]
pub struct ProviderLogins {
    provider: String,
    started: Counter,
    completed: Counter,
    failed: [Counter; LoginFailure::ALL.len()],
}

impl ProviderLogins {
    /// Counts a login sent to the provider.
    pub fn started(&self) {
        self.started.inc();
    }

    /// Counts a login that ended with a session.
    pub fn completed(&self) {
        self.completed.inc();
    }

    /// Counts a failed login.
    pub fn failed(&self, why: LoginFailure) {
        self.failed[why as usize].inc();
    }
}

/// The counters one workspace records into, created with its registry entry.
#[derive(Debug, Clone)]
pub struct WorkspaceMetrics {
    /// `/oauth2/auth` answers.
    pub decisions: DecisionCounters,
    bearer_hit: Counter,
    bearer_miss: Counter,
    refreshes: [Counter; RefreshResult::ALL.len()],
    redis: [Counter; RedisOp::ALL.len()],
    /// Per provider, in config order.
    logins: Vec<ProviderLogins>,
    /// Logins whose provider is not (or no longer) configured.
    unknown_login: ProviderLogins,
}

impl WorkspaceMetrics {
    /// Counts a verified-token cache lookup.
    pub fn bearer_cache(&self, hit: bool) {
        if hit {
            &self.bearer_hit
        } else {
            &self.bearer_miss
        }
        .inc();
    }

    /// Counts what became of a session due for refresh (each request that found it due).
    pub fn refresh(&self, result: RefreshResult) {
        self.refreshes[result as usize].inc();
    }

    /// Counts a failed Redis call.
    pub fn redis_error(&self, op: RedisOp) {
        self.redis[op as usize].inc();
    }

    /// The login counters of provider `id` (a configured one), else [`UNKNOWN`]'s.
    pub fn login(&self, id: Option<&str>) -> &ProviderLogins {
        id.and_then(|id| self.logins.iter().find(|p| p.provider == id))
            .unwrap_or(&self.unknown_login)
    }
}

#[cfg(test)]
mod tests;
