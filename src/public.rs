//! Public routes inside a protected workspace: the `[[public]]` rule and the path spelling
//! every rule is compared in.
//!
//! Owns what a `[[public]]` rule is and whether a path is plain; `crate::rules` compiles the
//! rules (first in the workspace's list) and matches them, always on the *original* request as the route's own proxy describes it
//! ([`crate::forward::OriginalRequest`], built by the route's extractor: no header is read
//! here). The path is compared exactly as the client wrote it, never decoded or normalised:
//! the app behind the proxy sees that raw path, and an app may read a spelling differently
//! from authgate. So a path is judged only when it is *plain* — visible ASCII, no
//! percent-encoding at all, no `.` or `..` segment, no `//`, and none of `;`, `\`, `#` — and a
//! path that is not plain is never public (the normal login check applies). The query is never
//! looked at. Pure: takes plain values, never a framework request, and never errs.

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

impl PathPattern {
    /// Whether `path` (plain, as the request wrote it) is this path or under this prefix.
    pub fn covers(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == p,
            Self::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    /// The path or prefix as written.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Exact(p) | Self::Prefix(p) => p,
        }
    }

    /// Whether this is a prefix.
    pub fn is_prefix(&self) -> bool {
        matches!(self, Self::Prefix(_))
    }
}

/// Whether `path` is spelled so that every proxy and app reads it as authgate does: absolute,
/// visible ASCII without `%` (no encoding to decode one way or another), `;` (path parameters),
/// `\` (a separator to some), `#` or `?`, and no empty (`//`), `.` or `..` segment. Rule paths
/// must be plain too (`config::public`), so a doubtful request path can never equal one.
pub fn is_plain_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    path.bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'%' | b';' | b'\\' | b'#' | b'?'))
        && !path.contains("//")
        && !rest.split('/').any(|s| s == "." || s == "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::OriginalRequest;
    use crate::rules::{Action, Rule, RuleRequest, RuleSet, Verdict};

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

    fn request<'a>(method: Option<&'a str>, target: &'a str) -> OriginalRequest<'a> {
        OriginalRequest { method, target }
    }

    /// Whether the rules, compiled as a workspace compiles them, make the request public.
    fn is_public(
        rules: &[PublicRule],
        req: Option<&OriginalRequest<'_>>,
        preflight_headers: bool,
    ) -> bool {
        let set = RuleSet {
            rules: rules
                .iter()
                .cloned()
                .enumerate()
                .map(Rule::public)
                .collect(),
        };
        let req = RuleRequest {
            original: req.copied(),
            host: None,
            client: None,
            preflight_headers,
        };
        matches!(set.decide(&req), Verdict::Rule(r) if r.action == Action::Public)
    }

    fn public(method: &str, target: &str) -> bool {
        is_public(&rules(), Some(&request(Some(method), target)), false)
    }

    #[test]
    fn the_rules_paths_and_methods_pass_spelled_as_the_rule_names_them() {
        for (method, path) in [
            ("GET", "/healthz"),
            ("HEAD", "/healthz"),
            ("GET", "/healthz?verbose=1"),
            ("GET", "/healthz?x=/../admin"),
            ("GET", "/healthz?x=%2e%2e"),
            ("GET", "/static/app.js"),
            ("GET", "/static/css/site.css"),
            ("GET", "/static/"),
            ("GET", "/static/~user.css"),
            ("POST", "/hooks/deploy"),
        ] {
            assert!(public(method, path), "{method} {path} should pass");
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
            // dot segments, even those that stay inside a public prefix: the app sees the raw
            // path, and apps that route on it (prefix mounts) read `/admin/../healthz` as
            // their admin area
            ("GET", "/admin/../healthz"),
            ("GET", "/healthz/../admin"),
            ("GET", "/static/../admin"),
            ("GET", "/static/a/../b.js"),
            ("GET", "/static/./b.js"),
            ("GET", "/static/a/../../admin"),
            ("GET", "/static/.."),
            ("GET", "/static/."),
            ("GET", "/./healthz"),
            ("GET", "/../static/app.js"),
            ("GET", "/static/../../static/app.js"),
            // any percent-encoding: decoded one way or another by the app
            ("GET", "/heal%74hz"),
            ("GET", "/static/%7Euser.css"),
            ("GET", "/static/%2e%2e/admin"),
            ("GET", "/static/%2E%2E/admin"),
            ("GET", "/static/.%2e/admin"),
            ("GET", "/admin/%2e%2e/healthz"),
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
            ("GET", "/static/hello%20world.txt"),
            ("GET", "/static/caf%C3%A9"),
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
            // preflight without the opt-in or its headers
            ("OPTIONS", "/api/items"),
            ("OPTIONS", "/healthz"),
            // not origin form
            ("GET", ""),
            ("GET", "healthz"),
            ("GET", "*"),
        ] {
            assert!(!public(method, path), "{method} {path:?} must not pass");
        }
    }

    #[test]
    fn without_an_original_request_or_its_method_nothing_is_public() {
        assert!(!is_public(&rules(), None, true));
        assert!(!is_public(&rules(), Some(&request(None, "/healthz")), true));
    }

    #[test]
    fn cors_preflight_passes_only_where_opted_in_and_only_with_both_headers() {
        let preflight = |path: &str, headers: bool| {
            is_public(&rules(), Some(&request(Some("OPTIONS"), path)), headers)
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
            Some(&request(Some("GET"), "/healthz")),
            false
        ));
    }

    #[test]
    fn plain_paths() {
        for (path, plain) in [
            ("/", true),
            ("/a/b", true),
            ("/a/b/", true),
            ("/a/~b-c_d.e", true),
            ("/a..b/.c/d.", true),
            ("/a/./b", false),
            ("/a/b/..", false),
            ("/a/b/.", false),
            ("/a/%62", false),
            ("/..", false),
            ("a/b", false),
            ("", false),
        ] {
            assert_eq!(is_plain_path(path), plain, "{path}");
        }
    }
}
