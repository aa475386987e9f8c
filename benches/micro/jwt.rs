//! JWT verification, RS256 and ES256 (the fixture keys of `tests/fixtures/`):
//!
//! - `jwt_verify/*`: the pure `oidc::verify::verify` an ID token goes through at the callback
//!   (signature, `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`, freshness);
//! - `bearer/*/warm`: `Workspace::verify_bearer` for a token verified before — a hit in the
//!   verified-token cache, keyed by the token's SHA-256;
//! - `bearer/*/cold`: the same call with that cache entry removed before each call (untimed), so
//!   every call verifies the signature, builds the identity and inserts it.

use authgate::oidc::verify::{self, Expectations, IssuerRule};
use jsonwebtoken::Algorithm;
use sha2::{Digest, Sha256};

use crate::fixture::{bearer_claims, now, Fixture, CLIENT_ID};
use crate::runner::Runner;
use testkit::tokens;

pub(crate) fn bench(r: &mut Runner, fx: &Fixture) {
    let keys = tokens::keyset();
    let issuer = IssuerRule::Exact(fx.issuer.clone());
    let algorithms = [Algorithm::RS256, Algorithm::ES256, Algorithm::PS256];
    let expect = Expectations {
        issuer: &issuer,
        client_id: CLIENT_ID,
        algorithms: &algorithms,
        nonce: Some("n-0S6_WzA2Mj"),
        max_age: Some(300),
    };
    let ws = fx.workspace();
    for (alg, kid, label) in [
        (Algorithm::RS256, tokens::RSA_KID, "RS256"),
        (Algorithm::ES256, tokens::EC_KID, "ES256"),
    ] {
        let now = now();
        let id_token = tokens::sign(
            alg,
            Some(kid),
            &tokens::id_claims(&fx.issuer, CLIENT_ID, now, "n-0S6_WzA2Mj"),
        );
        verify::verify(&keys, &expect, now, &id_token).expect("the ID token verifies");
        r.run("jwt_verify", label, || {
            verify::verify(&keys, &expect, now, &id_token)
        });

        let bearer = tokens::sign(alg, Some(kid), &bearer_claims(&fx.issuer, label));
        let key: [u8; 32] = Sha256::digest(bearer.as_bytes()).into();
        ws.verify_bearer(&bearer, now).expect("the bearer verifies");
        assert!(
            ws.bearer_cache.contains_key(&key),
            "verified tokens are cached"
        );
        r.run("bearer", &format!("{label}/warm"), || {
            ws.verify_bearer(&bearer, now)
        });
        r.per_call(
            "bearer",
            &format!("{label}/cold"),
            || ws.bearer_cache.invalidate(&key),
            |()| ws.verify_bearer(&bearer, now),
        );
    }
}
