//! A real NGINX (Debian's `nginx` with `libnginx-mod-http-set-misc`) configured the way
//! ingress-nginx renders the `auth-url`, `auth-signin`, `auth-response-headers` (the list
//! `k8s/components/authgate-protected` writes, read from it: [`auth_response_headers`]) and
//! `auth-keepalive` annotations, and each workspace's `/oauth2` Ingress.
//!
//! Buffer sizes are the controller's ConfigMap values the manifests set
//! (`k8s/ingress-nginx/helmchart.yaml`: `proxy-buffer-size`, `large-client-header-buffers`),
//! read from that file, so the tests see the limits production has. The `/oauth2` location's
//! path and rewrite are read from `k8s/authgate/ingress-oauth2.yaml` the same way
//! ([`OAuth2Route::from_manifest`]), so the tests route what production routes.
//!
//! Differences from the controller's output, all forced by tests running on one loopback port
//! without TLS: the sign-in redirect uses `$http_host` (host with port) where the annotation
//! writes `$host`, and the scheme is `http`.

use std::fmt::Write as _;
use std::process::Command;
use testkit::nginx::{auth_location_headers, protected_location, REQ_ID_MAP, SERVICE_HOST};
use testkit::ChildGuard;

use super::{free_port, repo, wait_for_port};

/// The ingress-nginx ConfigMap keys that size NGINX's buffers, as the controller renders them:
/// `large_client_header_buffers` in the `http` block (a request header line, `Cookie`
/// included, must fit one buffer, else NGINX answers 400), `proxy_buffer_size` and
/// `proxy_buffers 4 <size>` in every location, the auth subrequest's included (the answer's
/// headers — the auth headers, a callback's `Set-Cookie`s — must fit, else NGINX answers 500
/// or 502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffers {
    /// `proxy-buffer-size`, e.g. `16k`.
    pub proxy_buffer_size: String,
    /// `large-client-header-buffers`, e.g. `4 16k`.
    pub large_client_header_buffers: String,
}

/// The file whose controller config the test NGINX copies.
pub const INGRESS_NGINX_MANIFEST: &str = "k8s/ingress-nginx/helmchart.yaml";

impl Buffers {
    /// The values `k8s/ingress-nginx/helmchart.yaml` sets; panics when it sets neither
    /// (the tests must not quietly fall back to defaults production does not run with).
    pub fn from_manifest() -> Self {
        let text = std::fs::read_to_string(repo().join(INGRESS_NGINX_MANIFEST)).unwrap();
        Self::from_helm_values(&text).unwrap_or_else(|| {
            panic!("{INGRESS_NGINX_MANIFEST}: no buffer sizes in controller.config")
        })
    }

    /// The two keys from a HelmChart's `valuesContent` (`key: "value"` lines; the chart's
    /// `controller.config` is the only place these names appear).
    pub fn from_helm_values(text: &str) -> Option<Self> {
        let value = |key: &str| {
            text.lines().find_map(|line| {
                let rest = line.trim().strip_prefix(key)?.strip_prefix(':')?;
                Some(rest.trim().trim_matches('"').to_string())
            })
        };
        Some(Self {
            proxy_buffer_size: value("proxy-buffer-size")?,
            large_client_header_buffers: value("large-client-header-buffers")?,
        })
    }

    /// ingress-nginx's defaults (`4k`, `4 8k`), which are NGINX's own on x86-64.
    pub fn ingress_nginx_defaults() -> Self {
        Self {
            proxy_buffer_size: "4k".into(),
            large_client_header_buffers: "4 8k".into(),
        }
    }

    /// The defaults with the manifests' `proxy-buffer-size`: only the request header limit
    /// differs from production.
    pub fn default_header_buffers() -> Self {
        Self {
            large_client_header_buffers: Self::ingress_nginx_defaults().large_client_header_buffers,
            ..Self::from_manifest()
        }
    }

    /// Bytes in one `large_client_header_buffers` buffer: the longest request header line.
    pub fn header_line_limit(&self) -> usize {
        let size = self
            .large_client_header_buffers
            .split_whitespace()
            .nth(1)
            .expect("large-client-header-buffers is `<number> <size>`");
        parse_size(size)
    }

    /// Bytes in `proxy_buffer_size`: the longest response head from an upstream.
    pub fn response_head_limit(&self) -> usize {
        parse_size(&self.proxy_buffer_size)
    }
}

/// NGINX's size syntax: bytes, or a number with `k` or `m`.
pub fn parse_size(size: &str) -> usize {
    let (digits, unit) = match size.as_bytes().last() {
        Some(b'k' | b'K') => (&size[..size.len() - 1], 1024),
        Some(b'm' | b'M') => (&size[..size.len() - 1], 1024 * 1024),
        _ => (size, 1),
    };
    digits.parse::<usize>().expect("an NGINX size") * unit
}

/// The file whose auth annotations every protected app Ingress carries.
pub const AUTH_ANNOTATIONS_MANIFEST: &str = "k8s/components/authgate-protected/kustomization.yaml";

/// The `auth-response-headers` annotation of [`AUTH_ANNOTATIONS_MANIFEST`]: the headers NGINX
/// copies from authgate's answer onto the request to the app, overwriting a client's copies.
pub fn auth_response_headers() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(AUTH_ANNOTATIONS_MANIFEST)).unwrap();
    let value = text
        .lines()
        .find_map(|l| {
            let rest = l
                .trim()
                .strip_prefix("nginx.ingress.kubernetes.io/auth-response-headers:")?;
            Some(rest.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("{AUTH_ANNOTATIONS_MANIFEST}: no auth-response-headers"));
    value.split(',').map(|h| h.trim().to_string()).collect()
}

/// The `/oauth2` Ingress of every workspace (`k8s/authgate/ingress-oauth2.yaml`): its regex
/// path (`use-regex`) and its `rewrite-target`, which is the same for every workspace but for
/// the workspace's name at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Route {
    /// The Ingress path, a regular expression (`/oauth2/(start|…)$`).
    pub path: String,
    /// `rewrite-target` without the workspace (`/oauth2/$1/`).
    pub rewrite_prefix: String,
}

/// The file whose `/oauth2` Ingresses the test NGINX copies.
pub const OAUTH2_MANIFEST: &str = "k8s/authgate/ingress-oauth2.yaml";

impl OAuth2Route {
    /// The route `k8s/authgate/ingress-oauth2.yaml` gives every workspace; panics when its
    /// Ingresses disagree, or lack a path, a rewrite or a workspace label.
    pub fn from_manifest() -> Self {
        let text = std::fs::read_to_string(repo().join(OAUTH2_MANIFEST)).unwrap();
        Self::from_ingresses(&text).unwrap_or_else(|e| panic!("{OAUTH2_MANIFEST}: {e}"))
    }

    /// The route from the Ingresses of `text` (`---`-separated; each with one
    /// `platform/workspace:` label, one `rewrite-target:` annotation ending in that workspace
    /// and one `path:`), or what is wrong with them.
    pub fn from_ingresses(text: &str) -> Result<Self, String> {
        let mut route: Option<Self> = None;
        for doc in text.split("\n---").filter(|d| d.contains("kind: Ingress")) {
            let value = |key: &str| {
                let found: Vec<String> = doc
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .filter_map(|l| {
                        let rest = l.trim().trim_start_matches("- ").strip_prefix(key)?;
                        Some(rest.strip_prefix(':')?.trim().trim_matches('"').to_string())
                    })
                    .collect();
                match found.as_slice() {
                    [one] => Ok(one.clone()),
                    _ => Err(format!("an Ingress has {} `{key}` lines", found.len())),
                }
            };
            let ws = value("platform/workspace")?;
            let rewrite = value("nginx.ingress.kubernetes.io/rewrite-target")?;
            let this = Self {
                path: value("path")?,
                rewrite_prefix: rewrite
                    .strip_suffix(&ws)
                    .ok_or(format!("the rewrite-target {rewrite} does not end in {ws}"))?
                    .to_string(),
            };
            match &route {
                Some(r) if *r != this => return Err(format!("{this:?} differs from {r:?}")),
                _ => route = Some(this),
            }
        }
        route.ok_or_else(|| "no Ingress".to_string())
    }

    /// The location ingress-nginx renders for `workspace`'s `/oauth2` Ingress
    /// (`location ~* "^<path>"`, `rewrite "(?i)<path>" <rewrite-target> break;`), proxying
    /// to authgate on `authgate`.
    fn location(&self, workspace: &str, authgate: u16) -> String {
        let Self {
            path,
            rewrite_prefix,
        } = self;
        format!(
            r#"    location ~* "^{path}" {{
      rewrite "(?i){path}" {rewrite_prefix}{workspace} break;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_pass http://127.0.0.1:{authgate};
    }}
"#
        )
    }
}

/// One virtual host, as one or more Ingresses make it.
pub struct Site {
    /// Host name (`mcd.localhost`).
    pub host: String,
    /// The workspace its Ingresses name: `auth-url: …/oauth2/auth/<workspace>`, and the
    /// `/oauth2` Ingress's `rewrite-target: /oauth2/$1/<workspace>`.
    pub workspace: String,
    /// Paths routed to the upstream.
    pub paths: Vec<String>,
    /// Whether the app Ingresses carry the auth annotations.
    pub auth: bool,
    /// The `auth-signin` target: `path` → `rd=$escaped_request_uri`, `absolute` →
    /// `rd=$scheme://$http_host$escaped_request_uri`.
    pub absolute_rd: bool,
    /// Extra query on the `auth-url` (per-Ingress narrowing, e.g. `allowed_groups=admins`).
    pub auth_query: String,
    /// The `auth-signin` annotation's own scheme: `https://$host/oauth2/start…`, as on the
    /// platform where TLS ends at Cloudflare.
    pub https_signin: bool,
}

impl Site {
    /// A protected site with the path-only `rd`, in the workspace named by the host's first
    /// label (`mcd.localhost` → `mcd`).
    pub fn protected(host: &str, paths: &[&str]) -> Self {
        Self {
            host: host.into(),
            workspace: host.split('.').next().unwrap_or(host).into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            auth: true,
            absolute_rd: false,
            auth_query: String::new(),
            https_signin: false,
        }
    }
}

/// A running NGINX, stopped on drop.
pub struct Nginx {
    /// Its port.
    pub port: u16,
    _child: ChildGuard,
    /// Its prefix (config and logs).
    pub dir: tempfile::TempDir,
}

impl Nginx {
    /// Whether the access log holds a line containing `needle`.
    pub fn access_log_has(&self, needle: &str) -> bool {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(needle))
    }

    /// `http://<host>:<port>`.
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }
}

fn server_block(site: &Site, oauth2: &OAuth2Route, authgate: u16, upstream: u16) -> String {
    let mut s = String::new();
    let id = site.host.replace('.', "-");
    // `auth-keepalive: "32"` (as k8s/ sets it): the auth subrequests reuse connections to
    // authgate through an upstream block instead of opening one per request.
    if site.auth {
        writeln!(
            s,
            "  upstream auth-{id} {{\n    server 127.0.0.1:{authgate};\n    keepalive 32;\n    keepalive_requests 1000;\n    keepalive_timeout 60s;\n  }}"
        )
        .unwrap();
    }
    writeln!(
        s,
        "  server {{\n    listen 127.0.0.1:{{PORT}};\n    server_name {};",
        site.host
    )
    .unwrap();
    // The second Ingress: authgate's browser routes on every workspace host, rewritten to
    // name the workspace, as the manifest writes them.
    let ws = &site.workspace;
    s.push_str(&oauth2.location(ws, authgate));
    let query = if site.auth_query.is_empty() {
        String::new()
    } else {
        format!("?{}", site.auth_query)
    };
    if site.auth {
        let auth_headers = auth_location_headers(SERVICE_HOST);
        writeln!(
            s,
            r#"    location = /_external-auth-{id} {{
      internal;
{auth_headers}      proxy_buffer_size           {{BUFFER}};
      proxy_buffers               4 {{BUFFER}};
      proxy_http_version          1.1;
      proxy_set_header            Connection              "";
      proxy_pass_request_headers  on;
      proxy_pass http://auth-{id}/oauth2/auth/{ws}{query};
    }}
    location @custom-403-{id} {{
      internal;
      proxy_intercept_errors off;
      proxy_set_header X-Code 403;
      proxy_set_header X-Format $http_accept;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Namespace test;
      proxy_pass http://127.0.0.1:{authgate};
    }}
    location @signin-{id} {{
      internal;
      add_header Set-Cookie $auth_cookie;
      return 302 {signin};
    }}"#,
            signin = match (site.https_signin, site.absolute_rd) {
                (true, _) => "https://$http_host/oauth2/start?rd=$escaped_request_uri",
                (false, true) =>
                    "http://$http_host/oauth2/start?rd=$scheme://$http_host$escaped_request_uri",
                (false, false) => "http://$http_host/oauth2/start?rd=$escaped_request_uri",
            },
            ws = site.workspace,
        )
        .unwrap();
    }
    for path in &site.paths {
        writeln!(s, "    location {path} {{").unwrap();
        if site.auth {
            let names = auth_response_headers();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let auth = protected_location(&format!("/_external-auth-{id}"), &names);
            writeln!(
                s,
                r#"{auth}      set_escape_uri      $escaped_request_uri $request_uri;
      error_page 401 = @signin-{id};
      error_page 403 = @custom-403-{id};"#
            )
            .unwrap();
        }
        writeln!(s, "      proxy_set_header Host $http_host;\n      proxy_pass http://127.0.0.1:{upstream};\n    }}").unwrap();
    }
    s.push_str("  }\n");
    s
}

/// Starts NGINX in front of `authgate` and `upstream` serving `sites`.
pub fn spawn_nginx(sites: &[Site], authgate: u16, upstream: u16) -> Nginx {
    spawn_nginx_at(sites, authgate, upstream, free_port())
}

/// Same, on a port chosen beforehand (the IdP must know the callback URL first).
pub fn spawn_nginx_at(sites: &[Site], authgate: u16, upstream: u16, port: u16) -> Nginx {
    spawn_nginx_with(sites, authgate, upstream, port, &Buffers::from_manifest())
}

/// The `nginx.conf` for `sites` on `port` with `buffers`.
pub fn render_config(
    sites: &[Site],
    authgate: u16,
    upstream: u16,
    port: u16,
    buffers: &Buffers,
    prefix: &str,
) -> String {
    let oauth2 = OAuth2Route::from_manifest();
    let servers: String = sites
        .iter()
        .map(|s| server_block(s, &oauth2, authgate, upstream))
        .collect::<String>()
        .replace("{PORT}", &port.to_string())
        .replace("{BUFFER}", &buffers.proxy_buffer_size);
    let p = prefix;
    let Buffers {
        proxy_buffer_size,
        large_client_header_buffers,
    } = buffers;
    format!(
        r#"load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_set_misc_module.so;
daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {p}/access.log;
  client_body_temp_path {p}/body;
  proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi;
  scgi_temp_path {p}/scgi;
  large_client_header_buffers {large_client_header_buffers};
  proxy_buffer_size {proxy_buffer_size};
  proxy_buffers 4 {proxy_buffer_size};
{REQ_ID_MAP}{servers}}}
"#
    )
}

/// [`spawn_nginx_at`] with other buffer sizes than the manifests' (to show what they change).
pub fn spawn_nginx_with(
    sites: &[Site],
    authgate: u16,
    upstream: u16,
    port: u16,
    buffers: &Buffers,
) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().display().to_string();
    let conf = render_config(sites, authgate, upstream, port, buffers, &p);
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("nginx")
        .args(["-e", &format!("{p}/error.log"), "-p", &p, "-c"])
        .arg(&conf_path)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start nginx (apt-get install nginx libnginx-mod-http-set-misc): {e}")
        });
    let nginx = Nginx {
        port,
        _child: child.into(),
        dir,
    };
    wait_for_port(port, "nginx");
    nginx
}
