//! Who a request is and whether they may pass: the policy behind `/oauth2/auth`, free of HTTP.
//!
//! Owns the choice between the session cookie and a bearer token (the cookie wins; a token is
//! read only when no session cookie was sent, and only in a workspace with `bearer` on), the refresh of a session that is due
//! (`refresh`), and the authorization of the identity by the workspace's rules and the
//! Ingress's narrowing query. Its errors are refusals only, so the auth endpoint cannot answer
//! 5xx by construction: every [`AuthError`] is a 401, every [`Denial`] a 403.

use cookie::Cookie;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::authz::Denial;
use crate::config::AuthzRules;
use crate::identity::Identity;
use crate::metrics::RefreshResult;
use crate::refresh::{Job, Outcome};
use crate::rules::{Action, Rule, RuleRequest, Verdict};
use crate::session::{store_key, Session, SessionError, Tokens};
use crate::workspace::{BearerError, Stored, Workspace};

/// What a request needs before its credentials are read ([`Workspace::gate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate<'r> {
    /// 202 without login and without identity.
    Public,
    /// 403, signed in or not.
    Deny(Denial),
    /// Authenticate, then [`Workspace::authorize`] with this verdict.
    Authenticate(Verdict<'r>),
}

/// What a request presents.
#[derive(Debug, Clone)]
pub struct Credentials<'a> {
    /// Its `Cookie` header values.
    pub cookies: Vec<&'a str>,
    /// Its `Authorization: Bearer` token.
    pub bearer: Option<&'a str>,
    /// The headers the workspace's machine clients send their API key in (lower-case name,
    /// value), where the request carries them.
    pub api_keys: Vec<(&'a str, &'a str)>,
}

/// An authenticated request.
#[derive(Debug)]
pub struct Authenticated {
    /// Who.
    pub identity: Identity,
    /// The tokens the session keeps (none for a bearer token).
    pub tokens: Tokens,
    /// Cookies to set with the answer: a session renewed by a refresh (and deletions of the
    /// cookies of the old one it does not replace). Empty otherwise.
    pub cookies: Vec<Cookie<'static>>,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No usable session, and no bearer token.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No session cookie, and the bearer token does not verify.
    #[error("bearer token refused: {0}")]
    Bearer(#[from] BearerError),
}

impl Workspace {
    /// Authenticates a request from what it presents: its session (refreshed at the provider
    /// when due), else its bearer token.
    pub async fn authenticate(
        &self,
        creds: &Credentials<'_>,
        now: u64,
    ) -> Result<Authenticated, AuthError> {
        match (self.session.open_headers(&creds.cookies, now), creds.bearer) {
            (Ok(session), _) => Ok(self.current(session, &creds.cookies, now).await?),
            (Err(SessionError::Missing), Some(token))
                if !self.jwt_clients.is_empty() && token.split('.').count() == 3 =>
            {
                match self.jwt_client(token, now) {
                    Some(result) => Ok(Authenticated {
                        identity: result?,
                        tokens: Tokens::default(),
                        cookies: Vec::new(),
                    }),
                    None => Ok(Authenticated {
                        identity: self.verify_bearer(token, now)?,
                        tokens: Tokens::default(),
                        cookies: Vec::new(),
                    }),
                }
            }
            (Err(SessionError::Missing), _) if !self.config.clients.is_empty() => {
                match self.machine_client(creds) {
                    Some(Ok(name)) => Ok(Authenticated {
                        identity: Identity::machine_client(name),
                        tokens: Tokens::default(),
                        cookies: Vec::new(),
                    }),
                    Some(Err(e)) => Err(e.into()),
                    None => match creds.bearer {
                        Some(token) => Ok(Authenticated {
                            identity: self.verify_bearer(token, now)?,
                            tokens: Tokens::default(),
                            cookies: Vec::new(),
                        }),
                        None => Err(SessionError::Missing.into()),
                    },
                }
            }
            (Err(SessionError::Missing), Some(token)) => Ok(Authenticated {
                identity: self.verify_bearer(token, now)?,
                tokens: Tokens::default(),
                cookies: Vec::new(),
            }),
            (Err(e), _) => Err(e.into()),
        }
    }

    /// What a request needs before any credential is read: the first of the workspace's rules
    /// that matches ([`crate::rules::RuleSet::decide`]) may make it public or deny it; a
    /// workspace without login passes everything else.
    pub fn gate(&self, req: &RuleRequest<'_>) -> Gate<'_> {
        let verdict = match self.config.rules.is_empty() {
            true => Verdict::Default,
            false => self.config.rules.decide(req),
        };
        match verdict {
            Verdict::Rule(Rule {
                action: Action::Public,
                ..
            }) => Gate::Public,
            Verdict::Rule(
                r @ Rule {
                    action: Action::Deny,
                    ..
                },
            ) => Gate::Deny(Denial::Rule(r.origin)),
            _ if !self.requires_login() => Gate::Public,
            v => Gate::Authenticate(v),
        }
    }

    /// Whether `identity` may pass where `verdict` decided: the `allow` rule's subject, or
    /// with no rule the workspace's `[authz]` (which admits users, never a machine client);
    /// then the rules of the Ingress's narrowing query (`?allowed_groups=…`), when it has one.
    pub fn authorize(
        &self,
        identity: &Identity,
        verdict: Verdict<'_>,
        narrowing: Option<&[(String, String)]>,
    ) -> Result<(), Denial> {
        match verdict {
            Verdict::Rule(Rule {
                action: Action::Allow(subject),
                ..
            }) => subject.check(identity)?,
            _ => match &identity.client {
                Some(client) => return Err(Denial::Client(client.clone())),
                None => self.config.authz.check(identity)?,
            },
        }
        match narrowing {
            Some(query) => AuthzRules::from_query(query).check(identity),
            None => Ok(()),
        }
    }

    /// The machine client whose API key the request carries: in its named header, or as the
    /// bearer token for a client without one. The key's SHA-256 is compared with every hash
    /// of the client in constant time (`subtle`); the key itself is never kept or logged.
    /// `None` when no client's header is present (and the bearer, if any, matches no key: it
    /// may be a JWT); an error when a named header carries a key no hash matches.
    pub fn machine_client(&self, creds: &Credentials<'_>) -> Option<Result<&str, BearerError>> {
        let mut refused = false;
        for client in &self.config.clients {
            let key = match &client.header {
                None => creds.bearer,
                Some(h) => creds.api_keys.iter().find(|(n, _)| n == h).map(|(_, v)| *v),
            };
            let Some(key) = key else { continue };
            let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            let hit = client
                .key_hashes
                .iter()
                .fold(Choice::from(0), |acc, h| acc | h.ct_eq(&digest));
            if bool::from(hit) {
                return Some(Ok(&client.name));
            }
            refused |= client.header.is_some();
        }
        refused.then_some(Err(BearerError::UnknownApiKey))
    }

    /// The JWT machine client whose issuer signed `token`: its identity, or why the token is
    /// not that client's; `None` when no client's issuer signed it (a provider's token may).
    /// Cached keys only; a hit is remembered in the verified-token cache until `exp`.
    fn jwt_client(&self, token: &str, now: u64) -> Option<Result<Identity, BearerError>> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.bearer_cache.get(&key) {
            if hit.identity.client.is_some() && now < hit.expires_at {
                return Some(Ok(hit.identity.clone()));
            }
        }
        for client in &self.jwt_clients {
            match client.verify(token, now) {
                Some(Ok((identity, exp))) => {
                    self.bearer_cache.insert(
                        key,
                        std::sync::Arc::new(crate::provider::BearerIdentity {
                            identity: identity.clone(),
                            expires_at: exp,
                        }),
                    );
                    return Some(Ok(identity));
                }
                Some(Err(e)) => return Some(Err(BearerError::Client(e))),
                None => {}
            }
        }
        None
    }

    /// What an opened session holds now: as it is, or renewed at the provider when it is due.
    async fn current(
        &self,
        session: Session,
        cookies: &[&str],
        now: u64,
    ) -> Result<Authenticated, SessionError> {
        let (iat, exp, ticket) = (session.iat, session.exp, session.sid.clone());
        let stored = self.contents_of(session).await?;
        let last = stored.refreshed_at.unwrap_or(iat);
        let Some(refresher) = self
            .refresher
            .as_ref()
            .filter(|r| stored.tokens.refresh.is_some() && r.due(last, now))
        else {
            return Ok(as_is(stored));
        };
        let job = Job {
            workspace: self.name().to_string(),
            provider: self.provider(Some(&stored.identity.provider)).cloned(),
            record: ticket
                .as_deref()
                .zip(self.store.clone())
                .map(|(t, store)| (store, store_key(self.name(), t))),
            current: stored.clone(),
            last,
            keep: self.keeps(),
        };
        let outcome = refresher.run(job, now).await;
        self.metrics.refresh(match outcome {
            Outcome::Renewed(_) => RefreshResult::Renewed,
            Outcome::Ended => RefreshResult::Ended,
            // The identity was not read again: counted as kept, though the tokens are new.
            Outcome::Kept { .. } | Outcome::TokensOnly(_) => RefreshResult::Kept,
        });
        match outcome {
            Outcome::Kept { .. } => Ok(as_is(stored)),
            Outcome::Ended => {
                if let Some(t) = &ticket {
                    self.ticket_cache.invalidate(t);
                }
                Err(SessionError::Ended)
            }
            Outcome::Renewed(renewed) | Outcome::TokensOnly(renewed) => {
                let cookies = match &ticket {
                    // The record was rewritten in place; the cookie, a ticket, stays.
                    Some(t) => {
                        self.ticket_cache.insert(t.clone(), renewed.clone());
                        Vec::new()
                    }
                    None => {
                        let iat = renewed.refreshed_at.unwrap_or(now);
                        let issued = self.session.reissue(
                            &renewed.identity,
                            renewed.tokens.clone(),
                            (iat, now),
                            exp,
                        )?;
                        if issued.len() > 1 {
                            // ingress-nginx passes on only the first `Set-Cookie` of an auth
                            // answer: half a set of chunks would break the session. The old
                            // cookies stay, and the renewal is served from the refresher's
                            // memory (README, "Refresh").
                            tracing::debug!(
                                workspace = self.name(),
                                "renewed session needs several cookies: not sent"
                            );
                            Vec::new()
                        } else {
                            let stale = self.session.stale(cookies.iter().copied(), &issued);
                            issued.into_iter().chain(stale).collect()
                        }
                    }
                };
                Ok(Authenticated {
                    identity: renewed.identity.clone(),
                    tokens: renewed.tokens.clone(),
                    cookies,
                })
            }
        }
    }
}

/// A session's contents, answered without a refresh.
fn as_is(stored: Stored) -> Authenticated {
    Authenticated {
        identity: stored.identity,
        tokens: stored.tokens,
        cookies: Vec::new(),
    }
}
