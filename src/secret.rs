//! Secret values: redacted `Debug`, explicit `.expose()`, constant-time equality.
//!
//! Owns the one type that carries tokens, client secrets and cookie keys through the code.
//! It must never implement `Display`, so a secret cannot reach a log line by accident.

use std::fmt;

use subtle::ConstantTimeEq;

/// A string that must not be logged: client secrets, codes, tokens.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call sites that need it say so.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the values differ.
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.len() == other.len() && bool::from(self.0.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(&other.0)
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn equality_compares_whole_value() {
        let s = Secret::new("abc");
        assert!(s.ct_eq("abc"));
        assert!(!s.ct_eq("abd"));
        assert!(!s.ct_eq("ab"));
        assert!(!s.ct_eq("abcd"));
    }
}
