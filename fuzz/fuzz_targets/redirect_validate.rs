//! The `rd` validator: `RedirectPolicy::validate` on arbitrary targets.
//!
//! Property: the answer is the fallback `/`, or `rd` itself when `rd` is a same-host path (one
//! `/`, not `//` nor `/\`) or an absolute https URL (http only when allowed) whose authority, as
//! written, is one of the workspace's hosts; and a URL parser reads that same authority.
#![no_main]

use authgate::host::Host;
use authgate::redirect::{RedirectPolicy, FALLBACK};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(rd) = std::str::from_utf8(rest) else {
        return;
    };
    let host = |h: &str| Host::parse(h).expect("host");
    let hosts = vec![host("mcd.devlabai.work")];
    let allowed = vec![
        host("docs.devlabai.work"),
        host("mcd.localhost:8080"),
        host("[2001:db8::1]"),
    ];
    let allow_http = flags & 1 == 1;
    let policy = RedirectPolicy {
        hosts: &hosts,
        allowed_hosts: &allowed,
        allow_http,
    };
    assert_eq!(policy.validate(None), FALLBACK);
    let out = policy.validate(Some(rd));
    if out == FALLBACK {
        return;
    }
    assert_eq!(out, rd, "an accepted target is returned exactly");
    assert!(
        !out.contains(|c: char| c.is_control() || c.is_whitespace() || c == '\\'),
        "{out:?}: control characters, spaces or backslashes"
    );
    if let Some(path) = out.strip_prefix('/') {
        assert!(!path.starts_with('/'), "{out:?} is scheme-relative");
        return;
    }
    let (scheme, after) = out
        .split_once("://")
        .expect("absolute URL with an authority");
    assert!(
        scheme.eq_ignore_ascii_case("https") || (allow_http && scheme.eq_ignore_ascii_case("http")),
        "{out:?}: scheme"
    );
    let written = after.split(['/', '?', '#']).next().unwrap_or("");
    assert!(
        hosts
            .iter()
            .chain(&allowed)
            .any(|h| h.as_str().eq_ignore_ascii_case(written)),
        "{out:?}: authority {written:?} not allowed"
    );
    let url = Url::parse(&out).expect("an accepted URL parses");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{out:?}: userinfo"
    );
    let parsed = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => panic!("{out:?}: no host"),
    };
    assert!(
        parsed.eq_ignore_ascii_case(written),
        "{out:?}: written {written:?}, parsed {parsed:?}"
    );
});
