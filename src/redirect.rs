//! Validation of the `rd` redirect target (RFC 9700 §4.11, open redirectors).
//!
//! Owns the one decision "may the browser be sent here after login or sign-out". Pure: no I/O,
//! no request types. Anything doubtful falls back to `/`, never to an error page.

use url::Url;

use crate::config::validate_authority;

/// Where redirects may go for one workspace.
#[derive(Debug, Clone)]
pub struct RedirectPolicy<'a> {
    /// The workspace's own hosts (`host` or `host:port`).
    pub hosts: &'a [String],
    /// Further hosts allowed by the workspace's config.
    pub allowed_hosts: &'a [String],
    /// Whether `http://` targets are allowed (plain-http development only).
    pub allow_http: bool,
}

/// The fallback target.
pub const FALLBACK: &str = "/";

impl RedirectPolicy<'_> {
    /// Returns `rd` when it is a same-host path or an absolute URL on an allowed host,
    /// else [`FALLBACK`]. `rd` is the query value already percent-decoded once, which is
    /// exactly the original request URI when NGINX sent `$escaped_request_uri`.
    pub fn validate(&self, rd: Option<&str>) -> String {
        match rd {
            Some(rd) if self.is_allowed(rd) => rd.to_string(),
            _ => FALLBACK.to_string(),
        }
    }

    fn is_allowed(&self, rd: &str) -> bool {
        if rd.is_empty() || rd.len() > 4096 {
            return false;
        }
        // Control characters (tab, CR, LF are stripped by browsers and let `/\t/evil` through),
        // backslashes (browsers read `\` as `/`) and non-ASCII trickery are never needed.
        if rd
            .chars()
            .any(|c| c.is_control() || c == '\\' || !c.is_ascii() || c == ' ')
        {
            return false;
        }
        if let Some(rest) = rd.strip_prefix('/') {
            // `//evil` is scheme-relative: another host.
            return !rest.starts_with('/');
        }
        let Ok(url) = Url::parse(rd) else {
            return false;
        };
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        // The authority as written must be exactly what the parser saw: rejects `https:evil`,
        // `https:/evil`, and forms that normalise to a different host.
        let written = &rd[url.scheme().len()..];
        if !written.starts_with("://") {
            return false;
        }
        let authority = validate_authority(&url);
        let written_authority = written[3..].split(['/', '?', '#']).next().unwrap_or("");
        if !written_authority.eq_ignore_ascii_case(&authority) {
            return false;
        }
        self.hosts
            .iter()
            .chain(self.allowed_hosts)
            .any(|h| *h == authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_http: bool) -> (Vec<String>, Vec<String>, bool) {
        (
            vec!["mcd.devlabai.work".into()],
            vec!["docs.devlabai.work".into()],
            allow_http,
        )
    }

    fn check(rd: &str, allow_http: bool) -> String {
        let (hosts, allowed, http) = policy(allow_http);
        RedirectPolicy {
            hosts: &hosts,
            allowed_hosts: &allowed,
            allow_http: http,
        }
        .validate(Some(rd))
    }

    #[test]
    fn accepted_targets_are_returned_exactly() {
        for rd in [
            "/",
            "/helloworld",
            "/helloworld?a=b%20c&d=%2Fe",
            "/path%2F%2Fstill-a-path",
            "https://mcd.devlabai.work/helloworld?x=1",
            "https://MCD.devlabai.work/x",
            "https://docs.devlabai.work/guide",
        ] {
            assert_eq!(check(rd, false), rd, "{rd}");
        }
    }

    #[test]
    fn hostile_targets_fall_back_to_root() {
        for rd in [
            "",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "https://evil.example/",
            "https://mcd.devlabai.work@evil.example/",
            "https://user:pw@mcd.devlabai.work/",
            "https://mcd.devlabai.work.evil.example/",
            "https://evil.example\\@mcd.devlabai.work/",
            "https:mcd.devlabai.work/x",
            "https:/mcd.devlabai.work/x",
            "http://mcd.devlabai.work/",
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://mcd.devlabai.work/",
            "mcd.devlabai.work/x",
            "https://mcd.devlabai.work:8443/",
            "/\u{0}x",
            "/a\nb",
            "https://mcd.devlabai.wörk/",
        ] {
            assert_eq!(check(rd, false), FALLBACK, "{rd:?} must fall back");
        }
    }

    #[test]
    fn http_only_when_configured() {
        assert_eq!(
            check("http://mcd.devlabai.work/x", true),
            "http://mcd.devlabai.work/x"
        );
        assert_eq!(check("http://mcd.devlabai.work/x", false), FALLBACK);
    }

    #[test]
    fn missing_rd_falls_back() {
        let (hosts, allowed, http) = policy(false);
        let p = RedirectPolicy {
            hosts: &hosts,
            allowed_hosts: &allowed,
            allow_http: http,
        };
        assert_eq!(p.validate(None), FALLBACK);
    }
}
