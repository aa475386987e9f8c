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
