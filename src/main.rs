//! The `authgate` command: parses the CLI and calls the library.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use authgate::config::{self, ProcessEnv};
use authgate::explain::{Caller, Question};
use authgate::server::{Application, Drain};
use authgate::session::MasterSecrets;
use authgate::watch;

/// Exit code for invalid configuration (EX_CONFIG from sysexits.h).
const EXIT_CONFIG: u8 = 78;
/// Exit code for a question `authgate explain` cannot answer (EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// Exit code for a start-up failure other than config (EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;

#[derive(Parser)]
#[command(
    name = "authgate",
    version,
    about = "Forward-auth for NGINX Ingress: OIDC login, encrypted sessions, every workspace in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve /oauth2/auth, the login endpoints, /ping, /ready and /metrics.
    Serve {
        /// Config directory (authgate.toml and workspaces/).
        #[arg(long, env = "AUTHGATE_CONFIG", default_value = "config")]
        config: PathBuf,
        /// Listen address, overriding the server file.
        #[arg(long, env = "AUTHGATE_LISTEN")]
        listen: Option<SocketAddr>,
        /// Threads serving requests [default: one per CPU the process may use].
        #[arg(long, env = "AUTHGATE_WORKERS")]
        workers: Option<NonZeroUsize>,
        /// After SIGTERM, how long requests are still served while /ready answers 503.
        #[arg(long, env = "AUTHGATE_DRAIN_DELAY", default_value = "3s", value_parser = humantime::parse_duration)]
        drain_delay: Duration,
        /// Then, the most in-flight requests get to finish before the process exits.
        #[arg(long, env = "AUTHGATE_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
        drain_timeout: Duration,
        /// How often the config files (and the secret files they name) are compared; a change
        /// two polls agree on is reloaded. `off` or `0`: only SIGHUP reloads.
        #[arg(long, env = "AUTHGATE_WATCH_INTERVAL", default_value = "2s")]
        watch_interval: watch::Interval,
        /// Prometheus metrics at /metrics; `off` records nothing and serves no /metrics.
        #[arg(long, env = "AUTHGATE_METRICS", value_enum, default_value_t = Switch::On)]
        metrics: Switch,
    },
    /// Validate a config directory and print every problem, one per line.
    Check {
        /// Config directory.
        #[arg(env = "AUTHGATE_CONFIG", default_value = "config")]
        dir: PathBuf,
    },
    /// Say which rule decides a request and what /oauth2/auth answers. Exit 0: 202 with
    /// identity; 20: public; 41: 401; 43: 403; 64: a bad question; 78: invalid config.
    Explain {
        /// Config directory.
        #[arg(env = "AUTHGATE_CONFIG", default_value = "config")]
        dir: PathBuf,
        /// The workspace (file stem).
        #[arg(long, short)]
        workspace: String,
        /// The request's method.
        #[arg(long, short, default_value = "GET")]
        method: String,
        /// The request's path and query, as the client writes them.
        #[arg(long, short)]
        path: String,
        /// The host [default: the workspace's first].
        #[arg(long)]
        host: Option<String>,
        /// The client's address, as the trusted proxy reports it.
        #[arg(long)]
        client_ip: Option<std::net::IpAddr>,
        /// Ask as a signed-in user with this (verified) email.
        #[arg(long, conflicts_with = "machine_client")]
        email: Option<String>,
        /// The user's groups (repeat, or comma-separated).
        #[arg(long = "group", value_delimiter = ',', requires = "email")]
        groups: Vec<String>,
        /// A claim of the user, `name=value` (repeat).
        #[arg(long = "claim", requires = "email")]
        claims: Vec<String>,
        /// Ask as this machine client (`[[client]]` name).
        #[arg(long)]
        machine_client: Option<String>,
        /// The Ingress's narrowing query (`allowed_groups=a,b`).
        #[arg(long)]
        query: Option<String>,
    },
    /// Print a fresh master cookie secret.
    Secret,
    /// Print a workspace file made from another tool's config; what does not carry over is
    /// named on stderr, one line each. A restriction on who may pass that cannot be carried
    /// exactly refuses the import (exit 78) unless --accept-loss.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Print the JSON Schema of authgate.toml (`server`) or of a workspace file (`workspace`).
    #[cfg(feature = "schema")]
    Schema {
        /// Which file.
        #[arg(value_enum)]
        file: SchemaArg,
    },
}

/// The tools `authgate import` reads.
#[derive(Subcommand)]
enum ImportFrom {
    /// An oauth2-proxy config file (its TOML `.cfg`).
    #[command(name = "oauth2-proxy")]
    Oauth2Proxy {
        /// The config file.
        file: PathBuf,
        /// The workspace's host, when the file's redirect_url does not name it.
        #[arg(long)]
        host: Option<String>,
        /// The environment variable the workspace reads the client secret from.
        #[arg(long, default_value = "CLIENT_SECRET")]
        secret_env: String,
        /// Write the workspace even when a restriction of the file cannot be carried over: it
        /// then lets nobody in, and names each lost option in a comment.
        #[arg(long)]
        accept_loss: bool,
        /// Write the workspace to this new file instead of stdout; nothing is written when the
        /// import is refused.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// The files `authgate schema` describes.
#[cfg(feature = "schema")]
#[derive(Clone, Copy, ValueEnum)]
enum SchemaArg {
    Server,
    Workspace,
}

/// On or off.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Secret => {
            println!("{}", MasterSecrets::generate());
            ExitCode::SUCCESS
        }
        #[cfg(feature = "schema")]
        Command::Schema { file } => {
            use authgate::config::schema::{schema_text, SchemaFile};
            print!(
                "{}",
                schema_text(match file {
                    SchemaArg::Server => SchemaFile::Server,
                    SchemaArg::Workspace => SchemaFile::Workspace,
                })
            );
            ExitCode::SUCCESS
        }
        Command::Import {
            from:
                ImportFrom::Oauth2Proxy {
                    file,
                    host,
                    secret_env,
                    accept_loss,
                    output,
                },
        } => import_oauth2_proxy(
            &file,
            output.as_deref(),
            &ImportArgs {
                host: host.as_deref(),
                secret_env: &secret_env,
                accept_loss,
            },
        ),
        Command::Explain {
            dir,
            workspace,
            method,
            path,
            host,
            client_ip,
            email,
            groups,
            claims,
            machine_client,
            query,
        } => {
            let caller = match (email, machine_client) {
                (Some(email), _) => Caller::User {
                    email,
                    groups,
                    claims: match claims
                        .iter()
                        .map(|c| c.split_once('=').map(|(k, v)| (k.into(), v.into())))
                        .collect::<Option<Vec<_>>>()
                    {
                        Some(c) => c,
                        None => {
                            eprintln!("--claim takes name=value");
                            return ExitCode::from(EXIT_USAGE);
                        }
                    },
                },
                (None, Some(name)) => Caller::Client(name),
                (None, None) => Caller::Anonymous,
            };
            explain(
                &dir,
                &workspace,
                ExplainArgs {
                    method: &method,
                    path: &path,
                    host: host.as_deref(),
                    client: client_ip,
                    caller,
                    query: query.as_deref(),
                },
            )
        }
        Command::Check { dir } => match config::load(&dir, &ProcessEnv) {
            Ok(c) => {
                for w in config::warnings(&c) {
                    eprintln!("warning: {}", with_dir(&dir, &w));
                }
                let hosts: usize = c.workspaces.iter().map(|w| w.hosts.len()).sum();
                println!(
                    "{}: ok ({} workspaces, {hosts} hosts)",
                    dir.display(),
                    c.workspaces.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors.0 {
                    eprintln!("{}", with_dir(&dir, e));
                }
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Serve {
            config,
            listen,
            workers,
            drain_delay,
            drain_timeout,
            watch_interval,
            metrics,
        } => serve(
            config,
            listen,
            workers,
            Drain {
                delay: drain_delay,
                timeout: drain_timeout,
            },
            watch_interval,
            metrics == Switch::On,
        ),
    }
}

/// The question of `authgate explain`, as given on the command line.
struct ExplainArgs<'a> {
    method: &'a str,
    path: &'a str,
    host: Option<&'a str>,
    client: Option<std::net::IpAddr>,
    caller: Caller,
    query: Option<&'a str>,
}

fn explain(dir: &std::path::Path, workspace: &str, args: ExplainArgs<'_>) -> ExitCode {
    let config = match config::load(dir, &ProcessEnv) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{}", with_dir(dir, e));
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let Some(ws) = config.workspaces.iter().find(|w| w.name == workspace) else {
        let names: Vec<_> = config.workspaces.iter().map(|w| w.name.as_str()).collect();
        eprintln!(
            "no workspace `{workspace}` (there are: {})",
            names.join(", ")
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let host = match args.host.map(authgate::host::Host::parse).transpose() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("--host: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let narrowing = args
        .query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let question = Question {
        method: args.method,
        target: args.path,
        host,
        client: args.client,
        caller: args.caller,
        narrowing,
    };
    match authgate::explain::explain(ws, &question) {
        Ok(e) => {
            print!("{e}");
            ExitCode::from(e.answer.exit_code())
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The options of `authgate import oauth2-proxy` the importer reads.
struct ImportArgs<'a> {
    host: Option<&'a str>,
    secret_env: &'a str,
    accept_loss: bool,
}

fn import_oauth2_proxy(
    file: &std::path::Path,
    output: Option<&std::path::Path>,
    args: &ImportArgs<'_>,
) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    // A relative path in the file is relative to the file, as oauth2-proxy run from its
    // directory would read it.
    let base = file.parent().unwrap_or(std::path::Path::new(""));
    let read_file = |path: &str| std::fs::read_to_string(base.join(path));
    let options = authgate::import::Options {
        host: args.host,
        secret_env: args.secret_env,
        accept_loss: args.accept_loss,
        read_file: &read_file,
    };
    match authgate::import::oauth2_proxy(&text, &options) {
        Ok(imported) => {
            match output {
                None => print!("{}", imported.workspace),
                Some(out) => {
                    let written = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(out)
                        .and_then(|mut f| {
                            std::io::Write::write_all(&mut f, imported.workspace.as_bytes())
                        });
                    if let Err(e) = written {
                        eprintln!("{}: {e}", out.display());
                        return ExitCode::from(EXIT_UNAVAILABLE);
                    }
                }
            }
            for note in &imported.notes {
                eprintln!("{}: {note}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("{}: {line}", file.display());
            }
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn with_dir(dir: &std::path::Path, e: &config::ConfigError) -> String {
    let mut e = e.clone();
    if e.file.is_relative() && !e.file.starts_with(dir) {
        e.file = dir.join(&e.file);
    }
    e.to_string()
}

/// The static musl builds (the container image) allocate with mimalloc: musl's own allocator
/// takes a global lock on every call.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn serve(
    dir: PathBuf,
    listen: Option<SocketAddr>,
    workers: Option<NonZeroUsize>,
    drain: Drain,
    watch: watch::Interval,
    metrics: bool,
) -> ExitCode {
    authgate::telemetry::init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n.get());
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authgate: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    runtime.block_on(async move {
        let app = match Application::build(&dir, listen, Arc::new(ProcessEnv)).await {
            Ok(app) => app,
            Err(authgate::server::StartError::Config(errors)) => {
                for e in &errors.0 {
                    eprintln!("{}", with_dir(&dir, e));
                }
                eprintln!("authgate: invalid configuration, not starting");
                return ExitCode::from(EXIT_CONFIG);
            }
            Err(e) => {
                eprintln!("authgate: {e}");
                return ExitCode::from(EXIT_UNAVAILABLE);
            }
        };
        app.state().metrics().set_enabled(metrics);
        match app
            .with_drain(drain)
            .with_watch(watch)
            .run_until_stopped()
            .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("authgate: {e}");
                ExitCode::from(EXIT_UNAVAILABLE)
            }
        }
    })
}
