//! A whole `/oauth2/auth` request through the router (`tower::ServiceExt::oneshot`), with the
//! headers ingress-nginx's auth subrequest carries and a loopback peer (a trusted proxy):
//! a valid session cookie (202 and `X-Auth-Request-*`), no cookie (401), a workspace with
//! `auth = "none"` (202), a cached bearer JWT (202), and `/ping` as the router's floor.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use jsonwebtoken::Algorithm;
use tower::ServiceExt;

use crate::fixture::{bearer_claims, Fixture, LOGIN_HOST, OPEN_HOST};
use crate::runner::Runner;
use testkit::tokens;

/// The subrequest NGINX sends for `https://<host>/helloworld`, plus `extra` headers.
fn auth_request(host: &str, extra: &[(&str, &str)]) -> Request<Body> {
    // The route names the workspace, as its Ingress's `auth-url` does.
    let route = if host == OPEN_HOST {
        "/oauth2/auth/perso"
    } else {
        "/oauth2/auth/mcd"
    };
    let mut b = Request::builder()
        .uri(route)
        .header("host", "authgate.authgate.svc.cluster.local")
        .header("x-original-url", format!("https://{host}/helloworld?x=1"))
        .header("x-original-method", "GET")
        .header("x-sent-from", "nginx-ingress-controller")
        .header("x-real-ip", "10.42.0.7")
        .header("x-forwarded-for", "10.42.0.7")
        .header("x-auth-request-redirect", "/helloworld?x=1")
        .header("x-request-id", "4bf92f3577b34da6a3ce929d0e0e4736");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::empty()).expect("valid request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    req
}

/// One kind of request and the answer it must get.
struct Case {
    name: &'static str,
    host: &'static str,
    extra: Vec<(&'static str, String)>,
    status: StatusCode,
    identity: bool,
}

pub(crate) fn bench(r: &mut Runner, fx: &Fixture) {
    let cookie = fx.cookie_header.clone();
    let bearer = format!(
        "Bearer {}",
        tokens::sign(
            Algorithm::RS256,
            Some(tokens::RSA_KID),
            &bearer_claims(&fx.issuer, "router")
        )
    );
    let cases = [
        Case {
            name: "cookie_valid",
            host: LOGIN_HOST,
            extra: vec![("cookie", cookie)],
            status: StatusCode::ACCEPTED,
            identity: true,
        },
        Case {
            name: "no_cookie",
            host: LOGIN_HOST,
            extra: vec![],
            status: StatusCode::UNAUTHORIZED,
            identity: false,
        },
        Case {
            name: "workspace_auth_none",
            host: OPEN_HOST,
            extra: vec![],
            status: StatusCode::ACCEPTED,
            identity: false,
        },
        Case {
            name: "bearer_rs256_warm",
            host: LOGIN_HOST,
            extra: vec![("authorization", bearer)],
            status: StatusCode::ACCEPTED,
            identity: true,
        },
    ];
    for c in &cases {
        let extra: Vec<(&str, &str)> = c.extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let make = || auth_request(c.host, &extra);
        let name = c.name;
        let resp = fx
            .rt
            .block_on(fx.router.clone().oneshot(make()))
            .expect("infallible");
        assert_eq!(resp.status(), c.status, "{name}");
        let user = resp.headers().get("x-auth-request-user");
        assert_eq!(user.is_some(), c.identity, "{name}: X-Auth-Request-User");
        if c.identity {
            assert_eq!(
                resp.headers()
                    .get("x-auth-request-email")
                    .and_then(|v| v.to_str().ok()),
                Some("alice@example.test"),
                "{name}"
            );
        }
        r.future(&fx.rt, "auth_request", name, make, |req| {
            fx.router.clone().oneshot(req)
        });
    }
    let ping = || {
        Request::builder()
            .uri("/ping")
            .body(Body::empty())
            .expect("valid request")
    };
    r.future(&fx.rt, "auth_request", "ping", ping, |req| {
        fx.router.clone().oneshot(req)
    });
}
