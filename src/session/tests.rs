//! Session cookie cases: round trip, tampering, truncation, expiry, other workspace, oversize,
//! key rotation; login cookies that must fit; the Redis store that must never wait to connect.

use std::time::Duration;

use super::*;
use crate::secret::Secret;

const NOW: u64 = 1_800_000_000;

fn secrets(text: &str) -> MasterSecrets {
    MasterSecrets::parse(&Secret::new(text)).unwrap()
}

fn codec(m: &MasterSecrets, ws: &str) -> SessionCodec {
    SessionCodec::new(
        m.derive(ws, Purpose::Session),
        "__Host-authgate",
        ws,
        Duration::from_secs(3600),
        true,
    )
}

fn alice() -> Identity {
    Identity {
        user: "alice".into(),
        email: "alice@example.test".into(),
        ..Identity::default()
    }
}

#[test]
fn round_trip_and_cookie_flags() {
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let cookie = c.issue(&alice(), NOW).unwrap();
    assert!(cookie.secure().unwrap() && cookie.http_only().unwrap());
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert!(cookie.domain().is_none(), "host-only");
    assert!(!cookie.value().contains("alice"), "encrypted");
    let s = c.open([cookie.value()], NOW + 10).unwrap();
    assert_eq!(s.id, alice());
    assert_eq!(s.exp, NOW + 3600);
}

#[test]
fn bad_cookies_are_refused_with_their_reason() {
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let v = c.issue(&alice(), NOW).unwrap().value().to_string();
    let mut flipped = v.clone().into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cases: Vec<(&str, String, u64, SessionError)> = vec![
        ("tampered", flipped, NOW, SessionError::Undecryptable),
        (
            "truncated",
            v[..v.len() - 4].to_string(),
            NOW,
            SessionError::Undecryptable,
        ),
        (
            "garbage",
            "%%%not-base64%%%".into(),
            NOW,
            SessionError::Undecryptable,
        ),
        ("empty", String::new(), NOW, SessionError::Undecryptable),
        (
            "oversized",
            "A".repeat(MAX_SEALED_LEN + 1),
            NOW,
            SessionError::Oversized,
        ),
        ("expired", v.clone(), NOW + 3600, SessionError::Expired),
    ];
    for (name, value, now, want) in cases {
        assert_eq!(c.open([value.as_str()], now).unwrap_err(), want, "{name}");
    }
    assert_eq!(c.open([], NOW).unwrap_err(), SessionError::Missing);
}

#[test]
fn a_cookie_of_one_workspace_never_opens_at_another() {
    let m = secrets(&MasterSecrets::generate());
    let v = codec(&m, "mcd")
        .issue(&alice(), NOW)
        .unwrap()
        .value()
        .to_string();
    assert_eq!(
        codec(&m, "perso").open([v.as_str()], NOW).unwrap_err(),
        SessionError::Undecryptable
    );
}

#[test]
fn rotation_first_secret_seals_all_open() {
    let old = MasterSecrets::generate();
    let new = MasterSecrets::generate();
    let v_old = codec(&secrets(&old), "mcd")
        .issue(&alice(), NOW)
        .unwrap()
        .value()
        .to_string();
    let rotated = secrets(&format!("{new}\n{old}"));
    let c = codec(&rotated, "mcd");
    assert!(
        c.open([v_old.as_str()], NOW).is_ok(),
        "old cookies still open"
    );
    let v_new = c.issue(&alice(), NOW).unwrap().value().to_string();
    assert!(
        codec(&secrets(&new), "mcd")
            .open([v_new.as_str()], NOW)
            .is_ok(),
        "new cookies use the first secret"
    );
    assert!(codec(&secrets(&old), "mcd")
        .open([v_new.as_str()], NOW)
        .is_err());
}

#[test]
fn one_good_cookie_among_bad_ones_is_found() {
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let v = c.issue(&alice(), NOW).unwrap().value().to_string();
    assert!(c.open(["junk", v.as_str()], NOW).is_ok());
}

#[test]
fn huge_identity_is_refused_at_issue() {
    let m = secrets(&MasterSecrets::generate());
    let mut id = alice();
    id.groups = (0..400).map(|i| format!("group-{i:04}-xxxxxxxx")).collect();
    assert_eq!(
        codec(&m, "mcd").issue(&id, NOW).unwrap_err(),
        SessionError::TooLarge
    );
}

#[test]
fn login_state_round_trip_and_failures() {
    let m = secrets(&MasterSecrets::generate());
    let codec = LoginCodec::new(m.derive("mcd", Purpose::Login), true);
    let login = LoginState {
        workspace: "mcd".into(),
        provider: "oidc".into(),
        state: "state-1".into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        issuer: "https://idp".into(),
        rd: "/x".into(),
        created: NOW,
    };
    let cookie = codec.issue(&login).unwrap();
    assert!(cookie.name().starts_with("__Host-authgate-login-"));
    let header = format!("{}={}", cookie.name(), cookie.value());
    assert_eq!(
        codec.find([header.as_str()], "state-1", NOW + 5).unwrap(),
        login
    );
    assert_eq!(
        codec.find([header.as_str()], "state-2", NOW).unwrap_err(),
        LoginError::NoCookie
    );
    assert_eq!(
        codec
            .find([header.as_str()], "state-1", NOW + 601)
            .unwrap_err(),
        LoginError::Expired
    );
    // The same value moved under the name another state would use does not open.
    let moved = format!("{}={}", codec.cookie_name("state-2"), cookie.value());
    assert_eq!(
        codec.find([moved.as_str()], "state-2", NOW).unwrap_err(),
        LoginError::Undecryptable
    );
    // A login of another workspace does not open here.
    let other = LoginCodec::new(m.derive("perso", Purpose::Login), true);
    assert_eq!(
        other.find([header.as_str()], "state-1", NOW).unwrap_err(),
        LoginError::Undecryptable
    );
}

#[test]
fn parallel_logins_are_capped_oldest_first() {
    let m = secrets(&MasterSecrets::generate());
    let codec = LoginCodec::new(m.derive("mcd", Purpose::Login), false);
    let mut headers = Vec::new();
    for i in 0..MAX_PARALLEL_LOGINS as u64 {
        let login = LoginState {
            workspace: "mcd".into(),
            provider: "oidc".into(),
            state: format!("s{i}"),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            issuer: "i".into(),
            rd: "/".into(),
            created: NOW + i,
        };
        let c = codec.issue(&login).unwrap();
        headers.push(format!("{}={}", c.name(), c.value()));
    }
    let joined = headers.join("; ");
    let evicted = codec.evict_oldest([joined.as_str()]);
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].name(), codec.cookie_name("s0"));
    assert_eq!(evicted[0].max_age(), Some(cookie::time::Duration::ZERO));
}

fn login_with_rd(rd: &str) -> LoginState {
    LoginState {
        workspace: "mcd".into(),
        provider: "oidc".into(),
        state: "state-1".into(),
        nonce: "n".repeat(43),
        pkce_verifier: "v".repeat(43),
        issuer: "https://idp.example.test/realms/mcd".into(),
        rd: rd.into(),
        created: NOW,
    }
}

#[test]
fn an_rd_too_long_for_the_login_cookie_falls_back_to_slash() {
    let m = secrets(&MasterSecrets::generate());
    let codec = LoginCodec::new(m.derive("mcd", Purpose::Login), true);
    // As long as the redirect policy lets through (4096).
    let long = format!("/{}", "a".repeat(4000));
    // (rd asked for, rd the callback finds)
    let cases = [
        ("/app?x=1", "/app?x=1"),
        (&long[..2000], &long[..2000]),
        (&long[..3000], "/"),
        (long.as_str(), "/"),
    ];
    for (rd, want) in cases {
        let cookie = codec.issue(&login_with_rd(rd)).unwrap();
        assert!(
            cookie.name().len() + cookie.value().len() <= MAX_COOKIE_BYTES
                && cookie.value().len() <= MAX_SEALED_LEN,
            "rd of {} bytes: cookie of {} bytes",
            rd.len(),
            cookie.name().len() + cookie.value().len()
        );
        let header = format!("{}={}", cookie.name(), cookie.value());
        let found = codec.find([header.as_str()], "state-1", NOW).unwrap();
        assert_eq!(found, login_with_rd(want), "rd of {} bytes", rd.len());
    }
}

#[test]
fn connection_retries_back_off_to_a_cap() {
    let cases = [
        (0, 100),
        (1, 200),
        (2, 400),
        (3, 800),
        (4, 1600),
        (5, 2000),
        (40, 2000),
    ];
    for (attempt, millis) in cases {
        assert_eq!(
            store::backoff(attempt),
            Duration::from_millis(millis),
            "attempt {attempt}"
        );
    }
}

#[tokio::test]
async fn an_unconnected_store_fails_at_once_instead_of_waiting_to_connect() {
    // Accepts TCP connections (the kernel's backlog) but never answers the Redis handshake.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", black_hole.local_addr().unwrap());
    let store = RedisStore::new(&Secret::new(url)).unwrap();
    let started = std::time::Instant::now();
    for i in 0..20 {
        let r = store.get(&format!("k{i}")).await;
        assert!(matches!(r, Err(StoreError::Unavailable)), "{r:?}");
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "took {:?}",
        started.elapsed()
    );
}
