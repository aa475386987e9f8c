//! What `/proc` says about a server under load: CPU time (`utime + stime`), resident memory
//! (`VmRSS`, peak `VmHWM`), and the processes a server forked (NGINX and Apache workers).

use std::fs;

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on every Linux port).
const TICKS_PER_SECOND: f64 = 100.0;

/// `pid` and every descendant, found by walking `/proc/*/stat` parent links.
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1).and_then(|v| v.parse().ok())) {
                all.push((p, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, …
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// CPU seconds (user + system) used so far by these processes, all threads included.
pub(crate) fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|p| stat_fields(*p))
        .map(|f| {
            // After the name: state(0) ppid(1) … utime(11) stime(12).
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (t(11) + t(12)) / TICKS_PER_SECOND
        })
        .sum()
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Current resident set, summed over the processes.
pub(crate) fn rss_bytes(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| status_kb(*p, "VmRSS:")).sum()
}

/// Peak resident set since start or since [`reset_peak`], summed over the processes.
pub(crate) fn peak_rss_bytes(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| status_kb(*p, "VmHWM:")).sum()
}

/// Resets the peak resident set (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0). Returns
/// whether it worked for every process (it needs the same user or root).
pub(crate) fn reset_peak(pids: &[u32]) -> bool {
    pids.iter()
        .all(|p| fs::write(format!("/proc/{p}/clear_refs"), "5").is_ok())
}

/// `(RssAnon, RssFile)` of one process, bytes: what it allocated, and the pages of its binary
/// and shared libraries it has mapped.
pub(crate) fn rss_split(pid: u32) -> (u64, u64) {
    (
        status_kb(pid, "RssAnon:").unwrap_or(0),
        status_kb(pid, "RssFile:").unwrap_or(0),
    )
}

/// CPU seconds the whole machine spent busy so far (all CPUs, `/proc/stat`).
pub(crate) fn machine_busy_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next().and_then(|l| l.strip_prefix("cpu ")) else {
        return 0.0;
    };
    let v: Vec<f64> = cpu
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (v.iter().take(8).sum::<f64>() - idle) / TICKS_PER_SECOND
}

/// CPU seconds of this process and of its children already waited for (wrk runs).
pub(crate) fn own_and_children_seconds() -> f64 {
    let Some(f) = stat_fields(std::process::id()) else {
        return 0.0;
    };
    // After the name: utime(11) stime(12) cutime(13) cstime(14).
    (11..15)
        .filter_map(|i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>()
        / TICKS_PER_SECOND
}
