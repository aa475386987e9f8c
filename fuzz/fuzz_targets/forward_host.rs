//! The original-URL and host parser: `forward::resolve`, `forward::original_request` and
//! `host::Host::parse`.
//!
//! The first byte picks the header the value arrives in (`X-Original-URL`, `X-Forwarded-Host`,
//! `Host`), the route form, and whether the peer is a trusted proxy. An original request's
//! target, when one is made, is origin form: starts with one `/`, visible ASCII, no `\`. Property: an accepted host is lower-case,
//! holds no `@`, `/`, `\`, whitespace, `%` or `,`, parses again to itself, and a URL parser that
//! reads it reads the same host.
#![no_main]

use std::net::IpAddr;

use authgate::forward::{original_request, resolve, ForwardingHeaders, RouteForm};
use authgate::host::Host;
use std::sync::OnceLock;

use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use url::Url;

/// The trusted-proxy list the config defaults to.
fn trusted() -> &'static [IpNet] {
    static NETS: OnceLock<Vec<IpNet>> = OnceLock::new();
    NETS.get_or_init(|| {
        authgate::config::DEFAULT_TRUSTED_PROXIES
            .iter()
            .map(|n| n.parse().expect("default trusted proxy"))
            .collect()
    })
}

fn check_host(host: &str) {
    assert!(
        !host.contains(|c: char| matches!(c, '@' | '/' | '\\' | '%' | ',') || c.is_whitespace()),
        "{host:?} holds a forbidden character"
    );
    assert_eq!(
        host,
        host.to_ascii_lowercase(),
        "{host:?} is not lower-case"
    );
    assert_eq!(
        Host::parse(host).as_ref().map(Host::as_str),
        Ok(host),
        "{host:?} does not re-parse to itself"
    );
    if let Ok(url) = Url::parse(&format!("http://{host}/")) {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if !host.ends_with(']') => {
                if port != "80" {
                    assert_eq!(url.port(), port.parse().ok(), "{host:?}: port");
                }
                name
            }
            _ => host,
        };
        if !name.starts_with('[') {
            assert_eq!(
                url.host_str(),
                Some(name),
                "{host:?}: a URL parser reads another host"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(host) = Host::parse(value) {
        check_host(host.as_str());
    }
    let peer: IpAddr = if mode & 4 == 0 {
        "10.1.2.3".parse().expect("peer")
    } else {
        "203.0.113.9".parse().expect("peer")
    };
    let h = match mode % 4 {
        0 => ForwardingHeaders {
            original_url: Some(value),
            original_method: Some("GET"),
            forwarded_host: Some("perso.devlabai.work"),
            host: Some("authgate.authgate.svc"),
            ..ForwardingHeaders::default()
        },
        1 => ForwardingHeaders {
            forwarded_host: Some(value),
            forwarded_uri: Some(value),
            forwarded_method: Some("GET"),
            host: Some("authgate.authgate.svc"),
            ..ForwardingHeaders::default()
        },
        _ => ForwardingHeaders {
            host: Some(value),
            ..ForwardingHeaders::default()
        },
    };
    let form = match (mode >> 3) % 3 {
        0 => RouteForm::Subrequest,
        1 => RouteForm::ForwardAuth,
        _ => RouteForm::Browser,
    };
    if let Ok(target) = resolve(form, peer, trusted(), h) {
        check_host(target.host.as_str());
        if let Some(original) = original_request(form, target.trusted, &h) {
            let t = original.target;
            assert!(
                t.starts_with('/')
                    && !t.starts_with("//")
                    && t.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'),
                "{t:?} is not origin form"
            );
        }
    }
});
