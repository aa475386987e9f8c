//! The machine a run happened on, and whether anything else was using it.

use std::process::Command;
use std::time::{Duration, Instant};

/// What the results file says about the machine.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) model: String,
    pub(crate) memory_gb: f64,
    pub(crate) kernel: String,
    pub(crate) os: String,
    pub(crate) versions: Vec<(String, String)>,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|_| "not installed".into())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    pub(crate) fn describe() -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let memory_gb = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        let versions = vec![
            ("nginx".into(), first_line("nginx", &["-v"])),
            ("apache2".into(), first_line("apache2", &["-v"])),
            (
                "mod_auth_openidc".into(),
                first_line(
                    "dpkg-query",
                    &["-W", "-f", "${Version}", "libapache2-mod-auth-openidc"],
                ),
            ),
            ("wrk".into(), first_line("wrk", &["-v"])),
            ("node".into(), first_line("node", &["--version"])),
        ];
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model,
            memory_gb,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
            versions,
        }
    }
}

/// Share of CPU time not idle across the machine over `window`, 0–1.
pub(crate) fn busy_fraction(window: Duration) -> f64 {
    let sample = || -> Option<(u64, u64)> {
        let stat = read("/proc/stat");
        let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = cpu
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        Some((v.iter().sum(), idle))
    };
    let (Some((t0, i0)), _) = (sample(), std::thread::sleep(window)) else {
        return 0.0;
    };
    let Some((t1, i1)) = sample() else { return 0.0 };
    let total = t1.saturating_sub(t0).max(1) as f64;
    1.0 - (i1.saturating_sub(i0)) as f64 / total
}

/// Waits (at most `patience`) until other processes use less than 10% of the machine; returns
/// the last measured share.
pub(crate) fn wait_until_quiet(patience: Duration) -> f64 {
    let deadline = Instant::now() + patience;
    loop {
        let busy = busy_fraction(Duration::from_secs(2));
        if busy < 0.10 || Instant::now() > deadline {
            return busy;
        }
        eprintln!(
            "loadkit: the machine is {:.0}% busy with other work; waiting for it to settle",
            busy * 100.0
        );
    }
}
