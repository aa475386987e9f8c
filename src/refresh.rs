//! Renewing sessions at the provider (`session.refresh_interval`).
//!
//! Owns when a session is due, what the provider's answer makes of it, and that the requests
//! carrying one old session renew it once: in this process one flight per session (the others
//! wait for its outcome, and later requests with the same old cookie reuse it), and with the
//! Redis store across replicas too (a lock next to the session's record; a replica that does not
//! get it waits [`PEER_WAIT`] at most for the record to change, then serves the session as it
//! is: it never refreshes with the record's token while the lock exists). The refresh runs in
//! its own task, so a request that goes away mid-refresh never loses a refresh token the
//! provider has already rotated.
//!
//! - **Renewed**: the identity read again (groups and roles included) and the new tokens; the
//!   session still ends when it would have.
//! - **Ended**: the provider refused the refresh token (`invalid_grant`) or answered with
//!   something that cannot be trusted: the request is refused, never passed.
//! - **Kept**: the provider could not be reached: the session is served as it is until it
//!   ends, and the refresh is tried again after [`RETRY_AFTER`].
//! - **Tokens only**: the provider renewed the tokens but the identity could not be read again
//!   (`RefreshError::Unconfirmed`): the new tokens are kept with the identity as it was, and
//!   the identity is read again after [`RETRY_AFTER`].
//!
//! A rotated refresh token is never dropped: the provider call is bounded by
//! [`REFRESH_BUDGET`], half the Redis lock's life ([`LOCK_TTL`]), so the lock cannot run out
//! under it; the lock holds a random value and is released only by its owner
//! (compare-and-delete); the record the lock guards is read again under it, and its refresh
//! token (not a copy a cache may hold) is the one spent; and a renewal that cannot be saved is
//! **Kept**, not served as renewed: a task of this process (not tied to a request, started once
//! per flight) writes it every [`SAVE_RETRY_AFTER`], each time first extending its lock
//! (owner-checked), so that no replica refreshes with the spent token meanwhile. Once written,
//! the lock is released and later requests get the renewal; while it is not, this process
//! serves the session as it was, and other replicas (finding the lock held) too. The task stops
//! when the lock is no longer its own (another replica owns the refresh now), and gives up
//! (a warning; the lock then runs out) after as long as flights are remembered (one interval,
//! at most ten minutes).
//!
//! The limit: the renewal lives only in this process's memory until written. A process that
//! stops (restart, crash) with a renewal unsaved loses it; once its lock has run out another
//! replica refreshes with the stored token, which a provider that rotates refresh tokens refuses:
//! the session ends (401), it is never passed.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::provider::{Provider, RefreshError, REFRESH_BUDGET};
use crate::secret::Secret;
use crate::session::{Keep, LockToken, RedisStore, Tokens};
use crate::workspace::Stored;

/// After a refresh failed for want of the provider, how long (seconds) the session is served
/// as it is before the provider is asked again.
pub const RETRY_AFTER: u64 = 30;

/// After a renewal could not be saved, how long (seconds) between this process's attempts to
/// write it.
pub const SAVE_RETRY_AFTER: u64 = 1;

/// How long at most a replica that finds the refresh lock held waits for the holder's outcome in
/// the record (far less than [`LOCK_TTL`]) before serving the session as it is.
pub const PEER_WAIT: Duration = Duration::from_secs(2);

/// How long a replica holds the Redis refresh lock at most: twice [`REFRESH_BUDGET`], so the
/// provider call always ends while the lock is held.
pub const LOCK_TTL: Duration = Duration::from_secs(30);

/// The provider call as this module bounds it: [`REFRESH_BUDGET`], and a second more for a
/// provider that does not bound itself (each built-in one does, keeping a rotated token).
const PROVIDER_DEADLINE: Duration = REFRESH_BUDGET.saturating_add(Duration::from_secs(1));

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
    /// The provider renewed the tokens but the identity was not read again: the new tokens with
    /// the identity as it was, due again [`RETRY_AFTER`] after this refresh.
    TokensOnly(Arc<Stored>),
    /// Kept as it is, the provider being unreachable (or the renewal unsaved) since `since`
    /// (seconds since the epoch).
    Kept {
        /// When the refresh failed.
        since: u64,
        /// A renewal the provider answered that could not be saved: written by a task of its
        /// own ([`Unsaved::write`]), which replaces this outcome once it is.
        unsaved: Option<Unsaved>,
    },
}

/// A renewal that is not in the store yet, and the refresh lock still held for it: what the
/// task writing it needs.
#[derive(Clone)]
pub struct Unsaved {
    /// What the provider's answer made of the session: [`Outcome::Renewed`] or
    /// [`Outcome::TokensOnly`].
    renewed: Box<Outcome>,
    /// The record as it is to be written.
    json: Arc<str>,
    /// The store, the record's key and its lock's key.
    store: Arc<RedisStore>,
    key: String,
    lock_key: String,
    /// The lock on the record, held for the write.
    lock: LockToken,
    /// The workspace's name, for logs.
    workspace: String,
}

impl Outcome {
    /// Kept since `since`, nothing unsaved.
    fn kept(since: u64) -> Self {
        Self::Kept {
            since,
            unsaved: None,
        }
    }

    /// When a flight with this outcome is to be replaced by a new one: a kept one, after
    /// [`RETRY_AFTER`]; never one whose renewal is being written (its task replaces it).
    fn retry_due(&self, now: u64) -> bool {
        match self {
            Self::Kept {
                since,
                unsaved: None,
            } => now >= since + RETRY_AFTER,
            _ => false,
        }
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Renewed(s) => write!(f, "Renewed({})", s.identity.user),
            Self::TokensOnly(s) => write!(f, "TokensOnly({})", s.identity.user),
            Self::Ended => f.write_str("Ended"),
            Self::Kept { since, unsaved } => write!(
                f,
                "Kept {{ since: {since}, unsaved: {} }}",
                unsaved.is_some()
            ),
        }
    }
}

/// One workspace's refresher: its interval and its flights.
pub struct Refresher {
    /// How old a session may get before it is renewed.
    interval: Duration,
    /// Each session's refresh by [`Job::flight_key`]: in progress, or its outcome. Kept for
    /// [`Refresher::remembered`], so that a request still carrying the old cookie reuses the
    /// outcome instead of spending the refresh token again.
    flights: Flights,
    /// How long an outcome is remembered: one interval, at least [`RETRY_AFTER`], at most ten
    /// minutes. An unsaved renewal is written for that long at most.
    remembered: Duration,
}

/// The flights of one refresher, by [`Job::flight_key`].
type Flights = moka::sync::Cache<[u8; 32], Arc<OnceCell<Outcome>>>;

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
        // At least RETRY_AFTER, or a kept outcome would expire before its retry is due and
        // every request past the interval would ask the provider again.
        let remembered = interval.clamp(Duration::from_secs(RETRY_AFTER), Duration::from_secs(600));
        Self {
            interval,
            flights: moka::sync::Cache::builder()
                .max_capacity(FLIGHTS)
                .time_to_live(remembered)
                .build(),
            remembered,
        }
    }

    /// Whether a session last renewed (or issued) at `last` is due at `now`.
    pub fn due(&self, last: u64, now: u64) -> bool {
        now >= last.saturating_add(self.interval.as_secs())
    }

    /// Runs `job` unless a flight for the same session is in progress or done (then its
    /// outcome), and returns the outcome. A kept outcome older than [`RETRY_AFTER`] is
    /// replaced by a new flight. A flight whose renewal cannot be saved starts the one task that
    /// writes it ([`Unsaved::write`]).
    pub async fn run(&self, job: Job, now: u64) -> Outcome {
        let key = job.flight_key();
        let cell = self
            .flights
            .entry(key)
            .or_insert_with_if(
                || Arc::new(OnceCell::new()),
                |cell| cell.get().is_some_and(|o| o.retry_due(now)),
            )
            .into_value();
        if let Some(done) = cell.get() {
            return done.clone();
        }
        let (interval, remembered) = (self.interval, self.remembered);
        let flights = self.flights.clone();
        // In a task of its own: the waiting request may go away, the refresh may not.
        tokio::spawn(async move {
            let flight = cell.clone();
            cell.get_or_init(|| async move {
                let outcome = job.run(now, interval).await;
                // Once per flight: the cell's value is set once, by this closure alone.
                if let Outcome::Kept {
                    unsaved: Some(u), ..
                } = &outcome
                {
                    tokio::spawn(u.clone().write(flights, key, flight, remembered));
                }
                outcome
            })
            .await
            .clone()
        })
        .await
        .unwrap_or(Outcome::kept(now))
    }
}

impl Unsaved {
    /// Writes the renewal every [`SAVE_RETRY_AFTER`], first extending the lock each time, until
    /// it is written (then the lock is released and `flight`'s entry becomes the renewal), the
    /// lock is no longer ours (another replica owns the refresh now) or `remembered` has
    /// passed (given up; the lock is left to run out).
    async fn write(
        self,
        flights: Flights,
        key: [u8; 32],
        flight: Arc<OnceCell<Outcome>>,
        remembered: Duration,
    ) {
        let give_up = tokio::time::Instant::now() + remembered;
        let workspace = &self.workspace;
        // The entry is replaced only while it is still this flight's (not expired and
        // replaced by a newer one).
        let ours = || {
            flights
                .get(&key)
                .is_some_and(|cell| Arc::ptr_eq(&cell, &flight))
        };
        loop {
            tokio::time::sleep(Duration::from_secs(SAVE_RETRY_AFTER)).await;
            if tokio::time::Instant::now() >= give_up {
                tracing::warn!(%workspace, after_s = remembered.as_secs(), "the refreshed session could not be saved: given up; its renewal is lost, and the provider may refuse the stored refresh token");
                return;
            }
            match self
                .store
                .extend_lock(&self.lock_key, &self.lock, LOCK_TTL)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(%workspace, "the refreshed session was not saved before its refresh lock ran out: left to the replica that holds it now");
                    if ours() {
                        flights.invalidate(&key);
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(%workspace, error = %e, "cannot extend the refresh lock: tried again");
                    continue;
                }
            }
            let outcome = match self.store.replace(&self.key, &self.json).await {
                Ok(true) => {
                    tracing::info!(%workspace, "refreshed session saved");
                    (*self.renewed).clone()
                }
                // Signed out or expired meanwhile: it stays gone.
                Ok(false) => Outcome::Ended,
                Err(e) => {
                    tracing::debug!(%workspace, error = %e, "cannot save the refreshed session yet: tried again");
                    continue;
                }
            };
            if let Err(e) = self.store.unlock(&self.lock_key, &self.lock).await {
                tracing::debug!(%workspace, error = %e, "refresh lock left to expire");
            }
            if ours() {
                flights.insert(key, Arc::new(OnceCell::new_with(Some(outcome))));
            }
            return;
        }
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
    /// Not renewed since this replica's copy: the record as the store has it.
    Same(Box<Stored>),
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

    async fn run(self, now: u64, interval: Duration) -> Outcome {
        match &self.record {
            None => self.renew(&self.current, now, interval).await,
            Some((store, key)) => self.renew_shared(store, key, now, interval).await,
        }
    }

    /// Asks the provider to renew `current`, within [`PROVIDER_DEADLINE`].
    async fn renew(&self, current: &Stored, now: u64, interval: Duration) -> Outcome {
        let user = &current.identity.user;
        let (Some(provider), Some(token)) = (&self.provider, &current.tokens.refresh) else {
            tracing::info!(workspace = %self.workspace, %user, "session ended: its provider is no longer configured");
            return Outcome::Ended;
        };
        let token = Secret::new(token.clone());
        let asked = provider.refresh(&token, &current.identity, now);
        let answer = match tokio::time::timeout(PROVIDER_DEADLINE, asked).await {
            Ok(answer) => answer,
            Err(_) => Err(RefreshError::Unavailable(format!(
                "no answer within {PROVIDER_DEADLINE:?}"
            ))),
        }
        .and_then(|login| match login.identity.check_usable() {
            Ok(()) => Ok(login),
            Err(e) => Err(RefreshError::Rejected(
                crate::provider::ProviderError::Incomplete(e.into()),
            )),
        });
        let merged = |new: Tokens| {
            let was = &current.tokens;
            Tokens {
                access: new.access.or_else(|| was.access.clone()),
                id: new.id.or_else(|| was.id.clone()),
                refresh: new.refresh.or_else(|| was.refresh.clone()),
            }
            .keep(self.keep)
        };
        match answer {
            Ok(login) => {
                tracing::info!(workspace = %self.workspace, %user, provider = provider.id(), groups = login.identity.groups.len(), "session refreshed");
                Outcome::Renewed(Arc::new(Stored {
                    identity: login.identity,
                    tokens: merged(login.tokens),
                    refreshed_at: Some(now),
                }))
            }
            Err(RefreshError::Unconfirmed { why, tokens }) => {
                tracing::warn!(workspace = %self.workspace, %user, provider = provider.id(), error = %why, retry_in_s = RETRY_AFTER, "session tokens renewed, but the identity could not be read again: kept as it was until the retry");
                // Dated so that it is due again RETRY_AFTER from now.
                let dated = (now + RETRY_AFTER).saturating_sub(interval.as_secs());
                Outcome::TokensOnly(Arc::new(Stored {
                    identity: current.identity.clone(),
                    tokens: merged(tokens),
                    refreshed_at: Some(dated.max(current.refreshed_at.unwrap_or(0))),
                }))
            }
            Err(RefreshError::Unavailable(why)) => {
                tracing::warn!(workspace = %self.workspace, %user, provider = provider.id(), error = %why, retry_in_s = RETRY_AFTER, "session not refreshed: the provider cannot be reached; the session is kept until it ends");
                Outcome::kept(now)
            }
            Err(e) => {
                tracing::info!(workspace = %self.workspace, %user, provider = provider.id(), reason = %e, "session ended at refresh");
                Outcome::Ended
            }
        }
    }

    /// Renews a server-side session once across replicas: the one that takes the lock reads
    /// the record again, asks the provider with the record's refresh token and writes the
    /// record; the others wait a little for the record to change.
    async fn renew_shared(
        &self,
        store: &Arc<RedisStore>,
        key: &str,
        now: u64,
        interval: Duration,
    ) -> Outcome {
        let lock = format!("{key}:refreshing");
        let token = match store.lock(&lock, LOCK_TTL).await {
            Ok(Some(t)) => t,
            Ok(None) => return self.await_peer(store, key, &lock, now).await,
            Err(e) => {
                tracing::warn!(workspace = %self.workspace, error = %e, "session not refreshed: the store cannot be reached");
                return Outcome::kept(now);
            }
        };
        // The lock is ours; another replica may have renewed the record just before.
        let outcome = match self.peek(store, key).await {
            Peek::Newer(s) => Outcome::Renewed(s),
            Peek::Gone => Outcome::Ended,
            Peek::Unknown => Outcome::kept(now),
            Peek::Same(record) => match self.renew(&record, now, interval).await {
                renewed @ (Outcome::Renewed(_) | Outcome::TokensOnly(_)) => {
                    self.save(store, key, renewed, (&lock, &token), now).await
                }
                Outcome::Ended => {
                    if let Err(e) = store.delete(key).await {
                        tracing::warn!(workspace = %self.workspace, error = %e, "cannot delete the ended session");
                    }
                    Outcome::Ended
                }
                kept => kept,
            },
        };
        // A renewal left unsaved keeps the lock (its writer extends it): released, another
        // replica would refresh with the refresh token the provider has already replaced.
        if !matches!(
            outcome,
            Outcome::Kept {
                unsaved: Some(_),
                ..
            }
        ) {
            match store.unlock(&lock, &token).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(workspace = %self.workspace, "the refresh lock ran out before the refresh ended")
                }
                Err(e) => {
                    tracing::debug!(workspace = %self.workspace, error = %e, "refresh lock left to expire")
                }
            }
        }
        outcome
    }

    /// Writes a renewed record, keeping its time to live. A record gone meanwhile (signed out
    /// elsewhere) stays gone. A failed write is kept, with the renewal and the lock (`lock`'s
    /// key and value), for its own task to write ([`Unsaved::write`]): answered as renewed, it
    /// would live only in this process while the record keeps a refresh token the provider may
    /// have replaced.
    async fn save(
        &self,
        store: &Arc<RedisStore>,
        key: &str,
        renewed: Outcome,
        (lock_key, lock): (&str, &LockToken),
        now: u64,
    ) -> Outcome {
        let (Outcome::Renewed(record) | Outcome::TokensOnly(record)) = &renewed else {
            return renewed;
        };
        let Ok(json) = serde_json::to_string(&**record) else {
            return Outcome::Ended;
        };
        match store.replace(key, &json).await {
            Ok(true) => renewed,
            Ok(false) => Outcome::Ended,
            Err(e) => {
                tracing::warn!(workspace = %self.workspace, error = %e, retry_in_s = SAVE_RETRY_AFTER, "cannot save the refreshed session: kept as it was, the renewal is written again");
                Outcome::Kept {
                    since: now,
                    unsaved: Some(Unsaved {
                        json: json.into(),
                        renewed: Box::new(renewed),
                        store: store.clone(),
                        key: key.to_string(),
                        lock_key: lock_key.to_string(),
                        lock: lock.clone(),
                        workspace: self.workspace.clone(),
                    }),
                }
            }
        }
    }

    /// The record as the store has it now, compared with this replica's.
    async fn peek(&self, store: &RedisStore, key: &str) -> Peek {
        match store.get(key).await {
            Ok(None) => Peek::Gone,
            Ok(Some(json)) => match serde_json::from_str::<Stored>(&json) {
                Ok(s) if s.refreshed_at.is_some_and(|t| t > self.last) => Peek::Newer(Arc::new(s)),
                Ok(s) => Peek::Same(Box::new(s)),
                Err(_) => Peek::Gone,
            },
            Err(_) => Peek::Unknown,
        }
    }

    /// Another replica holds the lock: waits (at most [`PEER_WAIT`]) for its outcome in the
    /// record. A lock released or run out without a change means its refresh failed; a lock
    /// still held after the wait, that the holder is still refreshing or writing its renewal:
    /// kept either way, never refreshed with the record's token, which the holder may have
    /// spent.
    async fn await_peer(&self, store: &RedisStore, key: &str, lock: &str, now: u64) -> Outcome {
        let deadline = tokio::time::Instant::now() + PEER_WAIT;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(PEER_POLL).await;
            match self.peek(store, key).await {
                Peek::Newer(s) => return Outcome::Renewed(s),
                Peek::Gone => return Outcome::Ended,
                Peek::Unknown => return Outcome::kept(now),
                Peek::Same(_) => {}
            }
            if !store.exists(lock).await.unwrap_or(false) {
                // Released: read once more, the write happens before the release.
                return match self.peek(store, key).await {
                    Peek::Newer(s) => Outcome::Renewed(s),
                    Peek::Gone => Outcome::Ended,
                    _ => Outcome::kept(now),
                };
            }
        }
        Outcome::kept(now)
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
            Outcome::Kept {
                since: NOW,
                unsaved: None
            }
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

    /// A provider that never answers is given up on within the budget: kept, not waited on
    /// for ever (nor past the Redis lock's life).
    #[tokio::test(start_paused = true)]
    async fn a_provider_that_never_answers_is_given_up_on_within_the_budget() {
        let r = Refresher::new(Duration::from_secs(300));
        let silent = Scripted::new(renewed); // its gate never opens
        let started = tokio::time::Instant::now();
        let outcome = tokio::time::timeout(LOCK_TTL, r.run(job(&silent), NOW))
            .await
            .expect("given up on before the lock would run out");
        assert!(
            matches!(outcome, Outcome::Kept { since: NOW, .. }),
            "{outcome:?}"
        );
        assert!(started.elapsed() <= PROVIDER_DEADLINE + Duration::from_secs(1));
    }

    /// The token endpoint rotated the refresh token but the identity was not read again: the new
    /// tokens are kept (the old refresh token is spent) with the identity as it was, dated so
    /// that the identity is read again after the retry delay.
    #[tokio::test]
    async fn tokens_renewed_without_an_identity_are_kept_and_due_again_soon() {
        let r = Refresher::new(Duration::from_secs(300));
        let p = Scripted::new(|_| {
            Err(RefreshError::Unconfirmed {
                why: "Graph did not answer".into(),
                tokens: Tokens {
                    access: Some("at-2".into()),
                    id: None,
                    refresh: Some("rt-2".into()),
                },
            })
        });
        p.gate.add_permits(1);
        let Outcome::TokensOnly(s) = r.run(job(&p), NOW).await else {
            panic!("not kept with its new tokens")
        };
        assert_eq!(s.tokens.refresh.as_deref(), Some("rt-2"));
        assert_eq!(s.tokens.access.as_deref(), Some("at-2"));
        assert_eq!(s.identity.groups, ["admins"], "the identity as it was");
        let last = s.refreshed_at.unwrap();
        assert!(!r.due(last, NOW + RETRY_AFTER - 1));
        assert!(r.due(last, NOW + RETRY_AFTER));
    }

    /// A store with nothing behind it: every command fails.
    fn unreachable_store() -> Arc<RedisStore> {
        let config = crate::config::RedisConfig::url_from_env("URL");
        let secrets = crate::config::RedisSecrets {
            url: Some(Secret::new("redis://127.0.0.1:1")),
            ..Default::default()
        };
        Arc::new(RedisStore::new(&config, &secrets).unwrap())
    }

    fn unsaved(store: Arc<RedisStore>) -> Unsaved {
        Unsaved {
            renewed: Box::new(Outcome::Renewed(Arc::new(
                job(&Scripted::new(renewed)).current,
            ))),
            json: "{}".into(),
            store,
            key: "authgate:session:mcd:k".into(),
            lock_key: "authgate:session:mcd:k:refreshing".into(),
            lock: LockToken::from_value("held"),
            workspace: "mcd".into(),
        }
    }

    #[test]
    fn a_kept_outcome_is_retried_after_the_delay_unless_its_renewal_is_being_written() {
        let saving = Outcome::Kept {
            since: NOW,
            unsaved: Some(unsaved(unreachable_store())),
        };
        let cases = [
            (Outcome::kept(NOW), NOW + RETRY_AFTER - 1, false),
            (Outcome::kept(NOW), NOW + RETRY_AFTER, true),
            (saving.clone(), NOW + SAVE_RETRY_AFTER, false),
            (saving, NOW + 600, false),
            (Outcome::Ended, NOW + 600, false),
        ];
        for (outcome, now, due) in cases {
            assert_eq!(outcome.retry_due(now), due, "{outcome:?} at {now}");
        }
    }

    /// A renewal the store never takes is written for as long as outcomes are remembered, then
    /// given up on: the task ends, and the kept outcome is not made a renewal.
    #[tokio::test(start_paused = true)]
    async fn a_renewal_the_store_never_takes_is_given_up_on() {
        let r = Refresher::new(Duration::from_secs(300));
        let u = unsaved(unreachable_store());
        let cell = Arc::new(OnceCell::new_with(Some(Outcome::Kept {
            since: NOW,
            unsaved: Some(u.clone()),
        })));
        r.flights.insert([7; 32], cell.clone());
        tokio::time::timeout(
            r.remembered + Duration::from_secs(5),
            u.write(r.flights.clone(), [7; 32], cell, r.remembered),
        )
        .await
        .expect("given up on");
        let kept = r.flights.get(&[7; 32]).unwrap();
        assert!(
            matches!(kept.get(), Some(Outcome::Kept { .. })),
            "{:?}",
            kept.get()
        );
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
