//! Where secrets come from (an environment variable or a file), and the one place they are
//! read: [`Secrets::read`], every secret a validated config names, at once.
//!
//! Owns the [`Env`] seam so tests feed a map instead of the process environment. Never logs a
//! value; errors name the variable and the file, not what they hold.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Config, ConfigError, ConfigErrors, RedisConfig, RedisTarget, SERVER_FILE};
use crate::secret::Secret;

/// Every secret a config names, read together before anything is built from it, so that all
/// the missing ones are reported at once, each with the file and field naming it.
#[derive(Debug)]
pub struct Secrets {
    /// The master cookie secrets as read (one per line, newest first), not yet parsed.
    pub cookie_secrets: Secret,
    /// The secrets of `[redis]`, when the server file has that table.
    pub redis: Option<RedisSecrets>,
    /// Each provider's client secret, by workspace name and provider id.
    client_secrets: HashMap<(String, String), Secret>,
}

impl Secrets {
    /// Reads every secret `config` names from `env` and the files it names.
    pub fn read(config: &Config, env: &dyn Env) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let server = &config.server;
        let cookie_secrets = server
            .cookie_secrets
            .read(env)
            .map_err(|problem| {
                errors.push(ConfigError {
                    file: SERVER_FILE.into(),
                    field: "secrets.cookie_secrets".into(),
                    problem: problem.to_string(),
                })
            })
            .ok();
        let redis = match server.redis.as_ref().map(|r| RedisSecrets::read(r, env)) {
            None => None,
            Some(Ok(secrets)) => Some(secrets),
            Some(Err(problems)) => {
                errors.extend(problems.into_iter().map(|(field, problem)| ConfigError {
                    file: SERVER_FILE.into(),
                    field: format!("redis.{field}"),
                    problem: problem.to_string(),
                }));
                None
            }
        };
        let mut client_secrets = HashMap::new();
        for ws in &config.workspaces {
            for (i, p) in ws.providers.iter().enumerate() {
                match p.client_secret.read(env) {
                    Ok(secret) => {
                        client_secrets.insert((ws.name.clone(), p.id.clone()), secret);
                    }
                    Err(problem) => errors.push(ConfigError {
                        file: Config::relative(&config.dir, &ws.file).to_path_buf(),
                        field: format!("provider[{i}].client_secret"),
                        problem: problem.to_string(),
                    }),
                }
            }
        }
        match cookie_secrets {
            Some(cookie_secrets) if errors.is_empty() => Ok(Self {
                cookie_secrets,
                redis,
                client_secrets,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The client secret of provider `provider` of workspace `workspace`.
    pub fn client_secret(&self, workspace: &str, provider: &str) -> Option<&Secret> {
        self.client_secrets
            .get(&(workspace.to_string(), provider.to_string()))
    }
}

/// The secrets `[redis]` names, read: the URL (unless it names sentinels), the passwords for
/// the server and the sentinels, and the key of the TLS client certificate.
#[derive(Debug, Default)]
pub struct RedisSecrets {
    /// `url_env` / `url_file`, with a URL target.
    pub url: Option<Secret>,
    /// `password_env` / `password_file`.
    pub password: Option<Secret>,
    /// `sentinel_password_env` / `sentinel_password_file`.
    pub sentinel_password: Option<Secret>,
    /// `client_key_file`, with `client_cert_file`.
    pub client_key: Option<Secret>,
}

impl RedisSecrets {
    /// Reads each secret `config` names; every one that cannot be read is returned as the key
    /// under `[redis]` naming it (`password`) and the problem.
    pub(crate) fn read(
        config: &RedisConfig,
        env: &dyn Env,
    ) -> Result<Self, Vec<(&'static str, SecretError)>> {
        let mut problems = Vec::new();
        let mut one = |src: Option<&SecretSource>, field: &'static str| {
            src.and_then(|s| s.read(env).map_err(|p| problems.push((field, p))).ok())
        };
        let url = match &config.target {
            RedisTarget::Url(src) => one(Some(src), "url"),
            RedisTarget::Sentinel { .. } => None,
        };
        let secrets = Self {
            url,
            password: one(config.password.as_ref(), "password"),
            sentinel_password: one(config.sentinel_password.as_ref(), "sentinel_password"),
            client_key: one(
                config.client_cert.as_ref().map(|(_, k)| k),
                "client_key_file",
            ),
        };
        if problems.is_empty() {
            Ok(secrets)
        } else {
            Err(problems)
        }
    }
}

/// Read access to environment variables.
pub trait Env: Send + Sync {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A secret's origin: the environment variable wins when set, else the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSource {
    /// Environment variable name.
    pub env: Option<String>,
    /// File path.
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// Reads the secret, trimming surrounding whitespace (files usually end in a newline).
    pub fn read(&self, env: &dyn Env) -> Result<Secret, SecretError> {
        if let Some(name) = &self.env {
            if let Some(value) = env.var(name).filter(|v| !v.trim().is_empty()) {
                return Ok(Secret::new(value.trim()));
            }
        }
        if let Some(path) = &self.file {
            return match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                Ok(_) => Err(SecretError::EmptyFile(path.clone())),
                Err(source) => Err(SecretError::Unreadable {
                    unset: self.env.clone(),
                    path: path.clone(),
                    source,
                }),
            };
        }
        match &self.env {
            Some(name) => Err(SecretError::Unset(name.clone())),
            None => Err(SecretError::Unconfigured),
        }
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The file holds nothing but whitespace.
    #[error("secret file {} is empty", .0.display())]
    EmptyFile(PathBuf),
    /// The file cannot be read (and the variable, if one is named, is not set).
    #[error("{}cannot read secret file {}: {source}", unset.as_ref().map(|n| format!("${n} is not set and ")).unwrap_or_default(), path.display())]
    Unreadable {
        /// The variable tried first, unset.
        unset: Option<String>,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The variable is not set, and no file is named.
    #[error("${0} is not set and no secret file is configured")]
    Unset(String),
    /// Neither a variable nor a file is named.
    #[error("no environment variable or file is configured for this secret")]
    Unconfigured,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_over_file_and_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "from-file\n").unwrap();
        let src = SecretSource {
            env: Some("S".into()),
            file: Some(file),
        };
        let mut env = HashMap::new();
        assert_eq!(src.read(&env).unwrap().expose(), "from-file");
        env.insert("S".to_string(), "from-env".to_string());
        assert_eq!(src.read(&env).unwrap().expose(), "from-env");
    }

    #[test]
    fn every_secret_is_read_at_once_and_each_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("authgate.toml"),
            "[redis]\nurl_env = \"R\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("workspaces")).unwrap();
        std::fs::write(
            dir.path().join("workspaces/mcd.toml"),
            "hosts = [\"mcd.test\"]\nauth = \"oidc\"\n[[provider]]\nissuer = \"https://idp.test\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n[authz]\nemails = [\"a@b.test\"]\n",
        )
        .unwrap();
        let mut env = HashMap::new();
        let config = super::super::load(dir.path(), &env).unwrap();
        let missing: Vec<String> = Secrets::read(&config, &env)
            .unwrap_err()
            .0
            .iter()
            .map(|e| format!("{}: {}", e.file.display(), e.field))
            .collect();
        assert_eq!(
            missing,
            [
                "authgate.toml: secrets.cookie_secrets",
                "authgate.toml: redis.url",
                "workspaces/mcd.toml: provider[0].client_secret"
            ]
        );
        for (k, v) in [
            ("AUTHGATE_COOKIE_SECRETS", "c"),
            ("R", "redis://r"),
            ("S", "s"),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        let secrets = Secrets::read(&config, &env).unwrap();
        assert_eq!(secrets.cookie_secrets.expose(), "c");
        let redis = secrets.redis.as_ref().unwrap();
        assert_eq!(redis.url.as_ref().unwrap().expose(), "redis://r");
        assert_eq!(secrets.client_secret("mcd", "oidc").unwrap().expose(), "s");
    }

    #[test]
    fn missing_secret_names_variable_and_file() {
        let src = SecretSource {
            env: Some("NOPE".into()),
            file: Some("/nonexistent/s".into()),
        };
        let err = src.read(&HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("$NOPE"), "{err}");
        assert!(err.contains("/nonexistent/s"), "{err}");
    }
}
