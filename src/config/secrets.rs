//! Where secrets come from (an environment variable or a file) and reading them.
//!
//! Owns the [`Env`] seam so tests feed a map instead of the process environment. Never logs a
//! value; errors name the variable and the file, not what they hold.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::secret::Secret;

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
    pub fn read(&self, env: &dyn Env) -> Result<Secret, String> {
        if let Some(name) = &self.env {
            if let Some(value) = env.var(name).filter(|v| !v.trim().is_empty()) {
                return Ok(Secret::new(value.trim()));
            }
        }
        if let Some(path) = &self.file {
            return match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                Ok(_) => Err(format!("secret file {} is empty", path.display())),
                Err(e) => Err(format!(
                    "{}cannot read secret file {}: {e}",
                    self.env
                        .as_ref()
                        .map(|n| format!("${n} is not set and "))
                        .unwrap_or_default(),
                    path.display()
                )),
            };
        }
        match &self.env {
            Some(name) => Err(format!(
                "${name} is not set and no secret file is configured"
            )),
            None => Err("no environment variable or file is configured for this secret".into()),
        }
    }
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
    fn missing_secret_names_variable_and_file() {
        let src = SecretSource {
            env: Some("NOPE".into()),
            file: Some("/nonexistent/s".into()),
        };
        let err = src.read(&HashMap::new()).unwrap_err();
        assert!(err.contains("$NOPE"), "{err}");
        assert!(err.contains("/nonexistent/s"), "{err}");
    }
}
