//! Micro-benchmarks of authgate's hot paths, with criterion.
//!
//! ```sh
//! cargo bench --bench micro                  # everything (about 2 minutes on 2 cores)
//! cargo bench --bench micro -- bearer        # one group
//! ```
//!
//! Groups: `session` (cookie decode and check), `jwt_verify` (ID-token verification, RS256 and
//! ES256), `bearer` (bearer JWTs with the verified-token cache warm and cold), `rd_validate`,
//! `rules` (50 access rules), and `auth_request` (a whole `/oauth2/auth` through the router).
//! Nothing leaves loopback: the provider the workspace discovers is a static one in this process
//! (`testkit::idp`, crates/testkit).
//! Under `cargo test --all-targets` each benchmark runs once as a smoke test.

mod fixture;
mod jwt;
mod redirect;
mod router;
mod rules;
mod runner;
mod session;

fn main() {
    let mut runner = runner::Runner::from_args();
    let fx = fixture::Fixture::start();
    session::bench(&mut runner, &fx);
    jwt::bench(&mut runner, &fx);
    redirect::bench(&mut runner);
    rules::bench(&mut runner);
    router::bench(&mut runner, &fx);
    runner.finish();
}
