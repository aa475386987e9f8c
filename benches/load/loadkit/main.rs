//! `loadkit`: the Rust half of the load benchmark (`benches/load/run` builds and runs it).
//!
//! ```text
//! loadkit bench    [--rounds 3 --round-secs 5 --warmup-secs 2 --threads 1 --connections 32 …]
//! loadkit startup  --bin target/release/authgate --config config [--runs 21 --idle-secs 3]
//! loadkit rate     --addr 127.0.0.1:4180 --path /oauth2/auth/mcd -H 'Host: x' --rate 2000 --secs 10
//! loadkit mint-cookie --config DIR --host HOST     (AUTHGATE_COOKIE_SECRETS from the environment)
//! loadkit mint-bearer --issuer URL --aud CLIENT_ID
//! ```
//!
//! It is a `[[bench]]` target so it can use the library and the dev-dependencies; `cargo bench`
//! and `cargo test --all-targets` run it without a subcommand, and then it does nothing.

mod bench;
mod login;
mod machine;
mod mint;
mod procfs;
mod rate;
mod reference;
mod report;
mod servers;
mod startup;
mod wrk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loadkit", about = "authgate's load benchmark tools")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The whole load benchmark; prints the table and writes it to --results.
    Bench(bench::Settings),
    /// Start-up time and idle memory of an authgate binary (JSON on stdout).
    Startup {
        #[arg(long)]
        bin: PathBuf,
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value_t = 21)]
        runs: u32,
        #[arg(long, default_value_t = 3)]
        idle_secs: u64,
    },
    /// Latency at a fixed request rate (JSON on stdout).
    Rate {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value = "/oauth2/auth/mcd")]
        path: String,
        /// `Name: value`, repeatable.
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value_t = 2000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 8)]
        connections: u32,
        #[arg(long, default_value_t = 202)]
        expect: u16,
    },
    /// A minimal axum server doing authgate's session-cookie check (the reference rows).
    Reference {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        host: String,
        #[arg(long)]
        listen: SocketAddr,
        /// What of authgate's stack to add, comma-separated: connect-info, request-id,
        /// trace, subscriber, all.
        #[arg(long, default_value = "")]
        with: String,
    },
    /// A session cookie (`name=value`) for `host`, sealed with the config's keys.
    MintCookie {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        host: String,
    },
    /// An RS256 bearer token signed with the fixture key (`kid` rsa-1), valid one day.
    MintBearer {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        aud: String,
    },
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Bench(mut settings) => {
            let repo = settings.repo.canonicalize().map_err(|e| e.to_string())?;
            let abs = |p: &PathBuf| {
                if p.is_absolute() {
                    p.clone()
                } else {
                    repo.join(p)
                }
            };
            settings.authgate = abs(&settings.authgate);
            settings.results = abs(&settings.results);
            settings.repo = repo;
            bench::run(&settings)
        }
        Cmd::Startup {
            bin,
            config,
            runs,
            idle_secs,
        } => {
            let r = startup::measure(&bin, &config, runs.max(1), idle_secs)?;
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            Ok(())
        }
        Cmd::Rate {
            addr,
            path,
            headers,
            rate,
            secs,
            connections,
            expect,
        } => {
            let headers = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| format!("header {h:?} is not `Name: value`"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let r = rate::run(&rate::RatePlan {
                addr,
                path,
                headers,
                rate,
                connections,
                duration: Duration::from_secs(secs),
                warmup: Duration::from_secs(1),
                expect_status: expect,
            })?;
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            Ok(())
        }
        Cmd::Reference {
            config,
            host,
            listen,
            with,
        } => {
            let parts: Vec<&str> = with.split(',').map(str::trim).collect();
            reference::serve(&config, &host, listen, &parts)
        }
        Cmd::MintCookie { config, host } => {
            let env: std::collections::HashMap<String, String> = std::env::vars().collect();
            let (name, value) = testkit::session::session_cookie(&config, &env, &host)?;
            println!("{name}={value}");
            Ok(())
        }
        Cmd::MintBearer { issuer, aud } => {
            println!("{}", mint::bearer(&issuer, &aud, "cli", 86_400));
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // `cargo bench` and `cargo test --all-targets` run every bench target, with flags such as
    // `--bench` or `--test-threads 4`: nothing to do then.
    if std::env::args().nth(1).is_none_or(|a| a.starts_with('-')) {
        println!(
            "loadkit: a tool of benches/load/run; run `benches/load/run` for the load benchmark"
        );
        return ExitCode::SUCCESS;
    }
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadkit: {e}");
            ExitCode::FAILURE
        }
    }
}
