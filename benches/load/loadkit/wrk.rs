//! Running wrk and reading its summary.
//!
//! Every row uses the same wrk command line (threads, connections, duration) and a Lua `done`
//! hook that prints the summary as one JSON line. The cold-bearer row adds a `request` hook that
//! puts a never-used token on every request; that costs wrk a Lua call per request, so if
//! anything it makes that row look slower, not faster.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The summary `done` prints.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WrkResult {
    /// Completed requests.
    pub(crate) requests: u64,
    /// Wall time of the run, in microseconds.
    pub(crate) duration_us: u64,
    /// Socket errors: connect, read, write, timeout.
    pub(crate) connect: u64,
    pub(crate) read: u64,
    pub(crate) write: u64,
    pub(crate) timeout: u64,
    /// Responses with a status above 399.
    pub(crate) status: u64,
    /// Latency percentiles, microseconds.
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    /// Tokens handed out by the cold-token script (0 otherwise).
    #[serde(default)]
    pub(crate) issued: u64,
    /// Tokens the cold-token script had loaded (0 otherwise).
    #[serde(default)]
    pub(crate) pool: u64,
}

impl WrkResult {
    /// Requests per second.
    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    /// Any socket error or error status.
    pub(crate) fn failures(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout + self.status
    }
}

const REPORT_LUA: &str = r#"-- benches/load: wrk's summary as one JSON line.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local e = summary.errors
  local issued, pool = 0, 0
  for _, t in ipairs(threads) do
    issued = issued + (t:get("issued") or 0)
    pool = pool + (t:get("pool") or 0)
  end
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"issued":%d,"pool":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), issued, pool))
end
"#;

const COLD_LUA: &str = r#"
-- Cold bearer tokens: every request carries a token this server has never seen.
-- Script arguments: the token file, the number of wrk threads, and how many tokens earlier
-- runs consumed (skipped). Thread k takes every n-th remaining token.
local next_id = 0
local base_setup = setup
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  base_setup(thread)
end
function init(args)
  local n, skip = tonumber(args[2]), tonumber(args[3])
  tokens, issued, i = {}, 0, 0
  for line in io.lines(args[1]) do
    if i >= skip and (i - skip) % n == id then tokens[#tokens + 1] = line end
    i = i + 1
  end
  pool = #tokens
end
function request()
  issued = issued + 1
  if pool > 0 then
    wrk.headers["Authorization"] = "Bearer " .. tokens[((issued - 1) % pool) + 1]
  end
  return wrk.format()
end
"#;

/// The load generator settings, identical for every row.
#[derive(Debug, Clone)]
pub(crate) struct Wrk {
    /// `-t`.
    pub(crate) threads: u32,
    /// `-c`.
    pub(crate) connections: u32,
    /// Where the Lua scripts are written.
    pub(crate) dir: PathBuf,
}

/// Cold-token input: the token file and how many tokens earlier runs used.
pub(crate) struct ColdTokens<'a> {
    pub(crate) file: &'a Path,
    pub(crate) skip: u64,
}

impl Wrk {
    /// Writes the Lua scripts.
    pub(crate) fn new(threads: u32, connections: u32, dir: &Path) -> std::io::Result<Self> {
        std::fs::write(dir.join("report.lua"), REPORT_LUA)?;
        std::fs::write(dir.join("cold.lua"), format!("{REPORT_LUA}{COLD_LUA}"))?;
        Ok(Self {
            threads,
            connections,
            dir: dir.to_path_buf(),
        })
    }

    /// `wrk -t -c -d --timeout 5s [-H …] url`, then the summary.
    pub(crate) fn run(
        &self,
        url: &str,
        headers: &[(String, String)],
        seconds: u32,
        cold: Option<ColdTokens<'_>>,
    ) -> Result<WrkResult, String> {
        let mut cmd = Command::new("wrk");
        cmd.arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{seconds}s"))
            .args(["--timeout", "5s"]);
        for (k, v) in headers {
            cmd.arg("-H").arg(format!("{k}: {v}"));
        }
        let script = if cold.is_some() {
            "cold.lua"
        } else {
            "report.lua"
        };
        cmd.arg("-s").arg(self.dir.join(script)).arg(url);
        if let Some(c) = &cold {
            cmd.arg("--")
                .arg(c.file)
                .arg(self.threads.to_string())
                .arg(c.skip.to_string());
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("WRKJSON "))
            .ok_or_else(|| {
                format!(
                    "wrk printed no summary for {url}: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        serde_json::from_str(line).map_err(|e| format!("wrk summary {line:?}: {e}"))
    }
}
