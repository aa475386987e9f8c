//! Which host a request is for, and which forwarding headers to believe.
//!
//! Owns the trust decision: `X-Original-URL` and `X-Forwarded-Host` (as ingress-nginx sends
//! them; Traefik and Caddy send `X-Forwarded-Host` and `X-Forwarded-Uri`) count only from peers
//! in the trusted-proxy list; from anyone else only `Host` counts.
//! Every one of these values is written by the client (ingress-nginx builds `X-Original-URL`
//! from the client's own `Host`), so the host found here never *chooses* a workspace: the
//! workspace is named by the route the operator wrote (`/oauth2/auth/<workspace>`), and this
//! host must merely belong to it. Hosts are parsed strictly ([`Host::parse`]) and refused,
//! never normalised into another host: userinfo, an empty host, or anything but a plain DNS
//! name or IP literal with an optional port is an error. Pure: takes the peer address and header
//! strings, never a framework request.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::host::Host;

/// The forwarding-related headers of a request, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardingHeaders<'a> {
    /// `X-Original-URL` (auth_request subrequests).
    pub original_url: Option<&'a str>,
    /// `X-Forwarded-Host`.
    pub forwarded_host: Option<&'a str>,
    /// `Host`.
    pub host: Option<&'a str>,
}

/// The request as the user made it, as far as authgate can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host` or `host:port`, parsed strictly ([`Host::parse`]).
    pub host: Host,
    /// Whether forwarding headers were believed.
    pub trusted: bool,
}

/// Why no host could be taken from a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// No header named a host.
    #[error("the request names no host")]
    Missing,
    /// A header named one in a form that is refused.
    #[error("{header} {value:?} refused: {problem}")]
    Malformed {
        /// The header it came from.
        header: &'static str,
        /// The value, cut to 200 characters for the log.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Whether `peer` is a trusted proxy. IPv4-mapped IPv6 peers are compared as IPv4.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&peer))
}

/// The client's address: `X-Real-IP` (which ingress-nginx sets to the address it saw) from a
/// trusted proxy, else the peer itself. A value that is not one IP address is ignored.
pub fn client_address(peer: IpAddr, trusted: &[IpNet], real_ip: Option<&str>) -> IpAddr {
    match real_ip.map(str::trim).map(str::parse::<IpAddr>) {
        Some(Ok(ip)) if is_trusted(peer, trusted) => ip,
        _ => peer,
    }
}

/// Resolves the target host: `X-Original-URL`, then `X-Forwarded-Host`, then `Host`, the first
/// two only from a trusted peer. The first header present decides: a malformed one is an
/// error, never a reason to fall back to the next.
pub fn resolve(
    peer: IpAddr,
    trusted: &[IpNet],
    h: ForwardingHeaders<'_>,
) -> Result<Target, HostError> {
    let trust = is_trusted(peer, trusted);
    let malformed =
        |header: &'static str, value: &str, problem: &'static str| HostError::Malformed {
            header,
            value: value.chars().take(200).collect(),
            problem,
        };
    let (header, value, host) = match (trust, h.original_url, h.forwarded_host) {
        (true, Some(url), _) => (
            "X-Original-URL",
            url,
            original_url_authority(url).map_err(|p| malformed("X-Original-URL", url, p))?,
        ),
        (true, None, Some(fh)) => ("X-Forwarded-Host", fh, fh),
        _ => {
            let host = h.host.ok_or(HostError::Missing)?;
            ("Host", host, host)
        }
    };
    let host = Host::parse(host).map_err(|p| malformed(header, value, p))?;
    Ok(Target {
        host,
        trusted: trust,
    })
}

/// The authority of an absolute `http`/`https` URL as written, without parsing it into
/// anything else: what lies between `://` and the first `/`, `?` or `#`.
fn original_url_authority(url: &str) -> Result<&str, &'static str> {
    let (scheme, rest) = url.split_once("://").ok_or("not an absolute URL")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("not an http or https URL");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Ok(&rest[..end])
}

/// The original request target a proxy reports in `X-Forwarded-Uri` (Traefik's ForwardAuth,
/// Caddy's `forward_auth`), checked as strictly as a host: origin form only — a `/`, then
/// visible ASCII without `\`, at most 4096 bytes — and never `//` or `/\`, which a browser
/// reads as another host. Anything else is refused, never repaired.
pub fn parse_forwarded_uri(text: &str) -> Result<&str, &'static str> {
    if text.len() > 4096 {
        return Err("longer than 4096 bytes");
    }
    let rest = text
        .strip_prefix('/')
        .ok_or("not a path starting with '/'")?;
    if rest.starts_with('/') {
        return Err("'//' names another host");
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return Err("only visible ASCII without '\\' makes a request target");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> Vec<IpNet> {
        vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]
    }

    const H: ForwardingHeaders<'static> = ForwardingHeaders {
        original_url: Some("https://mcd.devlabai.work/helloworld?x=1"),
        forwarded_host: Some("perso.devlabai.work"),
        host: Some("authgate.authgate.svc"),
    };

    fn trusted() -> IpAddr {
        "10.1.2.3".parse().unwrap()
    }

    #[test]
    fn trusted_peer_original_url_wins() {
        let t = resolve(trusted(), &nets(), H).unwrap();
        assert_eq!(t.host, "mcd.devlabai.work");
        assert!(t.trusted);
    }

    #[test]
    fn trusted_peer_falls_back_to_forwarded_host_then_host_only_when_absent() {
        let h = ForwardingHeaders {
            original_url: None,
            ..H
        };
        assert_eq!(
            resolve(trusted(), &nets(), h).unwrap().host,
            "perso.devlabai.work"
        );
        let h = ForwardingHeaders {
            original_url: None,
            forwarded_host: None,
            ..H
        };
        assert_eq!(
            resolve(trusted(), &nets(), h).unwrap().host,
            "authgate.authgate.svc"
        );
    }

    #[test]
    fn a_malformed_original_url_is_refused_not_skipped() {
        let h = ForwardingHeaders {
            original_url: Some("not a url"),
            ..H
        };
        assert!(matches!(
            resolve(trusted(), &nets(), h),
            Err(HostError::Malformed {
                header: "X-Original-URL",
                ..
            })
        ));
    }

    #[test]
    fn untrusted_peer_is_judged_by_its_host_header() {
        let t = resolve("203.0.113.9".parse().unwrap(), &nets(), H).unwrap();
        assert_eq!(t.host, "authgate.authgate.svc");
        assert!(!t.trusted);
    }

    #[test]
    fn ipv4_mapped_ipv6_peer_is_matched_as_ipv4() {
        assert!(is_trusted("::ffff:10.0.0.5".parse().unwrap(), &nets()));
        assert!(!is_trusted("::ffff:8.8.8.8".parse().unwrap(), &nets()));
    }

    #[test]
    fn the_client_address_is_believed_only_from_a_trusted_proxy() {
        let real = Some("198.51.100.7");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_address(trusted(), &nets(), real), ip("198.51.100.7"));
        assert_eq!(
            client_address(ip("203.0.113.9"), &nets(), real),
            ip("203.0.113.9")
        );
        assert_eq!(client_address(trusted(), &nets(), Some("a, b")), trusted());
        assert_eq!(client_address(trusted(), &nets(), None), trusted());
    }

    #[test]
    fn no_host_at_all() {
        assert_eq!(
            resolve(
                "8.8.8.8".parse().unwrap(),
                &nets(),
                ForwardingHeaders::default()
            ),
            Err(HostError::Missing)
        );
    }

    /// Original URLs whose host a URL parser would read differently from NGINX, or that name
    /// no plain host: each is refused, never normalised.
    #[test]
    fn hostile_original_urls_are_refused() {
        for url in [
            "http://mcd.devlabai.work:1@perso.devlabai.work/x",
            "http://user@mcd.devlabai.work/",
            "http://:pw@mcd.devlabai.work/",
            "http:///x",
            "http://",
            "http://:443/",
            "http://mcd.devlabai.work\\@perso.devlabai.work/",
            "http://mcd%2edevlabai.work/",
            "http://mcd.devlabai.work%00/",
            "http://mcd .devlabai.work/",
            "http://mcd.devlabai.work,perso.devlabai.work/",
            "http://mcd.devlabai.work:/",
            "http://mcd.devlabai.work:99999/",
            "http://mcd.devlabai.work:0x50/",
            // Found by fuzzing (fuzz/fuzz_targets/forward_host.rs): a URL parser reads `:080`
            // as port 80, which http then drops.
            "http://mcd.devlabai.work:080/",
            "http://mcd.devlabai.work:00443/",
            "http://mcd..devlabai.work/",
            "http://-mcd.devlabai.work/",
            "http://mcd.dévlabai.work/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://127.1/",
            "http://[::1/",
            "http://[not:v6]/",
            "http://[::1]x/",
            "javascript://mcd.devlabai.work/",
            "//mcd.devlabai.work/",
            "mcd.devlabai.work/x",
        ] {
            let h = ForwardingHeaders {
                original_url: Some(url),
                ..H
            };
            assert!(
                resolve(trusted(), &nets(), h).is_err(),
                "{url:?} must be refused"
            );
        }
    }

    #[test]
    fn plain_hosts_and_literals_are_taken_as_written() {
        for (url, host) in [
            ("https://MCD.devlabai.work/a", "mcd.devlabai.work"),
            ("https://mcd.devlabai.work./a", "mcd.devlabai.work"),
            ("http://mcd.localhost:8080/a?b#c", "mcd.localhost:8080"),
            ("http://mcd.localhost:8080?b", "mcd.localhost:8080"),
            ("HTTPS://devlabai.work", "devlabai.work"),
            ("http://192.0.2.7:81/", "192.0.2.7:81"),
            ("http://[2001:DB8::1]:8443/", "[2001:db8::1]:8443"),
            ("http://[::1]/", "[::1]"),
        ] {
            let h = ForwardingHeaders {
                original_url: Some(url),
                ..H
            };
            assert_eq!(resolve(trusted(), &nets(), h).unwrap().host, host, "{url}");
        }
    }

    #[test]
    fn forwarded_uris_are_origin_form_or_refused() {
        for ok in ["/", "/helloworld?greeting=hi%20there&x=1", "/a/b;c?d=/e#f"] {
            assert_eq!(parse_forwarded_uri(ok), Ok(ok));
        }
        let long = format!("/{}", "a".repeat(4096));
        for bad in [
            "",
            "helloworld",
            "http://evil.test/",
            "//evil.test/",
            "/\\evil.test/",
            "/a b",
            "/a\tb",
            "/a\r\nSet-Cookie: x=1",
            "/caf\u{e9}",
            long.as_str(),
        ] {
            assert!(parse_forwarded_uri(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn forwarded_and_host_headers_are_parsed_as_strictly() {
        for bad in [
            "a.test, b.test",
            "mcd.test:1@perso.test",
            "",
            "mcd.test/x",
            "m.locat:080",
        ] {
            let h = ForwardingHeaders {
                original_url: None,
                forwarded_host: Some(bad),
                host: Some("ok.test"),
            };
            assert!(resolve(trusted(), &nets(), h).is_err(), "{bad:?}");
            let h = ForwardingHeaders {
                original_url: None,
                forwarded_host: None,
                host: Some(bad),
            };
            assert!(resolve(trusted(), &nets(), h).is_err(), "{bad:?}");
        }
    }
}
