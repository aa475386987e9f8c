//! Reload without a restart: a config directory swapped the way the kubelet updates a ConfigMap
//! volume is picked up by the poll; an invalid one is refused once, loudly, and the old keeps
//! serving; sessions of unchanged workspaces survive; SIGHUP still reloads; a request in flight
//! finishes on the config it began with.
//!
//! Every wait is a readiness loop with a deadline, never a fixed sleep.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authgate::server::Application;
use authgate::watch::Interval;
use testkit::config::oidc_workspace;
use testkit::idp::{self, Hold};

use crate::forge_flow::{claims, mcd_toml, rs256, Env, COOKIE, HOST};
use crate::helpers::forge::spawn_forge;
use crate::helpers::{env_with, serve_in_process, spawn_authgate, Client, ConfigDir};

/// How often the tests poll: short, so a change is live within a few hundred milliseconds.
const POLL: Duration = Duration::from_millis(100);

/// A config directory laid out as the kubelet lays out a ConfigMap volume mounted with `items`
/// (`authgate.toml`, `workspaces/<name>.toml`): the data in a timestamped directory, `..data`
/// a symlink to it, and the visible entries symlinks through `..data`:
///
/// ```text
/// ..2026_12_02_05_00_00.000000001/authgate.toml
/// ..2026_12_02_05_00_00.000000001/workspaces/public.toml
/// ..data -> ..2026_12_02_05_00_00.000000001
/// authgate.toml -> ..data/authgate.toml
/// workspaces -> ..data/workspaces
/// ```
struct KubeletDir {
    config: ConfigDir,
    generation: u32,
}

impl KubeletDir {
    /// The first generation of `files` (paths relative to the mount).
    fn new(files: &[(&str, &str)]) -> Self {
        let mut k = Self {
            config: ConfigDir {
                dir: tempfile::tempdir().unwrap(),
            },
            generation: 0,
        };
        k.update(files);
        let root = k.config.path();
        std::os::unix::fs::symlink("..data/authgate.toml", root.join("authgate.toml")).unwrap();
        std::os::unix::fs::symlink("..data/workspaces", root.join("workspaces")).unwrap();
        k
    }

    /// What the kubelet's atomic writer does on an update: write the new timestamped
    /// directory, point `..data_tmp` at it, rename that over `..data`, remove the old one.
    fn update(&mut self, files: &[(&str, &str)]) {
        let root = self.config.path().to_path_buf();
        let old = std::fs::read_link(root.join("..data")).ok();
        self.generation += 1;
        let ts = format!("..2026_12_02_05_00_00.{:09}", self.generation);
        for (path, text) in files {
            let p = root.join(&ts).join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        std::os::unix::fs::symlink(&ts, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(root.join(old)).unwrap();
        }
    }

    fn path(&self) -> &Path {
        self.config.path()
    }
}

/// `/oauth2/auth/<workspace>` as NGINX asks it for `http://<host>/`, with an optional cookie.
async fn auth(port: u16, workspace: &str, host: &str, cookie: Option<&str>) -> u16 {
    let original = format!("http://{host}/");
    let mut headers = vec![("x-original-url", original.as_str())];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    Client::new()
        .get(
            &format!("http://authgate.svc:{port}/oauth2/auth/{workspace}"),
            &headers,
        )
        .await
        .status
}

/// Waits until `/oauth2/auth/<workspace>` answers `status` for `host`.
async fn wait_for_auth(port: u16, workspace: &str, host: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = auth(port, workspace, host, None).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host} in {workspace}: still {got}, not {status}, after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `f` holds.
async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn public(hosts: &[&str]) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    format!("hosts = [{}]\nauth = \"none\"\n", hosts.join(", "))
}

#[tokio::test]
async fn a_kubelet_symlink_swap_is_served_without_a_restart() {
    let mut dir = KubeletDir::new(&[
        ("authgate.toml", ""),
        ("workspaces/public.toml", &public(&["a.test"])),
    ]);
    let ag = spawn_authgate(
        &dir.config,
        &[("AUTHGATE_WATCH_INTERVAL", "100ms")],
        "reload-swap",
    );
    assert_eq!(auth(ag.port, "public", "a.test", None).await, 202);
    assert_eq!(auth(ag.port, "public", "b.test", None).await, 403);
    // Steady requests for the unchanged host run across the swap: none may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = crate::helpers::steady_load(
        format!("http://127.0.0.1:{}/oauth2/auth/public", ag.port),
        vec![("x-original-url".into(), "http://a.test/x".into())],
        4,
        |s| s == 202,
        stop.clone(),
    );
    dir.update(&[
        ("authgate.toml", ""),
        ("workspaces/public.toml", &public(&["a.test", "b.test"])),
    ]);
    wait_for_auth(ag.port, "public", "b.test", 202).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let figures = load.await.unwrap();
    println!(
        "reload under load: {} requests sent, {} failed",
        figures.sent, figures.failed
    );
    assert!(figures.sent > 0);
    assert_eq!(figures.failed, 0, "{figures:?}");
    assert_eq!(auth(ag.port, "public", "a.test", None).await, 202);
    // A workspace added by the same kind of update is served too.
    dir.update(&[
        ("authgate.toml", ""),
        ("workspaces/public.toml", &public(&["a.test", "b.test"])),
        ("workspaces/docs.toml", &public(&["docs.test"])),
    ]);
    wait_for_auth(ag.port, "docs", "docs.test", 202).await;
    assert!(ag.log_text().contains("configuration reloaded"));
}

#[tokio::test]
async fn an_invalid_update_keeps_the_old_config_and_is_logged_once_with_file_field_and_problem() {
    let mut dir = KubeletDir::new(&[
        ("authgate.toml", ""),
        ("workspaces/public.toml", &public(&["a.test"])),
    ]);
    let ag = spawn_authgate(
        &dir.config,
        &[("AUTHGATE_WATCH_INTERVAL", "100ms")],
        "reload-invalid",
    );
    // `other` and `public` both claim `a.test` (reported on the later file, `public`): the
    // whole update is refused.
    dir.update(&[
        ("authgate.toml", ""),
        ("workspaces/public.toml", &public(&["a.test", "b.test"])),
        ("workspaces/other.toml", &public(&["a.test"])),
    ]);
    wait_until("the refusal is logged", || {
        ag.log_text().contains("reload refused")
    })
    .await;
    let log = ag.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("invalid configuration"))
        .unwrap_or_else(|| panic!("no problem line in:\n{log}"));
    for part in [
        "ERROR",
        "file=workspaces/public.toml",
        "field=hosts[0]",
        "`a.test` is already served by workspace `other`",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    assert_eq!(auth(ag.port, "public", "a.test", None).await, 202);
    assert_eq!(
        auth(ag.port, "public", "b.test", None).await,
        403,
        "nothing of the refused update is live"
    );
    // A bad field in a later update is refused and named the same way.
    dir.update(&[
        ("authgate.toml", ""),
        ("workspaces/public.toml", &public(&["a.test", "b.test"])),
        (
            "workspaces/other.toml",
            "hosts = [\"c.test\"]\nauth = \"maybe\"\n",
        ),
    ]);
    wait_until("the second refusal is logged", || {
        ag.log_text().matches("reload refused").count() == 2
    })
    .await;
    assert!(
        ag.log_text()
            .lines()
            .any(|l| l.contains("file=workspaces/other.toml") && l.contains("field=auth")),
        "{}",
        ag.log_text()
    );
    // Then a valid one is picked up. Many polls saw each invalid content meanwhile: each was
    // refused once, not once per poll.
    dir.update(&[
        ("authgate.toml", ""),
        ("workspaces/public.toml", &public(&["a.test", "b.test"])),
        ("workspaces/other.toml", &public(&["c.test"])),
    ]);
    wait_for_auth(ag.port, "other", "c.test", 202).await;
    assert_eq!(auth(ag.port, "public", "b.test", None).await, 202);
    assert_eq!(ag.log_text().matches("reload refused").count(), 2);
}

#[tokio::test]
async fn a_session_of_an_unchanged_workspace_survives_a_reload_of_another() {
    let forge = spawn_forge().await;
    let mcd = mcd_toml(&forge.issuer);
    let mut dir = KubeletDir::new(&[
        ("authgate.toml", ""),
        ("workspaces/mcd.toml", &mcd),
        ("workspaces/perso.toml", &public(&["perso.test"])),
    ]);
    let app = Application::build(
        dir.path(),
        Some("127.0.0.1:0".parse().unwrap()),
        Arc::new(env_with(&[("MCD_SECRET", "s3cret")])),
    )
    .await
    .unwrap()
    .with_watch(Interval::Every(POLL));
    let mut env = Env::new(forge, serve_in_process(app));
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let port = env.app.port;
    assert_eq!(auth(port, "mcd", HOST, Some(&cookie)).await, 202);
    let before = env.app.state.registry();
    dir.update(&[
        ("authgate.toml", ""),
        ("workspaces/mcd.toml", &mcd),
        (
            "workspaces/perso.toml",
            &public(&["perso.test", "new.test"]),
        ),
    ]);
    wait_for_auth(port, "perso", "new.test", 202).await;
    let after = env.app.state.registry();
    assert!(
        !Arc::ptr_eq(&before.workspaces[0], &after.workspaces[0]),
        "mcd was rebuilt from the new config, not kept"
    );
    // Its keys derive from the master secret and the workspace name: the cookie still opens.
    assert_eq!(auth(port, "mcd", HOST, Some(&cookie)).await, 202);
    assert_eq!(auth(port, "mcd", HOST, None).await, 401);
}

#[tokio::test]
async fn sighup_still_reloads_with_the_poll_off() {
    let config = ConfigDir::new("").workspace("public", &public(&["a.test"]));
    let ag = spawn_authgate(
        &config,
        &[("AUTHGATE_WATCH_INTERVAL", "off")],
        "reload-sighup",
    );
    assert_eq!(auth(ag.port, "public", "b.test", None).await, 403);
    std::fs::write(
        config.path().join("workspaces/public.toml"),
        public(&["a.test", "b.test"]),
    )
    .unwrap();
    ag.signal("-HUP");
    wait_for_auth(ag.port, "public", "b.test", 202).await;
    assert!(ag.log_text().contains("cause=Signal"), "{}", ag.log_text());
}

fn app_toml(issuer: &str, client_id: &str) -> String {
    oidc_workspace("app.test", issuer, client_id, "S")
}

#[tokio::test]
async fn a_request_in_flight_during_a_reload_finishes_on_the_config_it_began_with() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let idp = idp::spawn(Hold::Until(gate)).await;
    let issuer = idp.issuer.clone();
    let mut dir = KubeletDir::new(&[
        ("authgate.toml", ""),
        ("workspaces/app.toml", &app_toml(&issuer, "old-client")),
        ("workspaces/public.toml", &public(&["pub.test"])),
    ]);
    let app = Application::build(
        dir.path(),
        Some("127.0.0.1:0".parse().unwrap()),
        Arc::new(env_with(&[("S", "secret")])),
    )
    .await
    .unwrap()
    .with_watch(Interval::Every(POLL));
    let app = serve_in_process(app);
    let port = app.port;
    // A login start waits for the provider's discovery, which the gate holds back.
    let in_flight = tokio::spawn(async move {
        Client::new()
            .get(
                &format!("http://app.test:{port}/oauth2/start/app?rd=/"),
                &[],
            )
            .await
    });
    // The request has begun once it holds the registry: the swap's copy, ours, and its own.
    let state = app.state.clone();
    wait_until("the login start holds the registry", || {
        Arc::strong_count(&state.registry()) >= 3
    })
    .await;
    dir.update(&[
        ("authgate.toml", ""),
        ("workspaces/app.toml", &app_toml(&issuer, "new-client")),
        (
            "workspaces/public.toml",
            &public(&["pub.test", "pub2.test"]),
        ),
    ]);
    wait_for_auth(port, "public", "pub2.test", 202).await;
    assert!(
        !in_flight.is_finished(),
        "the login start was still waiting"
    );
    open.send_replace(true);
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.location();
    let client_id = |u: &url::Url| {
        u.query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(client_id(&location).as_deref(), Some("old-client"));
    // A request begun after the reload uses the new config.
    let r = Client::new()
        .get(
            &format!("http://app.test:{port}/oauth2/start/app?rd=/"),
            &[],
        )
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(client_id(&r.location()).as_deref(), Some("new-client"));
}
