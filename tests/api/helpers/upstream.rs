//! The app behind NGINX: answers every request with the headers it received, one per line, so
//! tests (and the browser) see exactly what reached the app, and with its method and path in
//! the answer's `X-App-Method` and `X-App-Path`; a path ending in `/missing` with a 404.

use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use testkit::TaskGuard;

/// A running upstream.
pub struct Upstream {
    /// Its port.
    pub port: u16,
    _task: TaskGuard,
}

async fn echo(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> (StatusCode, [(&'static str, String); 2], String) {
    let mut out = format!("path: {uri}\n");
    for (k, v) in &headers {
        out.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
    }
    // A page the app does not have, as apps answer some requests.
    let status = if uri.path().ends_with("/missing") {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    // The request line in headers too, for answers without a body (HEAD).
    let seen = [
        ("x-app-method", method.to_string()),
        ("x-app-path", uri.to_string()),
    ];
    (status, seen, out)
}

/// Starts the echoing upstream.
pub async fn spawn_upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        axum::serve(listener, Router::new().fallback(echo))
            .await
            .unwrap();
    });
    Upstream {
        port,
        _task: task.into(),
    }
}
