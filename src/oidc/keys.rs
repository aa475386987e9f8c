//! A provider's signing keys as parsed from its JWKS (RFC 7517).
//!
//! Owns turning a JWKS document into verification keys. Symmetric (`oct`) and encryption keys
//! are dropped here, so an HMAC "signed with the public key" has nothing to verify against.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The family of a key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// RSA: RS*, PS*.
    Rsa,
    /// NIST curves: ES*.
    Ec,
    /// Ed25519: EdDSA.
    Okp,
}

impl KeyFamily {
    /// The family an algorithm needs, `None` for HMAC.
    pub fn of(alg: Algorithm) -> Option<Self> {
        use Algorithm::*;
        match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Self::Rsa),
            ES256 | ES384 => Some(Self::Ec),
            EdDSA => Some(Self::Okp),
            HS256 | HS384 | HS512 => None,
        }
    }
}

/// One verification key.
#[derive(Clone)]
pub struct VerifyKey {
    /// `kid`, if the JWK had one.
    pub kid: Option<String>,
    /// Family.
    pub family: KeyFamily,
    /// `alg` the JWK pins, if any.
    pub alg: Option<String>,
    /// The key.
    pub key: DecodingKey,
}

/// The keys of one issuer.
#[derive(Clone, Default)]
pub struct KeySet {
    /// Keys by `kid`.
    by_kid: HashMap<String, VerifyKey>,
    /// Keys without a `kid`.
    anonymous: Vec<VerifyKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    /// Parses a JWKS document, keeping the signature keys it can use and skipping the rest.
    pub fn from_jwks_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(body)?;
        let mut set = Self::default();
        for value in doc.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if let Some(k) = Self::convert(&jwk) {
                set.insert(k);
            }
        }
        Ok(set)
    }

    fn convert(jwk: &Jwk) -> Option<VerifyKey> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
            AlgorithmParameters::EllipticCurve(_) => KeyFamily::Ec,
            AlgorithmParameters::OctetKeyPair(_) => KeyFamily::Okp,
            AlgorithmParameters::OctetKey(_) => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(VerifyKey {
            kid: jwk.common.key_id.clone(),
            family,
            alg: jwk.common.key_algorithm.map(|a| format!("{a:?}")),
            key,
        })
    }

    /// Adds a key (tests and benchmarks build sets by hand).
    pub fn insert(&mut self, key: VerifyKey) {
        match key.kid.clone() {
            Some(kid) => {
                self.by_kid.insert(kid, key);
            }
            None => self.anonymous.push(key),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.anonymous.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a `kid` is known.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// Candidate keys for a token header: the one named by `kid`, or, without a `kid`, every key
    /// of the algorithm's family.
    pub fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&VerifyKey> {
        let family = KeyFamily::of(alg);
        let fits = |k: &&VerifyKey| {
            Some(k.family) == family && k.alg.as_deref().is_none_or(|a| a == format!("{alg:?}"))
        };
        match kid {
            Some(kid) => self.by_kid.get(kid).into_iter().filter(fits).collect(),
            None => self
                .anonymous
                .iter()
                .chain(self.by_kid.values())
                .filter(fits)
                .collect(),
        }
    }
}
