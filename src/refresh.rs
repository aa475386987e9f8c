//! Renewing sessions at the provider (`session.refresh_interval`).
//!
//! Owns when a session is due, what the provider's answer makes of it, and that the requests
//! carrying one old session renew it once: in this process one flight per session (the others
//! wait for its outcome, and later requests with the same old cookie reuse it), and with the
//! Redis store across replicas too (a lock next to the session's record; a replica that does not
//! get it waits for the record to change). The refresh runs in its own task, so a request that
//! goes away mid-refresh never loses a refresh token the provider has already rotated.
//!
//! - **Renewed**: the identity read again (groups and roles included) and the new tokens; the
//!   session still ends when it would have.
//! - **Ended**: the provider refused the refresh token (`invalid_grant`) or answered with
//!   something that cannot be trusted: the request is refused, never passed.
//! - **Kept**: the provider could not be reached: the session is served as it is until it
//!   ends, and the refresh is tried again after [`RETRY_AFTER`].

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::provider::{Provider, RefreshError};
use crate::secret::Secret;
use crate::session::{Keep, RedisStore, Tokens};
use crate::workspace::Stored;

/// After a refresh failed for want of the provider, how long (seconds) the session is served
/// as it is before the provider is asked again.
pub const RETRY_AFTER: u64 = 30;

/// How long a replica holds the Redis refresh lock at most: longer than any provider call
/// (the outbound HTTP client gives up after 10 s; Graph and GitHub's listings make a few).
const LOCK_TTL: Duration = Duration::from_secs(30);

/// How often a replica that did not get the lock reads the record for the winner's outcome.
const PEER_POLL: Duration = Duration::from_millis(50);

/// Outcomes remembered at most: each is one session's renewed contents.
const FLIGHTS: u64 = 10_000;

/// What became of a session due for refresh.
#[derive(Clone)]
pub enum Outcome {
    /// Renewed: what the session holds now.
    Renewed(Arc<Stored>),
    /// Ended by the provider: refuse the request.
    Ended,
    /// Kept as it is, the provider being unreachable since `since` (seconds since the epoch).
    Kept {
        /// When the refresh failed.
        since: u64,
    },
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Renewed(s) => write!(f, "Renewed({})", s.identity.user),
            Self::Ended => f.write_str("Ended"),
            Self::Kept { since } => write!(f, "Kept {{ since: {since} }}"),
        }
    }
}

/// One workspace's refresher: its interval and its flights.
pub struct Refresher {
    /// How old a session may get before it is renewed.
    interval: Duration,
    /// Each session's refresh by [`Job::flight_key`]: in progress, or its outcome. Kept for
    /// one interval (at least [`RETRY_AFTER`], at most ten minutes), so that a request still
    /// carrying the old cookie reuses the outcome instead of spending the refresh token again.
    flights: moka::sync::Cache<[u8; 32], Arc<OnceCell<Outcome>>>,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Refresher {
    /// A refresher renewing sessions older than `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            flights: moka::sync::Cache::builder()
                .max_capacity(FLIGHTS)
                // At least RETRY_AFTER, or a kept outcome would expire before its retry is due
                // and every request past the interval would ask the provider again.
                .time_to_live(
                    interval.clamp(Duration::from_secs(RETRY_AFTER), Duration::from_secs(600)),
                )
                .build(),
        }
    }

    /// Whether a session last renewed (or issued) at `last` is due at `now`.
    pub fn due(&self, last: u64, now: u64) -> bool {
        now >= last.saturating_add(self.interval.as_secs())
    }

    /// Runs `job` unless a flight for the same session is in progress or done (then its
    /// outcome), and returns the outcome. A kept outcome older than [`RETRY_AFTER`] is
    /// replaced by a new flight.
    pub async fn run(&self, job: Job, now: u64) -> Outcome {
        let cell = self
            .flights
            .entry(job.flight_key())
            .or_insert_with_if(
                || Arc::new(OnceCell::new()),
                |cell| matches!(cell.get(), Some(Outcome::Kept { since }) if now >= since + RETRY_AFTER),
            )
            .into_value();
        if let Some(done) = cell.get() {
            return done.clone();
        }
        // In a task of its own: the waiting request may go away, the refresh may not.
        tokio::spawn(async move { cell.get_or_init(|| job.run(now)).await.clone() })
            .await
            .unwrap_or(Outcome::Kept { since: now })
    }
}

/// One session's refresh: what it needs, owned, so it can outlive the request.
pub struct Job {
    /// The workspace's name, for keys and logs.
    pub workspace: String,
    /// The provider that logged the user in, if the config still has it.
    pub provider: Option<Arc<dyn Provider>>,
    /// The session's record in the store and the store, for a server-side session.
    pub record: Option<(Arc<RedisStore>, String)>,
    /// What the session holds now.
    pub current: Stored,
    /// When it was last renewed (or issued).
    pub last: u64,
    /// The tokens the workspace keeps.
    pub keep: Keep,
}

/// A server-side record as seen by a replica that may not be the only one refreshing it.
enum Peek {
    /// Still as this replica knows it.
    Same,
    /// Renewed by another replica.
    Newer(Arc<Stored>),
    /// Signed out, ended or expired.
    Gone,
    /// The store did not answer.
    Unknown,
}

impl Job {
    /// One flight per session state: the session (its ticket, or its refresh token) and when it
    /// was last renewed, so that the next interval's refresh is a new flight.
    fn flight_key(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.workspace.as_bytes());
        h.update([0]);
        match &self.record {
            Some((_, key)) => h.update(key.as_bytes()),
            None => h.update(
                self.current
                    .tokens
                    .refresh
                    .as_deref()
                    .unwrap_or("")
                    .as_bytes(),
            ),
        }
        h.update([0]);
        h.update(self.last.to_be_bytes());
        h.finalize().into()
    }

    async fn run(self, now: u64) -> Outcome {
        match &self.record {
            None => self.renew(now).await,
            Some((store, key)) => self.renew_shared(store, key, now).await,
        }
    }

    /// Asks the provider.
    async fn renew(&self, now: u64) -> Outcome {
        let user = &self.current.identity.user;
        let (Some(provider), Some(token)) = (&self.provider, &self.current.tokens.refresh) else {
            tracing::info!(workspace = %self.workspace, %user, "session ended: its provider is no longer configured");
            return Outcome::Ended;
        };
        let answer = provider
            .refresh(&Secret::new(token.clone()), &self.current.identity, now)
            .await
            .and_then(|login| match login.identity.check_usable() {
                Ok(()) => Ok(login),
                Err(e) => Err(RefreshError::Rejected(
                    crate::provider::ProviderError::Incomplete(e.into()),
                )),
            });
        match answer {
            Ok(login) => {
                let was = &self.current.tokens;
                let tokens = Tokens {
                    access: login.tokens.access.or_else(|| was.access.clone()),
                    id: login.tokens.id.or_else(|| was.id.clone()),
                    refresh: login.tokens.refresh.or_else(|| was.refresh.clone()),
                }
                .keep(self.keep);
                tracing::info!(workspace = %self.workspace, %user, provider = provider.id(), groups = login.identity.groups.len(), "session refreshed");
                Outcome::Renewed(Arc::new(Stored {
                    identity: login.identity,
                    tokens,
                    refreshed_at: Some(now),
                }))
            }
            Err(RefreshError::Unavailable(why)) => {
                tracing::warn!(workspace = %self.workspace, %user, provider = provider.id(), error = %why, retry_in_s = RETRY_AFTER, "session not refreshed: the provider cannot be reached; the session is kept until it ends");
                Outcome::Kept { since: now }
            }
            Err(e) => {
                tracing::info!(workspace = %self.workspace, %user, provider = provider.id(), reason = %e, "session ended at refresh");
                Outcome::Ended
            }
        }
    }

    /// Renews a server-side session once across replicas: the one that sets the lock asks the
    /// provider and writes the record; the others wait for the record to change.
    async fn renew_shared(&self, store: &RedisStore, key: &str, now: u64) -> Outcome {
        let lock = format!("{key}:refreshing");
        match store.put_once(&lock, LOCK_TTL).await {
            Ok(true) => {}
            Ok(false) => return self.await_peer(store, key, &lock, now).await,
            Err(e) => {
                tracing::warn!(workspace = %self.workspace, error = %e, "session not refreshed: the store cannot be reached");
                return Outcome::Kept { since: now };
            }
        }
        // The lock is ours; another replica may have renewed the record just before.
        let outcome = match self.peek(store, key).await {
            Peek::Newer(s) => Outcome::Renewed(s),
            Peek::Gone => Outcome::Ended,
            Peek::Unknown => Outcome::Kept { since: now },
            Peek::Same => match self.renew(now).await {
                Outcome::Renewed(s) => self.save(store, key, s).await,
                Outcome::Ended => {
                    if let Err(e) = store.delete(key).await {
                        tracing::warn!(workspace = %self.workspace, error = %e, "cannot delete the ended session");
                    }
                    Outcome::Ended
                }
                kept => kept,
            },
        };
        if let Err(e) = store.delete(&lock).await {
            tracing::debug!(workspace = %self.workspace, error = %e, "refresh lock left to expire");
        }
        outcome
    }

    /// Writes a renewed record, keeping its time to live. A record gone meanwhile (signed out
    /// elsewhere) stays gone.
    async fn save(&self, store: &RedisStore, key: &str, renewed: Arc<Stored>) -> Outcome {
        let Ok(json) = serde_json::to_string(&*renewed) else {
            return Outcome::Ended;
        };
        match store.replace(key, &json).await {
            Ok(true) => Outcome::Renewed(renewed),
            Ok(false) => Outcome::Ended,
            Err(e) => {
                // The provider may have rotated the refresh token: serve what it answered here.
                tracing::warn!(workspace = %self.workspace, error = %e, "cannot save the refreshed session");
                Outcome::Renewed(renewed)
            }
        }
    }

    /// The record as the store has it now, compared with this replica's.
    async fn peek(&self, store: &RedisStore, key: &str) -> Peek {
        match store.get(key).await {
            Ok(None) => Peek::Gone,
            Ok(Some(json)) => match serde_json::from_str::<Stored>(&json) {
                Ok(s) if s.refreshed_at.is_some_and(|t| t > self.last) => Peek::Newer(Arc::new(s)),
                Ok(_) => Peek::Same,
                Err(_) => Peek::Gone,
            },
            Err(_) => Peek::Unknown,
        }
    }

    /// Another replica holds the lock: waits (at most [`LOCK_TTL`]) for its outcome in the
    /// record. A lock released without a change means its provider call failed: kept.
    async fn await_peer(&self, store: &RedisStore, key: &str, lock: &str, now: u64) -> Outcome {
        let deadline = tokio::time::Instant::now() + LOCK_TTL;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(PEER_POLL).await;
            match self.peek(store, key).await {
                Peek::Newer(s) => return Outcome::Renewed(s),
                Peek::Gone => return Outcome::Ended,
                Peek::Unknown => return Outcome::Kept { since: now },
                Peek::Same => {}
            }
            if !store.exists(lock).await.unwrap_or(false) {
                // Released: read once more, the write happens before the release.
                return match self.peek(store, key).await {
                    Peek::Newer(s) => Outcome::Renewed(s),
                    Peek::Gone => Outcome::Ended,
                    _ => Outcome::Kept { since: now },
                };
            }
        }
        Outcome::Kept { since: now }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use url::Url;

    use super::*;
    use crate::config::ProviderKind;
    use crate::identity::Identity;
    use crate::provider::{AuthorizationRequest, BoxFuture, Callback, Login, ProviderError};
    use crate::session::LoginState;

    const NOW: u64 = 1_800_000_000;

    /// A provider whose refresh answers what the test says, after the test lets it.
    struct Scripted {
        calls: AtomicU32,
        answer: fn(u32) -> Result<Login, RefreshError>,
        gate: tokio::sync::Semaphore,
    }

    impl Scripted {
        fn new(answer: fn(u32) -> Result<Login, RefreshError>) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicU32::new(0),
                answer,
                gate: tokio::sync::Semaphore::new(0),
            })
        }
    }

    impl Provider for Scripted {
        fn id(&self) -> &str {
            "sso"
        }
        fn display_name(&self) -> &str {
            "SSO"
        }
        fn kind(&self) -> ProviderKind {
            ProviderKind::Oidc
        }
        fn authorization_url<'a>(
            &'a self,
            _req: &'a AuthorizationRequest,
        ) -> BoxFuture<'a, Result<(Url, String), ProviderError>> {
            Box::pin(async { Err(ProviderError::Unavailable("not here".into())) })
        }
        fn finish<'a>(
            &'a self,
            _callback: &'a Callback,
            _login: &'a LoginState,
            _now: u64,
        ) -> BoxFuture<'a, Result<Login, ProviderError>> {
            Box::pin(async { Err(ProviderError::Unavailable("not here".into())) })
        }
        fn warm_up(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
        fn refresh<'a>(
            &'a self,
            _refresh_token: &'a Secret,
            _previous: &'a Identity,
            _now: u64,
        ) -> BoxFuture<'a, Result<Login, RefreshError>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                self.gate.acquire().await.unwrap().forget();
                (self.answer)(n)
            })
        }
    }

    fn alice(groups: &[&str]) -> Identity {
        Identity {
            user: "alice".into(),
            subject: "alice".into(),
            provider: "sso".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Identity::default()
        }
    }

    fn job(provider: &Arc<Scripted>) -> Job {
        Job {
            workspace: "mcd".into(),
            provider: Some(provider.clone()),
            record: None,
            current: Stored {
                identity: alice(&["admins"]),
                tokens: Tokens {
                    access: Some("at-1".into()),
                    id: Some("id-1".into()),
                    refresh: Some("rt-1".into()),
                },
                refreshed_at: None,
            },
            last: NOW - 600,
            keep: Keep {
                access: true,
                id: false,
                refresh: true,
            },
        }
    }

    fn renewed(_: u32) -> Result<Login, RefreshError> {
        Ok(Login {
            identity: alice(&["staff"]),
            tokens: Tokens {
                access: Some("at-2".into()),
                id: Some("id-2".into()),
                refresh: None,
            },
        })
    }

    #[test]
    fn due_once_the_interval_has_passed() {
        let r = Refresher::new(Duration::from_secs(300));
        assert!(!r.due(NOW, NOW));
        assert!(!r.due(NOW, NOW + 299));
        assert!(r.due(NOW, NOW + 300));
        assert!(!r.due(u64::MAX, NOW), "no overflow");
    }

    #[tokio::test]
    async fn concurrent_runs_of_one_session_ask_the_provider_once() {
        let r = Arc::new(Refresher::new(Duration::from_secs(300)));
        let p = Scripted::new(renewed);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (r, j) = (r.clone(), job(&p));
            set.spawn(async move { r.run(j, NOW).await });
        }
        // Every run is waiting on the one refresh in flight.
        while p.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        p.gate.add_permits(10);
        for outcome in set.join_all().await {
            let Outcome::Renewed(s) = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!(s.identity.groups, ["staff"]);
            // The new access token; the ID token not kept; the refresh token the provider did
            // not renew is the old one.
            assert_eq!(s.tokens.access.as_deref(), Some("at-2"));
            assert_eq!(s.tokens.id, None);
            assert_eq!(s.tokens.refresh.as_deref(), Some("rt-1"));
            assert_eq!(s.refreshed_at, Some(NOW));
        }
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        // A straggler with the same old session, later: the same outcome.
        assert!(matches!(r.run(job(&p), NOW + 5).await, Outcome::Renewed(_)));
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        // The next interval's refresh (renewed since) is a flight of its own.
        let mut next = job(&p);
        next.last = NOW;
        p.gate.add_permits(1);
        assert!(matches!(r.run(next, NOW + 300).await, Outcome::Renewed(_)));
        assert_eq!(p.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refusal_ends_and_an_unreachable_provider_keeps_until_the_retry() {
        let r = Refresher::new(Duration::from_secs(300));
        let refused = Scripted::new(|_| Err(RefreshError::Refused("invalid_grant".into())));
        refused.gate.add_permits(10);
        assert!(matches!(r.run(job(&refused), NOW).await, Outcome::Ended));
        let rejected = Scripted::new(|_| {
            Err(RefreshError::Rejected(ProviderError::Incomplete(
                "another user".into(),
            )))
        });
        rejected.gate.add_permits(10);
        let mut other = job(&rejected);
        other.current.tokens.refresh = Some("rt-other".into());
        assert!(matches!(r.run(other, NOW).await, Outcome::Ended));

        let down = Scripted::new(|n| match n {
            0 => Err(RefreshError::Unavailable("connection refused".into())),
            _ => renewed(n),
        });
        down.gate.add_permits(10);
        let j = || {
            let mut j = job(&down);
            j.current.tokens.refresh = Some("rt-down".into());
            j
        };
        assert!(matches!(
            r.run(j(), NOW).await,
            Outcome::Kept { since: NOW }
        ));
        assert!(matches!(
            r.run(j(), NOW + RETRY_AFTER - 1).await,
            Outcome::Kept { .. }
        ));
        assert_eq!(down.calls.load(Ordering::SeqCst), 1, "not asked again yet");
        assert!(matches!(
            r.run(j(), NOW + RETRY_AFTER).await,
            Outcome::Renewed(_)
        ));
        assert_eq!(down.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_renewed_identity_that_cannot_be_sent_ends_the_session() {
        let r = Refresher::new(Duration::from_secs(300));
        let p = Scripted::new(|_| {
            let mut login = renewed(0)?;
            login.identity.user = "alice\r\nx-injected: 1".into();
            Ok(login)
        });
        p.gate.add_permits(1);
        assert!(matches!(r.run(job(&p), NOW).await, Outcome::Ended));
    }

    #[test]
    fn an_outcome_never_shows_its_tokens() {
        let s = Outcome::Renewed(Arc::new(Stored {
            identity: alice(&[]),
            tokens: Tokens {
                access: Some("at-secret".into()),
                id: None,
                refresh: Some("rt-secret".into()),
            },
            refreshed_at: Some(NOW),
        }));
        assert!(!format!("{s:?}").contains("secret"));
    }
}
