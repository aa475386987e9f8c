//! The servers of the load benchmark, each with its own config under the run directory, on
//! loopback ports of its own, stopped (SIGTERM, then SIGKILL) when its handle drops:
//! authgate, NGINX (the `return 204` floor, and the `auth_request` front end rendered as
//! ingress-nginx renders the auth annotations), Apache with mod_auth_openidc, and the test
//! OpenID Provider (npm `oidc-provider`) Apache logs in against.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::nginx::{auth_location_headers, protected_location, REQ_ID_MAP, SERVICE_HOST};
use testkit::try_free_port;

use crate::procfs;

/// A running server process.
pub(crate) struct Server {
    pub(crate) name: String,
    child: Child,
    /// Its main port.
    pub(crate) port: u16,
    /// Where it logs.
    pub(crate) log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The process and everything it forked (NGINX and Apache workers).
    pub(crate) fn pids(&self) -> Vec<u32> {
        procfs::tree(self.child.id())
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits until the port accepts connections; fails early if the process died.
    fn wait_listening(mut self) -> Result<Self, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}); see {}",
                    self.name,
                    self.log.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not listen on {}", self.name, self.port));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(self)
    }
}

fn spawn(name: &str, mut cmd: Command, port: u16, log: PathBuf) -> Result<Server, String> {
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Server {
        name: name.into(),
        child,
        port,
        log,
    }
    .wait_listening()
}

/// One raw HTTP/1.1 request: the status and the response head, lower-cased.
pub(crate) fn probe(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
) -> Result<(u16, String), String> {
    testkit::raw::get(addr, path, headers)
        .map(|a| (a.status, a.head))
        .map_err(|e| format!("no HTTP answer from {addr}{path}: {e}"))
}

// === authgate ===

/// Starts the authgate binary on a free port with `env`.
pub(crate) fn authgate(
    bin: &Path,
    config: &Path,
    env: &[(String, String)],
    log: PathBuf,
) -> Result<Server, String> {
    let port = try_free_port()?;
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn("authgate", cmd, port, log)
}

/// `loadkit reference`: the minimal axum handler doing the same cookie check.
pub(crate) fn reference(
    config: &Path,
    host: &str,
    layers: bool,
    env: &[(String, String)],
    log: PathBuf,
) -> Result<Server, String> {
    let port = try_free_port()?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(me);
    cmd.args(["reference", "--config"]).arg(config).args([
        "--host",
        host,
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    if layers {
        cmd.args(["--with", "all"]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn("reference", cmd, port, log)
}

// === NGINX ===

const NGINX_MODULES: &str = "load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_set_misc_module.so;
";

fn nginx_main(dir: &Path, name: &str, workers: &str, http: &str) -> String {
    let p = dir.display();
    format!(
        r#"{NGINX_MODULES}daemon off;
worker_processes {workers};
pid {p}/{name}.pid;
error_log {p}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {p}/{name}-body;
  proxy_temp_path {p}/{name}-proxy;
  fastcgi_temp_path {p}/{name}-fastcgi;
  uwsgi_temp_path {p}/{name}-uwsgi;
  scgi_temp_path {p}/{name}-scgi;
{REQ_ID_MAP}{http}}}
"#
    )
}

fn start_nginx(dir: &Path, name: &str, conf: String, port: u16) -> Result<Server, String> {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-e")
        .arg(dir.join(format!("{name}-error.log")))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path);
    spawn(name, cmd, port, dir.join(format!("{name}.out")))
}

/// NGINX answering every request with `return 204`: the floor.
pub(crate) fn nginx_floor(dir: &Path, workers: &str) -> Result<Server, String> {
    let port = try_free_port()?;
    let http = format!(
        "  server {{\n    listen 127.0.0.1:{port} reuseport;\n    location / {{ return 204; }}\n  }}\n"
    );
    let name = format!("nginx-floor-{workers}");
    start_nginx(dir, &name, nginx_main(dir, &name, workers, &http), port)
}

/// Where the auth subrequest of one end-to-end front end goes.
pub(crate) enum AuthBackend {
    /// `return 204` inside NGINX: the floor.
    Inline,
    /// `proxy_pass` to this URL (path included) through a keep-alive upstream, as
    /// ingress-nginx renders `auth-url` with the `auth-keepalive` annotation. `original_host`
    /// sends the user's `Host` instead of the auth Service's name (mod_auth_openidc refuses a
    /// session cookie presented for another host than it was issued for).
    KeepAlive {
        port: u16,
        path: String,
        original_host: bool,
    },
    /// `proxy_pass` straight to the URL, a new connection per subrequest: ingress-nginx's
    /// rendering without `auth-keepalive` (its default).
    Direct { port: u16, path: String },
}

/// The front ends: one NGINX, one server block per backend (ports in the order given), and the
/// app every block proxies to after the auth subrequest (a `return 200` server of the same
/// NGINX, through a keep-alive upstream as ingress-nginx renders Service backends).
pub(crate) fn nginx_e2e(
    dir: &Path,
    workers: &str,
    backends: &[AuthBackend],
) -> Result<(Server, Vec<u16>), String> {
    let app_port = try_free_port()?;
    let mut http = format!(
        r#"  upstream app {{
    server 127.0.0.1:{app_port};
    keepalive 320;
    keepalive_requests 10000;
    keepalive_timeout 60s;
  }}
  server {{
    listen 127.0.0.1:{app_port} reuseport;
    location / {{ return 200 "ok\n"; }}
  }}
"#
    );
    let mut ports = Vec::new();
    for (i, b) in backends.iter().enumerate() {
        let port = try_free_port()?;
        ports.push(port);
        let auth = match b {
            AuthBackend::Inline => "      return 204;\n".to_string(),
            AuthBackend::KeepAlive {
                port,
                path,
                original_host,
            } => {
                let _ = write!(
                    http,
                    "  upstream auth{i} {{\n    server 127.0.0.1:{port};\n    keepalive 32;\n    keepalive_requests 1000;\n    keepalive_timeout 60s;\n  }}\n"
                );
                let host = if *original_host {
                    "$host"
                } else {
                    SERVICE_HOST
                };
                format!(
                    "{}      proxy_set_header Connection \"\";\n      proxy_pass http://auth{i}{path};\n",
                    subrequest_headers(host)
                )
            }
            AuthBackend::Direct { port, path } => format!(
                "{}      proxy_pass http://127.0.0.1:{port}{path};\n",
                subrequest_headers(SERVICE_HOST)
            ),
        };
        let protected = protected_location(
            "/_external-auth",
            &["X-Auth-Request-User", "X-Auth-Request-Email"],
        );
        let _ = write!(
            http,
            r#"  server {{
    listen 127.0.0.1:{port} reuseport;
    location = /_external-auth {{
      internal;
{auth}    }}
    location @signin {{
      internal;
      add_header Set-Cookie $auth_cookie;
      return 302 http://$http_host/oauth2/start?rd=$escaped_request_uri;
    }}
    location /app {{
{protected}      set_escape_uri      $escaped_request_uri $request_uri;
      error_page 401 = @signin;
      proxy_set_header    Host $http_host;
      proxy_http_version  1.1;
      proxy_set_header    Connection "";
      proxy_pass          http://app;
    }}
  }}
"#
        );
    }
    let name = format!("nginx-e2e-{workers}");
    let first = *ports.first().ok_or("no backends")?;
    let server = start_nginx(dir, &name, nginx_main(dir, &name, workers, &http), first)?;
    Ok((server, ports))
}

/// The auth location's headers as ingress-nginx renders them (`auth-url` annotation).
fn subrequest_headers(host: &str) -> String {
    format!(
        "{}      proxy_buffer_size           4k;\n      proxy_http_version          1.1;\n      proxy_pass_request_headers  on;\n",
        auth_location_headers(host)
    )
}

// === Apache with mod_auth_openidc ===

/// What Apache is configured with.
pub(crate) struct ApacheSetup<'a> {
    pub(crate) port: u16,
    /// The protected site's host name (sessions are bound to it).
    pub(crate) site: &'a str,
    /// The test OpenID Provider's issuer (the session row logs in there).
    pub(crate) oidc_issuer: &'a str,
    /// Issuer and audience the bearer tokens must carry.
    pub(crate) bearer_issuer: &'a str,
    pub(crate) bearer_audience: &'a str,
    /// The PEM certificate of the key the bearer tokens are signed with.
    pub(crate) bearer_cert: &'a Path,
}

/// The client Apache is at the test provider.
pub(crate) const APACHE_CLIENT: (&str, &str) = ("apache-bench", "apache-bench-secret");

/// Apache (event MPM, one child process of 64 threads, keep-alive unlimited, no access log)
/// with mod_auth_openidc: `/bearer` validates an RS256 bearer JWT against a certificate file
/// (`AuthType oauth20`), `/session/*` is an OpenID Connect relying party with server-side
/// sessions (its default); `/session/check` answers 401 instead of redirecting. Both set the
/// same `X-Auth-Request-*` headers authgate sends, from the same claims.
pub(crate) fn apache(dir: &Path, s: &ApacheSetup<'_>) -> Result<Server, String> {
    let m = "/usr/lib/apache2/modules";
    let p = dir.display();
    let htdocs = dir.join("htdocs");
    std::fs::create_dir_all(htdocs.join("session")).map_err(|e| e.to_string())?;
    std::fs::write(htdocs.join("bearer"), "").map_err(|e| e.to_string())?;
    std::fs::write(htdocs.join("session/check"), "").map_err(|e| e.to_string())?;
    std::fs::write(htdocs.join("session/login"), "").map_err(|e| e.to_string())?;
    let headers = r#"  Header set X-Auth-Request-User "%{OIDC_CLAIM_email}e"
  Header set X-Auth-Request-Email "%{OIDC_CLAIM_email}e"
  Header set X-Auth-Request-Preferred-Username "%{OIDC_CLAIM_preferred_username}e"
  Header set X-Auth-Request-Groups "%{OIDC_CLAIM_groups}e"
"#;
    let conf = format!(
        r#"ServerRoot "{p}"
DefaultRuntimeDir "{p}"
PidFile "{p}/apache.pid"
Mutex file:{p} default
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
User www-data
Group www-data
ErrorLog "{p}/apache-error.log"
LogLevel warn
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authn_core_module {m}/mod_authn_core.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule authz_user_module {m}/mod_authz_user.so
LoadModule headers_module {m}/mod_headers.so
LoadModule auth_openidc_module {m}/mod_auth_openidc.so
StartServers 1
ServerLimit 1
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 1
MaxSpareThreads 64
MaxRequestWorkers 64
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
DocumentRoot "{htdocs}"
<Directory "{htdocs}">
  Require all granted
</Directory>

OIDCCryptoPassphrase "load-bench-only-passphrase-0123456789abcdef"
OIDCPassClaimsAs environment
OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client}
OIDCClientSecret {secret}
OIDCRedirectURI http://{site}:{port}/session/redirect_uri
OIDCScope "openid email profile"
OIDCPKCEMethod S256
OIDCSessionInactivityTimeout 3600
OIDCSessionMaxDuration 28800
OIDCOAuthVerifyCertFiles rsa-1#{cert}
OIDCOAuthRemoteUserClaim sub

<Location /session/>
  AuthType openid-connect
  Require valid-user
{headers}</Location>
<Location /session/check>
  OIDCUnAuthAction 401
</Location>
<Location /bearer>
  AuthType oauth20
  <RequireAll>
    Require claim iss:{bearer_issuer}
    Require claim aud:{bearer_audience}
  </RequireAll>
{headers}</Location>
"#,
        port = s.port,
        site = s.site,
        htdocs = htdocs.display(),
        issuer = s.oidc_issuer,
        client = APACHE_CLIENT.0,
        secret = APACHE_CLIENT.1,
        cert = s.bearer_cert.display(),
        bearer_issuer = s.bearer_issuer,
        bearer_audience = s.bearer_audience,
    );
    let path = dir.join("apache2.conf");
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("apache2");
    cmd.arg("-d")
        .arg(dir)
        .arg("-f")
        .arg(&path)
        .arg("-DFOREGROUND");
    spawn("apache2", cmd, s.port, dir.join("apache.out"))
}

// === The test OpenID Provider ===

/// `node tests/support/node/idp.mjs` with one client; returns the process and its issuer.
pub(crate) fn oidc_provider(
    repo: &Path,
    redirect_uri: &str,
    log: PathBuf,
) -> Result<(Server, String), String> {
    let config = serde_json::json!({
        "shape": "generic",
        "clients": [{
            "client_id": APACHE_CLIENT.0,
            "client_secret": APACHE_CLIENT.1,
            "redirect_uris": [redirect_uri],
        }],
    });
    let err = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut child = Command::new("node")
        .arg("idp.mjs")
        .current_dir(repo.join("tests/support/node"))
        .env("IDP_CONFIG", config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run node (apt-get install nodejs): {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(json) = line.strip_prefix("READY ") {
                let _ = tx.send(json.to_string());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(30));
    let server = |port| Server {
        name: "oidc-provider".into(),
        child,
        port,
        log: log.clone(),
    };
    let Ok(line) = ready else {
        drop(server(0));
        return Err(format!(
            "idp.mjs printed no READY line; see {}",
            log.display()
        ));
    };
    let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
    let issuer = v["issuer"]
        .as_str()
        .ok_or("READY without issuer")?
        .to_string();
    let port = v["port"].as_u64().unwrap_or(0) as u16;
    Ok((server(port), issuer))
}
