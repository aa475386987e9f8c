//! authgate's integration tests: one binary, one module per area, every real part spawned on
//! its own free ports by `helpers`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod helpers;

mod access_recipes;
mod access_rules;
mod auth_request_headers;
mod backchannel;
mod browser_login;
mod caddy_flow;
mod cli;
mod demo;
mod drain;
mod forge_flow;
mod import;
mod jwks_refresh;
mod large_identity;
mod limits;
mod logs;
mod metrics;
mod nginx_flow;
mod nginx_tenant;
mod oauth2_routes;
mod providers;
mod public_routes;
mod redis_setups;
mod redis_store;
mod refresh;
mod reload_watch;
mod schema;
mod tenant;
mod traefik_flow;
mod trust_matrix;
