//! Reading cookies out of request `Cookie` headers.
//!
//! Owns the tolerant parse: malformed pairs are skipped, never an error.

/// Values of every cookie called `name` in the given `Cookie` header values.
/// Lazy: the session check usually stops at the first value, so nothing is collected.
pub fn cookies_named<'a, 'n>(
    headers: impl IntoIterator<Item = &'a str> + 'n,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + 'n
where
    'a: 'n,
{
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// `(name, value)` of every cookie whose name starts with `prefix`.
pub(crate) fn cookies_with_prefix<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    prefix: &str,
) -> Vec<(&'a str, &'a str)> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| k.starts_with(prefix))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_value_and_skips_garbage() {
        let h = ["a=1; b=2; garbage; a=\"3\"", "a=4;;="];
        assert_eq!(cookies_named(h, "a").collect::<Vec<_>>(), ["1", "3", "4"]);
        assert_eq!(cookies_named(h, "c").next(), None);
        assert_eq!(
            cookies_with_prefix(["x-1=a; y=b; x-2=c"], "x-"),
            vec![("x-1", "a"), ("x-2", "c")]
        );
    }
}
