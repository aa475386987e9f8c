//! ID-token and bearer-JWT verification: pure, with the keys and the clock passed in.
//!
//! Implements OIDC Core §3.1.3.7 (ID Token Validation) for a relying party: signature with an
//! allow-listed asymmetric algorithm (`none` and HMAC never), `iss`, `aud`, `azp`, `exp`, `iat`,
//! `nonce`. Never fetches keys: an unknown `kid` is returned as such for the caller to refetch.
//! A JWT made for another purpose (a back-channel logout token, any security event token) is
//! refused here whatever it claims, so it never passes as an ID token or a bearer token.

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::keys::KeySet;
use crate::secret::Secret;

/// Claims of a verified token.
pub type Claims = Map<String, Value>;

/// The claim `name` when it is a non-empty string.
pub fn claim_text(claims: &Claims, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: u64 = 60;

/// How the `iss` claim is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerRule {
    /// Must equal this string exactly (OIDC Core §3.1.3.7 point 2).
    Exact(String),
    /// Entra multi-tenant: the issuer with `{tenantid}` replaced by the token's `tid`, and `tid`
    /// in the allowed list (empty list: any tenant).
    TenantTemplate {
        /// e.g. `https://login.microsoftonline.com/{tenantid}/v2.0`.
        template: String,
        /// Tenant ids accepted.
        allowed_tenants: Vec<String>,
    },
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// Issuer rule.
    pub issuer: &'a IssuerRule,
    /// Our client id: must be in `aud`; `azp`, when present, must equal it.
    pub client_id: &'a str,
    /// Algorithms accepted.
    pub algorithms: &'a [Algorithm],
    /// Nonce sent in the authorization request, for ID tokens from the code flow.
    pub nonce: Option<&'a str>,
    /// Reject tokens issued longer ago than this many seconds (callback freshness).
    pub max_age: Option<u64>,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not three base64url parts with a JSON header.
    #[error("token is malformed")]
    Malformed,
    /// `alg: none`.
    #[error("unsigned token (alg none) refused")]
    AlgNone,
    /// HMAC: a relying party without a shared secret never accepts it.
    #[error("symmetric algorithm {0} refused")]
    Symmetric(String),
    /// Not in the provider's allow-list.
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// No key with this `kid`; the caller may refetch the JWKS once.
    #[error("unknown key id {0:?}")]
    UnknownKid(Option<String>),
    /// Signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A required claim is absent.
    #[error("claim {0} missing")]
    Missing(&'static str),
    /// `iss` wrong.
    #[error("issuer {0:?} not expected")]
    Issuer(String),
    /// Our client id is not in `aud`.
    #[error("audience does not include this client")]
    Audience,
    /// `azp` names another client.
    #[error("authorized party is another client")]
    AuthorizedParty,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` too far in the past.
    #[error("token issued too long ago")]
    TooOld,
    /// Nonce differs.
    #[error("nonce mismatch")]
    Nonce,
    /// Tenant not allowed (Entra multi-tenant).
    #[error("tenant {0:?} not allowed")]
    Tenant(String),
    /// A JWT of another purpose: its `typ` or its `events` claim says it is a logout token or
    /// another security event token, never an ID or access token.
    #[error("a {0} is not an ID token or access token")]
    OtherPurpose(&'static str),
}

/// The header fields verification needs, read before any key is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `alg`.
    pub alg: Algorithm,
    /// `kid`.
    pub kid: Option<String>,
    /// `typ`, when sent as a string (RFC 7515 §4.1.9).
    pub typ: Option<String>,
}

/// Reads and screens the header: `none` and HMAC are refused here, by name.
pub fn header(token: &str, allowed: &[Algorithm]) -> Result<Header, VerifyError> {
    let first = token.split('.').next().ok_or(VerifyError::Malformed)?;
    if token.split('.').count() != 3 {
        return Err(VerifyError::Malformed);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .map_err(|_| VerifyError::Malformed)?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)?;
    let alg_text = json
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(VerifyError::Malformed)?;
    if alg_text.eq_ignore_ascii_case("none") {
        return Err(VerifyError::AlgNone);
    }
    if alg_text.starts_with("HS") {
        return Err(VerifyError::Symmetric(alg_text.to_string()));
    }
    let alg: Algorithm = alg_text
        .parse()
        .map_err(|_| VerifyError::AlgorithmNotAllowed(alg_text.to_string()))?;
    if !allowed.contains(&alg) {
        return Err(VerifyError::AlgorithmNotAllowed(alg_text.to_string()));
    }
    let text = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_string);
    Ok(Header {
        alg,
        kid: text("kid"),
        typ: text("typ"),
    })
}

/// Verifies `token` against `keys` and `expect` at time `now` (seconds since the epoch).
pub fn verify(
    keys: &KeySet,
    expect: &Expectations<'_>,
    now: u64,
    token: &str,
) -> Result<Claims, VerifyError> {
    let (header, claims) = signed(keys, expect.algorithms, token)?;
    check_purpose(&header, &claims)?;
    check_claims(&claims, expect, now)?;
    Ok(claims)
}

/// Admits only JWTs typed as ID tokens or access tokens, by an allowlist. A logout token is
/// signed by the same keys, for the same `aud`, often with a `sub`, and carries no `nonce`:
/// without this check it would pass as a bearer token (OIDC Back-Channel Logout 1.0 §2.4 types
/// it `logout+jwt` and gives it an `events` claim precisely to tell it apart; RFC 8725 §3.11
/// explicit typing, §2.8 cross-JWT confusion), and so would a DPoP proof or an introspection
/// answer signed by the same issuer. The header's `typ` must be absent, `JWT` or `at+jwt`
/// (RFC 9068 §2.1; `application/` allowed, any case, nothing else around it); a `typ` claim, as
/// Keycloak writes one, must be `ID` or `Bearer`; and `events`, which marks every security
/// event token (RFC 8417 §2.2), must be absent.
pub fn check_purpose(header: &Header, claims: &Claims) -> Result<(), VerifyError> {
    if let Some(typ) = header.typ.as_deref() {
        let lower = typ.to_ascii_lowercase();
        let bare = lower.strip_prefix("application/").unwrap_or(&lower);
        if bare != "jwt" && bare != "at+jwt" {
            return Err(VerifyError::OtherPurpose(match bare {
                "logout+jwt" => "logout token (typ logout+jwt)",
                "secevent+jwt" => "security event token (typ secevent+jwt)",
                _ => "JWT of another type (its typ is not JWT or at+jwt)",
            }));
        }
    }
    if claims.contains_key("events") {
        return Err(VerifyError::OtherPurpose(
            "logout or security event token (events claim)",
        ));
    }
    match claims.get("typ") {
        None => Ok(()),
        Some(Value::String(t))
            if t.eq_ignore_ascii_case("id") || t.eq_ignore_ascii_case("bearer") =>
        {
            Ok(())
        }
        Some(_) => Err(VerifyError::OtherPurpose(
            "token whose typ claim is not ID or Bearer (a refresh or logout token)",
        )),
    }
}

/// The claims of `token` once its signature verifies with a key of `keys` and an algorithm of
/// `algorithms`; no claim is checked yet.
pub fn verify_signature(
    keys: &KeySet,
    algorithms: &[Algorithm],
    token: &str,
) -> Result<Claims, VerifyError> {
    signed(keys, algorithms, token).map(|(_, claims)| claims)
}

/// The screened header and the claims of `token` once its signature verifies.
fn signed(
    keys: &KeySet,
    algorithms: &[Algorithm],
    token: &str,
) -> Result<(Header, Claims), VerifyError> {
    let header = header(token, algorithms)?;
    let candidates = keys.candidates(header.kid.as_deref(), header.alg);
    if candidates.is_empty() {
        return Err(VerifyError::UnknownKid(header.kid));
    }
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = candidates
        .iter()
        .find_map(|k| jsonwebtoken::decode::<Claims>(token, &k.key, &validation).ok())
        .ok_or(VerifyError::BadSignature)?
        .claims;
    Ok((header, claims))
}

/// The claim checks of OIDC Core §3.1.3.7 after the signature.
pub fn check_claims(
    claims: &Claims,
    expect: &Expectations<'_>,
    now: u64,
) -> Result<(), VerifyError> {
    check_issuer(claims, expect.issuer)?;
    claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(VerifyError::Missing("sub"))?;
    check_audience(claims, expect.client_id)?;
    check_times(claims, expect.max_age, now)?;
    if let Some(want) = expect.nonce {
        let got = claims
            .get("nonce")
            .and_then(Value::as_str)
            .ok_or(VerifyError::Missing("nonce"))?;
        if !Secret::new(got).ct_eq(want) {
            return Err(VerifyError::Nonce);
        }
    }
    Ok(())
}

/// `iss` against the issuer rule (OIDC Core §3.1.3.7 point 2; Entra's tenant template).
pub fn check_issuer(claims: &Claims, rule: &IssuerRule) -> Result<(), VerifyError> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(VerifyError::Missing("iss"))?;
    match rule {
        IssuerRule::Exact(want) if iss == want => {}
        IssuerRule::Exact(_) => return Err(VerifyError::Issuer(iss.into())),
        IssuerRule::TenantTemplate {
            template,
            allowed_tenants,
        } => {
            let tid = claims
                .get("tid")
                .and_then(Value::as_str)
                .ok_or(VerifyError::Missing("tid"))?;
            if iss != template.replace("{tenantid}", tid) {
                return Err(VerifyError::Issuer(iss.into()));
            }
            if !allowed_tenants.is_empty() && !allowed_tenants.iter().any(|t| t == tid) {
                return Err(VerifyError::Tenant(tid.into()));
            }
        }
    }
    Ok(())
}

/// `aud` holds `client_id`; `azp`, when present or needed, names it (OIDC Core §3.1.3.7 points
/// 3–5).
pub fn check_audience(claims: &Claims, client_id: &str) -> Result<(), VerifyError> {
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(VerifyError::Missing("aud")),
    };
    if !auds.contains(&client_id) {
        return Err(VerifyError::Audience);
    }
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != client_id => return Err(VerifyError::AuthorizedParty),
        None if auds.len() > 1 => return Err(VerifyError::Missing("azp")),
        _ => {}
    }
    Ok(())
}

/// `exp` not passed, `iat` and `nbf` not in the future, `iat` within `max_age` when given
/// (OIDC Core §3.1.3.7 points 9–10), each with [`LEEWAY`].
pub fn check_times(claims: &Claims, max_age: Option<u64>, now: u64) -> Result<(), VerifyError> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(VerifyError::Missing("exp"))?;
    // Saturating: `exp` is the signer's number, and one near `u64::MAX` (found by fuzzing)
    // must read as "far in the future", not overflow.
    if now >= exp.saturating_add(LEEWAY) {
        return Err(VerifyError::Expired);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(VerifyError::Missing("iat"))?;
    if iat > now + LEEWAY {
        return Err(VerifyError::NotYetValid);
    }
    if let Some(max_age) = max_age {
        if now > iat.saturating_add(max_age).saturating_add(LEEWAY) {
            return Err(VerifyError::TooOld);
        }
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
        if nbf > now + LEEWAY {
            return Err(VerifyError::NotYetValid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
