//! What `authgate check` warns about: a configuration that loads, but is weaker than it needs
//! to be.
//!
//! Owns the list of such findings, each naming file, field and what to write instead. Never
//! refuses a configuration (that is `validate`'s) and never reads a file: it looks at a
//! [`Config`] already validated.

use super::{AuthMode, Config, ConfigError, WorkspaceConfig};

/// The findings for every workspace of `config`, in workspace order. Each is worded like a
/// [`ConfigError`], and is not one: the configuration stays valid.
pub fn warnings(config: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    for ws in &config.workspaces {
        let mut warn = |field: &str, problem: String| {
            out.push(ConfigError {
                file: Config::relative(&config.dir, &ws.file).to_path_buf(),
                field: field.into(),
                problem,
            })
        };
        if let Some(problem) = cookie_without_host_prefix(ws) {
            warn("session.cookie_name", problem);
        }
        let rules = &ws.rules.rules;
        for (j, later) in rules.iter().enumerate() {
            if let Some(earlier) = rules[..j].iter().find(|e| later.shadowed_by(e)) {
                warn(
                    &later.origin.to_string(),
                    format!(
                        "can never match: every request it covers is decided first by {} \
                         (rules are tried in order, [[public]] before [[rule]])",
                        earlier.origin
                    ),
                );
            }
        }
    }
    out
}

/// A session cookie over https without the `__Host-` prefix (RFC 6265bis §4.1.3.2): the browser
/// then also keeps a cookie of that name set by another host under the same domain
/// (`Domain=`), so that host can give a visitor here a session of its choosing.
fn cookie_without_host_prefix(ws: &WorkspaceConfig) -> Option<String> {
    let name = &ws.session.cookie_name;
    (ws.auth == AuthMode::Login && !ws.insecure_http && !name.starts_with("__Host-")).then(|| {
        format!(
            "`{name}` has no `__Host-` prefix: another host under the same domain can then set \
             a cookie of that name for this one, and sign visitors in with a session of its \
             choosing; name it `__Host-{}`",
            name.trim_start_matches("__Secure-")
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::warnings;
    use crate::config::load;

    /// The warnings for a directory holding `workspaces/x.toml` with `text`, as printed.
    fn warned(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("workspaces")).unwrap();
        std::fs::write(dir.path().join("workspaces/x.toml"), text).unwrap();
        let config = load(dir.path(), &HashMap::new()).unwrap();
        warnings(&config).iter().map(|w| w.to_string()).collect()
    }

    const LOGIN: &str = "hosts = [\"x.example.com\"]\nauth = \"oidc\"\n[[provider]]\n\
         issuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n";

    #[test]
    fn a_rule_shadowed_by_an_earlier_one_is_warned_about() {
        let text = format!(
            "{LOGIN}[session]\ncookie_name = \"__Host-s\"\n[[public]]\nprefix = \"/static/\"\n\
             [[rule]]\nprefix = \"/admin/\"\naction = \"allow\"\ngroups = [\"admins\"]\n\
             [[rule]]\npath = \"/admin/users\"\nmethods = [\"GET\"]\naction = \"deny\"\n\
             [[rule]]\npath = \"/static/app.js\"\nmethods = [\"GET\"]\naction = \"deny\"\n\
             [[rule]]\npath = \"/static/app.js\"\nmethods = [\"POST\"]\naction = \"deny\"\n"
        );
        assert_eq!(
            warned(&text),
            [
                "workspaces/x.toml: rule[1]: can never match: every request it covers is decided \
                 first by rule[0] (rules are tried in order, [[public]] before [[rule]])",
                "workspaces/x.toml: rule[2]: can never match: every request it covers is decided \
                 first by public[0] (rules are tried in order, [[public]] before [[rule]])",
            ]
        );
    }

    #[test]
    fn a_session_cookie_over_https_without_the_host_prefix_is_warned_about() {
        let plain = warned(&format!(
            "{LOGIN}[session]\ncookie_name = \"_oauth2_proxy\"\n"
        ));
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert!(
            plain[0].starts_with(
                "workspaces/x.toml: session.cookie_name: `_oauth2_proxy` has no `__Host-` prefix"
            ) && plain[0].ends_with("name it `__Host-_oauth2_proxy`"),
            "{plain:?}"
        );
        let secure = warned(&format!("{LOGIN}[session]\ncookie_name = \"__Secure-s\"\n"));
        assert!(secure[0].ends_with("name it `__Host-s`"), "{secure:?}");
        for quiet in [
            LOGIN.to_string(),
            format!("{LOGIN}[session]\ncookie_name = \"__Host-team\"\n"),
            format!("insecure_http = true\n{LOGIN}[session]\ncookie_name = \"team\"\n"),
            "hosts = [\"x.example.com\"]\nauth = \"none\"\n[session]\ncookie_name = \"team\"\n"
                .to_string(),
        ] {
            assert_eq!(warned(&quiet), Vec::<String>::new(), "{quiet}");
        }
    }
}
