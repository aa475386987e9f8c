//! The static release binaries `scripts/cross-build` puts in `target/dist/` serve as the host
//! build does: `/ping`, `/ready`, and `/oauth2/auth` for a login workspace (session cookie and
//! RS256/ES256 bearer JWTs accepted, nothing else) and for a login-free workspace. The aarch64
//! binary runs under `qemu-aarch64-static`, called explicitly, so no binfmt registration is
//! needed; ring's aarch64 assembly (AES-GCM for cookies, RSA and P-256 for JWTs) is exercised.
//!
//! Ignored by default (cross-building takes minutes): `scripts/smoke-aarch64` builds the
//! binaries and runs these tests.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use testkit::config::{oidc_workspace, open_workspace};
use testkit::{env_with, idp, tokens, ChildGuard, ConfigDir, COOKIE_SECRET};
const LOGIN_HOST: &str = "mcd.smoke.test";
const OPEN_HOST: &str = "perso.smoke.test";
const CLIENT_ID: &str = "authgate-smoke";

/// The binary `scripts/cross-build` made for `arch` (`arm64`, `amd64`).
fn dist_binary(arch: &str) -> PathBuf {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/dist/linux-{arch}/authgate"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/cross-build (or scripts/smoke-aarch64)",
        p.display()
    );
    p
}

/// ELF `e_machine` of a file: 183 for aarch64, 62 for x86-64.
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// A raw `GET`: status, lower-cased head, body.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String, String)> {
    let a = testkit::raw::get(SocketAddr::from(([127, 0, 0, 1], port)), path, headers).ok()?;
    Some((a.status, a.head, a.body))
}

fn config_dir(issuer: &str) -> ConfigDir {
    let login = format!(
        "{}[session]\ncookie_name = \"authgate-mcd\"\n[headers]\nuser = \"email\"\nemail = \"email\"\n",
        oidc_workspace(LOGIN_HOST, issuer, CLIENT_ID, "SMOKE_CLIENT_SECRET")
    );
    ConfigDir::new("")
        .workspace("mcd", &login)
        .workspace("perso", &open_workspace(OPEN_HOST))
}

/// A session cookie sealed by the host build of the library with the same secret and config:
/// the cross-built binary must open it.
fn session_cookie(config: &Path) -> String {
    let env = env_with(&[("SMOKE_CLIENT_SECRET", "smoke")]);
    let (name, value) = testkit::session::session_cookie(config, &env, LOGIN_HOST).unwrap();
    format!("{name}={value}")
}

fn bearer(alg: Algorithm, kid: &str, issuer: &str) -> String {
    let now = testkit::now();
    tokens::sign(
        alg,
        Some(kid),
        &serde_json::json!({
            "iss": issuer, "sub": "user-123", "aud": CLIENT_ID, "exp": now + 600, "iat": now,
            "email": "alice@example.test", "email_verified": true,
        }),
    )
}

/// Starts the binary (through `runner` if given) and checks every answer.
fn smoke(arch: &str, runner: Option<&str>, machine: u16) {
    let bin = dist_binary(arch);
    assert_eq!(
        elf_machine(&bin),
        machine,
        "{} has the wrong architecture",
        bin.display()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let idp = idp::start(&rt, 0).unwrap();
    let config = config_dir(&idp.issuer);
    let port = testkit::free_port();
    let mut cmd = match runner {
        Some(r) => {
            let mut c = Command::new(r);
            c.arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.args(["serve", "--config"])
        .arg(config.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("AUTHGATE_COOKIE_SECRETS", COOKIE_SECRET)
        .env("SMOKE_CLIENT_SECRET", "smoke")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let _child = ChildGuard(cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run {}: {e} (apt-get install qemu-user-static)",
            runner.unwrap_or("the binary")
        )
    }));

    let deadline = started + Duration::from_secs(60);
    let ping = loop {
        if let Some(r) = get(port, "/ping", &[]) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "{arch}: no answer on /ping within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "{arch}: /ping answered {:.0} ms after spawn",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!((ping.0, ping.2.as_str()), (200, "OK"), "{arch}: /ping");
    assert_eq!(get(port, "/ready", &[]).unwrap().0, 200, "{arch}: /ready");

    let auth = |host: &str, extra: &[(&str, &str)]| {
        let url = format!("http://{host}/app");
        let mut headers = vec![("Host", "authgate.svc"), ("X-Original-URL", url.as_str())];
        headers.extend_from_slice(extra);
        // The route names the workspace whose Ingress took the request.
        let route = if host == OPEN_HOST {
            "/oauth2/auth/perso"
        } else {
            "/oauth2/auth/mcd"
        };
        get(port, route, &headers).expect("an answer")
    };
    assert_eq!(auth(OPEN_HOST, &[]).0, 202, "{arch}: login-free workspace");
    assert_eq!(auth(LOGIN_HOST, &[]).0, 401, "{arch}: no credentials");
    assert_eq!(
        auth(LOGIN_HOST, &[("Cookie", "authgate-mcd=forged")]).0,
        401,
        "{arch}: forged cookie"
    );
    let cookie = session_cookie(config.path());
    let (status, head, _) = auth(LOGIN_HOST, &[("Cookie", &cookie)]);
    assert_eq!(status, 202, "{arch}: session cookie");
    assert!(
        head.contains("x-auth-request-user: alice@example.test"),
        "{arch}: {head}"
    );

    for (alg, kid) in [
        (Algorithm::RS256, tokens::RSA_KID),
        (Algorithm::ES256, tokens::EC_KID),
    ] {
        let value = format!("Bearer {}", bearer(alg, kid, &idp.issuer));
        // Discovery and the JWKS are fetched in the background after start: poll, don't sleep.
        let (status, head) = loop {
            let (s, head, _) = auth(LOGIN_HOST, &[("Authorization", &value)]);
            if s == 202 || Instant::now() > deadline {
                break (s, head);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status, 202, "{arch}: bearer {alg:?}");
        assert!(
            head.contains("x-auth-request-email: alice@example.test"),
            "{arch}: {head}"
        );
    }
    let forged = format!(
        "Bearer {}",
        tokens::sign_rsa2(
            Some(tokens::RSA_KID),
            &serde_json::json!({
                "iss": idp.issuer, "sub": "x", "aud": CLIENT_ID, "exp": 4_000_000_000u64, "iat": 1,
            })
        )
    );
    assert_eq!(
        auth(LOGIN_HOST, &[("Authorization", &forged)]).0,
        401,
        "{arch}: wrong key"
    );
    println!(
        "{arch}: every check passed ({} bytes)",
        std::fs::metadata(&bin).unwrap().len()
    );
}

#[test]
#[ignore = "needs target/dist/linux-arm64/authgate: run scripts/smoke-aarch64"]
fn aarch64_binary_serves_under_qemu() {
    smoke("arm64", Some("qemu-aarch64-static"), 183);
}

#[test]
#[ignore = "needs target/dist/linux-amd64/authgate: run scripts/smoke-aarch64"]
fn amd64_binary_serves() {
    smoke("amd64", None, 62);
}
