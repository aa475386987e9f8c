//! Table of ID-token checks (OIDC Core §3.1.3.7), each a token that must fail for one reason.

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use super::*;

use crate::oidc::tokens;

const ISS: &str = "https://idp.example.test";
const CLIENT: &str = "authgate";
const NOW: u64 = 1_800_000_000;
const ALGS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];

fn expect<'a>(rule: &'a IssuerRule, nonce: Option<&'a str>) -> Expectations<'a> {
    Expectations {
        issuer: rule,
        client_id: CLIENT,
        algorithms: ALGS,
        nonce,
        max_age: Some(600),
    }
}

fn claims_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = tokens::id_claims(ISS, CLIENT, NOW, "n-1");
    edit(&mut c);
    c
}

fn check(token: &str) -> Result<Claims, VerifyError> {
    let rule = IssuerRule::Exact(ISS.into());
    verify(&tokens::keyset(), &expect(&rule, Some("n-1")), NOW, token)
}

#[test]
fn valid_rs256_and_es256_tokens_verify() {
    let c = claims_with(|_| {});
    let claims = check(&tokens::sign(Algorithm::RS256, Some(tokens::RSA_KID), &c)).unwrap();
    assert_eq!(claims["email"], "alice@example.test");
    check(&tokens::sign(Algorithm::ES256, Some(tokens::EC_KID), &c)).unwrap();
    // A key set built from PEM verifies the same token as the one parsed from the JWKS.
    let rule = IssuerRule::Exact(ISS.into());
    let t = tokens::sign(Algorithm::RS256, Some(tokens::RSA_KID), &c);
    verify(
        &tokens::keyset_from_pem(),
        &expect(&rule, Some("n-1")),
        NOW,
        &t,
    )
    .unwrap();
}

#[test]
fn each_broken_token_fails_for_its_reason() {
    let kid = Some(tokens::RSA_KID);
    let rs = |c: &Value| tokens::sign(Algorithm::RS256, kid, c);
    let cases: Vec<(&str, String, VerifyError)> = vec![
        (
            "alg none",
            tokens::unsigned(&claims_with(|_| {})),
            VerifyError::AlgNone,
        ),
        (
            "HS256 with the public key",
            tokens::hs256_with_public_key(kid, &claims_with(|_| {})),
            VerifyError::Symmetric("HS256".into()),
        ),
        (
            "PS256 not allowed",
            tokens::sign(Algorithm::PS256, kid, &claims_with(|_| {})),
            VerifyError::AlgorithmNotAllowed("PS256".into()),
        ),
        (
            "unknown kid",
            tokens::sign(Algorithm::RS256, Some("nope"), &claims_with(|_| {})),
            VerifyError::UnknownKid(Some("nope".into())),
        ),
        (
            "other key, known kid",
            tokens::sign_rsa2(kid, &claims_with(|_| {})),
            VerifyError::BadSignature,
        ),
        (
            "wrong issuer",
            rs(&claims_with(|c| c["iss"] = json!("https://evil.test"))),
            VerifyError::Issuer("https://evil.test".into()),
        ),
        (
            "wrong audience",
            rs(&claims_with(|c| c["aud"] = json!("other"))),
            VerifyError::Audience,
        ),
        (
            "several audiences, no azp",
            rs(&claims_with(|c| c["aud"] = json!([CLIENT, "other"]))),
            VerifyError::Missing("azp"),
        ),
        (
            "azp of another client",
            rs(&claims_with(|c| c["azp"] = json!("other"))),
            VerifyError::AuthorizedParty,
        ),
        (
            "expired",
            rs(&claims_with(|c| c["exp"] = json!(NOW - LEEWAY - 1))),
            VerifyError::Expired,
        ),
        (
            "issued in the future",
            rs(&claims_with(|c| c["iat"] = json!(NOW + LEEWAY + 5))),
            VerifyError::NotYetValid,
        ),
        (
            "issued long ago",
            rs(&claims_with(|c| c["iat"] = json!(NOW - 3600))),
            VerifyError::TooOld,
        ),
        (
            "nbf in the future",
            rs(&claims_with(|c| c["nbf"] = json!(NOW + 3600))),
            VerifyError::NotYetValid,
        ),
        (
            "wrong nonce",
            rs(&claims_with(|c| c["nonce"] = json!("n-2"))),
            VerifyError::Nonce,
        ),
        (
            "no nonce",
            rs(&claims_with(|c| {
                drop(c.as_object_mut().unwrap().remove("nonce"))
            })),
            VerifyError::Missing("nonce"),
        ),
        (
            "no exp",
            rs(&claims_with(|c| {
                drop(c.as_object_mut().unwrap().remove("exp"))
            })),
            VerifyError::Missing("exp"),
        ),
        (
            "no iat",
            rs(&claims_with(|c| {
                drop(c.as_object_mut().unwrap().remove("iat"))
            })),
            VerifyError::Missing("iat"),
        ),
        (
            "no sub",
            rs(&claims_with(|c| {
                drop(c.as_object_mut().unwrap().remove("sub"))
            })),
            VerifyError::Missing("sub"),
        ),
        ("garbage", "a.b".into(), VerifyError::Malformed),
        (
            "garbage header",
            "e30.e30.e30x".replace("e30.", "!!!."),
            VerifyError::Malformed,
        ),
    ];
    for (name, token, want) in cases {
        assert_eq!(check(&token).unwrap_err(), want, "{name}");
    }
}

#[test]
fn tampered_payload_fails_signature() {
    let t = tokens::sign(
        Algorithm::RS256,
        Some(tokens::RSA_KID),
        &claims_with(|_| {}),
    );
    let parts: Vec<&str> = t.split('.').collect();
    let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(claims_with(|c| c["email"] = json!("mallory@example.test")).to_string());
    assert_eq!(
        check(&format!("{}.{evil}.{}", parts[0], parts[2])).unwrap_err(),
        VerifyError::BadSignature
    );
}

#[test]
fn multiple_audiences_with_our_azp_pass() {
    let c = claims_with(|c| {
        c["aud"] = json!([CLIENT, "other"]);
        c["azp"] = json!(CLIENT);
    });
    check(&tokens::sign(Algorithm::RS256, Some(tokens::RSA_KID), &c)).unwrap();
}

#[test]
fn entra_tenant_template() {
    let rule = IssuerRule::TenantTemplate {
        template: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
        allowed_tenants: vec!["t-1".into()],
    };
    let mk = |tid: &str, iss: &str| {
        let c =
            json!({"iss": iss, "tid": tid, "sub": "s", "aud": CLIENT, "exp": NOW + 60, "iat": NOW});
        tokens::sign(Algorithm::RS256, Some(tokens::RSA_KID), &c)
    };
    let e = Expectations {
        nonce: None,
        ..expect(&rule, None)
    };
    let keys = tokens::keyset();
    verify(
        &keys,
        &e,
        NOW,
        &mk("t-1", "https://login.microsoftonline.com/t-1/v2.0"),
    )
    .unwrap();
    assert_eq!(
        verify(
            &keys,
            &e,
            NOW,
            &mk("t-2", "https://login.microsoftonline.com/t-2/v2.0")
        )
        .unwrap_err(),
        VerifyError::Tenant("t-2".into())
    );
    assert!(matches!(
        verify(
            &keys,
            &e,
            NOW,
            &mk("t-1", "https://login.microsoftonline.com/t-2/v2.0")
        )
        .unwrap_err(),
        VerifyError::Issuer(_)
    ));
}

/// Found by fuzzing (fuzz/fuzz_targets/jwt_verify.rs): an `exp` within `LEEWAY` of `u64::MAX`
/// overflowed the expiry check. It is a validly signed token that expires in the far future.
#[test]
fn exp_at_the_end_of_time_is_far_future_not_an_overflow() {
    for exp in [u64::MAX, u64::MAX - LEEWAY + 1] {
        let c = claims_with(|c| c["exp"] = json!(exp));
        let claims = check(&tokens::sign(Algorithm::ES256, Some(tokens::EC_KID), &c)).unwrap();
        assert_eq!(claims["exp"], json!(exp));
    }
}

/// Signs `claims` with the fixture RSA key and `typ` in the header.
fn sign_typed(typ: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some(tokens::RSA_KID.into());
    header.typ = typ.map(str::to_string);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(tokens::RSA_PRIVATE.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A back-channel logout token (or any security event token) of the same issuer, for the same
/// client, valid in every other way, never verifies as an ID token or bearer token: by its
/// `typ`, and by its `events` claim when it is not typed.
#[test]
fn a_logout_token_is_never_an_id_or_bearer_token() {
    let rule = IssuerRule::Exact(ISS.into());
    let bearer = Expectations {
        max_age: None,
        ..expect(&rule, None)
    };
    let event = json!({"http://schemas.openid.net/event/backchannel-logout": {}});
    let logout = claims_with(|c| {
        let c = c.as_object_mut().unwrap();
        c.remove("nonce");
        c.insert("events".into(), event.clone());
        c.insert("jti".into(), json!("j-1"));
    });
    let plain = claims_with(|c| drop(c.as_object_mut().unwrap().remove("nonce")));
    let keys = tokens::keyset();
    for (name, token) in [
        (
            "typed and with events",
            sign_typed(Some("logout+jwt"), &logout),
        ),
        ("untyped, with events", sign_typed(None, &logout)),
        ("typ JWT, with events", sign_typed(Some("JWT"), &logout)),
        (
            "media type, without events",
            sign_typed(Some("application/logout+jwt"), &plain),
        ),
        ("secevent+jwt", sign_typed(Some("secevent+jwt"), &plain)),
        // Only ID and access token types pass: never one merely not on a list of bad ones.
        (
            "logout+jwt with a space",
            sign_typed(Some(" logout+jwt"), &plain),
        ),
        ("logout+jwt;x", sign_typed(Some("logout+jwt;x"), &plain)),
        ("dpop+jwt", sign_typed(Some("dpop+jwt"), &plain)),
        (
            "token-introspection+jwt",
            sign_typed(Some("token-introspection+jwt"), &plain),
        ),
        ("empty typ", sign_typed(Some(""), &plain)),
        (
            "Keycloak refresh token",
            sign_typed(
                Some("JWT"),
                &claims_with(|c| {
                    let c = c.as_object_mut().unwrap();
                    c.remove("nonce");
                    c.insert("typ".into(), json!("Refresh"));
                }),
            ),
        ),
        (
            "Keycloak logout token without events",
            sign_typed(
                Some("JWT"),
                &claims_with(|c| {
                    let c = c.as_object_mut().unwrap();
                    c.remove("nonce");
                    c.insert("typ".into(), json!("Logout"));
                }),
            ),
        ),
    ] {
        let refused = verify(&keys, &bearer, NOW, &token).unwrap_err();
        assert!(
            matches!(refused, VerifyError::OtherPurpose(_)),
            "{name}: {refused:?}"
        );
    }
    // The same claims without what marks a logout token still pass as a bearer token, and
    // typed access tokens (RFC 9068 `at+jwt`) too.
    verify(&keys, &bearer, NOW, &sign_typed(Some("JWT"), &plain)).unwrap();
    verify(&keys, &bearer, NOW, &sign_typed(Some("at+jwt"), &plain)).unwrap();
    verify(
        &keys,
        &bearer,
        NOW,
        &sign_typed(Some("application/at+jwt"), &plain),
    )
    .unwrap();
    verify(&keys, &bearer, NOW, &sign_typed(None, &plain)).unwrap();
    for typ in ["ID", "Bearer"] {
        let keycloak = claims_with(|c| {
            let c = c.as_object_mut().unwrap();
            c.remove("nonce");
            c.insert("typ".into(), json!(typ));
        });
        verify(&keys, &bearer, NOW, &sign_typed(Some("JWT"), &keycloak)).unwrap();
    }
}
