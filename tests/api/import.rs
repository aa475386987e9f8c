//! `authgate import oauth2-proxy`: configs written as oauth2-proxy's documentation shows them
//! for Entra ID, Keycloak and GitHub become workspace files that `authgate check` accepts, and
//! every option that does not carry over is named on stderr with why. A restriction that cannot
//! be carried refuses the import (exit 78, nothing written) unless `--accept-loss`, which
//! writes a workspace that lets nobody in.

use std::process::Command;

use crate::helpers::ConfigDir;

/// Imports `cfg`, checks the result as `workspaces/app.toml` with the client secret in the
/// environment, and returns the workspace file and stderr.
fn import_and_check(cfg: &str, args: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oauth2-proxy.cfg");
    std::fs::write(&file, cfg).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["import", "oauth2-proxy", file.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    let workspace = String::from_utf8(out.stdout).unwrap();
    let notes = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{notes}");
    let config = ConfigDir::new("").workspace("app", &workspace);
    let check = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["check", config.path().to_str().unwrap()])
        .env_remove("AUTHGATE_CONFIG")
        .env("AUTHGATE_COOKIE_SECRETS", crate::helpers::COOKIE_SECRET)
        .env("CLIENT_SECRET", "from-the-secret")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}\n---\n{workspace}",
        String::from_utf8_lossy(&check.stderr)
    );
    (workspace, notes)
}

fn has_note(notes: &str, option: &str, why: &str) -> bool {
    notes
        .lines()
        .any(|l| l.contains(&format!(": {option}: ")) && l.contains(why))
}

#[test]
fn entra_id_with_the_azure_provider() {
    let (ws, notes) = import_and_check(
        r#"
provider = "azure"
azure_tenant = "0b5c1f0a-1234-4f6e-9abc-0123456789ab"
oidc_issuer_url = "https://login.microsoftonline.com/0b5c1f0a-1234-4f6e-9abc-0123456789ab/v2.0"
client_id = "3f2a8c1e-aaaa-bbbb-cccc-0123456789ab"
client_secret = "s3cr3t~value"
cookie_secret = "OQINaROshtE9TcZkNAm-5Zs2Pv3xaWytBmc5W7sPX7w="
cookie_name = "_oauth2_proxy"
cookie_expire = "168h"
redirect_url = "https://mcd.example.com/oauth2/callback"
email_domains = ["example.com"]
allowed_groups = ["8e9f2b1c-0000-4a5b-9c8d-0123456789ab"]
scope = "openid email profile"
set_xauthrequest = true
pass_access_token = true
set_authorization_header = true
cookie_refresh = "1h0m0s"
upstreams = ["static://202"]
reverse_proxy = true
"#,
        &[],
    );
    assert!(ws.contains("kind = \"azure\""), "{ws}");
    assert!(ws.contains("hosts = [\"mcd.example.com\"]"), "{ws}");
    assert!(ws.contains("lifetime = \"168h\""), "{ws}");
    assert!(
        ws.contains("groups = [\"8e9f2b1c-0000-4a5b-9c8d-0123456789ab\"]"),
        "{ws}"
    );
    assert!(
        !ws.contains("s3cr3t") && !ws.contains("OQINaROs"),
        "no secret in the file: {ws}"
    );
    assert!(
        has_note(&notes, "client_secret", "CLIENT_SECRET"),
        "{notes}"
    );
    assert!(
        has_note(&notes, "cookie_secret", "authgate.toml"),
        "{notes}"
    );
    assert!(ws.contains("refresh_interval = \"1h0m0s\""), "{ws}");
    assert!(ws.contains("pass_access_token = true"), "{ws}");
    assert!(ws.contains("pass_id_token = true"), "{ws}");
    assert!(
        has_note(
            &notes,
            "set_authorization_header",
            "X-Auth-Request-Id-Token"
        ),
        "{notes}"
    );
    assert!(
        !notes.contains("set_xauthrequest") && !notes.contains("upstreams"),
        "{notes}"
    );
}

#[test]
fn entra_id_with_the_oidc_provider_and_skip_auth_routes() {
    let (ws, notes) = import_and_check(
        r#"
provider = "oidc"
oidc_issuer_url = "https://login.microsoftonline.com/0b5c1f0a-1234-4f6e-9abc-0123456789ab/v2.0"
client_id = "3f2a8c1e-aaaa-bbbb-cccc-0123456789ab"
client_secret = "x"
redirect_url = "https://mcd.example.com/oauth2/callback"
email_domains = ["*"]
skip_auth_routes = ["GET=^/healthz$", "^/static/", "POST=^/hooks/.*[0-9]+$"]
skip_auth_preflight = true
cookie_samesite = "lax"
"#,
        &["--secret-env", "CLIENT_SECRET"],
    );
    assert!(ws.contains("kind = \"azure\""), "{ws}");
    assert!(
        ws.contains("path = \"/healthz\"\nmethods = [\"GET\"]"),
        "{ws}"
    );
    assert!(ws.contains("prefix = \"/static/\""), "{ws}");
    assert!(ws.contains("cors_preflight = true"), "{ws}");
    assert!(
        has_note(&notes, "skip_auth_routes", "POST=^/hooks/.*[0-9]+$"),
        "{notes}"
    );
    assert!(
        has_note(&notes, "cookie_samesite", "SameSite=Lax"),
        "{notes}"
    );
}

#[test]
fn keycloak_with_the_keycloak_oidc_provider() {
    let (ws, notes) = import_and_check(
        r#"
provider = "keycloak-oidc"
client_id = "oauth2-proxy"
client_secret = "x"
redirect_url = "https://team.example.com/oauth2/callback"
oidc_issuer_url = "https://keycloak.example.com/realms/platform"
email_domains = ["*"]
allowed_groups = ["/admins"]
code_challenge_method = "S256"
insecure_oidc_allow_unverified_email = true
whitelist_domains = [".example.com", "docs.example.com"]
"#,
        &[],
    );
    assert!(ws.contains("kind = \"keycloak\""), "{ws}");
    assert!(
        ws.contains("issuer = \"https://keycloak.example.com/realms/platform\""),
        "{ws}"
    );
    assert!(ws.contains("groups = [\"/admins\"]"), "{ws}");
    assert!(
        ws.contains("allowed_redirect_hosts = [\"docs.example.com\"]"),
        "{ws}"
    );
    assert!(
        has_note(&notes, "insecure_oidc_allow_unverified_email", "unverified"),
        "{notes}"
    );
    assert!(
        has_note(&notes, "whitelist_domains", ".example.com"),
        "{notes}"
    );
}

#[test]
fn github_with_organisation_and_teams() {
    let (ws, notes) = import_and_check(
        r#"
provider = "github"
client_id = "Iv1.0123456789abcdef"
client_secret = "x"
github_org = "devlabai"
github_team = "platform,ops"
github_repo = "devlabai/site"
email_domains = ["*"]
cookie_secret = "abc"
"#,
        &["--host", "perso.example.com"],
    );
    assert!(ws.contains("kind = \"github\""), "{ws}");
    assert!(ws.contains("hosts = [\"perso.example.com\"]"), "{ws}");
    assert!(
        ws.contains("groups = [\"devlabai/platform\", \"devlabai/ops\"]"),
        "{ws}"
    );
    assert!(
        has_note(
            &notes,
            "github_repo",
            "ignores `devlabai/site` next to github_org"
        ),
        "{notes}"
    );
}

#[test]
fn a_file_without_a_host_or_client_id_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.cfg");
    std::fs::write(&file, "provider = \"github\"\nclient_id = \"x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["import", "oauth2-proxy", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--host"));
}

/// `authgate import oauth2-proxy <dir>/oauth2-proxy.cfg -o <dir>/app.toml` run from another
/// directory, with `files` written beside the config first.
fn import_to_file(cfg: &str, files: &[(&str, &str)], args: &[&str]) -> ImportRun {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oauth2-proxy.cfg");
    std::fs::write(&file, cfg).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let output = dir.path().join("app.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .current_dir(std::env::temp_dir())
        .args(["import", "oauth2-proxy", file.to_str().unwrap(), "-o"])
        .arg(&output)
        .args(args)
        .output()
        .unwrap();
    ImportRun {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        written: std::fs::read_to_string(&output).ok(),
        _dir: dir,
    }
}

struct ImportRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    written: Option<String>,
    _dir: tempfile::TempDir,
}

/// `authgate check` on a directory holding the workspace as `workspaces/app.toml`: exit code
/// and stderr.
fn check(workspace: &str) -> (Option<i32>, String) {
    let config = ConfigDir::new("").workspace("app", workspace);
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["check", config.path().to_str().unwrap()])
        .env_remove("AUTHGATE_CONFIG")
        .env("AUTHGATE_COOKIE_SECRETS", crate::helpers::COOKIE_SECRET)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const KEYCLOAK: &str = r#"provider = "keycloak-oidc"
client_id = "oauth2-proxy"
redirect_url = "https://team.example.com/oauth2/callback"
oidc_issuer_url = "https://keycloak.example.com/realms/platform"
"#;

const GITHUB: &str = r#"provider = "github"
client_id = "Iv1.0123456789abcdef"
redirect_url = "https://perso.example.com/oauth2/callback"
email_domains = ["*"]
"#;

#[test]
fn a_restriction_that_cannot_be_carried_refuses_the_import_and_writes_nothing() {
    for (cfg, option) in [
        (
            format!("{KEYCLOAK}email_domains = [\"*\"]\nallowed_roles = [\"grafana:editor\"]\n"),
            "allowed_roles",
        ),
        (
            format!("{GITHUB}github_users = [\"alice\"]\n"),
            "github_users",
        ),
        (
            format!("{GITHUB}github_repo = \"devlabai/site\"\n"),
            "github_repo",
        ),
        (
            format!("{KEYCLOAK}authenticated_emails_file = \"absent.txt\"\n"),
            "authenticated_emails_file",
        ),
        (
            format!("{KEYCLOAK}email_domains = [\".example.com\"]\n"),
            "email_domains",
        ),
        (KEYCLOAK.to_string(), "email_domains"),
        (
            format!("{KEYCLOAK}email_domains = [\"*\"]\nallowed_groups = [\"admins\"]\n"),
            "allowed_groups",
        ),
    ] {
        let run = import_to_file(&cfg, &[], &[]);
        assert_eq!(run.code, Some(78), "{option}: {}", run.stderr);
        assert_eq!(run.written, None, "{option}");
        assert_eq!(run.stdout, "", "{option}");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains(&format!("oauth2-proxy.cfg: {option}: "))),
            "{option}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("--accept-loss"), "{}", run.stderr);
    }
}

#[test]
fn carried_restrictions_check_clean_and_the_emails_file_is_read_beside_the_config() {
    for (cfg, want) in [
        (
            format!("{KEYCLOAK}email_domains = [\"*\"]\nallowed_roles = [\"admin\", \"oauth2-proxy:editor\"]\n"),
            "[authz]\ngroups = [\"admin\", \"oauth2-proxy:editor\"]\n",
        ),
        (
            format!("{KEYCLOAK}authenticated_emails_file = \"emails.txt\"\n"),
            "[authz]\nemails = [\"ann@example.com\", \"bob@example.org\"]\n",
        ),
        (
            format!("{GITHUB}github_team = \"devlabai:platform\"\n"),
            "[authz]\ngroups = [\"devlabai/platform\"]\n",
        ),
    ] {
        let run = import_to_file(&cfg, &[("emails.txt", "# staff\nAnn@example.com\nbob@example.org\n")], &[]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let ws = run.written.unwrap();
        assert!(ws.contains(want), "{want}\n---\n{ws}");
        assert!(!ws.contains("allow_any_account"), "{ws}");
        let (code, stderr) = check(&ws);
        assert_eq!(code, Some(0), "{stderr}\n---\n{ws}");
        assert_eq!(stderr, "", "no warning: {ws}");
    }
}

#[test]
fn accepted_loss_writes_a_workspace_check_accepts_that_names_the_loss_and_lets_nobody_in() {
    let run = import_to_file(
        &format!("{GITHUB}github_org = \"devlabai\"\ngithub_users = [\"alice\"]\n"),
        &[],
        &["--accept-loss"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let ws = run.written.unwrap();
    assert!(ws.contains("#   github_users: "), "{ws}");
    assert!(ws.contains("# groups = [\"devlabai\"]"), "{ws}");
    assert!(ws.contains("\nemails = [\"nobody@invalid\"]\n"), "{ws}");
    assert!(!ws.contains("allow_any_account"), "{ws}");
    assert!(
        has_note(&run.stderr, "github_users", "accepted with --accept-loss"),
        "{}",
        run.stderr
    );
    let (code, stderr) = check(&ws);
    assert_eq!(code, Some(0), "{stderr}\n---\n{ws}");
}

#[test]
fn the_output_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oauth2-proxy.cfg");
    std::fs::write(&file, format!("{GITHUB}github_org = \"devlabai\"\n")).unwrap();
    let output = dir.path().join("app.toml");
    std::fs::write(&output, "kept").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["import", "oauth2-proxy", file.to_str().unwrap(), "--output"])
        .arg(&output)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "kept");
}

/// oauth2-proxy accepts bearer JWTs only with `skip_jwt_bearer_tokens = true`: the imported
/// file says `bearer = false` without it (never authgate's default on, unasked), and
/// `bearer = true` with it; either file passes `authgate check`.
#[test]
fn bearer_tokens_follow_skip_jwt_bearer_tokens() {
    let base = r#"
provider = "oidc"
oidc_issuer_url = "https://sso.example.com/realms/platform"
client_id = "app"
redirect_url = "https://app.example.com/oauth2/callback"
email_domains = ["example.com"]
"#;
    let (ws, notes) = import_and_check(base, &[]);
    assert!(ws.lines().any(|l| l == "bearer = false"), "{ws}");
    let (ws, _) = import_and_check(&format!("{base}skip_jwt_bearer_tokens = false\n"), &[]);
    assert!(ws.lines().any(|l| l == "bearer = false"), "{ws}");
    let (ws, notes_on) = import_and_check(&format!("{base}skip_jwt_bearer_tokens = true\n"), &[]);
    assert!(ws.lines().any(|l| l == "bearer = true"), "{ws}");
    for n in [&notes, &notes_on] {
        assert!(!n.contains("skip_jwt_bearer_tokens"), "carried over: {n}");
    }
}
