//! Noticing that the configuration changed and reloading it: a bounded poll of a digest of
//! every file the config reads, and SIGHUP.
//!
//! Owns when a reload happens and what is logged about it; what a reload *is* (validate the
//! whole new config, then swap the registry) stays in [`crate::server::reload`]. Never swaps a
//! config that did not validate, and never logs a secret (file contents only enter a digest).
//!
//! # Why a poll and not file notifications
//!
//! In a cluster the config is a ConfigMap volume. The kubelet updates it by writing a new
//! timestamped directory, pointing `..data_tmp` at it and renaming that over `..data`; the
//! visible `authgate.toml` and `workspaces` are symlinks through `..data`. inotify on those
//! paths watches the old targets and sees nothing of the swap unless the directory itself is
//! watched and the events are re-interpreted; overlay and network filesystems report less
//! still. Comparing a SHA-256 of the files every few seconds sees every kind of change the same
//! way, costs a handful of small reads per interval, and needs no new crate (`sha2` is already
//! here for sessions) — the binary size stays as `benches/README.md` measures it, where a
//! notification crate and its platform back-ends would add to it. The kubelet's own sync
//! period (about a minute) dwarfs a few seconds of polling.
//!
//! # Debounce
//!
//! A changed digest is acted on only once two consecutive polls agree on it, so a directory
//! being edited file by file (or a read that straddles a swap) is not loaded half-written.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::config::{Config, ConfigErrors, Env, SERVER_FILE};
use crate::state::AppState;

/// How often the config files are compared, unless `--watch-interval` says otherwise. With the
/// two-poll debounce a change is live 2–4 s after it reaches the filesystem.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Whether and how often the config directory is polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Never: only SIGHUP reloads.
    Off,
    /// Every this long.
    Every(Duration),
}

impl Default for Interval {
    fn default() -> Self {
        Self::Every(DEFAULT_INTERVAL)
    }
}

impl FromStr for Interval {
    type Err = String;

    /// `off` or `0` disable polling; otherwise a duration such as `2s` or `500ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s == "0" {
            return Ok(Self::Off);
        }
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => Ok(Self::Off),
            Ok(d) => Ok(Self::Every(d)),
            Err(e) => Err(format!(
                "{e}: give a duration such as 2s or 500ms, or `off`"
            )),
        }
    }
}

/// What the files looked like when they were last acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// `authgate.toml` and every `workspaces/*.toml`.
    config: [u8; 32],
    /// The secret files the last loaded config names.
    secrets: [u8; 32],
}

/// The digest of `authgate.toml` and `workspaces/*.toml`, taken *before* a load, so a change
/// made while the config is being read is still seen by the next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDigest([u8; 32]);

impl ConfigDigest {
    /// The files in `dir` as they are now.
    pub fn of(dir: &Path) -> Self {
        Self(config_digest(dir))
    }
}

/// The files a reload reads, and what they held when the serving config was loaded.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The config directory.
    dir: PathBuf,
    /// Secret files named by the config last loaded (cookie secrets, Redis URL, client
    /// secrets), so a rotated Secret volume is picked up too.
    secret_files: Vec<PathBuf>,
    /// The digests the serving config was loaded from.
    seen: Seen,
}

impl Watched {
    /// The files `config` reads in `dir`; `before` was taken just before `config` was loaded.
    pub fn new(dir: &Path, config: &Config, before: ConfigDigest) -> Self {
        let secret_files = secret_files(config);
        let secrets = files_digest(&secret_files);
        Self {
            dir: dir.to_path_buf(),
            secret_files,
            seen: Seen {
                config: before.0,
                secrets,
            },
        }
    }

    fn look(&self) -> Seen {
        Seen {
            config: config_digest(&self.dir),
            secrets: files_digest(&self.secret_files),
        }
    }
}

/// Every secret file `config` names, sorted, without repeats.
fn secret_files(config: &Config) -> Vec<PathBuf> {
    let server = &config.server;
    let mut files: Vec<PathBuf> = std::iter::once(&server.cookie_secrets)
        .chain(
            config
                .workspaces
                .iter()
                .flat_map(|w| w.providers.iter().map(|p| &p.client_secret)),
        )
        .filter_map(|s| s.file.clone())
        .chain(
            config
                .workspaces
                .iter()
                .flat_map(|w| w.clients.iter().filter_map(|c| c.keys_file.clone())),
        )
        .chain(
            server
                .redis
                .iter()
                .flat_map(|r| r.files())
                .map(PathBuf::from),
        )
        .collect();
    files.sort();
    files.dedup();
    files
}

/// The workspaces directory as `config::load` finds it: `workspaces_dir` of the server file,
/// relative to `dir`, else `workspaces`. A server file that does not parse falls back to the
/// default; the reload it triggers reports the problem.
fn workspaces_dir(dir: &Path, server_text: Option<&str>) -> PathBuf {
    let named = server_text
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| match t.get("workspaces_dir") {
            Some(toml::Value::String(s)) => Some(s.clone()),
            _ => None,
        });
    dir.join(named.as_deref().unwrap_or("workspaces"))
}

/// SHA-256 over `authgate.toml` and `workspaces/*.toml` (names and contents, the same files
/// `config::load` picks), following symlinks as a read does.
fn config_digest(dir: &Path) -> [u8; 32] {
    let mut h = Sha256::new();
    let server = dir.join(SERVER_FILE);
    let server_text = std::fs::read(&server).ok();
    add_file(&mut h, &server, server_text.as_deref().ok_or(()));
    let ws_dir = workspaces_dir(
        dir,
        server_text
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok()),
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&ws_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for f in &files {
        add_file(&mut h, f, std::fs::read(f).as_deref().map_err(|_| ()));
    }
    h.finalize().into()
}

/// SHA-256 over the contents of `files` (a missing one counts as a distinct state).
fn files_digest(files: &[PathBuf]) -> [u8; 32] {
    let mut h = Sha256::new();
    for f in files {
        add_file(&mut h, f, std::fs::read(f).as_deref().map_err(|_| ()));
    }
    h.finalize().into()
}

/// Feeds one file to the digest: its path and length-prefixed content, or a mark that it could
/// not be read, so no two different sets of files feed the same bytes.
fn add_file(h: &mut Sha256, path: &Path, content: Result<&[u8], ()>) {
    let name = path.as_os_str().as_encoded_bytes();
    h.update((name.len() as u64).to_le_bytes());
    h.update(name);
    match content {
        Ok(bytes) => {
            h.update([1]);
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        Err(()) => h.update([0]),
    }
}

/// Why a reload was attempted, for the log.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// The files changed.
    Change,
    /// SIGHUP.
    Signal,
}

/// Reloads on SIGHUP and, unless `interval` is [`Interval::Off`], whenever the files change.
///
/// A refused config is logged once per distinct content at error level, one line per problem
/// naming file, field and problem; the previous config keeps serving. SIGHUP always reloads and
/// always logs, since someone asked.
pub async fn run(
    state: AppState,
    watched: Watched,
    env: Arc<dyn Env>,
    interval: Interval,
    mut hup: Hangup,
) {
    let mut watched = watched;
    let mut seen = watched.seen;
    let mut pending: Option<Seen> = None;
    let mut tick = match interval {
        Interval::Every(d) => {
            let mut t = tokio::time::interval(d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            Some(t)
        }
        Interval::Off => None,
    };
    if let Interval::Every(d) = interval {
        tracing::info!(interval = ?d, "watching the configuration for changes");
    }
    loop {
        let cause = tokio::select! {
            () = hup.recv() => Cause::Signal,
            _ = async {
                match tick.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            } => Cause::Change,
        };
        let now = look(&watched).await;
        if let Cause::Change = cause {
            if now == seen {
                pending = None;
                continue;
            }
            if pending != Some(now) {
                // Changed since the last poll: wait for one more poll to agree.
                pending = Some(now);
                continue;
            }
        }
        pending = None;
        seen = now;
        let (st, dir, e) = (state.clone(), watched.dir.clone(), env.clone());
        let result = tokio::task::spawn_blocking(move || {
            crate::server::reload_config(&st, &dir, e.as_ref())
        })
        .await;
        match result {
            Ok(Ok(config)) => {
                let before = watched.secret_files.clone();
                watched.secret_files = secret_files(&config);
                if watched.secret_files != before {
                    // Other secret files now: what they hold is what was just read.
                    seen.secrets = look(&watched).await.secrets;
                }
                tracing::info!(
                    cause = ?cause,
                    workspaces = config.workspaces.len(),
                    "configuration reloaded"
                );
            }
            Ok(Err(errors)) => log_refusal(cause, &errors),
            Err(e) => {
                tracing::error!(error = %e, "reload task failed; the previous configuration stays")
            }
        }
    }
}

/// The digest, read off the runtime's worker threads.
async fn look(watched: &Watched) -> Seen {
    let w = watched.clone();
    match tokio::task::spawn_blocking(move || w.look()).await {
        Ok(seen) => seen,
        // Only a panic gets here; an all-zero digest makes the next poll try again.
        Err(_) => Seen {
            config: [0; 32],
            secrets: [0; 32],
        },
    }
}

fn log_refusal(cause: Cause, errors: &ConfigErrors) {
    for e in &errors.0 {
        tracing::error!(
            file = %e.file.display(),
            field = %e.field,
            problem = %e.problem,
            "invalid configuration"
        );
    }
    tracing::error!(
        cause = ?cause,
        problems = errors.0.len(),
        "reload refused; the previous configuration stays"
    );
}

/// SIGHUP as a stream; never fires where there are no signals. Made before the port is bound:
/// a SIGHUP that arrives before a handler exists would end the process.
#[derive(Debug)]
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Default for Hangup {
    fn default() -> Self {
        Self::new()
    }
}

impl Hangup {
    /// Installs the handler (needs a running Tokio runtime).
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                signal: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.signal.as_mut() {
            if s.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        for off in ["off", "OFF", "0", "0s", " off "] {
            assert_eq!(off.parse::<Interval>(), Ok(Interval::Off), "{off:?}");
        }
        assert_eq!(
            "500ms".parse::<Interval>(),
            Ok(Interval::Every(Duration::from_millis(500)))
        );
        assert_eq!(
            "3s".parse::<Interval>(),
            Ok(Interval::Every(Duration::from_secs(3)))
        );
        let e = "soon".parse::<Interval>().unwrap_err();
        assert!(e.contains("off"), "{e}");
    }

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn the_digest_follows_every_file_config_reads_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        write(&dir.join("authgate.toml"), "");
        write(&dir.join("workspaces/a.toml"), "hosts = [\"a.test\"]\n");
        let first = config_digest(dir);
        assert_eq!(config_digest(dir), first, "stable");
        write(&dir.join("workspaces/notes.txt"), "not read by the config");
        assert_eq!(config_digest(dir), first, "a file the config ignores");
        write(&dir.join("workspaces/b.toml"), "");
        let with_b = config_digest(dir);
        assert_ne!(with_b, first, "a new workspace file");
        write(&dir.join("workspaces/b.toml"), "auth = \"none\"\n");
        assert_ne!(config_digest(dir), with_b, "an edited workspace file");
        // Moving the workspaces directory: the digest follows the server file.
        write(&dir.join("authgate.toml"), "workspaces_dir = \"ws\"\n");
        let moved = config_digest(dir);
        write(&dir.join("workspaces/c.toml"), "");
        assert_eq!(config_digest(dir), moved, "the old directory is not read");
        write(&dir.join("ws/c.toml"), "");
        assert_ne!(config_digest(dir), moved, "the named directory is");
    }

    /// A machine client's key file is watched like the other secret files: rotating its keys
    /// reloads the config.
    #[test]
    fn a_machine_clients_key_file_is_a_watched_secret_file() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let keys = dir.join("ci.keys");
        write(&keys, &format!("sha256:{}\n", "ab".repeat(32)));
        write(
            &dir.join("authgate.toml"),
            "[secrets]\ncookie_secrets_env = \"C\"\n",
        );
        write(
            &dir.join("workspaces/mcd.toml"),
            &format!(
                "hosts = [\"mcd.test\"]\nauth = \"none\"\n[[client]]\nname = \"ci\"\napi_keys_file = \"{}\"\n",
                keys.display()
            ),
        );
        let env: std::collections::HashMap<String, String> =
            [("C".to_string(), "c".repeat(64))].into();
        let config = crate::config::load(dir, &env).unwrap();
        assert!(
            secret_files(&config).contains(&keys),
            "{:?}",
            secret_files(&config)
        );
    }

    #[test]
    fn secret_files_count_and_a_missing_one_differs_from_an_empty_one() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("s");
        let missing = files_digest(std::slice::from_ref(&f));
        write(&f, "");
        let empty = files_digest(std::slice::from_ref(&f));
        assert_ne!(missing, empty);
        write(&f, "rotated");
        assert_ne!(files_digest(std::slice::from_ref(&f)), empty);
    }
}
