//! Logout-token verification (OpenID Connect Back-Channel Logout 1.0 §2.6): pure, with the
//! keys and the clock passed in.
//!
//! A logout token is checked like an ID token (signature, `iss`, `aud`, `iat`), then for what
//! makes it a logout token: `typ`, the `events` member, `sid` and/or `sub`, no `nonce`, a `jti`.
//! Never fetches keys and never remembers anything: single use of `jti` is the caller's (it
//! needs a store shared by every replica).

use base64::Engine;
use serde_json::Value;

use super::keys::KeySet;
use super::verify::{
    check_audience, check_issuer, check_times, claim_text, verify_signature, Claims, IssuerRule,
    VerifyError,
};

/// The event a logout token must carry (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token issued longer ago than this (seconds, plus [`super::verify::LEEWAY`]) is
/// refused, so a `jti` need only be remembered a little longer ([`JTI_MEMORY`]).
pub const LOGOUT_TOKEN_MAX_AGE: u64 = 300;

/// How long a `jti` is remembered: longer than any token it names stays acceptable.
pub const JTI_MEMORY: u64 = 600;

/// What a logout token must satisfy.
#[derive(Debug, Clone)]
pub struct LogoutExpectations<'a> {
    /// Issuer rule of the provider.
    pub issuer: &'a IssuerRule,
    /// Our client id at that provider.
    pub client_id: &'a str,
    /// Algorithms accepted.
    pub algorithms: &'a [jsonwebtoken::Algorithm],
}

/// The claims of a verified logout token that say which sessions end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`, when sent: every session of this user ends (unless `sid` narrows it).
    pub subject: Option<String>,
    /// `sid`, when sent: the sessions of this IdP session end.
    pub sid: Option<String>,
    /// `jti`, for single use.
    pub jti: String,
}

/// Why a logout token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// The checks it shares with an ID token failed.
    #[error(transparent)]
    Token(#[from] VerifyError),
    /// The header's `typ` is not `logout+jwt` (§2.4: it distinguishes logout tokens from ID
    /// tokens, which may be replayed here otherwise).
    #[error("typ {0:?} is not logout+jwt")]
    Typ(String),
    /// No `events` object holding the back-channel logout event as an object (§2.6 point 4).
    #[error("events lacks the back-channel logout event object")]
    Events,
    /// Neither `sid` nor `sub` (§2.6 point 5).
    #[error("neither sid nor sub")]
    NoSubject,
    /// A `nonce` is present (§2.6 point 6: it would make an ID token pass as a logout token).
    #[error("a logout token never carries a nonce")]
    Nonce,
    /// No provider of the workspace verifies logout tokens (GitHub only).
    #[error("no provider of this workspace issues logout tokens")]
    NoProvider,
    /// The provider's metadata or keys cannot be fetched: the token cannot be judged now (the
    /// only variant that is not the token's fault).
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
}

/// The payload of `token` without verifying anything: only to tell which provider's issuer it
/// names before a key is looked at.
pub fn unverified_claims(token: &str) -> Result<Claims, VerifyError> {
    let payload = token.split('.').nth(1).ok_or(VerifyError::Malformed)?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(VerifyError::Malformed)
}

/// Verifies `token` as a logout token of the provider `expect` describes, at time `now`.
pub fn verify_logout(
    keys: &KeySet,
    expect: &LogoutExpectations<'_>,
    now: u64,
    token: &str,
) -> Result<LogoutClaims, LogoutError> {
    check_typ(token)?;
    let claims = verify_signature(keys, expect.algorithms, token)?;
    check_logout_claims(&claims, expect, now)
}

/// §2.6 point 3 (via RFC 8725 §3.11): the header's `typ`, when sent, is `logout+jwt`
/// (`application/logout+jwt` is the same media type, RFC 7515 §4.1.9).
fn check_typ(token: &str) -> Result<(), LogoutError> {
    let first = token.split('.').next().unwrap_or_default();
    let header: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(VerifyError::Malformed)?;
    match header.get("typ") {
        None => Ok(()),
        Some(Value::String(t))
            if t.eq_ignore_ascii_case("logout+jwt")
                || t.eq_ignore_ascii_case("application/logout+jwt") =>
        {
            Ok(())
        }
        Some(other) => Err(LogoutError::Typ(
            other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string),
        )),
    }
}

/// The claim checks of §2.6 points 3–7 once the signature verified.
pub fn check_logout_claims(
    claims: &Claims,
    expect: &LogoutExpectations<'_>,
    now: u64,
) -> Result<LogoutClaims, LogoutError> {
    // Point 3: as an ID token (OIDC Core §3.1.3.7): iss, aud, iat; exp when sent.
    check_issuer(claims, expect.issuer)?;
    check_audience(claims, expect.client_id)?;
    if claims.get("iat").and_then(Value::as_u64).is_none() {
        return Err(VerifyError::Missing("iat").into());
    }
    let mut timed = claims.clone();
    if !timed.contains_key("exp") {
        // Drafts before 1.0 final had no `exp`; `iat` freshness bounds such a token alone.
        timed.insert("exp".into(), Value::from(u64::MAX / 2));
    }
    check_times(&timed, Some(LOGOUT_TOKEN_MAX_AGE), now)?;
    // Point 4: events holds the back-channel logout event, as a JSON object.
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT));
    if !matches!(event, Some(Value::Object(_))) {
        return Err(LogoutError::Events);
    }
    // Point 5: sid, sub, or both.
    let text = |name: &str| claim_text(claims, name);
    let (subject, sid) = (text("sub"), text("sid"));
    if subject.is_none() && sid.is_none() {
        return Err(LogoutError::NoSubject);
    }
    // Point 6: no nonce.
    if claims.contains_key("nonce") {
        return Err(LogoutError::Nonce);
    }
    // Point 7 (single use) is the caller's; it needs the jti.
    let jti = text("jti").ok_or(VerifyError::Missing("jti"))?;
    let issuer = text("iss").ok_or(VerifyError::Missing("iss"))?;
    Ok(LogoutClaims {
        issuer,
        subject,
        sid,
        jti,
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{json, Value};

    use super::super::tokens;
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const ISS: &str = "https://idp.test";
    const CLIENT: &str = "authgate-mcd";

    fn good() -> Value {
        json!({
            "iss": ISS, "aud": CLIENT, "iat": NOW, "exp": NOW + 120, "jti": "j-1",
            "sub": "alice", "sid": "s-1",
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        })
    }

    fn sign_typ(typ: Option<&str>, claims: &Value) -> String {
        sign_with(tokens::RSA_PRIVATE, typ, claims)
    }

    fn sign_with(pem: &str, typ: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(tokens::RSA_KID.into());
        header.typ = typ.map(str::to_string);
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn unsigned(claims: &Value) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = b64(br#"{"alg":"none","typ":"logout+jwt"}"#);
        format!("{header}.{}.", b64(claims.to_string().as_bytes()))
    }

    fn check(token: &str) -> Result<LogoutClaims, LogoutError> {
        let rule = IssuerRule::Exact(ISS.into());
        let expect = LogoutExpectations {
            issuer: &rule,
            client_id: CLIENT,
            algorithms: &[Algorithm::RS256, Algorithm::ES256],
        };
        verify_logout(&tokens::keyset(), &expect, NOW, token)
    }

    fn edited(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut c = good();
        edit(c.as_object_mut().unwrap());
        sign_typ(Some("logout+jwt"), &c)
    }

    #[test]
    fn a_good_token_names_its_sessions() {
        let got = check(&sign_typ(Some("logout+jwt"), &good())).unwrap();
        assert_eq!(
            got,
            LogoutClaims {
                issuer: ISS.into(),
                subject: Some("alice".into()),
                sid: Some("s-1".into()),
                jti: "j-1".into(),
            }
        );
        // typ may be left out, or written as the full media type; sid or sub alone will do.
        assert!(check(&sign_typ(None, &good())).is_ok());
        assert!(check(&sign_typ(Some("application/logout+jwt"), &good())).is_ok());
        assert!(check(&edited(|c| drop(c.remove("sub")))).is_ok());
        assert!(check(&edited(|c| drop(c.remove("sid")))).is_ok());
        assert!(check(&edited(|c| drop(c.remove("exp")))).is_ok());
        assert!(check(&edited(|c| drop(c.insert("aud".into(), json!([CLIENT]))))).is_ok());
    }

    #[test]
    fn each_bad_token_fails_for_its_own_reason() {
        use LogoutError as L;
        use VerifyError as V;
        let cases: Vec<(&str, String, LogoutError)> = vec![
            (
                "bad signature",
                sign_with(tokens::RSA2_PRIVATE, Some("logout+jwt"), &good()),
                L::Token(V::BadSignature),
            ),
            ("alg none", unsigned(&good()), L::Token(V::AlgNone)),
            (
                "wrong aud",
                edited(|c| drop(c.insert("aud".into(), json!("other")))),
                L::Token(V::Audience),
            ),
            (
                "wrong iss",
                edited(|c| drop(c.insert("iss".into(), json!("https://evil.test")))),
                L::Token(V::Issuer("https://evil.test".into())),
            ),
            (
                "nonce",
                edited(|c| drop(c.insert("nonce".into(), json!("n")))),
                L::Nonce,
            ),
            (
                "events missing",
                edited(|c| drop(c.remove("events"))),
                L::Events,
            ),
            (
                "events without the event",
                edited(|c| drop(c.insert("events".into(), json!({"http://other": {}})))),
                L::Events,
            ),
            (
                "event not an object",
                edited(|c| {
                    drop(c.insert("events".into(), json!({BACKCHANNEL_LOGOUT_EVENT: "yes"})))
                }),
                L::Events,
            ),
            (
                "neither sid nor sub",
                edited(|c| {
                    c.remove("sid");
                    c.remove("sub");
                }),
                L::NoSubject,
            ),
            (
                "typ JWT",
                sign_typ(Some("JWT"), &good()),
                L::Typ("JWT".into()),
            ),
            (
                "iat in the future",
                edited(|c| drop(c.insert("iat".into(), json!(NOW + 3600)))),
                L::Token(V::NotYetValid),
            ),
            (
                "iat too old",
                edited(|c| {
                    c.insert("iat".into(), json!(NOW - 3600));
                    c.insert("exp".into(), json!(NOW + 60));
                }),
                L::Token(V::TooOld),
            ),
            (
                "iat missing",
                edited(|c| drop(c.remove("iat"))),
                L::Token(V::Missing("iat")),
            ),
            (
                "expired",
                edited(|c| drop(c.insert("exp".into(), json!(NOW - 3600)))),
                L::Token(V::Expired),
            ),
            (
                "jti missing",
                edited(|c| drop(c.remove("jti"))),
                L::Token(V::Missing("jti")),
            ),
        ];
        for (name, token, want) in cases {
            assert_eq!(check(&token), Err(want), "{name}");
        }
    }
}
