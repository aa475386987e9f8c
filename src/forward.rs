//! Which host a request is for, and which forwarding headers to believe.
//!
//! Owns the trust decision: `X-Original-URL` and `X-Forwarded-Host` (as ingress-nginx sends
//! them) count only from peers in the trusted-proxy list; from anyone else only `Host` counts.
//! Pure: takes the peer address and header strings, never a framework request.

use std::net::IpAddr;

use ipnet::IpNet;
use url::Url;

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
    /// `host` or `host:port`, lower-case.
    pub host: String,
    /// The original URL, when a trusted proxy sent one.
    pub original_url: Option<Url>,
    /// Whether forwarding headers were believed.
    pub trusted: bool,
}

/// Whether `peer` is a trusted proxy. IPv4-mapped IPv6 peers are compared as IPv4.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&peer))
}

/// Resolves the target host: `X-Original-URL`, then `X-Forwarded-Host`, then `Host`, the first
/// two only from a trusted peer. `None` when no usable host is present.
pub fn resolve(peer: IpAddr, trusted: &[IpNet], h: ForwardingHeaders<'_>) -> Option<Target> {
    let trust = is_trusted(peer, trusted);
    if trust {
        if let Some(url) = h.original_url.and_then(|u| Url::parse(u.trim()).ok()) {
            if let Some(host) = url.host_str() {
                let host = match url.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                };
                return Some(Target {
                    host: host.to_ascii_lowercase(),
                    original_url: Some(url),
                    trusted: true,
                });
            }
        }
        if let Some(fh) = h
            .forwarded_host
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return Some(Target {
                host: fh.to_ascii_lowercase(),
                original_url: None,
                trusted: true,
            });
        }
    }
    let host = h.host.map(str::trim).filter(|v| !v.is_empty())?;
    Some(Target {
        host: host.to_ascii_lowercase(),
        original_url: None,
        trusted: trust,
    })
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

    #[test]
    fn trusted_peer_original_url_wins() {
        let t = resolve("10.1.2.3".parse().unwrap(), &nets(), H).unwrap();
        assert_eq!(t.host, "mcd.devlabai.work");
        assert!(t.trusted);
        assert_eq!(t.original_url.unwrap().path(), "/helloworld");
    }

    #[test]
    fn trusted_peer_falls_back_to_forwarded_host_then_host() {
        let peer = "127.0.0.1".parse().unwrap();
        let h = ForwardingHeaders {
            original_url: Some("not a url"),
            ..H
        };
        assert_eq!(
            resolve(peer, &nets(), h).unwrap().host,
            "perso.devlabai.work"
        );
        let h = ForwardingHeaders {
            original_url: None,
            forwarded_host: None,
            ..H
        };
        assert_eq!(
            resolve(peer, &nets(), h).unwrap().host,
            "authgate.authgate.svc"
        );
    }

    #[test]
    fn untrusted_peer_is_judged_by_its_host_header() {
        let t = resolve("203.0.113.9".parse().unwrap(), &nets(), H).unwrap();
        assert_eq!(t.host, "authgate.authgate.svc");
        assert!(!t.trusted);
        assert!(t.original_url.is_none());
    }

    #[test]
    fn ipv4_mapped_ipv6_peer_is_matched_as_ipv4() {
        assert!(is_trusted("::ffff:10.0.0.5".parse().unwrap(), &nets()));
        assert!(!is_trusted("::ffff:8.8.8.8".parse().unwrap(), &nets()));
    }

    #[test]
    fn no_host_at_all() {
        assert!(resolve(
            "8.8.8.8".parse().unwrap(),
            &nets(),
            ForwardingHeaders::default()
        )
        .is_none());
    }
}
