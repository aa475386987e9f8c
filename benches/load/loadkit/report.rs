//! The one table, the goals it is read against, and the results file.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::bench::Settings;
use crate::machine::Machine;
use crate::rate::RateResult;
use crate::startup::StartupResult;
use crate::wrk::WrkResult;

/// Which part of the table a row is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    /// wrk → one server.
    Direct,
    /// wrk → NGINX `auth_request` → auth server, then NGINX → app.
    EndToEnd,
}

/// What a row is, for the ratios and goals; the table lists rows in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Floor1,
    FloorAuto,
    Cookie,
    CookieRules,
    CookieBaseline,
    CookieNoMetrics,
    CookieOneWorker,
    CookieMusl,
    RefAxum,
    RefAxumLayers,
    NoAuth,
    BearerWarm,
    BearerCold,
    PeerBearer,
    PeerSession,
    E2eFloor,
    E2eAuthgate,
    E2ePeer,
    E2eAuthgateNoKeepalive,
}

/// One measured row: medians of its rounds.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) section: Section,
    pub(crate) role: Role,
    pub(crate) rps: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) peak_rss: u64,
    pub(crate) cpu_per_10k: f64,
    /// Requests per second of each round.
    pub(crate) rounds_rps: Vec<f64>,
    /// Highest share of the machine other processes used during a kept round.
    pub(crate) outside: f64,
    pub(crate) notes: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl Row {
    /// Medians over the rounds (each round: wrk's summary and the CPU seconds it cost).
    pub(crate) fn from_rounds(
        label: &str,
        section: Section,
        role: Role,
        rounds: &[(WrkResult, f64)],
        peak_rss: u64,
    ) -> Self {
        let rounds_rps: Vec<f64> = rounds.iter().map(|(r, _)| r.rps()).collect();
        let failures: u64 = rounds.iter().map(|(r, _)| r.failures()).sum();
        let mut notes = Vec::new();
        if failures > 0 {
            notes.push(format!(
                "{failures} failed requests (socket errors or status ≥ 400)"
            ));
        }
        Self {
            label: label.into(),
            section,
            role,
            rps: median(rounds_rps.clone()),
            p50_us: median(rounds.iter().map(|(r, _)| r.p50_us as f64).collect()) as u64,
            p99_us: median(rounds.iter().map(|(r, _)| r.p99_us as f64).collect()) as u64,
            peak_rss,
            cpu_per_10k: median(
                rounds
                    .iter()
                    .map(|(r, cpu)| cpu / r.requests.max(1) as f64 * 10_000.0)
                    .collect(),
            ),
            rounds_rps,
            outside: 0.0,
            notes,
        }
    }
}

/// Sizes of the built binaries: `(what, bytes)`.
pub(crate) fn binary_sizes(repo: &Path, host_bin: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    if let Ok(m) = std::fs::metadata(host_bin) {
        out.push((
            format!(
                "{} (this host, `cargo build --release`)",
                host_bin.strip_prefix(repo).unwrap_or(host_bin).display()
            ),
            m.len(),
        ));
    }
    for arch in ["amd64", "arm64"] {
        let p = repo.join(format!("target/dist/linux-{arch}/authgate"));
        if let Ok(m) = std::fs::metadata(&p) {
            out.push((
                format!("target/dist/linux-{arch}/authgate (static, `scripts/cross-build`)"),
                m.len(),
            ));
        }
    }
    out
}

/// Everything one run measured.
pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) settings: Settings,
    pub(crate) rows: Vec<Row>,
    pub(crate) rates: Vec<(String, RateResult)>,
    /// `(requests so far, VmRSS)` during the million-request run.
    pub(crate) growth: Vec<(u64, u64)>,
    pub(crate) growth_peak: u64,
    /// Per binary: what it is, the measurement, and how the IdP was made unreachable.
    pub(crate) startups: Vec<(String, StartupResult, String)>,
    pub(crate) sizes: Vec<(String, u64)>,
    pub(crate) busy_before: f64,
    pub(crate) busy_after: f64,
    pub(crate) elapsed: Duration,
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

impl Report {
    fn row(&self, role: Role) -> Option<&Row> {
        self.rows.iter().find(|r| r.role == role)
    }

    fn ratio(&self, a: Role, b: Role) -> Option<f64> {
        Some(self.row(a)?.rps / self.row(b)?.rps.max(1e-9))
    }

    fn floor_cell(&self, r: &Row) -> String {
        let f = |role| {
            self.row(role).map_or("—".to_string(), |f| {
                format!("{:.2}", r.rps / f.rps.max(1e-9))
            })
        };
        match r.section {
            Section::Direct => format!("{} / {}", f(Role::Floor1), f(Role::FloorAuto)),
            Section::EndToEnd => f(Role::E2eFloor),
        }
    }

    fn peer_cell(&self, r: &Row) -> String {
        let peer = match r.role {
            Role::Cookie
            | Role::CookieRules
            | Role::CookieBaseline
            | Role::CookieNoMetrics
            | Role::CookieOneWorker
            | Role::CookieMusl => Role::PeerSession,
            Role::BearerWarm | Role::BearerCold => Role::PeerBearer,
            Role::E2eAuthgate | Role::E2eAuthgateNoKeepalive => Role::E2ePeer,
            Role::PeerBearer | Role::PeerSession | Role::E2ePeer => r.role,
            _ => return "—".into(),
        };
        self.ratio(r.role, peer)
            .map_or("—".into(), |x| format!("{x:.2}"))
    }

    /// The whole results file.
    pub(crate) fn markdown(&self) -> String {
        let m = &self.machine;
        let s = &self.settings;
        let mut o = String::new();
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let _ = writeln!(o, "## Load benchmark: `benches/load/run`\n");
        let _ = writeln!(
            o,
            "Run {date} on {} ({} CPUs), {:.0} GB RAM, {}, Linux {}; everything below measured in {:.0} s.",
            m.model,
            m.cpus,
            m.memory_gb,
            m.os,
            m.kernel,
            self.elapsed.as_secs_f64()
        );
        let versions: Vec<String> = m
            .versions
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(o, "Versions: {}.", versions.join("; "));
        let _ = writeln!(
            o,
            "Load: `wrk -t{} -c{}` for every row, {} s warm-up (not counted), then {} rounds of {} s; \
             each cell is the median of the rounds. Before the run other processes used {:.0}% of the CPUs \
             ({:.0}% right after).\n",
            s.threads,
            s.connections,
            s.warmup_secs,
            s.rounds,
            s.round_secs,
            self.busy_before * 100.0,
            self.busy_after * 100.0
        );
        let outside = self.rows.iter().map(|r| r.outside).fold(0.0, f64::max);
        let _ = writeln!(
            o,
            "During the measured rounds other processes used at most {:.0}% of the CPUs (a round \
             above 10% is run again, up to three times per row).\n",
            outside * 100.0
        );
        let _ = writeln!(
            o,
            "| | req/s | rounds ± | p50 ms | p99 ms | peak RSS MB | CPU s / 10k req | × floor | × peer |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut section = None;
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| (r.section, r.role));
        for r in rows {
            if section != Some(r.section) {
                section = Some(r.section);
                let title = match r.section {
                    Section::Direct => "**wrk → server** (× floor: vs NGINX 1 worker / vs NGINX auto)",
                    Section::EndToEnd => "**wrk → NGINX (worker_processes auto) → auth_request → app** (× floor: vs the `return 204` auth location)",
                };
                let _ = writeln!(o, "| {title} | | | | | | | | |");
            }
            let note = if r.notes.is_empty() {
                String::new()
            } else {
                format!(" ⚠ {}", r.notes.join("; "))
            };
            let (lo, hi) = r
                .rounds_rps
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            let spread = (hi - lo) / 2.0 / r.rps.max(1e-9) * 100.0;
            let _ = writeln!(
                o,
                "| {}{} | {} | {:.1}% | {} | {} | {} | {:.2} | {} | {} |",
                r.label,
                note,
                thousands(r.rps),
                spread,
                ms(r.p50_us),
                ms(r.p99_us),
                mb(r.peak_rss),
                r.cpu_per_10k,
                self.floor_cell(r),
                self.peer_cell(r)
            );
        }
        let _ = writeln!(
            o,
            "\nPeak RSS: the row's server during its rounds (`VmHWM` reset first), NGINX and Apache \
             summed over master and workers; in end-to-end rows the auth server's (the floor row: NGINX's). \
             Rounds ±: half the range of the rounds' req/s, relative to the median. CPU: user + system time of the row's servers per 10,000 requests; end-to-end rows count \
             NGINX and the auth server together. Peer: mod_auth_openidc doing the same job \
             (cookie → its session row, bearer → its bearer row, end to end → its end-to-end row).\n"
        );

        let _ = writeln!(o, "**Fixed rate** ({} req/s, {} s after 1 s warm-up, 8 keep-alive connections, open-loop; latency counts the wait when a late answer delayed the next request):\n", s.rate, s.rate_secs);
        let _ = writeln!(
            o,
            "| | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for (label, r) in &self.rates {
            let _ = writeln!(
                o,
                "| {label} | {} | {} | {} | {} | {} | {} | {} |",
                thousands(r.achieved_rps),
                ms(r.p50_us),
                ms(r.p90_us),
                ms(r.p99_us),
                ms(r.p999_us),
                ms(r.max_us),
                r.errors
            );
        }

        let growth: Vec<String> = self
            .growth
            .iter()
            .map(|(n, rss)| format!("{} → {} MB", thousands(*n as f64), mb(*rss)))
            .collect();
        let _ = writeln!(
            o,
            "\n**Memory over {} requests** (fresh process, session cookie; requests so far → VmRSS): {}; peak {} MB.\n",
            thousands(self.growth.last().map_or(0.0, |g| g.0 as f64)),
            growth.join(", "),
            mb(self.growth_peak)
        );
        for (what, st, how) in &self.startups {
            let _ = writeln!(
                o,
                "**Start-up and idle memory, {what}** ({how}; {} starts, spawn → first `200` from \
                 `/ping` by a raw-socket poller): median {:.1} ms, max {:.1} ms. Idle RSS after {} s: \
                 {} MB ({} MB anonymous, {} MB mapped files: the binary and shared libraries).\n",
                st.runs_ms.len(),
                st.median_ms,
                st.max_ms,
                st.idle_secs,
                mb(st.idle_rss),
                mb(st.idle_rss_anon),
                mb(st.idle_rss_file),
            );
        }
        let _ = writeln!(o, "**Binaries:**");
        for (what, bytes) in &self.sizes {
            let _ = writeln!(
                o,
                "- {what}: {} bytes ({:.2} MB)",
                thousands(*bytes as f64),
                *bytes as f64 / 1e6
            );
        }
        o.push('\n');
        o.push_str(&self.goals());
        o
    }

    fn goals(&self) -> String {
        let mut o = String::from("**Goals:**\n\n| goal | measured | |\n|---|---|---|\n");
        let mut goal = |name: &str, measured: String, ok: Option<bool>| {
            let v = ok.map_or("not measured", verdict);
            let _ = writeln!(o, "| {name} | {measured} | {v} |");
        };
        let r = |a, b| self.ratio(a, b);
        let x = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}×"));
        goal(
            "session cookie ≥ 0.8× NGINX `return 204` (1 worker; auto shown too)",
            format!(
                "{} (auto: {}); with `--metrics off`: {}; with `--workers 1`, like the floor's 1 worker: {}; the image's static build: {}",
                x(r(Role::Cookie, Role::Floor1)),
                x(r(Role::Cookie, Role::FloorAuto)),
                x(r(Role::CookieNoMetrics, Role::Floor1)),
                x(r(Role::CookieOneWorker, Role::Floor1)),
                x(r(Role::CookieMusl, Role::Floor1))
            ),
            r(Role::Cookie, Role::Floor1).map(|v| v >= 0.8),
        );
        for (name, row, peer, at_least) in [
            (
                "session cookie ≥ 5× mod_auth_openidc's session cookie",
                Role::Cookie,
                Role::PeerSession,
                5.0,
            ),
            (
                "bearer JWT, cache warm ≥ 4× mod_auth_openidc's bearer",
                Role::BearerWarm,
                Role::PeerBearer,
                4.0,
            ),
            (
                "bearer JWT, every token new ≥ 1.5× mod_auth_openidc's bearer",
                Role::BearerCold,
                Role::PeerBearer,
                1.5,
            ),
        ] {
            goal(name, x(r(row, peer)), r(row, peer).map(|v| v >= at_least));
        }
        goal(
            "end to end ≥ 0.7× the NGINX-only auth_request floor",
            format!(
                "{} with auth keep-alive; {} without",
                x(r(Role::E2eAuthgate, Role::E2eFloor)),
                x(r(Role::E2eAuthgateNoKeepalive, Role::E2eFloor))
            ),
            r(Role::E2eAuthgate, Role::E2eFloor).map(|v| v >= 0.7),
        );
        let cookie_rate = self
            .rates
            .iter()
            .find(|(l, _)| l.contains("session cookie"));
        let worst_p99 = self
            .rates
            .iter()
            .filter(|(l, _)| l.starts_with("authgate"))
            .map(|(_, r)| r.p99_us)
            .max();
        goal(
            &format!("p99 of /oauth2/auth < 1 ms at {} req/s", self.settings.rate),
            format!(
                "session cookie {} ms; worst authgate row {} ms",
                cookie_rate.map_or("—".into(), |(_, r)| ms(r.p99_us)),
                worst_p99.map_or("—".into(), ms)
            ),
            worst_p99.map(|p| p < 1000),
        );
        for (what, st, _) in &self.startups {
            goal(
                &format!("RSS ≤ 6 MB idle with the shipped config: {what}"),
                format!("{} MB", mb(st.idle_rss)),
                Some(st.idle_rss <= 6 * 1_048_576),
            );
        }
        let authgate_peak = self
            .rows
            .iter()
            .filter(|r| {
                matches!(
                    r.role,
                    Role::Cookie
                        | Role::CookieRules
                        | Role::NoAuth
                        | Role::BearerWarm
                        | Role::BearerCold
                )
            })
            .map(|r| r.peak_rss)
            .chain([self.growth_peak])
            .max()
            .unwrap_or(0);
        goal(
            "RSS ≤ 10 MB at peak under load",
            format!(
                "{} MB (highest authgate row, cold-cache row included)",
                mb(authgate_peak)
            ),
            Some(authgate_peak <= 10 * 1_048_576),
        );
        let (first, last) = (
            self.growth.get(1).map_or(0, |g| g.1),
            self.growth.last().map_or(0, |g| g.1),
        );
        let delta = last as i64 - first as i64;
        goal(
            "no growth over a million requests",
            format!(
                "{:+.2} MB between the first {} requests and the last",
                delta as f64 / 1_048_576.0,
                thousands(self.growth.get(1).map_or(0.0, |g| g.0 as f64))
            ),
            Some(delta <= 512 * 1024),
        );
        for (what, st, _) in &self.startups {
            goal(
                &format!("ready within 10 ms of start, no IdP reachable: {what}"),
                format!("median {:.1} ms, max {:.1} ms", st.median_ms, st.max_ms),
                Some(st.median_ms <= 10.0),
            );
        }
        for (what, bytes) in &self.sizes {
            goal(
                &format!(
                    "binary ≤ 5 MB stripped: {}",
                    what.split(' ').next().unwrap_or(what)
                ),
                format!("{:.2} MB", *bytes as f64 / 1e6),
                Some(*bytes <= 5_000_000),
            );
        }
        o
    }
}
