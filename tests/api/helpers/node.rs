//! Spawning the Node test programs of `tests/support/node`: the real OpenID Provider (npm
//! `oidc-provider`) and the GitHub API stand-in. Each prints `READY {json}` once it listens.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use testkit::ChildGuard;

use serde_json::{json, Value};

use super::repo;

/// A running Node program; killed on drop.
pub struct NodeProcess {
    child: ChildGuard,
    /// Its READY payload.
    pub ready: Value,
}

impl NodeProcess {
    /// Stops it now (a provider going down).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tests/support/node/<script>` with `env` and waits for its READY line.
pub fn spawn_node(script: &str, env: &[(&str, String)]) -> NodeProcess {
    let dir = repo().join("tests/support/node");
    let mut cmd = Command::new("node");
    // The program's own log (oidc-provider's notices, request errors) goes to a file.
    let log = tempfile::Builder::new()
        .prefix(&format!("{script}-"))
        .suffix(".log")
        .tempfile_in(super::artifacts())
        .unwrap()
        .keep()
        .unwrap()
        .0;
    cmd.arg(script)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node {script}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(json) = line.strip_prefix("READY ") {
                let _ = tx.send(json.to_string());
            }
        }
    });
    let line = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!("{script} printed no READY line within 120 s");
        }
    };
    NodeProcess {
        child: child.into(),
        ready: serde_json::from_str(&line).unwrap(),
    }
}

/// The real OpenID Provider of one shape (`generic`, `azure`, `keycloak`).
pub struct Idp {
    /// The process.
    pub process: NodeProcess,
    /// Its issuer.
    pub issuer: String,
}

/// Starts oidc-provider with one client allowed to redirect to `redirect_uris`.
pub fn spawn_oidc_provider(
    shape: &str,
    client_id: &str,
    secret: &str,
    redirect_uris: &[String],
    extra: Value,
) -> Idp {
    let mut config = json!({
        "shape": shape,
        "clients": [{
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": redirect_uris.iter().map(|u| {
                let mut root = url::Url::parse(u).unwrap();
                root.set_path("/");
                root.to_string()
            }).collect::<Vec<_>>(),
        }],
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    let process = spawn_node("idp.mjs", &[("IDP_CONFIG", config.to_string())]);
    let issuer = process.ready["issuer"].as_str().unwrap().to_string();
    Idp { process, issuer }
}
