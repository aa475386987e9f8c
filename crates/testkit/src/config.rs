//! Config directories (`authgate.toml` and `workspaces/*.toml`) and the workspace files the
//! tests and benchmarks repeat.

use std::path::Path;

/// Writes `authgate.toml` (`server_toml`) and `workspaces/<name>.toml` for each of `workspaces`
/// into `dir`, creating the directories.
pub fn write_config(
    dir: &Path,
    server_toml: &str,
    workspaces: &[(&str, &str)],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("workspaces"))?;
    std::fs::write(dir.join("authgate.toml"), server_toml)?;
    for (name, toml) in workspaces {
        std::fs::write(dir.join("workspaces").join(format!("{name}.toml")), toml)?;
    }
    Ok(())
}

/// A config directory written for one test, removed when dropped.
pub struct ConfigDir {
    /// Temporary directory holding `authgate.toml` and `workspaces/`.
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    /// A directory with this server file and no workspaces yet.
    pub fn new(server_toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        write_config(dir.path(), server_toml, &[]).expect("write authgate.toml");
        Self { dir }
    }

    /// Adds `workspaces/<name>.toml`.
    pub fn workspace(self, name: &str, toml: &str) -> Self {
        let path = self.dir.path().join(format!("workspaces/{name}.toml"));
        std::fs::write(&path, toml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// The path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A workspace that needs a login at one OpenID Provider, over plain http (tests run on
/// loopback): `hosts`, `auth = "oidc"`, `insecure_http = true` and the `[[provider]]` table
/// (`kind = "oidc"`, `issuer`, `client_id`, the client secret read from `$secret_env`). Tables
/// such as `[session]` or `[headers]` follow it in the caller's text.
pub fn oidc_workspace(host: &str, issuer: &str, client_id: &str, secret_env: &str) -> String {
    format!(
        "hosts = [\"{host}\"]\nauth = \"oidc\"\ninsecure_http = true\n[[provider]]\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"{client_id}\"\nclient_secret_env = \"{secret_env}\"\n"
    )
}

/// [`oidc_workspace`] as the benchmarks run it: sessions in the cookie `cookie` for 8 h, and
/// every identity header mapped (user and email from `email`, preferred username, groups).
pub fn bench_workspace(host: &str, issuer: &str, client_id: &str, cookie: &str) -> String {
    format!(
        "{}[session]\ncookie_name = \"{cookie}\"\nlifetime = \"8h\"\n[headers]\nuser = \"email\"\nemail = \"email\"\npreferred_username = \"preferred_username\"\ngroups = \"groups\"\n",
        oidc_workspace(host, issuer, client_id, "BENCH_CLIENT_SECRET")
    )
}

/// A workspace without login (`auth = "none"`) for `host`.
pub fn open_workspace(host: &str) -> String {
    format!("hosts = [\"{host}\"]\nauth = \"none\"\n")
}
