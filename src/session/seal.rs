//! Sealing and opening cookie values with AES-256-GCM, through the cookie crate's private jar.
//!
//! Owns the one place values are encrypted. The cookie name is the AEAD's associated data, so a
//! value moved to another cookie name fails to open, as does one sealed with another key.

use cookie::{Cookie, CookieJar, Key};

/// Largest sealed value accepted; browsers cap a cookie at about 4 KB.
pub const MAX_SEALED_LEN: usize = 3800;

/// Seals `plaintext` under `name` with the first (newest) key.
pub(crate) fn seal(keys: &[Key], name: &str, plaintext: String) -> Option<String> {
    let key = keys.first()?;
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new(name.to_string(), plaintext));
    jar.get(name).map(|c| c.value().to_string())
}

/// Opens a sealed value with any of the keys; `None` for anything tampered, foreign or oversized.
pub(crate) fn open(keys: &[Key], name: &str, sealed: &str) -> Option<String> {
    open_up_to(keys, name, sealed, MAX_SEALED_LEN)
}

/// [`open`] for a value joined from several cookies, at most `max_len` bytes long.
pub(crate) fn open_up_to(keys: &[Key], name: &str, sealed: &str, max_len: usize) -> Option<String> {
    if sealed.len() > max_len {
        return None;
    }
    let jar = CookieJar::new();
    keys.iter().find_map(|key| {
        jar.private(key)
            .decrypt(Cookie::new(name.to_string(), sealed.to_string()))
            .map(|c| c.value().to_string())
    })
}
