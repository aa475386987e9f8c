//! Validation of the `rd` redirect target (RFC 9700 §4.11, open redirectors).
//!
//! Owns the one decision "may the browser be sent here after login or sign-out", and where an
//! IdP may send it back to after logging out there. Pure: no I/O, no request types. Anything
//! doubtful falls back to `/` (or the root of the host signed out from), never to an error page.

use url::Url;

use crate::host::{url_authority, Host};

/// Where redirects may go for one workspace.
#[derive(Debug, Clone)]
pub struct RedirectPolicy<'a> {
    /// The workspace's own hosts (`host` or `host:port`).
    pub hosts: &'a [Host],
    /// Further hosts allowed by the workspace's config.
    pub allowed_hosts: &'a [Host],
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

    /// The `post_logout_redirect_uri` for a sign-out that ends the IdP session too (OpenID
    /// Connect RP-Initiated Logout 1.0 §3): the root of the validated `rd`'s origin when `rd` is
    /// an absolute URL on an allowed host, else `home`, the root of the host signed out from
    /// (which the request's workspace already vouched for). A relative or refused `rd` therefore
    /// gives `home`.
    ///
    /// Only the root, never `rd`'s path: the OP redirects only to a URI registered for the
    /// client, compared as a whole (§3, "MUST have been previously registered"; oidc-provider
    /// and Entra compare exactly), so one registered URI per host — next to its callback URL —
    /// covers every sign-out link, where a path would need registering page by page and an
    /// unregistered one leaves the user on the IdP's error page.
    pub fn logout_return(&self, rd: Option<&str>, home: &Url) -> Url {
        match Url::parse(&self.validate(rd)) {
            Ok(mut root) => {
                root.set_path("/");
                root.set_query(None);
                root.set_fragment(None);
                root
            }
            // A path (or the fallback `/`): on the host signed out from.
            Err(_) => home.clone(),
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
        let authority = url_authority(&url);
        let written_authority = written[3..].split(['/', '?', '#']).next().unwrap_or("");
        if !written_authority.eq_ignore_ascii_case(&authority) {
            return false;
        }
        // Compared in the parser's canonical form, and only when the URL's authority already is
        // that form: one the host parser would rewrite (a trailing dot) is not a configured host.
        let Ok(host) = Host::parse(&authority) else {
            return false;
        };
        host.as_str() == authority
            && self
                .hosts
                .iter()
                .chain(self.allowed_hosts)
                .any(|h| *h == host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f` of the policy of a workspace on `mcd.devlabai.work` that may also send browsers to
    /// `docs.devlabai.work`.
    fn with_policy<T>(allow_http: bool, f: impl FnOnce(&RedirectPolicy<'_>) -> T) -> T {
        let hosts = [Host::parse("mcd.devlabai.work").unwrap()];
        let allowed = [Host::parse("docs.devlabai.work").unwrap()];
        f(&RedirectPolicy {
            hosts: &hosts,
            allowed_hosts: &allowed,
            allow_http,
        })
    }

    fn check(rd: &str, allow_http: bool) -> String {
        with_policy(allow_http, |p| p.validate(Some(rd)))
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
    fn idp_logout_returns_to_the_root_of_the_validated_rd() {
        let home = Url::parse("https://mcd.devlabai.work/").unwrap();
        for (rd, want) in [
            (None, "https://mcd.devlabai.work/"),
            (Some("/"), "https://mcd.devlabai.work/"),
            (Some("/bye?x=1"), "https://mcd.devlabai.work/"),
            (
                Some("https://mcd.devlabai.work/helloworld?x=1#top"),
                "https://mcd.devlabai.work/",
            ),
            (
                Some("https://MCD.devlabai.work/x"),
                "https://mcd.devlabai.work/",
            ),
            (
                Some("https://docs.devlabai.work/guide"),
                "https://docs.devlabai.work/",
            ),
            (
                Some("https://docs.devlabai.work"),
                "https://docs.devlabai.work/",
            ),
        ] {
            let back = with_policy(false, |p| p.logout_return(rd, &home));
            assert_eq!(back.as_str(), want, "{rd:?}");
        }
    }

    #[test]
    fn idp_logout_never_returns_to_a_refused_rd() {
        let home = Url::parse("https://mcd.devlabai.work/").unwrap();
        for rd in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil",
            "/\\evil.example/x",
            "https://mcd.devlabai.work@evil.example/",
            "https://mcd.devlabai.work.evil.example/",
            "http://mcd.devlabai.work/",
            "javascript:alert(1)",
            "https:evil.example",
        ] {
            let back = with_policy(false, |p| p.logout_return(Some(rd), &home));
            assert_eq!(back, home, "{rd:?}");
        }
    }

    #[test]
    fn missing_rd_falls_back() {
        assert_eq!(with_policy(false, |p| p.validate(None)), FALLBACK);
    }
}
