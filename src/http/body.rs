//! Reading a request body: bounded in size and in time.
//!
//! Owns the two bounds every route that reads a body applies: at most a given number of bytes,
//! all of them within [`BODY_READ_TIMEOUT`] of the head. Slow heads are cut off by the accept
//! loop (`Limits::header_read_timeout`); without a deadline here, a client that announces a
//! `Content-Length` and sends nothing would hold its connection, one of
//! `Limits::max_connections` shared by every workspace, for as long as it likes (Traefik and
//! Caddy stream bodies through to the auth service as they come). A route that does not read
//! the body never waits for it: hyper closes such a connection after the answer.

use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};

/// How long a body may take to arrive in full, counted from when its route starts reading it.
pub(super) const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(super) enum BodyError {
    /// Not all of it within [`BODY_READ_TIMEOUT`].
    #[error("body not received within {BODY_READ_TIMEOUT:?}")]
    TooSlow,
    /// Larger than the route reads, or the connection failed while reading it.
    #[error("body unreadable or over {0} bytes")]
    Unreadable(usize),
}

/// The whole body, when it has at most `max` bytes and arrives within [`BODY_READ_TIMEOUT`].
pub(super) async fn read(body: Body, max: usize) -> Result<Bytes, BodyError> {
    within_deadline(to_bytes(body, max), max).await
}

/// `reading`'s bytes, when it ends within [`BODY_READ_TIMEOUT`].
async fn within_deadline<E>(
    reading: impl std::future::Future<Output = Result<Bytes, E>>,
    max: usize,
) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(BODY_READ_TIMEOUT, reading).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Err(_)) => Err(BodyError::Unreadable(max)),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_comes_ends_at_the_deadline() {
        let never = std::future::pending::<Result<Bytes, ()>>();
        assert_eq!(within_deadline(never, 1024).await, Err(BodyError::TooSlow));
    }

    #[tokio::test]
    async fn a_body_within_its_bounds_is_read_and_a_larger_one_refused() {
        assert_eq!(
            read(Body::from("logout_token=x"), 1024).await.unwrap(),
            "logout_token=x"
        );
        assert_eq!(
            read(Body::from(vec![b'a'; 2048]), 1024).await,
            Err(BodyError::Unreadable(1024))
        );
    }
}
