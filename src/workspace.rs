//! The host → workspace registry, and building it from a validated [`Config`].
//!
//! Owns the runtime form of each workspace (its cookie codecs and providers) and the lookup by
//! host. A registry is immutable: reload builds a whole new one and swaps it in `AppState`.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use cookie::Cookie;
use openidconnect::CsrfToken;

use crate::config::{
    AuthMode, Config, ConfigError, ConfigErrors, Secrets, SessionStoreKind, WorkspaceConfig,
};
use crate::host::Host;
use crate::identity::{Identity, UnusableIdentity};
use crate::metrics::{RedisOp, WorkspaceMetrics};
use crate::oidc::logout::JTI_MEMORY;
use crate::oidc::verify::LEEWAY;
use crate::oidc::{LogoutClaims, LogoutError, VerifyError};
use crate::provider::{self, BearerIdentity, Login, Provider, ProviderContext, ProviderError};
use crate::redirect::RedirectPolicy;
use crate::refresh::Refresher;
use crate::session::{
    index_key, store_key, IndexKind, Keep, LoginCodec, MasterSecrets, Purpose, RedisStore, Session,
    SessionCodec, SessionError, StoreError, Tokens,
};

/// One workspace, ready to serve.
pub struct Workspace {
    /// Its validated config.
    pub config: WorkspaceConfig,
    /// Session cookies.
    pub session: SessionCodec,
    /// Login-state cookies.
    pub login: LoginCodec,
    /// Providers, in config order.
    pub providers: Vec<Arc<dyn Provider>>,
    /// Bearer tokens verified recently, by SHA-256 of the token: a hit skips the signature.
    pub bearer_cache: moka::sync::Cache<[u8; 32], Arc<BearerIdentity>>,
    /// The Redis store, when `session.store = "redis"`.
    pub store: Option<Arc<RedisStore>>,
    /// Server-side sessions read recently, by ticket: a sign-out elsewhere takes effect here
    /// within [`TICKET_CACHE_TTL`].
    pub ticket_cache: moka::sync::Cache<String, Arc<Stored>>,
    /// Its counters, created with the registry so that recording is an atomic increment.
    pub metrics: WorkspaceMetrics,
    /// Renews sessions at the provider, when `session.refresh_interval` is set.
    pub refresher: Option<Refresher>,
    /// Machine clients by JWT (`[[client]]` with an `issuer`).
    pub jwt_clients: Vec<Arc<crate::machine::JwtClient>>,
}

/// A server-side session's record in the store. Records written before tokens were kept are
/// the bare identity, which still reads (no `t`).
#[derive(Clone, Serialize, Deserialize)]
pub struct Stored {
    /// The user.
    #[serde(flatten)]
    pub identity: Identity,
    /// The tokens the workspace keeps.
    #[serde(rename = "t", default, skip_serializing_if = "Tokens::is_empty")]
    pub tokens: Tokens,
    /// When the session was last refreshed at the provider (seconds since the epoch); never
    /// set in a cookie, where the session's `iat` says it.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<u64>,
}

/// Bearer tokens kept verified per workspace. An entry costs about 850 bytes (the cache node
/// and the identity's strings); past this many distinct tokens in five minutes the least used
/// are verified again (about 35 µs for RS256) instead of growing memory.
pub const BEARER_CACHE_ENTRIES: u64 = 1_024;

/// How long a server-side session read from Redis is trusted without asking again.
pub const TICKET_CACHE_TTL: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// Name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Where this workspace lets `rd` send a browser.
    pub fn redirect_policy(&self) -> RedirectPolicy<'_> {
        RedirectPolicy {
            hosts: &self.config.hosts,
            allowed_hosts: &self.config.allowed_redirect_hosts,
            allow_http: self.config.insecure_http,
        }
    }

    /// Whether a login is required.
    pub fn requires_login(&self) -> bool {
        self.config.auth == AuthMode::Login
    }

    /// Whether sessions keep the access token: the workspace passes it to apps.
    pub fn keeps_access_token(&self) -> bool {
        let h = &self.config.headers;
        h.pass_access_token || h.pass_authorization_header
    }

    /// Whether sessions keep the ID token: the workspace passes it to apps, or one of its
    /// providers logs out at the IdP (the token is the `id_token_hint`).
    pub fn keeps_id_token(&self) -> bool {
        self.config.headers.pass_id_token || self.config.providers.iter().any(|p| p.logout_at_idp)
    }

    /// The tokens its sessions keep: the refresh token when sessions are refreshed.
    pub fn keeps(&self) -> Keep {
        Keep {
            access: self.keeps_access_token(),
            id: self.keeps_id_token(),
            refresh: self.refresher.is_some(),
        }
    }

    /// The session cookies for a completed login, and deletions for the session cookies of an
    /// older session that they do not replace. The identity (and the tokens the workspace
    /// keeps) sealed in one cookie or split over several, or, with a Redis store, saved there
    /// under a fresh ticket that the cookie carries.
    pub async fn establish<'a>(
        &self,
        login: &Login,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        now: u64,
    ) -> Result<Vec<Cookie<'static>>, SessionError> {
        let tokens = login.tokens.clone().keep(self.keeps());
        let issued = match &self.store {
            None => self.session.issue_split(&login.identity, tokens, now)?,
            Some(store) => {
                let ticket = CsrfToken::new_random_len(32).secret().clone();
                let record = Stored {
                    identity: login.identity.clone(),
                    tokens,
                    refreshed_at: None,
                };
                let json = serde_json::to_string(&record).map_err(|_| SessionError::Malformed)?;
                store
                    .put_indexed(
                        &store_key(self.name(), &ticket),
                        &json,
                        self.session.lifetime(),
                        &self.logout_indexes(&login.identity),
                    )
                    .await
                    .map_err(|e| {
                        self.store_failed(RedisOp::Write, &e, "cannot save the session")
                    })?;
                vec![self.session.issue_ticket(&ticket, now)?]
            }
        };
        let stale = self.session.stale(cookie_headers, &issued);
        Ok(issued.into_iter().chain(stale).collect())
    }

    /// The identity and tokens of an opened session: sealed in the cookie, or named by its
    /// ticket in the store (a recent read is reused for [`TICKET_CACHE_TTL`]).
    pub async fn contents_of(&self, session: Session) -> Result<Stored, SessionError> {
        let (Some(ticket), Some(store)) = (&session.sid, &self.store) else {
            return match session.sid {
                None => Ok(Stored {
                    identity: session.id,
                    tokens: session.tokens,
                    refreshed_at: None,
                }),
                Some(_) => Err(SessionError::Revoked), // a ticket, but this workspace keeps no store now
            };
        };
        if let Some(hit) = self.ticket_cache.get(ticket) {
            return Ok((*hit).clone());
        }
        let json = store
            .get(&store_key(self.name(), ticket))
            .await
            .map_err(|e| self.store_failed(RedisOp::Read, &e, "cannot read the session"))?;
        let record: Stored = serde_json::from_str(&json.ok_or(SessionError::Revoked)?)
            .map_err(|_| SessionError::Malformed)?;
        self.ticket_cache
            .insert(ticket.clone(), Arc::new(record.clone()));
        Ok(record)
    }

    /// Ends a session: deletes its server-side record, if any.
    pub async fn end(&self, session: &Session) {
        if let (Some(ticket), Some(store)) = (&session.sid, &self.store) {
            self.ticket_cache.invalidate(ticket);
            if let Err(e) = store.delete(&store_key(self.name(), ticket)).await {
                self.store_failed(RedisOp::Delete, &e, "cannot delete the session");
            }
        }
    }

    /// Counts a failed store call and logs `what` failed; the request then fails closed.
    fn store_failed(&self, op: RedisOp, e: &StoreError, what: &str) -> SessionError {
        self.metrics.redis_error(op);
        tracing::warn!(workspace = self.name(), error = %e, "{what}");
        SessionError::StoreUnavailable
    }

    /// The back-channel logout index sets a new session of `id` joins: its IdP session and its
    /// user, at the provider that logged it in. None unless the workspace asks for it.
    fn logout_indexes(&self, id: &Identity) -> Vec<String> {
        if !self.config.session.backchannel_logout {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(sid) = &id.sid {
            out.push(index_key(IndexKind::Sid, self.name(), &id.provider, sid));
        }
        if !id.subject.is_empty() {
            out.push(index_key(
                IndexKind::Sub,
                self.name(),
                &id.provider,
                &id.subject,
            ));
        }
        out
    }

    /// Verifies a back-channel logout token with the provider whose issuer it names; returns
    /// that provider's id and the token's claims. When no provider accepts it, the reason is
    /// the one given by a provider whose issuer it does name, if any.
    pub async fn verify_logout_token(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(String, LogoutClaims), LogoutError> {
        let mut refusal = None;
        for p in &self.providers {
            match p.verify_logout_token(token, now).await {
                Some(Ok(claims)) => return Ok((p.id().to_string(), claims)),
                Some(Err(e @ LogoutError::Token(VerifyError::Issuer(_)))) => {
                    refusal.get_or_insert(e);
                }
                Some(Err(e)) => refusal = Some(e),
                None => {}
            }
        }
        Err(refusal.unwrap_or(LogoutError::NoProvider))
    }

    /// Ends, on every replica, the sessions a verified logout token of `provider` names (OIDC
    /// Back-Channel Logout §2.7): those of its `sid`, and those of its `sub`: every one when it
    /// has no `sid`, else the ones saved without a `sid` (their ID token had none, so no `sid`
    /// index can name them; left alone they would outlive a logout the IdP was told succeeded).
    /// `jti` is spent first, so a token is never accepted twice. Returns the number of sessions
    /// ended, or `Ok(None)` for a replayed token. This process's ticket cache is emptied; other
    /// replicas' expire within [`TICKET_CACHE_TTL`].
    pub async fn end_by_logout_token(
        &self,
        provider: &str,
        claims: &LogoutClaims,
    ) -> Result<Option<usize>, StoreError> {
        let store = self.store.as_ref().ok_or(StoreError::Unavailable)?;
        let jti = index_key(IndexKind::Jti, self.name(), &claims.issuer, &claims.jti);
        if !store
            .put_once(&jti, Duration::from_secs(JTI_MEMORY))
            .await?
        {
            return Ok(None);
        }
        match self.end_named(store, provider, claims).await {
            Ok(n) => {
                self.ticket_cache.invalidate_all();
                Ok(Some(n))
            }
            Err(e) => {
                // Not (all) ended: forget the jti (best effort) so that the IdP's retry is
                // accepted; ending again what was ended is harmless.
                let _ = store.delete(&jti).await;
                Err(e)
            }
        }
    }

    /// Deletes the sessions `claims` names; see [`Workspace::end_by_logout_token`].
    async fn end_named(
        &self,
        store: &RedisStore,
        provider: &str,
        claims: &LogoutClaims,
    ) -> Result<usize, StoreError> {
        let mut ended = 0;
        if let Some(sid) = &claims.sid {
            ended += store
                .delete_indexed(&index_key(IndexKind::Sid, self.name(), provider, sid))
                .await?;
        }
        if let Some(sub) = &claims.subject {
            let index = index_key(IndexKind::Sub, self.name(), provider, sub);
            ended += match claims.sid {
                None => store.delete_indexed(&index).await?,
                Some(_) => {
                    let without_sid: Vec<String> = store
                        .indexed(&index)
                        .await?
                        .into_iter()
                        .filter(|(_, record)| {
                            record
                                .as_deref()
                                .and_then(|json| serde_json::from_str::<Stored>(json).ok())
                                .is_some_and(|s| s.identity.sid.is_none())
                        })
                        .map(|(key, _)| key)
                        .collect();
                    store.delete_from_index(&index, &without_sid).await?
                }
            };
        }
        Ok(ended)
    }

    /// The identity a bearer JWT proves, from the verified-token cache or the providers' cached
    /// keys; never does I/O. The error says why the last provider refused it.
    pub fn verify_bearer(&self, token: &str, now: u64) -> Result<Identity, BearerError> {
        // `bearer = false`: the providers' tokens are no credential here (machine clients,
        // which the workspace names one by one, still are).
        if !self.config.bearer {
            return Err(BearerError::Off);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.bearer_cache.get(&key) {
            if now < hit.expires_at + LEEWAY {
                self.metrics.bearer_cache(true);
                return Ok(hit.identity.clone());
            }
            self.bearer_cache.invalidate(&key);
        }
        self.metrics.bearer_cache(false);
        let mut reason = BearerError::NoVerifier;
        for p in &self.providers {
            match p.verify_bearer(token, now) {
                Some(Ok(b)) => match b.identity.check_usable() {
                    Ok(()) => {
                        let id = b.identity.clone();
                        self.bearer_cache.insert(key, Arc::new(b));
                        return Ok(id);
                    }
                    Err(e) => reason = BearerError::Unusable(e),
                },
                Some(Err(e)) => reason = BearerError::Refused(e),
                None => {}
            }
        }
        Err(reason)
    }

    /// The provider with this id, or the only one when `id` is `None`.
    pub fn provider(&self, id: Option<&str>) -> Option<&Arc<dyn Provider>> {
        match id {
            Some(id) => self.providers.iter().find(|p| p.id() == id),
            None if self.providers.len() == 1 => self.providers.first(),
            None => None,
        }
    }
}

/// Why a bearer token does not authenticate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No provider has its metadata and keys yet, or none issues JWTs.
    #[error("no provider of this workspace can verify bearer tokens yet")]
    NoVerifier,
    /// The workspace accepts no bearer tokens (`bearer = false`).
    #[error("this workspace accepts no bearer tokens (bearer = false)")]
    Off,
    /// The token did not verify with the provider that last judged it.
    #[error(transparent)]
    Refused(#[from] ProviderError),
    /// It verified, but names no user, or values that cannot travel in headers.
    #[error("the token's identity is unusable: {0}")]
    Unusable(#[source] UnusableIdentity),
    /// A machine client's API-key header carries a key no hash of any client matches.
    #[error("the API key matches no machine client")]
    UnknownApiKey,
    /// A JWT of a machine client's issuer that is not that client's.
    #[error("machine client token refused: {0}")]
    Client(#[source] crate::machine::ClientTokenError),
}

/// Why no workspace may judge a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// Several workspaces, and the route names none of them.
    #[error("the route names no workspace and the config has several ({names}): name it in the Ingress, auth-url `…/oauth2/auth/<workspace>` and the /oauth2 routes `/oauth2/<action>/<workspace>`")]
    NotNamed {
        /// The configured workspaces.
        names: String,
    },
    /// The route names a workspace the config does not have.
    #[error("the route names workspace `{0}`, which the config does not have")]
    UnknownWorkspace(String),
    /// The host the client wrote belongs to another workspace, or to none.
    #[error("host `{host}` is not a host of workspace `{workspace}` ({})", owner.as_deref().map_or("no workspace serves it".to_string(), |o| format!("it belongs to workspace `{o}`")))]
    ForeignHost {
        /// The host the client wrote.
        host: String,
        /// The workspace the route names.
        workspace: String,
        /// The workspace that does serve the host, if any.
        owner: Option<String>,
    },
}

/// Every workspace, by host.
pub struct Registry {
    /// Workspaces in name order.
    pub workspaces: Vec<Arc<Workspace>>,
    /// Lookup by host.
    by_host: HashMap<Host, Arc<Workspace>>,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("hosts", &self.by_host.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// Builds the registry: derives each workspace's keys from the master secrets, and gives
    /// each provider its client secret (`secrets`, read by [`Secrets::read`]). Errors name the
    /// file and field whose value cannot be used.
    pub fn build(
        config: &Config,
        master: &MasterSecrets,
        secrets: &Secrets,
        ctx: &ProviderContext,
    ) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut workspaces = Vec::new();
        let store = match (&config.server.redis, &secrets.redis) {
            (None, _) | (_, None) => None,
            (Some(redis), Some(redis_secrets)) => {
                match ctx.stores.open(redis, redis_secrets, &ctx.metrics) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        errors.push(ConfigError {
                            file: crate::config::SERVER_FILE.into(),
                            field: format!("redis.{}", e.field),
                            problem: e.problem,
                        });
                        None
                    }
                }
            }
        };
        let mut by_host = HashMap::new();
        for wc in &config.workspaces {
            let secure = !wc.insecure_http;
            let mut providers = Vec::new();
            for (i, pc) in wc.providers.iter().enumerate() {
                match secrets.client_secret(&wc.name, &pc.id) {
                    Some(secret) => {
                        providers.push(provider::build(pc, secret.clone(), &wc.headers, ctx))
                    }
                    None => errors.push(ConfigError {
                        file: Config::relative(&config.dir, &wc.file).to_path_buf(),
                        field: format!("provider[{i}].client_secret"),
                        problem: "not read: build the registry from `Secrets::read` of this config"
                            .into(),
                    }),
                }
            }
            let provider_ids: Vec<&str> = wc.providers.iter().map(|p| p.id.as_str()).collect();
            let ws = Arc::new(Workspace {
                metrics: ctx.metrics.workspace(&wc.name, &provider_ids),
                session: SessionCodec::new(
                    master.derive(&wc.name, Purpose::Session),
                    &wc.session.cookie_name,
                    &wc.name,
                    wc.session.lifetime,
                    secure,
                ),
                login: LoginCodec::new(master.derive(&wc.name, Purpose::Login), secure),
                config: wc.clone(),
                providers,
                store: (wc.session.store == SessionStoreKind::Redis)
                    .then(|| store.clone())
                    .flatten(),
                ticket_cache: moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(TICKET_CACHE_TTL)
                    .build(),
                bearer_cache: moka::sync::Cache::builder()
                    .max_capacity(BEARER_CACHE_ENTRIES)
                    .time_to_live(Duration::from_secs(300))
                    .build(),
                refresher: wc.session.refresh_interval.map(Refresher::new),
                jwt_clients: wc
                    .jwt_clients
                    .iter()
                    .map(|c| {
                        Arc::new(crate::machine::JwtClient::new(
                            c.clone(),
                            ctx.http.clone(),
                            ctx.jwks.clone(),
                        ))
                    })
                    .collect(),
            });
            for h in &wc.hosts {
                by_host.insert(h.clone(), ws.clone());
            }
            workspaces.push(ws);
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Self {
            workspaces,
            by_host,
            trusted_proxies: config.server.trusted_proxies.clone(),
        })
    }

    /// The workspace named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Workspace>> {
        self.workspaces.iter().find(|ws| ws.name() == name)
    }

    /// The workspace whose policy judges a request: the one the route names (`pinned`, from
    /// what the operator wrote in the Ingress), provided `host` (written by the client) is one
    /// of its hosts. Without a name, only a config holding a single workspace can answer;
    /// otherwise the client's host would choose the policy.
    pub fn workspace_for(
        &self,
        pinned: Option<&str>,
        host: &Host,
    ) -> Result<&Arc<Workspace>, TenantError> {
        let ws = match (pinned, self.workspaces.as_slice()) {
            (Some(name), _) => self
                .by_name(name)
                .ok_or_else(|| TenantError::UnknownWorkspace(name.to_string()))?,
            (None, [only]) => only,
            (None, all) => {
                return Err(TenantError::NotNamed {
                    names: all.iter().map(|w| w.name()).collect::<Vec<_>>().join(", "),
                })
            }
        };
        match self.find(host) {
            Some(owner) if Arc::ptr_eq(owner, ws) => Ok(ws),
            owner => Err(TenantError::ForeignHost {
                host: host.to_string(),
                workspace: ws.name().to_string(),
                owner: owner.map(|o| o.name().to_string()),
            }),
        }
    }

    /// The workspace serving `host`: an exact match first, then the name without its port.
    pub fn find(&self, host: &Host) -> Option<&Arc<Workspace>> {
        self.by_host
            .get(host)
            .or_else(|| self.by_host.get(host.name()))
    }

    /// The workspace serving the host written `host` (`name` or `name:port`), parsed as a
    /// request's host is ([`Host::parse`]); `None` for a host that parser refuses.
    pub fn lookup(&self, host: &str) -> Option<&Arc<Workspace>> {
        self.find(&Host::parse(host).ok()?)
    }
}
