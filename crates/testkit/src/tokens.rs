//! Test keys and token minting, shared by unit tests, integration tests and benchmarks.
//!
//! The keys are the fixtures in `tests/fixtures/`, made for tests only. The unit tests of
//! `src/oidc/` include this file as a module of the library (they need the library's own
//! `KeySet`, not the one of the library the kit links); everything else uses `testkit::tokens`.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use authgate::oidc::{KeyFamily, KeySet, VerifyKey};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};

pub const RSA_PRIVATE: &str = include_str!("../../../tests/fixtures/rsa-private.pem");
pub const RSA_PUBLIC: &str = include_str!("../../../tests/fixtures/rsa-public.pem");
pub const RSA2_PRIVATE: &str = include_str!("../../../tests/fixtures/rsa2-private.pem");
pub const RSA2_PUBLIC: &str = include_str!("../../../tests/fixtures/rsa2-public.pem");
pub const EC_PRIVATE: &str = include_str!("../../../tests/fixtures/ec-private.pem");
pub const EC_PUBLIC: &str = include_str!("../../../tests/fixtures/ec-public.pem");

pub const RSA_KID: &str = "rsa-1";
pub const RSA2_KID: &str = "rsa-2";
pub const EC_KID: &str = "ec-1";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` with the fixture key matching `alg` (RS256/PS256 → rsa, ES256 → ec).
pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Signs with the second RSA key.
pub fn sign_rsa2(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// An unsigned token (`alg: none`).
pub fn unsigned(claims: &Value) -> String {
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", b64(claims.to_string().as_bytes()))
}

/// HS256 "signed" with the RSA public key's PEM as the HMAC secret: the classic key-confusion
/// attack on verifiers that trust the header's `alg`.
pub fn hs256_with_public_key(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap()
}

/// The JWKS publishing the first RSA key and the EC key (not the second RSA key).
pub fn jwks() -> Value {
    json!({ "keys": [rsa_jwk(RSA_PUBLIC, RSA_KID), ec_jwk()] })
}

/// A JWKS with both RSA keys.
pub fn jwks_rotated() -> Value {
    json!({ "keys": [rsa_jwk(RSA_PUBLIC, RSA_KID), rsa_jwk(RSA2_PUBLIC, RSA2_KID), ec_jwk()] })
}

pub fn rsa_jwk(pem: &str, kid: &str) -> Value {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPublicKey::from_public_key_pem(pem).unwrap();
    json!({"kty":"RSA","use":"sig","alg":"RS256","kid":kid,"n":b64(&key.n().to_bytes_be()),"e":b64(&key.e().to_bytes_be())})
}

pub fn ec_jwk() -> Value {
    use p256::pkcs8::DecodePublicKey;
    let key = p256::PublicKey::from_public_key_pem(EC_PUBLIC).unwrap();
    let point = p256::EncodedPoint::from(key);
    json!({"kty":"EC","use":"sig","alg":"ES256","crv":"P-256","kid":EC_KID,
           "x":b64(point.x().unwrap()),"y":b64(point.y().unwrap())})
}

/// The key set matching [`jwks`].
pub fn keyset() -> KeySet {
    KeySet::from_jwks_json(jwks().to_string().as_bytes()).unwrap()
}

/// A key set built by hand from the PEMs, to check it matches the JWKS path.
pub fn keyset_from_pem() -> KeySet {
    let mut set = KeySet::default();
    set.insert(VerifyKey {
        kid: Some(RSA_KID.into()),
        family: KeyFamily::Rsa,
        alg: None,
        key: DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap(),
    });
    set
}

/// Standard ID-token claims for `issuer`/`client_id`, issued at `now`.
pub fn id_claims(issuer: &str, client_id: &str, now: u64, nonce: &str) -> Value {
    json!({
        "iss": issuer, "sub": "user-123", "aud": client_id, "exp": now + 300, "iat": now,
        "nonce": nonce, "email": "alice@example.test", "email_verified": true,
        "preferred_username": "alice",
        "groups": ["g-admins", "g-staff"]
    })
}

/// Claims of a bearer token for `aud` from `issuer`, issued at `now`, valid for `valid_secs`,
/// unique by `jti`: the test user with the claims an ID token of [`id_claims`] carries.
pub fn bearer_claims(issuer: &str, aud: &str, jti: &str, now: u64, valid_secs: u64) -> Value {
    json!({
        "iss": issuer, "sub": "user-123", "aud": aud, "azp": aud,
        "iat": now, "exp": now + valid_secs, "jti": jti,
        "email": "alice@example.test", "email_verified": true, "preferred_username": "alice",
        "groups": ["g-admins", "g-staff"],
    })
}
