//! Reference servers that split authgate's cost from the framework's: a minimal axum handler
//! doing the same session-cookie check (`SessionCodec::open`: AES-256-GCM, then the JSON
//! payload) and answering 202 with the identity headers, on the same runtime as authgate's
//! `main`; optionally wrapped in the same tower-http layers and log subscriber as `http::app`.
//! The goals were calibrated on such a handler.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use authgate::session::{cookies_named, SessionCodec};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

async fn check(codec: Arc<SessionCodec>, headers: HeaderMap) -> Response {
    let values = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let found = cookies_named(values, codec.name());
    match codec.open(found, testkit::now()) {
        Ok(s) => {
            let mut h = HeaderMap::with_capacity(2);
            for (name, value) in [
                ("x-auth-request-user", &s.id.user),
                ("x-auth-request-email", &s.id.email),
            ] {
                if let Ok(v) = HeaderValue::from_str(value) {
                    h.insert(HeaderName::from_static(name), v);
                }
            }
            (StatusCode::ACCEPTED, h).into_response()
        }
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Serves the reference handler on `listen` until killed.
pub(crate) fn serve(
    config: &Path,
    host: &str,
    listen: SocketAddr,
    parts: &[&str],
) -> Result<(), String> {
    let has = |p: &str| parts.contains(&p) || parts.contains(&"all");
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let (_, registry) = testkit::session::load(config, &env)?;
    let codec = Arc::new(
        registry
            .lookup(host)
            .ok_or_else(|| format!("no workspace serves {host}"))?
            .session
            .clone(),
    );
    if has("subscriber") {
        authgate::telemetry::init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| e.to_string())?;
        let mut app = Router::new().route(
            crate::bench::AUTH_LOGIN,
            get(move |headers: HeaderMap| check(codec.clone(), headers)),
        );
        // The layers of `http::app`, innermost first (`Router::layer` wraps the outside).
        let request_id = HeaderName::from_static("x-request-id");
        if has("request-id") {
            app = app.layer(PropagateRequestIdLayer::new(request_id.clone()));
        }
        if has("trace") {
            app = app.layer(TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                },
            ));
        }
        if has("request-id") {
            app = app.layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
        }
        let served = if has("connect-info") {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        } else {
            axum::serve(listener, app).await
        };
        served.map_err(|e| e.to_string())
    })
}
