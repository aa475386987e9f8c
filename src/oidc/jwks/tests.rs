//! The JWKS cache against a local JWKS server whose answer, and whether it answers yet, each
//! test controls.

use std::sync::atomic::AtomicUsize;

use serde_json::Value;

use super::*;

use crate::oidc::tokens;

/// What the local JWKS server answers.
#[derive(Default)]
struct Served {
    /// The document, or `None` for a 503.
    jwks: Mutex<Option<Value>>,
    /// GETs received, counted on arrival.
    hits: AtomicUsize,
    /// Held for writing by a test to keep answers back.
    gate: tokio::sync::RwLock<()>,
}

async fn serve_jwks(s: &Served) -> (u16, String) {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let _open = s.gate.read().await;
    match s.jwks.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        Some(v) => (200, v.to_string()),
        None => (503, String::new()),
    }
}

/// One connection of the JWKS server: `/a/jwks` and `/b/jwks`, else 404.
async fn connection(stream: tokio::net::TcpStream, served: Arc<Served>) {
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let served = served.clone();
        async move {
            let (status, body) = match req.uri().path() {
                "/a/jwks" | "/b/jwks" => serve_jwks(&served).await,
                _ => (404, String::new()),
            };
            hyper::Response::builder()
                .status(status)
                .body(http_body_util::Full::new(std::io::Cursor::new(
                    body.into_bytes(),
                )))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

/// A server publishing [`tokens::jwks`] at two URLs (two issuers, for per-URL checks).
async fn spawn_server() -> (Arc<Served>, Url, Url) {
    let served = Arc::new(Served::default());
    *served.jwks.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens::jwks());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let shared = served.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, shared.clone()));
        }
    });
    let url = |p: &str| {
        Url::parse(&format!("http://127.0.0.1:{port}{p}")).unwrap_or_else(|e| panic!("{e}"))
    };
    (served, url("/a/jwks"), url("/b/jwks"))
}

fn cache(min_refresh: Duration) -> Arc<JwksCache> {
    Arc::new(JwksCache::new(reqwest::Client::new(), min_refresh))
}

fn hits(s: &Served) -> usize {
    s.hits.load(Ordering::SeqCst)
}

/// Waits, without sleeping, until `done` holds (10 s at most).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_storm_starts_one_background_task_per_url() {
    let (served, a, b) = spawn_server().await;
    let cache = cache(Duration::from_secs(60));
    let held = served.gate.write().await;
    let started = (0..200).filter(|_| cache.refresh_in_background(&a)).count();
    assert_eq!(started, 1, "one task for 200 misses while a fetch runs");
    assert!(
        cache.refresh_in_background(&b),
        "another URL has its own task"
    );
    until("both fetches reached the server", || hits(&served) == 2).await;
    assert!(!cache.refresh_in_background(&a), "still one while it waits");
    drop(held);
    until("keys landed", || {
        !cache.keys(&a).is_empty() && !cache.keys(&b).is_empty()
    })
    .await;
    until("the task ended", || {
        !cache.entry(&a).background.load(Ordering::Acquire)
    })
    .await;
    let started = (0..200).filter(|_| cache.refresh_in_background(&a)).count();
    assert_eq!(started, 0, "no task at all inside min_refresh");
    assert_eq!(hits(&served), 2, "one GET per URL");
}

#[tokio::test]
async fn background_refetch_runs_again_once_min_refresh_passed() {
    let (served, a, _) = spawn_server().await;
    let cache = cache(Duration::ZERO);
    for round in 1..=3 {
        assert!(cache.refresh_in_background(&a), "round {round}");
        until("the task ended", || {
            hits(&served) == round && !cache.entry(&a).background.load(Ordering::Acquire)
        })
        .await;
    }
}

#[tokio::test]
async fn a_key_removed_from_the_jwks_is_gone_after_the_periodic_refetch() {
    let (served, a, _) = spawn_server().await;
    *served.jwks.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens::jwks_rotated());
    let cache = cache(Duration::from_secs(60));
    let (keys, err) = cache.load(&a).await;
    assert!(err.is_none() && keys.has_kid(tokens::RSA2_KID));
    *served.jwks.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens::jwks());
    let (keys, _) = cache.refresh_if_older(&a, Duration::from_secs(60)).await;
    assert!(
        keys.has_kid(tokens::RSA2_KID),
        "fetched moments ago: not refetched"
    );
    assert_eq!(hits(&served), 1);
    let (keys, err) = cache.refresh_if_older(&a, Duration::ZERO).await;
    assert!(err.is_none());
    assert!(
        !keys.has_kid(tokens::RSA2_KID),
        "removed at the provider, removed here"
    );
    assert!(keys.has_kid(tokens::RSA_KID));
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_last_good_keys() {
    let (served, a, _) = spawn_server().await;
    let cache = cache(Duration::ZERO);
    assert!(cache.load(&a).await.1.is_none());
    *served.jwks.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let (keys, err) = cache.refresh_if_older(&a, Duration::ZERO).await;
    assert!(matches!(err, Some(JwksError::Fetch { .. })), "{err:?}");
    assert!(keys.has_kid(tokens::RSA_KID));
    *served.jwks.lock().unwrap_or_else(|e| e.into_inner()) = Some(serde_json::json!("garbage"));
    let (keys, err) = cache.refresh(&a).await;
    assert!(matches!(err, Some(JwksError::Parse { .. })), "{err:?}");
    assert!(keys.has_kid(tokens::RSA_KID));
}
