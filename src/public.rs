//! Public routes inside a protected workspace: which original requests pass without a login.
//!
//! Owns the decision "is this method and path one of the workspace's `[[public]]` rules?",
//! taken on the *original* request NGINX (or another trusted proxy) describes in
//! `X-Original-URL` / `X-Forwarded-Uri` and `X-Original-Method` / `X-Forwarded-Method`. The
//! path is percent-decoded once and its dot segments removed (RFC 3986 §5.2.4) before it is
//! compared, so `/healthz/../admin` is `/admin`; the query is never looked at. Every spelling
//! an app or a proxy in front of it might read as another path fails closed instead of being
//! normalised: `%2F`, `%2e`, `%25`, `;`, `//`, `#`/`%23`, `\`/`%5C`, `?` encoded, spaces, control
//! and non-ASCII bytes, and `..` above the root. Failing closed means "not public": the normal
//! login check applies. Pure: takes strings, never a framework request, and never errs.

/// One `[[public]]` rule, validated (`config::public`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRule {
    /// Which paths it covers.
    pub path: PathPattern,
    /// Methods that pass, upper-case as HTTP writes them (methods are case-sensitive).
    pub methods: Vec<String>,
    /// Whether a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// to these paths passes too.
    pub cors_preflight: bool,
}

/// A rule's path: one exact path, or every path under a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// `path = "/healthz"`: this path and no other (not `/healthz/`, not `/healthz/x`).
    Exact(String),
    /// `prefix = "/static/"`: every path starting with it. It ends with `/`, so it is
    /// aligned on a segment: `/static/` never covers `/static-admin`.
    Prefix(String),
}

/// The original request as a trusted proxy describes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginalRequest<'a> {
    /// The method (`X-Original-Method`, else `X-Forwarded-Method`).
    pub method: Option<&'a str>,
    /// The request target: an absolute URL (`X-Original-URL`) or a path with its query
    /// (`X-Forwarded-Uri`).
    pub target: Option<&'a str>,
    /// Whether the request carried both `Origin` and `Access-Control-Request-Method`.
    pub preflight_headers: bool,
}

/// Whether `req` is public under `rules`. False whenever anything is missing or doubtful.
pub fn is_public(rules: &[PublicRule], req: OriginalRequest<'_>) -> bool {
    if rules.is_empty() {
        return false;
    }
    let (Some(method), Some(target)) = (req.method, req.target) else {
        return false;
    };
    let Some(path) = target_path(target).and_then(normalize) else {
        return false;
    };
    let preflight = method == "OPTIONS" && req.preflight_headers;
    rules.iter().any(|r| {
        (r.methods.iter().any(|m| m == method) || (preflight && r.cors_preflight))
            && r.path.covers(&path)
    })
}

impl PathPattern {
    fn covers(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == p,
            Self::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

/// The raw path of a request target: after the authority of an absolute URL, up to the query.
/// A target that is neither an absolute `http(s)` URL nor a path starting with `/` has none.
fn target_path(target: &str) -> Option<&str> {
    let rest = if target.starts_with('/') {
        target
    } else {
        let (scheme, rest) = target.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        // The authority ends at the first `/`, `?` or `#`; a path must start right there.
        let end = rest.find(['/', '?', '#'])?;
        rest[end..].starts_with('/').then(|| &rest[end..])?
    };
    Some(rest.split_once('?').map_or(rest, |(path, _query)| path))
}

/// Bytes a path may hold, raw or decoded, for it to be judged at all: visible ASCII but the
/// ones proxies and apps disagree on (`;` path parameters, `\` as a separator, `#` fragments).
fn plain(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b';' | b'\\' | b'#')
}

/// The path decoded once with its dot segments removed, or `None` when it must fail closed.
pub fn normalize(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') || raw.contains("//") {
        return None;
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !plain(b) {
            return None;
        }
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            let d = u8::from_str_radix(hex, 16).ok()?;
            // An encoded byte with a meaning in a path would be read as that meaning by some
            // later decoder and as data by others: refuse rather than choose.
            if !plain(d) || matches!(d, b'/' | b'.' | b'%' | b'?') {
                return None;
            }
            decoded.push(d);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(decoded).ok()?;
    remove_dot_segments(&text)
}

/// RFC 3986 §5.2.4 on an absolute path with no empty segments, except that `..` above the
/// root fails closed rather than stopping there.
fn remove_dot_segments(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, s) in segments.iter().enumerate() {
        match *s {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop()?;
                trailing_slash = i == last;
            }
            seg => {
                out.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    for s in &out {
        result.push('/');
        result.push_str(s);
    }
    if trailing_slash || result.is_empty() {
        result.push('/');
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<PublicRule> {
        vec![
            PublicRule {
                path: PathPattern::Exact("/healthz".into()),
                methods: vec!["GET".into(), "HEAD".into()],
                cors_preflight: false,
            },
            PublicRule {
                path: PathPattern::Prefix("/static/".into()),
                methods: vec!["GET".into()],
                cors_preflight: false,
            },
            PublicRule {
                path: PathPattern::Exact("/hooks/deploy".into()),
                methods: vec!["POST".into()],
                cors_preflight: false,
            },
            PublicRule {
                path: PathPattern::Prefix("/api/".into()),
                methods: vec![],
                cors_preflight: true,
            },
        ]
    }

    fn public(method: &str, target: &str) -> bool {
        is_public(
            &rules(),
            OriginalRequest {
                method: Some(method),
                target: Some(target),
                preflight_headers: false,
            },
        )
    }

    fn url(path: &str) -> String {
        format!("https://mcd.example.com{path}")
    }

    #[test]
    fn the_rules_paths_and_methods_pass() {
        for (method, path) in [
            ("GET", "/healthz"),
            ("HEAD", "/healthz"),
            ("GET", "/healthz?verbose=1"),
            ("GET", "/healthz?x=/../admin"),
            ("GET", "/static/app.js"),
            ("GET", "/static/css/site.css"),
            ("GET", "/static/"),
            ("GET", "/static/a/../b.js"),
            ("GET", "/static/./b.js"),
            ("GET", "/admin/../healthz"),
            ("GET", "/static/%7Euser.css"),
            ("POST", "/hooks/deploy"),
        ] {
            assert!(public(method, &url(path)), "{method} {path} should pass");
            assert!(public(method, path), "{method} {path} as X-Forwarded-Uri");
        }
    }

    #[test]
    fn hostile_and_unlisted_requests_fail_closed() {
        for (method, path) in [
            // other paths, methods and spellings
            ("GET", "/admin"),
            ("POST", "/healthz"),
            ("get", "/healthz"),
            ("DELETE", "/static/app.js"),
            ("GET", "/hooks/deploy"),
            ("GET", "/HEALTHZ"),
            ("GET", "/healthz/"),
            ("GET", "/healthz/x"),
            ("GET", "/healthzx"),
            ("GET", "/static"),
            ("GET", "/static-admin/x"),
            ("GET", "/Static/app.js"),
            // dot segments leading out
            ("GET", "/healthz/../admin"),
            ("GET", "/static/../admin"),
            ("GET", "/static/a/../../admin"),
            ("GET", "/static/.."),
            ("GET", "/../static/app.js"),
            ("GET", "/static/../../static/app.js"),
            // encoded structure
            ("GET", "/static/%2e%2e/admin"),
            ("GET", "/static/%2E%2E/admin"),
            ("GET", "/static/.%2e/admin"),
            ("GET", "/static%2F..%2Fadmin"),
            ("GET", "/static/%2fadmin"),
            ("GET", "/static/%252e%252e/admin"),
            ("GET", "/static/%5c..%5cadmin"),
            ("GET", "/static/app.js%3F"),
            ("GET", "/healthz%23"),
            ("GET", "/healthz%00"),
            ("GET", "/static/a%0d%0ab"),
            ("GET", "/static/%"),
            ("GET", "/static/%zz"),
            ("GET", "/static/%2"),
            // separators and parameters some servers honour
            ("GET", "/healthz;x"),
            ("GET", "/static/..;/admin"),
            ("GET", "//healthz"),
            ("GET", "/static//app.js"),
            ("GET", "/static\\..\\admin"),
            ("GET", "/healthz#x"),
            // control and non-ASCII bytes
            ("GET", "/healthz\0"),
            ("GET", "/healthz\t"),
            ("GET", "/static/a b"),
            ("GET", "/static/café"),
            ("GET", "/static/caf%C3%A9"),
            ("GET", "/static/hello%20world.txt"),
            // preflight without the opt-in or its headers
            ("OPTIONS", "/api/items"),
            ("OPTIONS", "/healthz"),
        ] {
            assert!(
                !public(method, &url(path)),
                "{method} {path:?} must not pass"
            );
            assert!(
                !public(method, path),
                "{method} {path:?} as X-Forwarded-Uri"
            );
        }
    }

    #[test]
    fn targets_that_are_not_urls_or_paths_fail_closed() {
        for target in [
            "",
            "healthz",
            "ftp://mcd.example.com/healthz",
            "https://mcd.example.com",
            "https://mcd.example.com?/healthz",
            "*",
        ] {
            assert!(!public("GET", target), "{target:?}");
        }
        let missing = |method, target| {
            is_public(
                &rules(),
                OriginalRequest {
                    method,
                    target,
                    preflight_headers: true,
                },
            )
        };
        assert!(!missing(None, Some("/healthz")));
        assert!(!missing(Some("GET"), None));
    }

    #[test]
    fn cors_preflight_passes_only_where_opted_in_and_only_with_both_headers() {
        let preflight = |path: &str, headers: bool| {
            is_public(
                &rules(),
                OriginalRequest {
                    method: Some("OPTIONS"),
                    target: Some(path),
                    preflight_headers: headers,
                },
            )
        };
        assert!(preflight("/api/items", true));
        assert!(!preflight("/api/items", false));
        assert!(!preflight("/healthz", true), "the rule did not opt in");
        assert!(!preflight("/api/../admin", true));
        // the preflight opt-in passes OPTIONS only, not the methods it announces
        assert!(!public("GET", "/api/items"));
    }

    #[test]
    fn no_rules_is_never_public() {
        assert!(!is_public(
            &[],
            OriginalRequest {
                method: Some("GET"),
                target: Some("/healthz"),
                preflight_headers: false,
            }
        ));
    }

    #[test]
    fn normalize_removes_dot_segments_once_decoded() {
        for (raw, want) in [
            ("/", Some("/")),
            ("/a/./b", Some("/a/b")),
            ("/a/b/..", Some("/a/")),
            ("/a/b/.", Some("/a/b/")),
            ("/a/%62", Some("/a/b")),
            ("/a/%41%42", Some("/a/AB")),
            ("/..", None),
            ("/a/../..", None),
            ("/a/%2e", None),
        ] {
            assert_eq!(normalize(raw).as_deref(), want, "{raw}");
        }
    }
}
