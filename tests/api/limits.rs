//! What one process serves at once, and requests NGINX forwards that hyper's default parser
//! would refuse (anything but 2xx/401/403 from the auth subrequest is a 500 for the user).

use std::sync::Arc;
use std::time::Duration;

use authgate::http::Limits;
use authgate::server::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::client::raw_bytes;
use crate::helpers::{env_with, ConfigDir};
use crate::nginx_flow::{spawn_platform, PERSO};

async fn spawn_with(limits: Limits) -> (u16, tokio::task::JoinHandle<()>, ConfigDir) {
    let config = ConfigDir::new("").workspace("open", "hosts = [\"open.test\"]\nauth = \"none\"\n");
    let app = Application::build(
        config.path(),
        Some("127.0.0.1:0".parse().unwrap()),
        Arc::new(env_with(&[])),
    )
    .await
    .unwrap()
    .with_limits(limits);
    let port = app.port();
    let task = tokio::spawn(async move {
        app.run_until_stopped().await.unwrap();
    });
    (port, task, config)
}

/// Reads one response head off `s`, or `None` if nothing arrives within `wait`.
async fn answer_within(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn a_control_byte_in_a_client_header_is_dropped_not_a_500_through_nginx() {
    let p = spawn_platform("limits-ctl", "generic", false).await;
    let req = format!(
        "GET /landing HTTP/1.1\r\nHost: {PERSO}:{}\r\nX-Note: a\x01b\r\nConnection: close\r\n\r\n",
        p.nginx.port
    );
    let r = raw_bytes(p.nginx.port, req.as_bytes()).await;
    // authgate answered the subrequest (202): NGINX went on to the app. The test's echo app
    // runs hyper's default parser and refuses the header itself (400); what matters is that
    // the auth subrequest did not fail, which NGINX would have turned into a 500.
    assert_ne!(r.status, 500, "{}", r.text);
    let errors = std::fs::read_to_string(p.nginx.dir.path().join("error.log")).unwrap();
    assert!(
        !errors.contains("auth request unexpected status"),
        "the auth subrequest failed:\n{errors}"
    );
    assert!(p.nginx.access_log_has(" /landing "));
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let (port, task, _config) = spawn_with(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let ping = b"GET /ping HTTP/1.1\r\nHost: open.test\r\n\r\n";
    let mut a = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for s in [&mut a, &mut b] {
        s.write_all(ping).await.unwrap();
        assert!(answer_within(s, Duration::from_secs(5))
            .await
            .unwrap()
            .contains("200 OK"));
    }
    // Both slots are held by idle keep-alive connections: a third is not served.
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(ping).await.unwrap();
    assert!(answer_within(&mut c, Duration::from_millis(300))
        .await
        .is_none());
    drop(a);
    let head = answer_within(&mut c, Duration::from_secs(5)).await;
    assert!(
        head.is_some_and(|h| h.contains("200 OK")),
        "served once a slot is free"
    );
    task.abort();
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off() {
    let (port, task, _config) = spawn_with(Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: open.test\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the connection is closed within the timeout"
    );
    task.abort();
}

#[tokio::test]
async fn a_request_head_beyond_the_bound_gets_431() {
    let (port, task, _config) = spawn_with(Limits::default()).await;
    let mut req = b"GET /ping HTTP/1.1\r\nHost: open.test\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 512 * 1024));
    req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let r = raw_bytes(port, &req).await;
    assert_eq!(r.status, 431, "{}", r.text);
    task.abort();
}

/// A workspace that accepts back-channel logout (the one route that reads a body), its Redis at
/// an address where nothing listens: the body is read before Redis is asked anything.
async fn spawn_backchannel() -> (u16, tokio::task::JoinHandle<()>, ConfigDir) {
    let ws = "hosts = [\"bc.test\"]\nauth = \"oidc\"\ninsecure_http = true\n\
        [[provider]]\nissuer = \"https://idp.invalid\"\nclient_id = \"c\"\nclient_secret_env = \"SECRET\"\n\
        [session]\nstore = \"redis\"\nbackchannel_logout = true\n\
        [authz]\nallow_any_account = true\n";
    let config = ConfigDir::new("[redis]\nurl_env = \"REDIS_URL\"\n").workspace("bc", ws);
    let redis_url = format!("redis://127.0.0.1:{}", crate::helpers::free_port());
    let app = Application::build(
        config.path(),
        Some("127.0.0.1:0".parse().unwrap()),
        Arc::new(env_with(&[("SECRET", "s"), ("REDIS_URL", &redis_url)])),
    )
    .await
    .unwrap();
    let port = app.port();
    let task = tokio::spawn(async move {
        app.run_until_stopped().await.unwrap();
    });
    (port, task, config)
}

/// A POST that announces a body and never sends it is answered within the body deadline (a few
/// seconds) and its connection closed, instead of holding one of the connections every
/// workspace shares for as long as the client likes.
#[tokio::test]
async fn a_body_that_never_arrives_is_cut_off_at_the_read_deadline() {
    let (port, task, _config) = spawn_backchannel().await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        b"POST /oauth2/backchannel_logout/bc HTTP/1.1\r\nHost: bc.test\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\n\
          logout_token=",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "still open after {:?}: {}",
        started.elapsed(),
        String::from_utf8_lossy(&answer)
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A body that does arrive is still read: the route answers for the token, not the body.
    let r = crate::helpers::Client::new()
        .post_form(
            &format!("http://bc.test:{port}/oauth2/backchannel_logout/bc"),
            &[("logout_token", "not-a-jwt")],
        )
        .await;
    assert!(r.body.contains("logout token refused"), "{}", r.body);
    task.abort();
}

/// A route that reads no body answers at once and closes the connection, whatever body the
/// request announced.
#[tokio::test]
async fn a_route_that_reads_no_body_never_waits_for_one() {
    let (port, task, _config) = spawn_with(Limits::default()).await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        b"POST /oauth2/sign_out HTTP/1.1\r\nHost: open.test\r\nContent-Length: 16000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the connection is still open");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 302"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    task.abort();
}

/// A client's headers reach authgate in the auth subrequest as they came. As many as NGINX
/// accepts (the test NGINX stops at 1 000 lines; without that bound, the manifests' buffers
/// stop it near 22 000) are parsed, and authgate answers (here the 401 NGINX turns into the
/// sign-in redirect), never a 431 that NGINX would turn into a 500.
#[tokio::test]
async fn a_request_with_as_many_headers_as_nginx_accepts_is_answered_not_a_500() {
    let p = spawn_platform("limits-headers", "generic", false).await;
    let mut req = format!(
        "GET /landing HTTP/1.1\r\nHost: {}:{}\r\n",
        crate::nginx_flow::MCD,
        p.nginx.port
    );
    for i in 0..990 {
        req.push_str(&format!("X-Extra-{i}: {i}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    let r = raw_bytes(p.nginx.port, req.as_bytes()).await;
    assert_eq!(r.status, 302, "{}", r.text);
    assert!(r.text.contains("/oauth2/start"), "{}", r.text);
    let errors = std::fs::read_to_string(p.nginx.dir.path().join("error.log")).unwrap();
    assert!(
        !errors.contains("auth request unexpected status"),
        "the auth subrequest failed:\n{errors}"
    );
}

/// Straight at authgate, a head of 20 000 header lines (what NGINX forwards at most with the
/// manifests' buffers, less a margin) is parsed and answered.
#[tokio::test]
async fn twenty_thousand_header_lines_are_parsed_not_refused() {
    let (port, task, _config) = spawn_with(Limits::default()).await;
    let mut req = b"GET /oauth2/auth HTTP/1.1\r\nHost: open.test\r\n".to_vec();
    for _ in 0..20_000 {
        req.extend_from_slice(b"a: \r\n");
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    let r = raw_bytes(port, &req).await;
    assert_eq!(r.status, 202, "{}", r.text);
    task.abort();
}
