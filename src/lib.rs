//! authgate: forward authentication for NGINX Ingress, one process for every workspace.
//!
//! # Layout
//!
//! - [`config`]: the server file and one file per workspace, typed and validated at load.
//! - [`workspace`]: the host → workspace registry built from a config; swapped whole on reload.
//! - [`provider`]: one trait, one file per identity provider kind.
//! - [`machine`]: machine clients by JWT from an issuer of their own (service accounts, CI).
//! - [`metrics`]: Prometheus metrics, their bounded labels, and the lock-free histogram.
//! - [`oidc`]: discovery, the JWKS cache, and pure token verification.
//! - [`session`]: the encrypted session and login-state cookies, and their keys.
//! - [`authz`]: authorization rules as pure predicates.
//! - [`public`]: public routes inside a protected workspace, matched on the original request.
//! - [`rules`]: ordered access rules (`[[public]]`, `[[rule]]`), compiled, matched without allocating.
//! - [`explain`]: `authgate explain`: which rule decides a request, and the answer.
//! - [`redirect`]: validation of `rd` redirect targets.
//! - [`forward`]: which host a request is for, and which forwarding headers to believe.
//! - [`host`]: the one strict parser of hosts, into the canonical [`host::Host`].
//! - [`import`]: an oauth2-proxy config file turned into a workspace file.
//! - [`identity`]: the user as every provider reports it.
//! - [`http`]: routes, the request extractor, pages and the one error type.
//! - [`server`]: building the application, binding, serving, reloading.
//! - [`watch`]: when to reload: SIGHUP, or a change of the config files seen by a bounded poll.
//! - [`state`]: the shared handle handlers get.
//! - [`spent`]: single use of login `state` values, bounded per client and in all; full, it
//!   forgets behind a floor instead of refusing others.
//! - [`throttle`]: a bound on the login requests one client address has in flight.
//! - [`secret`]: the type secrets travel in.
//! - [`telemetry`]: logging setup.

pub mod authn;
pub mod authz;
pub mod callback;
pub mod config;
pub mod explain;
pub mod forward;
pub mod host;
pub mod http;
pub mod identity;
pub mod import;
pub mod machine;
pub mod metrics;
pub mod oidc;
pub mod provider;
pub mod public;
pub mod redirect;
pub mod refresh;
pub mod rules;
pub mod secret;
pub mod server;
pub mod session;
pub mod spent;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod watch;
pub mod workspace;

// Lets test helpers shared with `tests/` and `benches/` name the crate the same way everywhere.
#[cfg(test)]
extern crate self as authgate;
