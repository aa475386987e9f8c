//! Cookie keys: master secrets parsed once, per-workspace keys derived with HKDF (RFC 5869).
//!
//! Owns key material. A key for workspace `a` is unrelated to the key for `b`, so a cookie
//! sealed for one never opens at another. The first master secret seals; all of them open.

use base64::Engine;
use cookie::Key;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::secret::Secret;

/// Shortest master secret accepted, in bytes after base64 decoding.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why the master secrets cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No line held a secret.
    #[error("no cookie secret given: generate one with `authgate secret`")]
    Empty,
    /// A line is not base64 or too short.
    #[error("cookie secret #{line} must be base64 of at least {MIN_SECRET_BYTES} random bytes (generate one with `authgate secret`)")]
    Invalid {
        /// 1-based line number.
        line: usize,
    },
}

/// The master secrets, newest first.
#[derive(Clone)]
pub struct MasterSecrets(Vec<Vec<u8>>);

impl std::fmt::Debug for MasterSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterSecrets({} keys, redacted)", self.0.len())
    }
}

impl MasterSecrets {
    /// Parses one secret per line (or separated by commas), base64 standard or URL-safe.
    pub fn parse(text: &Secret) -> Result<Self, KeyError> {
        let mut out = Vec::new();
        for (i, item) in text
            .expose()
            .split(['\n', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(item.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(item))
                .map_err(|_| KeyError::Invalid { line: i + 1 })?;
            if bytes.len() < MIN_SECRET_BYTES {
                return Err(KeyError::Invalid { line: i + 1 });
            }
            out.push(bytes);
        }
        if out.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self(out))
    }

    /// A fresh secret for `authgate secret`: 32 random bytes, base64url.
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Keys for one workspace and one purpose, newest first.
    pub fn derive(&self, workspace: &str, purpose: Purpose) -> Vec<Key> {
        self.0
            .iter()
            .map(|master| {
                let hk = Hkdf::<Sha256>::new(Some(b"authgate cookie keys v1"), master);
                let mut okm = [0u8; 64];
                let info = format!("{}:{workspace}", purpose.label());
                // 64 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
                if hk.expand(info.as_bytes(), &mut okm).is_err() {
                    unreachable!("HKDF output length is fixed and valid");
                }
                Key::from(&okm)
            })
            .collect()
    }
}

/// What a derived key protects; each purpose gets unrelated keys.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// The session cookie.
    Session,
    /// The short-lived login-state cookie.
    Login,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Login => "login",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_short_or_garbage_secrets() {
        assert!(matches!(
            MasterSecrets::parse(&Secret::new("")),
            Err(KeyError::Empty)
        ));
        assert!(matches!(
            MasterSecrets::parse(&Secret::new("c2hvcnQ")),
            Err(KeyError::Invalid { line: 1 })
        ));
        let good = MasterSecrets::generate();
        let two = Secret::new(format!("{good}\n!!!"));
        assert!(matches!(
            MasterSecrets::parse(&two),
            Err(KeyError::Invalid { line: 2 })
        ));
    }

    #[test]
    fn keys_differ_per_workspace_and_purpose() {
        let m = MasterSecrets::parse(&Secret::new(MasterSecrets::generate())).unwrap();
        let a = m.derive("a", Purpose::Session);
        let b = m.derive("b", Purpose::Session);
        let a_login = m.derive("a", Purpose::Login);
        assert_ne!(a[0].master(), b[0].master());
        assert_ne!(a[0].master(), a_login[0].master());
        assert_eq!(a[0].master(), m.derive("a", Purpose::Session)[0].master());
    }
}
