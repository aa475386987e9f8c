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
    let config = crate::config::RedisConfig::url_from_env("URL");
    let secrets = crate::config::RedisSecrets {
        url: Some(crate::secret::Secret::new(url)),
        ..Default::default()
    };
    let store = RedisStore::new(&config, &secrets).unwrap();
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

/// An Entra-shaped user: 200 group object ids, as a large tenant sends them.
fn entra_user() -> Identity {
    Identity {
        groups: (0..200)
            .map(|i| format!("{i:08x}-1d3b-4c7a-9e0f-a1b2c3d4e5{:02x}", i % 256))
            .collect(),
        ..alice()
    }
}

fn header_of(cookies: &[cookie::Cookie<'static>]) -> String {
    cookies
        .iter()
        .filter(|c| !c.value().is_empty())
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn a_large_identity_is_split_over_chunks_and_joined() {
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let cookies = c
        .issue_split(&entra_user(), Tokens::default(), NOW)
        .unwrap();
    assert!(
        cookies.len() > 1 && cookies.len() <= MAX_CHUNKS,
        "{}",
        cookies.len()
    );
    for (i, k) in cookies.iter().enumerate() {
        assert_eq!(k.name(), format!("__Host-authgate-{i}"));
        assert!(k.name().len() + k.value().len() <= MAX_COOKIE_BYTES);
        assert!(k.secure().unwrap() && k.http_only().unwrap());
    }
    let h = header_of(&cookies);
    let s = c.open_request([h.as_str()], NOW).unwrap();
    assert_eq!(s.id, entra_user());
    // A small identity still takes one cookie of the plain name.
    let one = c.issue_split(&alice(), Tokens::default(), NOW).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name(), "__Host-authgate");
}

#[test]
fn chunks_of_two_sessions_never_join() {
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let a = c
        .issue_split(&entra_user(), Tokens::default(), NOW)
        .unwrap();
    let b = c
        .issue_split(&entra_user(), Tokens::default(), NOW + 1)
        .unwrap();
    let mut mixed = a.clone();
    mixed[1] = b[1].clone();
    let h = header_of(&mixed);
    assert_eq!(
        c.open_request([h.as_str()], NOW + 2).unwrap_err(),
        SessionError::Undecryptable
    );
    // Another workspace's chunks do not open here either.
    let h = header_of(&a);
    assert_eq!(
        codec(&m, "perso")
            .open_request([h.as_str()], NOW)
            .unwrap_err(),
        SessionError::Undecryptable
    );
    // A missing chunk is refused, not joined short.
    let h = header_of(&a[..1]);
    assert_eq!(
        c.open_request([h.as_str()], NOW).unwrap_err(),
        SessionError::BrokenChunks
    );
}

#[test]
fn a_session_beyond_the_chunk_cap_is_refused() {
    let m = secrets(&MasterSecrets::generate());
    let mut id = entra_user();
    id.groups = (0..600)
        .map(|i| format!("group-{i:04}-xxxxxxxxxxxxxxxxxxxxxxxx"))
        .collect();
    assert_eq!(
        codec(&m, "mcd")
            .issue_split(&id, Tokens::default(), NOW)
            .unwrap_err(),
        SessionError::TooLarge
    );
}

#[test]
fn stale_cookies_of_an_older_session_are_cleared() {
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let big = c
        .issue_split(&entra_user(), Tokens::default(), NOW)
        .unwrap();
    let old = header_of(&big);
    // A smaller new session: one cookie, every old chunk deleted.
    let small = c.issue_split(&alice(), Tokens::default(), NOW).unwrap();
    let stale = c.stale([old.as_str()], &small);
    let mut names: Vec<&str> = stale.iter().map(|k| k.name()).collect();
    names.sort();
    let want: Vec<String> = (0..big.len())
        .map(|i| format!("__Host-authgate-{i}"))
        .collect();
    assert_eq!(names, want);
    assert!(stale
        .iter()
        .all(|k| k.max_age() == Some(cookie::time::Duration::ZERO)));
    // A chunked new session after a single-cookie one deletes the single cookie.
    let single = header_of(&small);
    let stale = c.stale([single.as_str()], &big);
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].name(), "__Host-authgate");
    // Sign-out clears the single cookie and every chunk.
    let all = c.clear_all([old.as_str()]);
    assert_eq!(all.len(), 1 + big.len());
}

#[test]
fn tokens_travel_only_when_kept_and_never_show_in_debug() {
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let tokens = Tokens {
        access: Some("at-secret".into()),
        id: Some("idt-secret".into()),
        refresh: Some("rt-secret".into()),
    };
    let kept = tokens.clone().keep(Keep {
        access: false,
        id: true,
        refresh: true,
    });
    assert_eq!(kept.access, None);
    assert_eq!(kept.refresh.as_deref(), Some("rt-secret"));
    assert_eq!(tokens.clone().keep(Keep::default()), Tokens::default());
    let cookies = c.issue_split(&alice(), kept.clone(), NOW).unwrap();
    let h = header_of(&cookies);
    assert_eq!(c.open_request([h.as_str()], NOW).unwrap().tokens, kept);
    let shown = format!("{tokens:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn a_cookie_sealed_before_tokens_and_chunks_still_opens() {
    // The payload exactly as earlier releases wrote it: no `t`.
    let m = secrets(&MasterSecrets::generate());
    let c = codec(&m, "mcd");
    let old = r#"{"v":1,"w":"mcd","id":{"u":"alice","e":"alice@example.test","s":"","i":""},"iat":1800000000,"exp":1800003600}"#;
    let keys = m.derive("mcd", Purpose::Session);
    let sealed = seal::seal(&keys, "__Host-authgate", old.to_string()).unwrap();
    let h = format!("__Host-authgate={sealed}");
    let s = c.open_request([h.as_str()], NOW).unwrap();
    assert_eq!(s.id.user, "alice");
    assert!(s.tokens.is_empty());
}
