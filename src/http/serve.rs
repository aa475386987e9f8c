//! The accept loop: HTTP/1.1 connections served by the router, with the limits NGINX's auth
//! subrequests need, and a graceful stop.
//!
//! Owns how connections are taken and parsed. `axum::serve` fixes hyper's parser settings;
//! here they are chosen so that a request NGINX forwarded is answered by authgate rather than
//! refused by the parser: NGINX passes the client's headers to the auth subrequest as they came,
//! and anything but 2xx, 401 or 403 there becomes a 500 for the user. A header line hyper cannot
//! parse (a control byte in a value) is dropped, never a 400; a request with as many header
//! lines as NGINX forwards is parsed, never a 431 ([`Limits::max_headers`]); the connections
//! served at once are bounded; a client that sends its head slowly is cut off.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Bounds on what one process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's head.
    pub header_read_timeout: Duration,
    /// Header lines parsed in one request head; a request with more is answered 431.
    pub max_headers: usize,
}

/// Header lines NGINX can forward with the manifests' `large-client-header-buffers: 4 16k`: a
/// client head of at most 4 × 16 KiB, each line at least 3 bytes (`a:` and a line feed), is
/// 21 846 lines, and NGINX adds a dozen of its own to the auth subrequest. hyper's default of
/// 100 made a client with 89 headers of its own a 500 from NGINX. Parsing keeps two arrays of
/// this many entries (64 bytes a line together) on the heap for the length of the parse, never
/// written beyond the lines a request has: an allocation and a free per head, whatever the
/// bound (benches/README.md).
pub const MAX_HEADERS: usize = 22 * 1024;

impl Default for Limits {
    /// 4 096 connections (NGINX keeps 32 idle per worker with `auth-keepalive`), 10 s per head,
    /// [`MAX_HEADERS`] header lines.
    fn default() -> Self {
        Self {
            max_connections: 4_096,
            header_read_timeout: Duration::from_secs(10),
            max_headers: MAX_HEADERS,
        }
    }
}

/// Serves `app` on `listener` until `stop` completes, then stops accepting and waits for the
/// open connections to finish their requests (callers bound that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.ignore_invalid_headers(true)
        .max_headers(limits.max_headers)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = app
            .clone()
            .map_request(move |req: axum::http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
