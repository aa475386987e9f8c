//! What a client's own headers become on the way to the auth address, through the shipped
//! Traefik Middleware (`authRequestHeaders`) and the example Caddyfile (`header_up -…`): a
//! header is the client's word unless the proxy in front of the route writes it, and Traefik's
//! ForwardAuth and Caddy's `forward_auth` pass every client header on unless told otherwise.
//! So the client's copies of the headers authgate believes from a proxy (`X-Original-URL`,
//! `X-Original-Method`, `X-Real-IP`, `X-Request-ID`, `Forwarded`, `X-Auth-Request-*`) never
//! reach it, the proxy's own `X-Forwarded-*` replace the client's, and the headers authgate
//! does read from the client (cookies, `Authorization`, `Accept`, a preflight's `Origin` and
//! `Access-Control-Request-Method`) still arrive.
//!
//! The auth address here is a stand-in that refuses every request with the headers it
//! received as its body; both proxies return a refusal to the client as it is, so the client
//! sees exactly what the auth address was sent.

use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use testkit::TaskGuard;

use crate::helpers::caddy::spawn_caddy_at;
use crate::helpers::platform::MCD;
use crate::helpers::traefik::{spawn_traefik_at, Site};
use crate::helpers::upstream::spawn_upstream;
use crate::helpers::{free_port, Client};

/// A stand-in auth address: 401 to everything, the request's headers as the body, one per
/// line, lower-cased names.
async fn spawn_refusing_echo() -> (u16, TaskGuard) {
    async fn refuse(headers: HeaderMap) -> (StatusCode, String) {
        let body = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("?")))
            .collect();
        (StatusCode::UNAUTHORIZED, body)
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        axum::serve(listener, Router::new().fallback(refuse))
            .await
            .unwrap();
    });
    (port, task.into())
}

/// What the client writes that only a proxy may say, with a value that shows if it arrives.
const FORGED: &[(&str, &str)] = &[
    ("x-original-url", "http://perso.localhost/forged-original"),
    ("x-original-method", "PATCH"),
    ("x-real-ip", "203.0.113.9"),
    ("x-request-id", "forged-request-id"),
    ("forwarded", "for=203.0.113.9;host=perso.localhost"),
    ("x-auth-request-redirect", "https://evil.test/forged"),
    ("x-auth-request-user", "mallory"),
    ("x-forwarded-uri", "/forged-uri"),
    ("x-forwarded-method", "DELETE"),
    ("x-forwarded-host", "perso.localhost"),
];

/// What the client writes that authgate reads on the auth route.
const READ: &[(&str, &str)] = &[
    ("cookie", "authgate=session-value"),
    ("authorization", "Bearer api-token"),
    ("accept", "text/html"),
    ("origin", "http://mcd.localhost"),
    ("access-control-request-method", "GET"),
];

/// Sends the forged and the read headers for `/helloworld?a=1` on mcd through the proxy at
/// `base` on `port`, and checks what the auth address received.
async fn the_auth_address_hears_only_the_proxy_and_what_authgate_reads(base: &str, port: u16) {
    let headers: Vec<(&str, &str)> = FORGED.iter().chain(READ).copied().collect();
    let r = Client::new()
        .get(&format!("{base}/helloworld?a=1"), &headers)
        .await;
    assert_eq!(
        r.status, 401,
        "the stand-in's refusal, as it is: {}",
        r.body
    );
    let got = r.body.to_ascii_lowercase();
    for (name, value) in FORGED {
        assert!(
            !got.contains(&value.to_ascii_lowercase()),
            "the client's {name}: {value} reached the auth address:\n{}",
            r.body
        );
    }
    for (name, value) in READ {
        assert!(
            got.contains(&format!("{name}: {}", value.to_ascii_lowercase())),
            "{name} did not reach the auth address:\n{}",
            r.body
        );
    }
    // The proxy's own description of the request.
    for line in [
        "x-forwarded-method: get".to_string(),
        "x-forwarded-uri: /helloworld?a=1".to_string(),
        format!("x-forwarded-host: {MCD}:{port}"),
    ] {
        assert!(got.contains(&line), "no {line}:\n{}", r.body);
    }
}

#[tokio::test]
async fn traefik_passes_the_auth_address_only_what_authgate_reads_from_the_client() {
    let (auth, _auth) = spawn_refusing_echo().await;
    let upstream = spawn_upstream().await;
    let port = free_port();
    let traefik = spawn_traefik_at(&[Site::new(MCD)], auth, upstream.port, port).await;
    the_auth_address_hears_only_the_proxy_and_what_authgate_reads(&traefik.url(MCD), port).await;
}

#[tokio::test]
async fn caddy_passes_the_auth_address_none_of_the_clients_proxy_headers() {
    let (auth, _auth) = spawn_refusing_echo().await;
    let upstream = spawn_upstream().await;
    let port = free_port();
    let caddy = spawn_caddy_at(&[(MCD, "mcd")], auth, upstream.port, port);
    the_auth_address_hears_only_the_proxy_and_what_authgate_reads(&caddy.url(MCD), port).await;
}
