//! The session-cookie opener: `SessionCodec::open` on arbitrary cookie values.
//!
//! First byte even: the rest, split on newlines, is offered as the values of the session cookie
//! (tampered, truncated, foreign or garbage cookies). First byte odd: the rest is sealed with the
//! workspace's own key as the cookie's plaintext, so the JSON and session checks behind the
//! decryption are reached too. Whatever opens must be a current session of this workspace, and
//! its identity must survive a fresh seal and open.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use authgate::secret::Secret;
use authgate::session::{MasterSecrets, Purpose, SessionCodec, SessionError, MAX_SEALED_LEN};
use cookie::{Cookie, CookieJar, Key};
use libfuzzer_sys::fuzz_target;

/// The tests' master secret first (it seals), a retired one after it (it only opens).
const SECRETS: &str = "dGVzdC1vbmx5LWNvb2tpZS1zZWNyZXQtMzItYnl0ZXMtbG9uZw\n\
                       b2xkLXRlc3Qtb25seS1jb29raWUtc2VjcmV0LTMyLWJ5dGVzLWxvbmc";
const NAME: &str = "__Host-authgate-mcd";
const WORKSPACE: &str = "mcd";
const NOW: u64 = 1_800_000_000;

struct Fixture {
    codec: SessionCodec,
    key: Key,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let secrets = MasterSecrets::parse(&Secret::new(SECRETS)).expect("fixture secrets");
        let keys = secrets.derive(WORKSPACE, Purpose::Session);
        let key = keys[0].clone();
        let codec = SessionCodec::new(keys, NAME, WORKSPACE, Duration::from_secs(3600), true);
        Fixture { codec, key }
    })
}

/// Seals `plaintext` exactly as authgate seals a session value.
fn seal(key: &Key, plaintext: &str) -> String {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new(NAME, plaintext.to_string()));
    jar.get(NAME).expect("sealed").value().to_string()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let fx = fixture();
    let result = if mode % 2 == 0 {
        fx.codec.open(text.split('\n'), NOW)
    } else {
        let sealed = seal(&fx.key, text);
        let result = fx.codec.open([sealed.as_str()], NOW);
        if sealed.len() > MAX_SEALED_LEN {
            assert_eq!(result, Err(SessionError::Oversized));
        }
        result
    };
    let Ok(session) = result else {
        return;
    };
    assert_eq!(session.v, 1, "only version 1 opens");
    assert_eq!(session.w, WORKSPACE, "only this workspace's sessions open");
    assert!(NOW < session.exp, "an expired session opened");
    if session.sid.is_none() {
        match fx.codec.issue(&session.id, NOW) {
            Ok(cookie) => {
                let again = fx
                    .codec
                    .open([cookie.value()], NOW)
                    .expect("a fresh seal opens");
                assert_eq!(again.id, session.id, "the identity survives a round trip");
            }
            Err(e) => assert_eq!(e, SessionError::TooLarge),
        }
    }
});
