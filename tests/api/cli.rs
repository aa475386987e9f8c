//! The command line: `check` (its refusals and its warnings), `serve` refusing bad config,
//! `secret`, `--version`.

use std::process::Command;

use crate::helpers::{repo, spawn_authgate, ConfigDir};

fn authgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(args)
        .env_remove("AUTHGATE_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn shipped_config_checks_clean() {
    let out = authgate(&["check", repo().join("config").to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 workspaces"));
}

#[test]
fn broken_workspace_gets_one_line_naming_file_and_field() {
    let dir = ConfigDir::new("").workspace(
        "mcd",
        "hosts = [\"mcd.example.com\"]\nauth = \"oidc\"\n[[provider]]\nissuer = \"http://idp.example.com\"\nclient_id = \"x\"\nclient_secret_env = \"S\"\n",
    );
    let out = authgate(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].ends_with(
            "workspaces/mcd.toml: provider[0].issuer: `http://idp.example.com` is not an https URL"
        ),
        "{err}"
    );
}

#[test]
fn syntax_and_type_errors_name_the_key() {
    let dir = ConfigDir::new("").workspace(
        "perso",
        "hosts = [\"perso.example.com\"]\nauth = \"none\"\ninsecure_http = \"yes\"\n",
    );
    let out = authgate(&["check", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workspaces/perso.toml: insecure_http:"),
        "{err}"
    );
    assert!(err.contains("line 3"), "{err}");
    let dir = ConfigDir::new("").workspace(
        "perso",
        "hosts = [\"perso.example.com\"]\nauth = \"none\"\ncookie_nmae = \"x\"\n",
    );
    let err = String::from_utf8_lossy(&authgate(&["check", dir.path().to_str().unwrap()]).stderr)
        .to_string();
    assert!(
        err.contains("workspaces/perso.toml: cookie_nmae: unknown field `cookie_nmae`"),
        "{err}"
    );
}

#[test]
fn check_warns_about_a_session_cookie_without_the_host_prefix_over_https() {
    let login = "auth = \"oidc\"\n[[provider]]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\nclient_secret_env = \"S\"\n";
    let dir = ConfigDir::new("")
        .workspace(
            "team",
            &format!("hosts = [\"team.example.com\"]\n{login}[session]\ncookie_name = \"_oauth2_proxy\"\n"),
        )
        .workspace(
            "ops",
            &format!("hosts = [\"ops.example.com\"]\n{login}[session]\ncookie_name = \"__Host-ops\"\n"),
        )
        .workspace(
            "dev",
            &format!("hosts = [\"dev.localhost\"]\ninsecure_http = true\n{login}[session]\ncookie_name = \"dev\"\n"),
        );
    let out = authgate(&["check", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (3 workspaces"));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("warning: ")
            && lines[0].contains(
                "workspaces/team.toml: session.cookie_name: `_oauth2_proxy` has no `__Host-` prefix"
            )
            && lines[0].ends_with("name it `__Host-_oauth2_proxy`"),
        "{err}"
    );
}

#[test]
fn two_workspaces_claiming_one_host_is_an_error() {
    let dir = ConfigDir::new("domain = \"example.com\"\n")
        .workspace("a", "hosts = [\"app.{domain}\"]\nauth = \"none\"\n")
        .workspace("b", "hosts = [\"APP.example.com\"]\nauth = \"none\"\n");
    let out = authgate(&["check", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        err.contains(
            "workspaces/b.toml: hosts[0]: `app.example.com` is already served by workspace `a`"
        ),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let dir = ConfigDir::new("listen = \"nope\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n").workspace(
        "mcd",
        "hosts = [\"https://mcd.example.com/\"]\nauth = \"oidc\"\n[[provider]]\nkind = \"okta\"\nclient_secret = \"inline\"\nalgorithms = [\"HS256\"]\n",
    );
    let err = String::from_utf8_lossy(&authgate(&["check", dir.path().to_str().unwrap()]).stderr)
        .to_string();
    for want in [
        "authgate.toml: listen:",
        "authgate.toml: trusted_proxies[0]:",
        "workspaces/mcd.toml: hosts[0]:",
        "workspaces/mcd.toml: provider[0].kind:",
        "workspaces/mcd.toml: provider[0].issuer: missing",
        "workspaces/mcd.toml: provider[0].client_id: missing",
        "workspaces/mcd.toml: provider[0].client_secret: secrets do not belong in config files",
        "workspaces/mcd.toml: provider[0].algorithms[0]: `HS256` is never accepted",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn serve_refuses_to_start_on_invalid_config() {
    let dir = ConfigDir::new("").workspace("x", "hosts = []\nauth = \"none\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args([
            "serve",
            "--config",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("AUTHGATE_COOKIE_SECRETS", crate::helpers::COOKIE_SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("workspaces/x.toml: hosts: a workspace serves at least one host"));
}

/// Workspaces whose provider admits accounts anyone can create, behind an empty `[authz]`.
fn open_workspaces() -> ConfigDir {
    let provider = |table: &str| {
        format!("hosts = [\"x.example.com\"]\nauth = \"oidc\"\n[[provider]]\n{table}\nclient_id = \"c\"\nclient_secret_env = \"S\"\n")
    };
    ConfigDir::new("")
        .workspace("gh", &provider("kind = \"github\""))
        .workspace(
            "entra",
            &provider("kind = \"azure\"\nissuer = \"https://login.microsoftonline.com/organizations/v2.0\"")
                .replace("x.example.com", "y.example.com"),
        )
}

const OPEN_GITHUB: &str = "workspaces/gh.toml: authz: provider[0] (github) admits every GitHub account and [authz] is empty: add emails, email_domains or groups, or set authz.allow_any_account = true";
const OPEN_ENTRA: &str =
    "workspaces/entra.toml: authz: provider[0] (azure) admits accounts of any Microsoft tenant";

#[test]
fn check_refuses_a_provider_anyone_can_join_without_rules() {
    let dir = open_workspaces();
    let out = authgate(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().any(|l| l.ends_with(OPEN_GITHUB)), "{err}");
    assert!(err.lines().any(|l| l.contains(OPEN_ENTRA)), "{err}");
    // Saying so explicitly is enough.
    let dir = ConfigDir::new("").workspace(
        "gh",
        "hosts = [\"x.example.com\"]\nauth = \"oidc\"\n[[provider]]\nkind = \"github\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n[authz]\nallow_any_account = true\n",
    );
    let out = authgate(&["check", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_refuses_a_provider_anyone_can_join_without_rules() {
    let dir = open_workspaces();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args([
            "serve",
            "--config",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("AUTHGATE_COOKIE_SECRETS", crate::helpers::COOKIE_SECRET)
        .env("S", "client-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(OPEN_GITHUB), "{err}");
    assert!(err.contains(OPEN_ENTRA), "{err}");
}

#[test]
fn serve_refuses_to_start_without_cookie_secret_or_client_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args([
            "serve",
            "--config",
            repo().join("config").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("AUTHGATE_COOKIE_SECRETS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authgate.toml: secrets.cookie_secrets: $AUTHGATE_COOKIE_SECRETS is not set"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args([
            "serve",
            "--config",
            repo().join("config").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("AUTHGATE_COOKIE_SECRETS", crate::helpers::COOKIE_SECRET)
        .env_remove("AUTHGATE_MCD_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("workspaces/mcd.toml: provider[0].client_secret: $AUTHGATE_MCD_CLIENT_SECRET is not set"), "{err}");
}

#[test]
fn secret_prints_a_usable_master_secret_and_version_prints() {
    let out = authgate(&["secret"]);
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(s.len(), 43);
    assert_ne!(
        s,
        String::from_utf8_lossy(&authgate(&["secret"]).stdout).trim(),
        "fresh each time"
    );
    let v = authgate(&["--version"]);
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("authgate "));
}

#[test]
fn redis_store_needs_a_redis_table() {
    let dir = ConfigDir::new("").workspace(
        "mcd",
        "hosts = [\"mcd.example.com\"]\nauth = \"none\"\n[session]\nstore = \"redis\"\n",
    );
    let err = String::from_utf8_lossy(&authgate(&["check", dir.path().to_str().unwrap()]).stderr)
        .to_string();
    assert!(
        err.contains(
            "workspaces/mcd.toml: session.store: \"redis\" needs a [redis] table in authgate.toml"
        ),
        "{err}"
    );
}

/// `authgate check` reads the `[redis]` files that are not secrets and names each bad key.
#[test]
fn check_names_each_bad_redis_key() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let config = ConfigDir::new(&format!(
        "[redis]\nsentinels = [\"10.0.0.5:26379\", \"nope\"]\ntls = true\nca_file = \"{}\"\n",
        not_pem.display()
    ))
    .workspace(
        "mcd",
        "hosts = [\"mcd.example.com\"]\nauth = \"none\"\n[session]\nstore = \"redis\"\n",
    );
    let out = authgate(&["check", config.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    for want in [
        "authgate.toml: redis.sentinel_master: required with sentinels",
        "authgate.toml: redis.sentinels[1]: `nope` is not host:port",
        &format!(
            "authgate.toml: redis.ca_file: {} holds no PEM certificate",
            not_pem.display()
        ),
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert_eq!(err.lines().count(), 3, "{err}");
}

/// `--workers N` sets the number of threads serving requests: two more workers are two more
/// threads in the process (a login-free workspace and no config polling, whose file reads run
/// on the blocking pool, so nothing else starts a thread).
#[test]
fn workers_sets_the_number_of_serving_threads() {
    let dir =
        ConfigDir::new("").workspace("open", "hosts = [\"open.example.com\"]\nauth = \"none\"\n");
    let threads = |workers: &str| {
        let p = spawn_authgate(
            &dir,
            &[
                ("AUTHGATE_WORKERS", workers),
                ("AUTHGATE_WATCH_INTERVAL", "off"),
            ],
            &format!("workers-{workers}"),
        );
        std::fs::read_dir(format!("/proc/{}/task", p.pid()))
            .unwrap()
            .count()
    };
    let one = threads("1");
    let three = threads("3");
    assert_eq!(
        three,
        one + 2,
        "1 worker: {one} threads, 3 workers: {three}"
    );
}

#[test]
fn zero_workers_is_refused_naming_the_option() {
    let out = authgate(&["serve", "--workers", "0", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--workers"), "{err}");
}

#[test]
fn explain_prints_the_deciding_rule_and_exits_by_answer() {
    let dir = repo().join("examples/rules");
    let dir = dir.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["explain", dir, "-w", "mcd"];
        all.extend_from_slice(args);
        let out = authgate(&all);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["-p", "/healthz"]);
    assert_eq!(
        (code, out.as_str()),
        (
            Some(20),
            "public[0]  decides: public\nanswer: 202 public (no login, no identity headers)\n"
        )
    );
    let (code, out, _) = run(&[
        "-p",
        "/admin/users",
        "--email",
        "ann@example.com",
        "--group",
        "staff,admins",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "rule[2]    no match: path differs\nrule[3]    decides: allow groups admins\n"
        ),
        "{out}"
    );
    assert!(out.contains("X-Auth-Request-Groups: staff,admins"), "{out}");
    assert_eq!(run(&["-p", "/admin/users"]).0, Some(41));
    assert_eq!(
        run(&["-p", "/admin/users", "--email", "bob@example.com"]).0,
        Some(43)
    );
    let (code, out, _) = run(&[
        "-m",
        "POST",
        "-p",
        "/hooks/deploy",
        "--machine-client",
        "deploy-hook",
        "--client-ip",
        "198.51.100.7",
    ]);
    assert_eq!(code, Some(43));
    assert!(out.contains("rule[0]    no match: client address in none of its networks\nrule[1]    decides: deny\n"), "{out}");
    let (code, out, _) = run(&[
        "-m",
        "POST",
        "-p",
        "/hooks/deploy",
        "--machine-client",
        "deploy-hook",
        "--client-ip",
        "192.0.2.9",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("X-Auth-Request-User: client:deploy-hook"),
        "{out}"
    );
    assert_eq!(
        run(&[
            "-p",
            "/admin/users",
            "--email",
            "ann@example.com",
            "--group",
            "admins",
            "--query",
            "allowed_groups=ops"
        ])
        .0,
        Some(43)
    );
    // questions it cannot answer: 64, naming why
    let (code, _, err) = run(&["-p", "/", "--machine-client", "nobody"]);
    assert_eq!(code, Some(64));
    assert!(err.contains("`nobody` is not a [[client]]"), "{err}");
    let (code, _, err) = run(&["-p", "/", "--host", "elsewhere.example.com"]);
    assert_eq!(code, Some(64));
    assert!(err.contains("not one of the workspace's hosts"), "{err}");
    let out = authgate(&["explain", dir, "-w", "perso", "-p", "/"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workspace `perso` (there are: mcd)"));
    // an invalid config: 78 with its problems
    let broken = ConfigDir::new("").workspace("mcd", "hosts = [\"x.test\"]\nauth = \"none\"\n[[rule]]\npath = \"/a\"\naction = \"allow\"\nany_user = true\n");
    let out = authgate(&[
        "explain",
        broken.path().to_str().unwrap(),
        "-w",
        "mcd",
        "-p",
        "/a",
    ]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rule[0].action"));
}

#[test]
fn check_names_a_bad_rule_and_warns_about_a_shadowed_one() {
    let ws = "hosts = [\"x.test\"]\nauth = \"oidc\"\ninsecure_http = true\n[[provider]]\nissuer = \"https://idp.test\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n";
    let bad = ConfigDir::new("").workspace(
        "mcd",
        &format!("{ws}[[rule]]\nprefix = \"/a\"\naction = \"deny\"\n"),
    );
    let out = authgate(&["check", bad.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workspaces/mcd.toml: rule[0].prefix: `/a` must end with '/'"),
        "{err}"
    );
    let shadowed = ConfigDir::new("").workspace(
        "mcd",
        &format!("{ws}[[rule]]\nprefix = \"/a/\"\naction = \"deny\"\n[[rule]]\npath = \"/a/b\"\naction = \"allow\"\nany_user = true\n"),
    );
    let out = authgate(&["check", shadowed.path().to_str().unwrap()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("workspaces/mcd.toml: rule[1]: can never match: every request it covers is decided first by rule[0]"), "{err}");
}
