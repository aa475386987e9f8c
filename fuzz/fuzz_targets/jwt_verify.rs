//! JWT header and claims parsing: `oidc::verify::verify` on arbitrary compact tokens against a
//! fixed key set (the fixture RSA key `rsa-1` and EC key `ec-1`).
//!
//! First byte, low two bits: 0 — the rest is the token as sent; 1 — the rest is a header JSON
//! and a claims JSON separated by a NUL byte, signed with the fixture EC key (ES256), so the
//! claim checks are reached; 2 — the same, its signature then altered (the fixture key never
//! signed what is sent). Bit 2 picks the Entra tenant-template issuer rule instead of an exact
//! issuer. Property: a token is never accepted unless its signature verifies under a key of the
//! set, and an accepted token satisfies every expectation (OIDC Core §3.1.3.7).
#![no_main]

use std::sync::OnceLock;

use authgate::oidc::verify::{verify, Claims, Expectations, IssuerRule, LEEWAY};
use authgate::oidc::{KeyFamily, KeySet, VerifyKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ISS: &str = "https://idp.example.test";
const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const TENANT: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT: &str = "authgate";
const NONCE: &str = "n-1";
const NOW: u64 = 1_800_000_000;
const MAX_AGE: u64 = 600;
const ALGS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];

const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/rsa-public.pem");
const EC_PUBLIC: &str = include_str!("../../tests/fixtures/ec-public.pem");
const EC_PRIVATE: &str = include_str!("../../tests/fixtures/ec-private.pem");

struct Fixture {
    keys: KeySet,
    /// The public keys again, each with the only algorithm it may verify, for the re-check.
    public: Vec<(DecodingKey, Algorithm)>,
    signer: EncodingKey,
    exact: IssuerRule,
    tenant: IssuerRule,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rsa = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).expect("RSA fixture");
        let ec = DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).expect("EC fixture");
        let mut keys = KeySet::default();
        for (kid, family, key) in [
            ("rsa-1", KeyFamily::Rsa, &rsa),
            ("ec-1", KeyFamily::Ec, &ec),
        ] {
            keys.insert(VerifyKey {
                kid: Some(kid.into()),
                family,
                alg: None,
                key: key.clone(),
            });
        }
        Fixture {
            keys,
            public: vec![(rsa, Algorithm::RS256), (ec, Algorithm::ES256)],
            signer: EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("EC private fixture"),
            exact: IssuerRule::Exact(ISS.into()),
            tenant: IssuerRule::TenantTemplate {
                template: TEMPLATE.into(),
                allowed_tenants: vec![TENANT.into()],
            },
        }
    })
}

/// `header.claims.signature`, signed by the fixture EC key; `tamper` alters the signature.
fn signed(fx: &Fixture, header: &[u8], claims: &[u8], tamper: Option<u8>) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &fx.signer, Algorithm::ES256)
        .expect("ES256 signing");
    let sig = match tamper {
        None => sig,
        Some(t) => {
            let mut bytes = URL_SAFE_NO_PAD.decode(&sig).expect("own signature");
            let at = usize::from(t) % bytes.len();
            bytes[at] ^= t | 1;
            URL_SAFE_NO_PAD.encode(bytes)
        }
    };
    format!("{message}.{sig}")
}

/// Whether the token's signature verifies under one of the fixture keys.
fn really_signed(fx: &Fixture, token: &str) -> bool {
    let Some((message, sig)) = token.rsplit_once('.') else {
        return false;
    };
    fx.public.iter().any(|(key, alg)| {
        jsonwebtoken::crypto::verify(sig, message.as_bytes(), key, *alg).unwrap_or(false)
    })
}

/// Every expectation, checked again on the claims `verify` accepted.
fn check_accepted(claims: &Claims, rule: &IssuerRule) {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let iss = text("iss").expect("iss");
    match rule {
        IssuerRule::Exact(want) => assert_eq!(iss, want),
        IssuerRule::TenantTemplate { .. } => {
            assert_eq!(text("tid"), Some(TENANT));
            assert_eq!(iss, TEMPLATE.replace("{tenantid}", TENANT));
        }
    }
    assert!(text("sub").is_some(), "sub");
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == CLIENT,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(CLIENT)),
        _ => false,
    };
    assert!(aud_ok, "aud");
    if let Some(azp) = claims.get("azp") {
        assert_eq!(azp.as_str(), Some(CLIENT), "azp");
    }
    let exp = claims.get("exp").and_then(Value::as_u64).expect("exp");
    assert!(NOW < exp.saturating_add(LEEWAY), "expired");
    let iat = claims.get("iat").and_then(Value::as_u64).expect("iat");
    assert!(iat <= NOW + LEEWAY, "issued in the future");
    assert!(NOW <= iat.saturating_add(MAX_AGE + LEEWAY), "too old");
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
        assert!(nbf <= NOW + LEEWAY, "not yet valid");
    }
    assert_eq!(text("nonce"), Some(NONCE), "nonce");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let token = match mode & 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(t) => t.to_string(),
            Err(_) => return,
        },
        m => {
            let (header, claims) = match rest.iter().position(|&b| b == 0) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &b"{}"[..]),
            };
            let tamper = (m != 1).then(|| mode.wrapping_add(rest.len() as u8));
            signed(fx, header, claims, tamper)
        }
    };
    let rule = if mode & 4 == 0 { &fx.exact } else { &fx.tenant };
    let expect = Expectations {
        issuer: rule,
        client_id: CLIENT,
        algorithms: ALGS,
        nonce: Some(NONCE),
        max_age: Some(MAX_AGE),
    };
    let Ok(claims) = verify(&fx.keys, &expect, NOW, &token) else {
        return;
    };
    assert!(
        mode & 3 != 2,
        "a token with an altered signature was accepted: {token}"
    );
    assert!(
        really_signed(fx, &token),
        "accepted without a valid signature: {token}"
    );
    check_accepted(&claims, rule);
});
