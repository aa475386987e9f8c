//! Splitting a sealed session over numbered cookies, and joining it again.
//!
//! Owns the chunk format: `<name>-0` holds `<count>.<first piece>`, `<name>-1` … the rest, in
//! order. The count means a higher-numbered chunk left over from an older, larger session is
//! never joined. Chunks carry no cryptography of their own: the joined value is one AEAD
//! ciphertext sealed under the base name, so pieces of two sessions never join into a value that
//! opens. Never decides what a session holds; [`super::SessionCodec`] does.

use super::cookie_jar;
use super::seal::MAX_SEALED_LEN;

/// Most cookies one session is split over. Three full chunks put about 11.5 KB in the `Cookie`
/// header; ingress-nginx's `large-client-header-buffers: "4 16k"` (k8s/ingress-nginx) takes a
/// request header line of up to 16 KB, which leaves room for the login-state cookies and the
/// apps' own. A larger session belongs in the Redis store.
pub const MAX_CHUNKS: usize = 3;

/// Longest piece of sealed value in one chunk: the first chunk also carries `<count>.`.
pub(super) const CHUNK_LEN: usize = MAX_SEALED_LEN - 2;

/// Longest sealed value that can be split over [`MAX_CHUNKS`] cookies.
pub const MAX_JOINED_LEN: usize = MAX_CHUNKS * CHUNK_LEN;

/// The name of chunk `i` of the session cookie `base`.
pub(super) fn chunk_name(base: &str, i: usize) -> String {
    format!("{base}-{i}")
}

/// `(name, value)` of each chunk of `sealed`, or `None` when it needs more than [`MAX_CHUNKS`].
pub(super) fn split(base: &str, sealed: &str) -> Option<Vec<(String, String)>> {
    // Sealed values are base64: one byte per character, so any byte offset is a boundary.
    let pieces: Vec<&str> = sealed
        .as_bytes()
        .chunks(CHUNK_LEN)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    if pieces.len() > MAX_CHUNKS || pieces.concat().len() != sealed.len() {
        return None;
    }
    let count = pieces.len();
    Some(
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| {
                let value = if i == 0 {
                    format!("{count}.{piece}")
                } else {
                    piece.to_string()
                };
                (chunk_name(base, i), value)
            })
            .collect(),
    )
}

/// Why no chunked value could be joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JoinError {
    /// No `<base>-0` cookie: the session, if any, is not chunked.
    Absent,
    /// A first chunk without a valid count, or a chunk it announces is missing.
    Broken,
}

/// The sealed value the chunks of `base` in the `Cookie` headers join into. Only the first
/// value of each chunk name counts.
pub(super) fn join(headers: &[&str], base: &str) -> Result<String, JoinError> {
    let first =
        |i: usize| cookie_jar::cookies_named(headers.iter().copied(), &chunk_name(base, i)).next();
    let head = first(0).ok_or(JoinError::Absent)?;
    let (count, piece) = head.split_once('.').ok_or(JoinError::Broken)?;
    let count: usize = count.parse().map_err(|_| JoinError::Broken)?;
    if !(1..=MAX_CHUNKS).contains(&count) {
        return Err(JoinError::Broken);
    }
    let mut joined = String::with_capacity(count * CHUNK_LEN);
    joined.push_str(piece);
    for i in 1..count {
        joined.push_str(first(i).ok_or(JoinError::Broken)?);
    }
    Ok(joined)
}

/// Names of the session cookies of `base` (the single one and any chunk) present in the
/// `Cookie` headers.
pub(super) fn present(headers: &[&str], base: &str) -> Vec<String> {
    let chunk_prefix = format!("{base}-");
    let mut names: Vec<String> = cookie_jar::cookies_with_prefix(headers.iter().copied(), base)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| {
            *name == base
                || name.strip_prefix(&chunk_prefix).is_some_and(|i| {
                    !i.is_empty() && i.len() <= 2 && i.bytes().all(|b| b.is_ascii_digit())
                })
        })
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(chunks: &[(String, String)]) -> String {
        chunks
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn split_then_join_gives_the_value_back() {
        for len in [1, CHUNK_LEN, CHUNK_LEN + 1, MAX_JOINED_LEN] {
            let sealed = "A".repeat(len - 1) + "z";
            let chunks = split("s", &sealed).unwrap();
            assert_eq!(chunks.len(), len.div_ceil(CHUNK_LEN), "{len}");
            assert!(chunks.iter().all(|(n, v)| n.len() + v.len() <= 4096));
            let h = header(&chunks);
            assert_eq!(join(&[h.as_str()], "s").unwrap(), sealed, "{len}");
        }
        assert!(split("s", &"A".repeat(MAX_JOINED_LEN + 1)).is_none());
    }

    #[test]
    fn a_stale_higher_chunk_is_not_joined() {
        let big = split("s", &"B".repeat(3 * CHUNK_LEN)).unwrap();
        let small = split("s", &"S".repeat(CHUNK_LEN + 5)).unwrap();
        // The browser kept the old `s-2` (its deletion was lost).
        let h = format!("{}; {}={}", header(&small), big[2].0, big[2].1);
        assert_eq!(join(&[h.as_str()], "s").unwrap(), "S".repeat(CHUNK_LEN + 5));
    }

    #[test]
    fn broken_chunk_sets_are_refused() {
        let chunks = split("s", &"C".repeat(2 * CHUNK_LEN)).unwrap();
        let cases = [
            ("no chunks", "s=single".to_string(), JoinError::Absent),
            (
                "second missing",
                format!("{}={}", chunks[0].0, chunks[0].1),
                JoinError::Broken,
            ),
            (
                "no count",
                "s-0=abc; s-1=def".to_string(),
                JoinError::Broken,
            ),
            ("count zero", "s-0=0.abc".to_string(), JoinError::Broken),
            (
                "count too high",
                "s-0=9.abc; s-1=a; s-2=b; s-3=c".to_string(),
                JoinError::Broken,
            ),
        ];
        for (name, h, want) in cases {
            assert_eq!(join(&[h.as_str()], "s").unwrap_err(), want, "{name}");
        }
    }

    #[test]
    fn present_names_only_this_sessions_cookies() {
        let h = "s=1; s-0=2; s-1=3; s-x=4; sess=5; s-123=6; other=7";
        assert_eq!(present(&[h], "s"), ["s", "s-0", "s-1"]);
    }
}
