//! `scripts/demo`, the README's one command, run as a user runs it: it starts NGINX, the
//! OpenID Provider, authgate and the app and prints where to go; Chromium opens the printed URL
//! and signs in as a printed user; Ctrl-C (SIGINT) then leaves no process, no listening port
//! and no temporary directory behind.
//!
//! The demo is given the authgate binary this test run has built (`DEMO_AUTHGATE`), so it
//! compiles nothing: neither the README's `--release` build nor a dev build, whose features
//! differ from the tests' (dev-dependencies widen tokio's and axum's) and so would compile
//! part of the tree again.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::browser::{run_browser, screenshots};
use crate::helpers::{artifacts, free_port, repo};
use testkit::ChildGuard;

/// The demo's script, in its own process group (as a shell runs a command); on drop, stopped
/// as a user would stop it, so a failing test leaves nothing running either.
struct Demo {
    child: ChildGuard,
}

impl Demo {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        self.child.signal(sig);
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.child.wait_exit(limit, Duration::from_millis(20))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        if self.wait_exit(Duration::from_secs(20)).is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid())])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// What the banner says: the URL to open, a user, the temporary directory, the ports.
struct Banner {
    url: String,
    open_urls: Vec<String>,
    user: String,
    prefix: PathBuf,
    ports: Vec<u16>,
    text: String,
}

fn parse_banner(lines: &[String]) -> Banner {
    let text = lines.join("\n");
    let after = |label: &str| -> Vec<&str> {
        lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} line in the banner:\n{text}"))
            .split_whitespace()
            .collect()
    };
    let open_urls: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(String::from)
        })
        .collect();
    let ports = after("Ports")
        .iter()
        .filter_map(|w| w.trim_end_matches(',').parse().ok())
        .collect();
    Banner {
        url: after("Open")[0].to_string(),
        open_urls,
        user: after("Users")[0].to_string(),
        prefix: PathBuf::from(after("Files")[0]),
        ports,
        text: text.clone(),
    }
}

/// Every live process: `(pid, ppid, pgrp, "pid (comm)")`, from `/proc/<pid>/stat`.
fn processes() -> Vec<(u32, u32, u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
        let (Some(pid), Some(ppid), Some(pgrp)) = (
            head.split_whitespace().next().and_then(|p| p.parse().ok()),
            num(1),
            num(2),
        ) else {
            continue;
        };
        if fields[0] != "Z" {
            found.push((pid, ppid, pgrp, format!("{head})")));
        }
    }
    found
}

/// The processes descending from `root`, or in its process group, or in the group of one of
/// those: whatever the demo started (it runs each part in a process group of its own).
fn started_by(root: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut pids = vec![root];
    let mut groups = vec![root];
    loop {
        let before = pids.len();
        for (pid, ppid, pgrp, _) in &all {
            if !pids.contains(pid) && (pids.contains(ppid) || groups.contains(pgrp)) {
                pids.push(*pid);
                groups.push(*pgrp);
            }
        }
        if pids.len() == before {
            break;
        }
    }
    all.into_iter()
        .filter(|(pid, ..)| *pid != root && pids.contains(pid))
        .map(|(pid, _, _, name)| (pid, name))
        .collect()
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

#[tokio::test]
async fn the_demo_signs_a_browser_in_and_stops_clean_on_ctrl_c() {
    let port = free_port();
    let stderr = std::fs::File::create(artifacts().join("demo.log")).unwrap();
    let mut demo = Demo {
        child: Command::new(repo().join("scripts/demo"))
            .env("DEMO_PORT", port.to_string())
            .env("DEMO_AUTHGATE", env!("CARGO_BIN_EXE_authgate"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .expect("cannot run scripts/demo")
            .into(),
    };
    let pgid = demo.pid();

    // Readiness: the banner, which the demo prints once every part answers through NGINX.
    let stdout = demo.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !lines
        .last()
        .is_some_and(|l: &String| l.starts_with("Ctrl-C stops everything"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!(
                "scripts/demo printed no complete banner (stdout so far: {lines:?}); its stderr is in target/test-artifacts/demo.log"
            ),
        }
    }
    let banner = parse_banner(&lines);
    assert!(
        banner.text.contains("authgate demo ready"),
        "{}",
        banner.text
    );
    assert_eq!(banner.url, format!("http://mcd.localhost:{port}/"));
    assert!(
        banner
            .open_urls
            .contains(&format!("http://perso.localhost:{port}/")),
        "{}",
        banner.text
    );
    assert_eq!(banner.ports.len(), 4, "{}", banner.text);
    assert_eq!(banner.ports[0], port);
    assert!(banner.prefix.is_dir(), "{}", banner.text);

    // A browser opens the printed URL and signs in as the first printed user.
    let result = run_browser(json!({
        "start_url": banner.url,
        "login": banner.user,
        "kind": "oidc",
        "expect_text": format!("Signed in as {}@example.test", banner.user),
        "screenshot_dir": screenshots(),
        "name": "demo-mcd",
    }))
    .await;
    assert_eq!(result["final_url"], banner.url.as_str());
    let body = result["body_excerpt"].as_str().unwrap();
    for header in [
        "x-auth-request-user\talice",
        "x-auth-request-email\talice@example.test",
        "x-auth-request-preferred-username\talice",
        "x-auth-request-groups\tg-admins,g-staff",
    ] {
        assert!(body.contains(header), "{header:?} not on the page:\n{body}");
    }
    // The workspace without sign-in shows the app at once, with no identity.
    let open = run_browser(json!({
        "mode": "screenshot",
        "url": format!("http://perso.localhost:{port}/"),
        "name": "demo-perso",
        "screenshot_dir": screenshots(),
    }))
    .await;
    assert_eq!(open["status"], 200, "{open}");
    assert!(
        open["body_excerpt"]
            .as_str()
            .unwrap()
            .contains("No login here"),
        "{open}"
    );

    // Ctrl-C: every process gone, no port left listening, the temporary directory removed.
    let started = started_by(demo.pid());
    assert!(started.len() >= 4, "{started:?}");
    demo.signal("-INT");
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .expect("scripts/demo still runs 30 s after SIGINT");
    assert!(status.success(), "scripts/demo exited with {status}");
    let alive: Vec<_> = processes()
        .into_iter()
        .filter(|(pid, _, pgrp, _)| *pgrp == pgid || started.iter().any(|(p, _)| p == pid))
        .collect();
    assert!(alive.is_empty(), "still running: {alive:?}");
    for p in &banner.ports {
        assert!(
            !listening(*p),
            "port {p} still listens after the demo stopped"
        );
    }
    assert!(
        !banner.prefix.exists(),
        "{} is still there",
        banner.prefix.display()
    );
}
