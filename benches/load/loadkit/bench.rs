//! The load benchmark, start to finish: start every server, run every row with the same wrk
//! settings (warm-up excluded, several rounds, medians), then the fixed-rate latency, the
//! million-request memory check, start-up time and idle memory; print one table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::machine::{self, Machine};
use crate::rate::{self, RatePlan, RateResult};
use crate::report::{self, Report, Role, Row, Section};
use crate::servers::{self, AuthBackend, Server};
use crate::startup::StartupResult;
use crate::wrk::{ColdTokens, Wrk, WrkResult};
use crate::{mint, procfs};
use testkit::config::{bench_workspace, open_workspace, write_config};
use testkit::{env_with, idp};

/// Host of the workspace that needs a login.
pub(crate) const LOGIN_HOST: &str = "mcd.bench.test";
/// Host of the `auth = "none"` workspace.
pub(crate) const OPEN_HOST: &str = "perso.bench.test";
/// The auth route naming the login workspace, as its Ingress's `auth-url` does.
pub(crate) const AUTH_LOGIN: &str = "/oauth2/auth/mcd";
/// The auth route naming the `auth = "none"` workspace.
pub(crate) const AUTH_OPEN: &str = "/oauth2/auth/perso";
/// Host of the login workspace with 50 access rules.
pub(crate) const RULES_HOST: &str = "rules.bench.test";
/// The auth route naming it.
pub(crate) const AUTH_RULES: &str = "/oauth2/auth/rules";
/// Client id bearer tokens are issued for.
pub(crate) const CLIENT_ID: &str = "authgate-bench";

/// Everything a run is told: `loadkit bench`'s options (`benches/load/run` passes the
/// `LOAD_*` environment through).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Settings {
    #[arg(long, default_value = ".")]
    pub(crate) repo: PathBuf,
    /// The authgate binary under test.
    #[arg(long, default_value = "target/release/authgate")]
    pub(crate) authgate: PathBuf,
    /// An earlier authgate binary whose session-cookie row is measured beside this one's, in
    /// the same run (e.g. a build of the commit before a change).
    #[arg(long, env = "LOAD_BASELINE")]
    pub(crate) baseline: Option<PathBuf>,
    #[arg(long, env = "LOAD_ROUNDS", default_value_t = 3)]
    pub(crate) rounds: u32,
    #[arg(long, env = "LOAD_ROUND_SECS", default_value_t = 5)]
    pub(crate) round_secs: u32,
    #[arg(long, env = "LOAD_WARMUP_SECS", default_value_t = 2)]
    pub(crate) warmup_secs: u32,
    /// wrk threads.
    #[arg(long, env = "LOAD_THREADS", default_value_t = 1)]
    pub(crate) threads: u32,
    /// wrk connections.
    #[arg(long, env = "LOAD_CONNECTIONS", default_value_t = 32)]
    pub(crate) connections: u32,
    /// The fixed request rate of the latency check.
    #[arg(long, env = "LOAD_RATE", default_value_t = 2000)]
    pub(crate) rate: u32,
    #[arg(long, env = "LOAD_RATE_SECS", default_value_t = 10)]
    pub(crate) rate_secs: u32,
    /// Requests of the memory-growth check.
    #[arg(long, env = "LOAD_GROWTH_REQUESTS", default_value_t = 1_000_000)]
    pub(crate) growth_requests: u64,
    /// Distinct tokens for the cold-cache row (one warm-up and one round of it).
    #[arg(long, env = "LOAD_COLD_TOKENS", default_value_t = 150_000)]
    pub(crate) cold_tokens: u64,
    /// Fixed port of the static IdP, so the token pool stays valid between runs.
    #[arg(long, env = "LOAD_IDP_PORT", default_value_t = 47_800)]
    pub(crate) idp_port: u16,
    #[arg(long, default_value = "benches/load/results.md")]
    pub(crate) results: PathBuf,
    /// How long to wait for other work on the machine to settle first, seconds.
    #[arg(
        long = "quiet-patience",
        env = "LOAD_QUIET_PATIENCE",
        default_value_t = 120
    )]
    pub(crate) quiet_patience_secs: u64,
}

/// A header list from string pairs.
fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The headers ingress-nginx's auth subrequest carries for `http://<host>/app/page?x=1`, so a
/// direct request costs the server what a real subrequest costs.
fn subrequest(host: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    subrequest_with_host("authgate.authgate.svc.cluster.local", host, extra)
}

/// The same with another `Host` (mod_auth_openidc needs the site's own: it binds a session to
/// the host it was issued for).
fn subrequest_with_host(
    host_header: &str,
    host: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let url = format!("http://{host}/app/page?x=1");
    let mut v = h(&[
        ("Host", host_header),
        ("X-Original-URL", &url),
        ("X-Original-Method", "GET"),
        ("X-Sent-From", "nginx-ingress-controller"),
        ("X-Real-IP", "127.0.0.1"),
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Auth-Request-Redirect", "/app/page?x=1"),
        ("X-Request-ID", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ]);
    v.extend(h(extra));
    v
}

/// 50 `[[rule]]`s of every condition (prefixes, exact paths, methods, the host, client
/// networks, deny and allow by group), of which only the last, `prefix = "/app/"` for any
/// signed-in user, matches the rows' `/app/page?x=1`: every request tries all 50.
fn fifty_rules() -> String {
    let mut out = String::new();
    for i in 0..49 {
        let path = match i % 2 {
            0 => format!("prefix = \"/area-{i}/\""),
            _ => format!("path = \"/hooks/service-{i}\""),
        };
        let methods = if i % 3 == 0 {
            "methods = [\"POST\", \"PUT\"]\n"
        } else {
            ""
        };
        let hosts = if i % 5 == 0 {
            format!("hosts = [\"{RULES_HOST}\"]\n")
        } else {
            String::new()
        };
        let nets = if i % 7 == 0 {
            "networks = [\"192.0.2.0/24\"]\n"
        } else {
            ""
        };
        let action = if i % 4 == 0 {
            "action = \"deny\"\n"
        } else {
            "action = \"allow\"\ngroups = [\"admins\"]\n"
        };
        out.push_str(&format!("[[rule]]\n{path}\n{methods}{hosts}{nets}{action}"));
    }
    out.push_str("[[rule]]\nprefix = \"/app/\"\naction = \"allow\"\nany_user = true\n");
    out
}

fn authgate_config(dir: &Path, issuer: &str) -> Result<PathBuf, String> {
    let config = dir.join("authgate-config");
    let login = bench_workspace(LOGIN_HOST, issuer, CLIENT_ID, "authgate-mcd");
    let rules = format!(
        "{}{}",
        bench_workspace(RULES_HOST, issuer, CLIENT_ID, "authgate-rules"),
        fifty_rules()
    );
    write_config(
        &config,
        "",
        &[
            ("mcd", &login),
            ("perso", &open_workspace(OPEN_HOST)),
            ("rules", &rules),
        ],
    )
    .map_err(|e| format!("{}: {e}", config.display()))?;
    Ok(config)
}

/// The same workspaces but the one with access rules, for the `--baseline` binary: an earlier
/// build may not know `[[rule]]`. The session cookie of `mcd` opens in both (its keys derive
/// from the master secret and the workspace's name).
fn baseline_config(dir: &Path, issuer: &str) -> Result<PathBuf, String> {
    let config = dir.join("authgate-config-baseline");
    let login = bench_workspace(LOGIN_HOST, issuer, CLIENT_ID, "authgate-mcd");
    write_config(
        &config,
        "",
        &[("mcd", &login), ("perso", &open_workspace(OPEN_HOST))],
    )
    .map_err(|e| format!("{}: {e}", config.display()))?;
    Ok(config)
}

/// Polls until `path` answers `status` (authgate discovers its provider in the background).
fn wait_for(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    status: u16,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match servers::probe(addr, path, headers) {
            Ok((s, _)) if s == status => return Ok(()),
            other if std::time::Instant::now() > deadline => {
                return Err(format!("{addr}{path} never answered {status}: {other:?}"))
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Checks one answer: the status, and the identity headers when a user is expected.
fn check(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    status: u16,
    identity: bool,
) -> Result<(), String> {
    let (got, head) = servers::probe(addr, path, headers)?;
    if got != status {
        return Err(format!(
            "{addr}{path} answered {got}, not {status}:\n{head}"
        ));
    }
    for name in [
        "x-auth-request-user: alice@example.test",
        "x-auth-request-email: alice@example.test",
    ] {
        if identity && !head.contains(name) {
            return Err(format!("{addr}{path}: no `{name}` in\n{head}"));
        }
    }
    Ok(())
}

/// One row's load: where, with what, and whose CPU and memory count.
struct Load<'a> {
    label: &'a str,
    section: Section,
    role: Role,
    addr: SocketAddr,
    path: &'a str,
    headers: Vec<(String, String)>,
    /// Processes whose CPU time counts (the server; for end-to-end rows NGINX too).
    cpu: Vec<&'a Server>,
    /// Processes whose peak resident set is reported.
    rss: Vec<&'a Server>,
    cold: Option<&'a Path>,
}

impl<'a> Load<'a> {
    /// wrk → `server` alone: its CPU and memory count, warm tokens (or none).
    fn direct(
        label: &'a str,
        role: Role,
        server: &'a Server,
        path: &'a str,
        headers: &[(String, String)],
    ) -> Self {
        Load {
            label,
            section: Section::Direct,
            role,
            addr: server.addr(),
            path,
            headers: headers.to_vec(),
            cpu: vec![server],
            rss: vec![server],
            cold: None,
        }
    }
}

struct Runner<'a> {
    s: &'a Settings,
    wrk: Wrk,
    /// Cold tokens consumed so far.
    cold_used: u64,
    /// CPUs of the machine.
    cpus: usize,
    /// Rounds of the current row run again because of outside load.
    repeats: u32,
    /// Highest share of the machine outside processes took in a kept round of the current row.
    outside: f64,
}

impl Runner<'_> {
    fn wrk(&mut self, l: &Load<'_>, secs: u32) -> Result<WrkResult, String> {
        let url = format!("http://{}{}", l.addr, l.path);
        let cold = l.cold.map(|file| ColdTokens {
            file,
            skip: self.cold_used,
        });
        let r = self.wrk.run(&url, &l.headers, secs, cold)?;
        self.cold_used += r.issued;
        Ok(r)
    }

    /// One measured round: wrk's summary and the CPU seconds the row's servers spent. A round
    /// during which processes outside the benchmark used more than a tenth of the machine
    /// (another build, say) is run again, at most three times per row.
    fn round(&mut self, l: &Load<'_>) -> Result<(WrkResult, f64), String> {
        loop {
            let cpu_pids = pids(&l.cpu);
            let (c0, m0, o0) = (
                procfs::cpu_seconds(&cpu_pids),
                procfs::machine_busy_seconds(),
                procfs::own_and_children_seconds(),
            );
            let r = self.wrk(l, self.s.round_secs)?;
            let (c1, m1, o1) = (
                procfs::cpu_seconds(&cpu_pids),
                procfs::machine_busy_seconds(),
                procfs::own_and_children_seconds(),
            );
            let capacity = r.duration_us as f64 / 1e6 * self.cpus as f64;
            let outside = ((m1 - m0) - (c1 - c0) - (o1 - o0)).max(0.0) / capacity.max(1e-9);
            if outside > 0.10 && self.repeats < 3 {
                self.repeats += 1;
                eprintln!(
                    "loadkit: {:.0}% of the machine went to other processes; running the round again",
                    outside * 100.0
                );
                continue;
            }
            self.outside = self.outside.max(outside);
            return Ok((r, c1 - c0));
        }
    }

    fn announce(&self, label: &str) {
        eprintln!(
            "loadkit: {label} ({} s warm-up, {} × {} s)",
            self.s.warmup_secs, self.s.rounds, self.s.round_secs
        );
    }

    /// Warm-up (not counted), peak RSS reset, then the rounds.
    fn row(&mut self, l: Load<'_>) -> Result<Row, String> {
        self.announce(l.label);
        (self.repeats, self.outside) = (0, 0.0);
        self.wrk(&l, self.s.warmup_secs)?;
        let peak_reset = procfs::reset_peak(&pids(&l.rss));
        let mut rounds = Vec::new();
        for _ in 0..self.s.rounds {
            rounds.push(self.round(&l)?);
        }
        let peak = procfs::peak_rss_bytes(&pids(&l.rss));
        Ok(self.noted(finish(&l, &rounds, peak, peak_reset)))
    }

    /// The cold-token row: a fresh authgate for every round, warmed up with tokens of its own, so
    /// the token pool only has to cover one warm-up and one round and no process ever sees a
    /// token twice.
    fn cold_row(
        &mut self,
        label: &str,
        headers: &[(String, String)],
        tokens: &Path,
        start: &dyn Fn(u32) -> Result<Server, String>,
    ) -> Result<Row, String> {
        self.announce(&format!("{label}, a new process for every round"));
        (self.repeats, self.outside) = (0, 0.0);
        let mut rounds = Vec::new();
        let (mut peak, mut peak_reset) = (0, true);
        let mut last = None;
        for i in 0..self.s.rounds {
            let server = start(i)?;
            let l = Load {
                cold: Some(tokens),
                ..Load::direct(label, Role::BearerCold, &server, AUTH_LOGIN, headers)
            };
            self.cold_used = 0;
            self.wrk(&l, self.s.warmup_secs)?;
            peak_reset &= procfs::reset_peak(&pids(&l.rss));
            rounds.push(self.round(&l)?);
            peak = peak.max(procfs::peak_rss_bytes(&pids(&l.rss)));
            last = Some(finish(&l, &rounds, peak, peak_reset));
        }
        last.map(|row| self.noted(row))
            .ok_or_else(|| "no rounds".to_string())
    }

    /// Notes outside load on the row.
    fn noted(&self, mut row: Row) -> Row {
        row.outside = self.outside;
        if self.repeats > 0 {
            row.notes.push(format!(
                "{} round(s) run again because other processes were busy",
                self.repeats
            ));
        }
        row
    }
}

/// Every process of these servers.
fn pids(servers: &[&Server]) -> Vec<u32> {
    servers.iter().flat_map(|s| s.pids()).collect()
}

/// The row from its rounds, with what went wrong noted.
fn finish(l: &Load<'_>, rounds: &[(WrkResult, f64)], peak: u64, peak_reset: bool) -> Row {
    let mut row = Row::from_rounds(l.label, l.section, l.role, rounds, peak);
    if !peak_reset {
        row.notes
            .push("peak RSS since start (clear_refs not permitted)".into());
    }
    let reused: u64 = rounds
        .iter()
        .map(|(r, _)| r.issued.saturating_sub(r.pool))
        .sum();
    if l.cold.is_some() && (reused > 0 || rounds.iter().any(|(r, _)| r.pool == 0)) {
        row.notes.push(format!(
            "token pool too small: {reused} requests reused a token; raise LOAD_COLD_TOKENS"
        ));
    }
    row
}

fn rate_plan(
    s: &Settings,
    addr: SocketAddr,
    path: &str,
    headers: Vec<(String, String)>,
    expect: u16,
) -> RatePlan {
    RatePlan {
        addr,
        path: path.into(),
        headers,
        rate: s.rate,
        connections: 8,
        duration: Duration::from_secs(u64::from(s.rate_secs)),
        warmup: Duration::from_secs(1),
        expect_status: expect,
    }
}

/// `openssl req -x509` around the fixture RSA key: mod_auth_openidc takes certificates.
fn bearer_certificate(repo: &Path, dir: &Path) -> Result<PathBuf, String> {
    let cert = dir.join("rsa-1.crt");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-new", "-key"])
        .arg(repo.join("tests/fixtures/rsa-private.pem"))
        .args(["-subj", "/CN=authgate load bench", "-days", "3650", "-out"])
        .arg(&cert)
        .status()
        .map_err(|e| format!("cannot run openssl (apt-get install openssl): {e}"))?;
    status
        .success()
        .then_some(cert)
        .ok_or_else(|| "openssl could not make the certificate".into())
}

/// Start-up time and idle memory with the shipped `config/`, in a network namespace holding
/// only loopback (so no IdP is reachable and nothing leaves the machine); where namespaces are
/// not permitted, a copy of it whose issuer is a closed loopback port.
fn startup(s: &Settings, dir: &Path, bin: &Path) -> Result<(StartupResult, String), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let shipped = s.repo.join("config");
    let args = |config: &Path| -> Vec<String> {
        vec![
            me.display().to_string(),
            "startup".into(),
            "--bin".into(),
            bin.display().to_string(),
            "--config".into(),
            config.display().to_string(),
            "--runs".into(),
            "21".into(),
            "--idle-secs".into(),
            "3".into(),
        ]
    };
    let env = env_with(&[("AUTHGATE_MCD_CLIENT_SECRET", "bench-only")]);
    let netns = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .args(args(&shipped))
        .envs(&env)
        .output();
    let (out, how) = match netns {
        Ok(o) if o.status.success() => (
            o,
            "shipped config/, network namespace with loopback only".to_string(),
        ),
        _ => {
            let copy = dir.join("shipped-config");
            std::fs::create_dir_all(copy.join("workspaces")).map_err(|e| e.to_string())?;
            for f in [
                "authgate.toml",
                "workspaces/perso.toml",
                "workspaces/public.toml",
            ] {
                std::fs::copy(shipped.join(f), copy.join(f)).map_err(|e| e.to_string())?;
            }
            let mcd = std::fs::read_to_string(shipped.join("workspaces/mcd.toml"))
                .map_err(|e| e.to_string())?
                .replace("https://login.microsoftonline.com", "https://127.0.0.1:9");
            std::fs::write(copy.join("workspaces/mcd.toml"), mcd).map_err(|e| e.to_string())?;
            let a = args(&copy);
            let o = Command::new(&a[0])
                .args(&a[1..])
                .envs(&env)
                .output()
                .map_err(|e| e.to_string())?;
            (
                o,
                "shipped config/ with the issuer on a closed loopback port (no network namespace)"
                    .to_string(),
            )
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let r: StartupResult = serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "startup measurement failed: {e}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((r, how))
}

/// Runs everything and writes the results file.
pub(crate) fn run(s: &Settings) -> Result<(), String> {
    let machine = Machine::describe();
    let busy_before = machine::wait_until_quiet(Duration::from_secs(s.quiet_patience_secs));
    let dir = s.repo.join("target/load-bench/run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cache = s.repo.join("target/load-bench");
    let started = std::time::Instant::now();

    // Providers: a static one for authgate's bearer rows, the real one for Apache's login.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let static_idp = idp::start(&rt, s.idp_port).map_err(|e| {
        format!(
            "cannot bind the static IdP on port {} (LOAD_IDP_PORT): {e}",
            s.idp_port
        )
    })?;
    let issuer = static_idp.issuer.clone();
    let warm_token = mint::bearer(&issuer, CLIENT_ID, "warm", 86_400);
    let probe_token = mint::bearer(&issuer, CLIENT_ID, "probe", 86_400);
    let cold_file = cache.join("cold-tokens.txt");
    mint::token_pool(&cold_file, &issuer, CLIENT_ID, s.cold_tokens)?;

    let config = authgate_config(&dir, &issuer)?;
    let env_map = env_with(&[("BENCH_CLIENT_SECRET", "bench-secret")]);
    let env: Vec<(String, String)> = env_map.clone().into_iter().collect();
    let (cookie_name, cookie_value) =
        testkit::session::session_cookie(&config, &env_map, LOGIN_HOST)?;
    let ag_cookie = format!("{cookie_name}={cookie_value}");
    let (rules_name, rules_value) =
        testkit::session::session_cookie(&config, &env_map, RULES_HOST)?;
    let ag_rules_cookie = format!("{rules_name}={rules_value}");
    let start_authgate = |name: &str| -> Result<Server, String> {
        let ag = servers::authgate(&s.authgate, &config, &env, dir.join(format!("{name}.log")))?;
        wait_for(
            ag.addr(),
            AUTH_LOGIN,
            &subrequest(
                LOGIN_HOST,
                &[("Authorization", &format!("Bearer {probe_token}"))],
            ),
            202,
        )?;
        Ok(ag)
    };
    let authgate = start_authgate("authgate")?;

    let apache_port = testkit::try_free_port()?;
    let (oidc, oidc_issuer) = servers::oidc_provider(
        &s.repo,
        &format!("http://{LOGIN_HOST}:{apache_port}/session/redirect_uri"),
        dir.join("oidc-provider.log"),
    )?;
    let cert = bearer_certificate(&s.repo, &dir)?;
    let apache = servers::apache(
        &dir,
        &servers::ApacheSetup {
            port: apache_port,
            site: LOGIN_HOST,
            oidc_issuer: &oidc_issuer,
            bearer_issuer: &issuer,
            bearer_audience: CLIENT_ID,
            bearer_cert: &cert,
        },
    )?;
    let ap_cookie = rt.block_on(crate::login::login(
        &format!("http://{LOGIN_HOST}:{apache_port}/session/login"),
        "alice",
        "mod_auth_openidc_session",
    ))?;

    // What every row sends, checked once before the load.
    let bearer = format!("Bearer {warm_token}");
    let ag_cookie_h = subrequest(LOGIN_HOST, &[("Cookie", &ag_cookie)]);
    let ag_warm_h = subrequest(LOGIN_HOST, &[("Authorization", &bearer)]);
    let ag_cold_h = subrequest(LOGIN_HOST, &[]);
    let ag_none_h = subrequest(OPEN_HOST, &[]);
    let ag_rules_h = subrequest(RULES_HOST, &[("Cookie", &ag_rules_cookie)]);
    let ap_bearer_h = subrequest_with_host(LOGIN_HOST, LOGIN_HOST, &[("Authorization", &bearer)]);
    let ap_session_h = subrequest_with_host(LOGIN_HOST, LOGIN_HOST, &[("Cookie", &ap_cookie)]);
    let ap_nothing_h = subrequest_with_host(LOGIN_HOST, LOGIN_HOST, &[]);
    let ag = authgate.addr();
    let ap = apache.addr();
    check(ag, AUTH_LOGIN, &ag_cookie_h, 202, true)?;
    check(ag, AUTH_LOGIN, &ag_warm_h, 202, true)?;
    check(ag, AUTH_OPEN, &ag_none_h, 202, false)?;
    check(ag, AUTH_RULES, &ag_rules_h, 202, true)?;
    check(ag, AUTH_LOGIN, &ag_cold_h, 401, false)?;
    check(ap, "/bearer", &ap_bearer_h, 200, true)?;
    check(ap, "/bearer", &ap_nothing_h, 401, false)?;
    check(ap, "/session/check", &ap_session_h, 200, true)?;
    check(ap, "/session/check", &ap_nothing_h, 401, false)?;

    let mut runner = Runner {
        s,
        wrk: Wrk::new(s.threads, s.connections, &dir).map_err(|e| e.to_string())?,
        cold_used: 0,
        cpus: machine.cpus,
        repeats: 0,
        outside: 0.0,
    };
    let mut rows = Vec::new();

    // --- Direct: wrk → one server ---
    for workers in ["1", "auto"] {
        let floor = servers::nginx_floor(&dir, workers)?;
        let label = format!("NGINX `return 204`, worker_processes {workers}");
        let role = if workers == "1" {
            Role::Floor1
        } else {
            Role::FloorAuto
        };
        rows.push(runner.row(Load::direct(&label, role, &floor, AUTH_LOGIN, &ag_cookie_h))?);
    }
    for (label, role, path, headers) in [
        (
            "authgate: session cookie",
            Role::Cookie,
            AUTH_LOGIN,
            &ag_cookie_h,
        ),
        (
            "authgate: session cookie, 50 access rules (the 50th decides)",
            Role::CookieRules,
            AUTH_RULES,
            &ag_rules_h,
        ),
        (
            "authgate: workspace with auth = \"none\"",
            Role::NoAuth,
            AUTH_OPEN,
            &ag_none_h,
        ),
        (
            "authgate: bearer JWT RS256, verified-token cache warm",
            Role::BearerWarm,
            AUTH_LOGIN,
            &ag_warm_h,
        ),
    ] {
        rows.push(runner.row(Load::direct(label, role, &authgate, path, headers))?);
    }
    // The session-cookie row again, from another authgate process: the same binary with
    // metrics off (what recording each decision costs), with one thread serving requests (as
    // the floor's one NGINX worker), and the static musl binary the container image ships when
    // scripts/cross-build has built it.
    let mut no_metrics_env = env.clone();
    no_metrics_env.push(("AUTHGATE_METRICS".into(), "off".into()));
    let mut one_worker_env = env.clone();
    one_worker_env.push(("AUTHGATE_WORKERS".into(), "1".into()));
    let mut variants = vec![
        (
            "authgate `--metrics off`: session cookie",
            Role::CookieNoMetrics,
            s.authgate.clone(),
            no_metrics_env,
            "authgate-no-metrics.log",
        ),
        (
            "authgate `--workers 1`: session cookie",
            Role::CookieOneWorker,
            s.authgate.clone(),
            one_worker_env,
            "authgate-1.log",
        ),
    ];
    // The binary the image ships, when scripts/cross-build has built it for this machine.
    let image_bin = Some(s.repo.join("target/dist/linux-amd64/authgate"))
        .filter(|p| cfg!(target_arch = "x86_64") && p.is_file());
    if let Some(bin) = &image_bin {
        variants.push((
            "authgate, static musl build of scripts/cross-build (the image's): session cookie",
            Role::CookieMusl,
            bin.clone(),
            env.clone(),
            "authgate-musl.log",
        ));
    }
    if let Some(bin) = &s.baseline {
        variants.push((
            "authgate, the `--baseline` binary: session cookie",
            Role::CookieBaseline,
            bin.clone(),
            env.clone(),
            "authgate-baseline.log",
        ));
    }
    let baseline = match &s.baseline {
        Some(_) => Some(baseline_config(&dir, &issuer)?),
        None => None,
    };
    for (label, role, bin, env, log) in variants {
        let cfg = match (&role, &baseline) {
            (Role::CookieBaseline, Some(b)) => b,
            _ => &config,
        };
        let server = servers::authgate(&bin, cfg, &env, dir.join(log))?;
        check(server.addr(), AUTH_LOGIN, &ag_cookie_h, 202, true)?;
        rows.push(runner.row(Load::direct(label, role, &server, AUTH_LOGIN, &ag_cookie_h))?);
    }
    for (label, role, layers) in [
        (
            "reference: minimal axum handler, the same cookie check, no middleware",
            Role::RefAxum,
            false,
        ),
        (
            "reference: the same with authgate's tower-http layers and log subscriber",
            Role::RefAxumLayers,
            true,
        ),
    ] {
        let server = servers::reference(
            &config,
            LOGIN_HOST,
            layers,
            &env,
            dir.join(format!("reference-{layers}.log")),
        )?;
        check(server.addr(), AUTH_LOGIN, &ag_cookie_h, 202, true)?;
        rows.push(runner.row(Load::direct(label, role, &server, AUTH_LOGIN, &ag_cookie_h))?);
    }
    rows.push(runner.cold_row(
        "authgate: bearer JWT RS256, every token new (cache cold)",
        &ag_cold_h,
        &cold_file,
        &|i| start_authgate(&format!("authgate-cold-{i}")),
    )?);
    for (label, role, path, headers) in [
        (
            "mod_auth_openidc: bearer JWT RS256 (oauth20, key from a file)",
            Role::PeerBearer,
            "/bearer",
            &ap_bearer_h,
        ),
        (
            "mod_auth_openidc: its session cookie (server-side session, shm cache)",
            Role::PeerSession,
            "/session/check",
            &ap_session_h,
        ),
    ] {
        rows.push(runner.row(Load::direct(label, role, &apache, path, headers))?);
    }
    check(ap, "/session/check", &ap_session_h, 200, true)?;

    // --- End to end: wrk → NGINX auth_request → auth server → NGINX → app ---
    let e2e_workers = "auto";
    let (nginx, ports) = servers::nginx_e2e(
        &dir,
        e2e_workers,
        &[
            AuthBackend::Inline,
            AuthBackend::KeepAlive {
                port: authgate.port,
                path: AUTH_LOGIN.into(),
                original_host: false,
            },
            AuthBackend::KeepAlive {
                port: apache.port,
                path: "/session/check".into(),
                original_host: true,
            },
            AuthBackend::Direct {
                port: authgate.port,
                path: AUTH_LOGIN.into(),
            },
        ],
    )?;
    let front = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let browser = |cookie: &str| h(&[("Host", LOGIN_HOST), ("Cookie", cookie)]);
    for i in 0..4 {
        let c = if i == 2 { &ap_cookie } else { &ag_cookie };
        check(front(i), "/app/page?x=1", &browser(c), 200, false)?;
    }
    let e = Section::EndToEnd;
    let e2e: [(&str, Role, usize, &str, Vec<&Server>); 4] = [
        (
            "NGINX auth_request → `return 204` location → app",
            Role::E2eFloor,
            0,
            &ag_cookie,
            vec![&nginx],
        ),
        (
            "NGINX → authgate (session cookie) → app",
            Role::E2eAuthgate,
            1,
            &ag_cookie,
            vec![&nginx, &authgate],
        ),
        (
            "NGINX → mod_auth_openidc (session cookie) → app",
            Role::E2ePeer,
            2,
            &ap_cookie,
            vec![&nginx, &apache],
        ),
        (
            "NGINX → authgate, no auth keep-alive (ingress default) → app",
            Role::E2eAuthgateNoKeepalive,
            3,
            &ag_cookie,
            vec![&nginx, &authgate],
        ),
    ];
    for (label, role, i, cookie, cpu) in e2e {
        let rss = if i == 0 { vec![&nginx] } else { vec![cpu[1]] };
        rows.push(runner.row(Load {
            label,
            section: e,
            role,
            addr: front(i),
            path: "/app/page?x=1",
            headers: browser(cookie),
            cpu,
            rss,
            cold: None,
        })?);
    }
    drop(nginx);
    drop(apache);
    drop(oidc);

    // --- Latency at a fixed rate ---
    eprintln!(
        "loadkit: fixed rate {} req/s, {} s each",
        s.rate, s.rate_secs
    );
    let floor = servers::nginx_floor(&dir, "1")?;
    let mut rates: Vec<(String, RateResult)> = Vec::new();
    for (label, addr, path, headers, expect) in [
        (
            "NGINX `return 204` (1 worker), the client's floor",
            floor.addr(),
            AUTH_LOGIN,
            ag_cookie_h.clone(),
            204,
        ),
        (
            "authgate: session cookie",
            ag,
            AUTH_LOGIN,
            ag_cookie_h.clone(),
            202,
        ),
        (
            "authgate: bearer JWT, cache warm",
            ag,
            AUTH_LOGIN,
            ag_warm_h.clone(),
            202,
        ),
        (
            "authgate: auth = \"none\"",
            ag,
            AUTH_OPEN,
            ag_none_h.clone(),
            202,
        ),
    ] {
        let r = rate::run(&rate_plan(s, addr, path, headers, expect))?;
        rates.push((label.to_string(), r));
    }
    drop(floor);
    drop(authgate);

    // --- A million requests: does the resident set grow? ---
    let fresh = start_authgate("authgate-growth")?;
    eprintln!(
        "loadkit: {} requests with a session cookie",
        s.growth_requests
    );
    let growth_load = Load::direct("growth", Role::Cookie, &fresh, AUTH_LOGIN, &ag_cookie_h);
    let mut growth = vec![(0u64, procfs::rss_bytes(&fresh.pids()))];
    let mut total = 0;
    while total < s.growth_requests {
        let r = runner.wrk(&growth_load, 5)?;
        if r.failures() > 0 {
            return Err(format!(
                "{} failed requests during the growth run",
                r.failures()
            ));
        }
        total += r.requests;
        growth.push((total, procfs::rss_bytes(&fresh.pids())));
    }
    let growth_peak = procfs::peak_rss_bytes(&fresh.pids());
    drop(fresh);
    drop(static_idp);

    // --- Start-up and idle memory ---
    eprintln!("loadkit: start-up time and idle memory");
    let mut startups = Vec::new();
    let (r, how) = startup(s, &dir, &s.authgate)?;
    startups.push(("this host's `cargo build --release`".to_string(), r, how));
    if let Some(bin) = &image_bin {
        let (r, how) = startup(s, &dir, bin)?;
        let label = "target/dist/linux-amd64/authgate (static musl, what the image ships)";
        startups.push((label.to_string(), r, how));
    }

    let sizes = report::binary_sizes(&s.repo, &s.authgate);
    let busy_after = machine::busy_fraction(Duration::from_secs(1));
    let report = Report {
        machine,
        settings: s.clone(),
        rows,
        rates,
        growth,
        growth_peak,
        startups,
        sizes,
        busy_before,
        busy_after,
        elapsed: started.elapsed(),
    };
    let md = report.markdown();
    println!("{md}");
    std::fs::write(&s.results, &md).map_err(|e| format!("{}: {e}", s.results.display()))?;
    eprintln!("loadkit: written to {}", s.results.display());
    Ok(())
}
