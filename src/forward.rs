//! Which request a route describes, and which forwarding headers to believe on it.
//!
//! Owns the trust decision, per route form. A header counts only when the proxy in front of
//! that route writes it (overwriting whatever the client sent), and which proxy that is follows
//! from the route the operator wrote into the proxy's config ([`RouteForm`]), never from which
//! headers a request happens to carry:
//!
//! | route form | proxy | host from | method and target from |
//! |---|---|---|---|
//! | [`RouteForm::Subrequest`] `/oauth2/auth[/<ws>]` | ingress-nginx `auth_request` | `X-Original-URL` | `X-Original-Method`, `X-Original-URL` |
//! | [`RouteForm::ForwardAuth`] `/oauth2/auth/<ws>/redirect` | Traefik ForwardAuth, Caddy `forward_auth` | `X-Forwarded-Host` | `X-Forwarded-Method`, `X-Forwarded-Uri` |
//! | [`RouteForm::Browser`] `start`, `callback`, `sign_out`, `userinfo`, `backchannel_logout` | the `/oauth2` Ingress, ordinary proxying | `X-Forwarded-Host` | none |
//!
//! ingress-nginx passes a client's `X-Forwarded-*` through to its auth subrequest, and Traefik
//! and Caddy pass a client's `X-Original-*` through to theirs, so each form reads its own
//! proxy's headers and no other. All of them count only from peers in the trusted-proxy list;
//! from anyone else only `Host` counts and no original request is known. A header the form
//! reads is never skipped for being malformed: it is refused.
//!
//! Every one of these values is still written by the client in the end (ingress-nginx builds
//! `X-Original-URL` from the client's own `Host`), so the host found here never *chooses* a
//! workspace: the workspace is named by the route the operator wrote
//! (`/oauth2/auth/<workspace>`), and this host must merely belong to it. Hosts are parsed
//! strictly ([`Host::parse`]) and refused, never normalised into another host.
//!
//! The client's address ([`client_address`]) comes from `X-Forwarded-For`, read from the
//! right and only through trusted proxies: every proxy of the platform appends (or, for an
//! untrusted peer, replaces) that header, while `X-Real-IP` is passed through untouched by
//! Caddy and by a Traefik that trusts cloudflared. Pure: takes the peer address and header
//! strings, never a framework request.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::host::Host;

/// Which proxy stands in front of a route, and so which headers describe the user's request
/// there. Fixed by the route, never by the headers a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteForm {
    /// `/oauth2/auth[/<workspace>]`: ingress-nginx's `auth_request` subrequest, on which NGINX
    /// writes `X-Original-URL` and `X-Original-Method`.
    Subrequest,
    /// `/oauth2/auth/<workspace>/redirect`: Traefik's ForwardAuth and Caddy's `forward_auth`,
    /// which write `X-Forwarded-Method`, `-Proto`, `-Host` and `-Uri`.
    ForwardAuth,
    /// The browser's own routes, proxied by the `/oauth2` Ingress, which writes
    /// `X-Forwarded-Host`.
    Browser,
}

/// The headers that may describe a request, as sent. Which of them count is the route form's
/// choice ([`resolve`], [`original_request`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardingHeaders<'a> {
    /// `Host` (or the request line's authority).
    pub host: Option<&'a str>,
    /// `X-Original-URL`.
    pub original_url: Option<&'a str>,
    /// `X-Original-Method`.
    pub original_method: Option<&'a str>,
    /// `X-Forwarded-Host`.
    pub forwarded_host: Option<&'a str>,
    /// `X-Forwarded-Method`.
    pub forwarded_method: Option<&'a str>,
    /// `X-Forwarded-Uri`.
    pub forwarded_uri: Option<&'a str>,
}

/// The host the user asked for, as far as authgate can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host` or `host:port`, parsed strictly ([`Host::parse`]).
    pub host: Host,
    /// Whether the peer is a trusted proxy, so its forwarding headers were read.
    pub trusted: bool,
}

/// The user's original request as the route's own proxy describes it: the one value that
/// policy (`[[public]]` rules, the sign-in redirect of the ForwardAuth form) reads. Only a
/// trusted proxy's route form that forwards a request makes one ([`original_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginalRequest<'a> {
    /// The method, when the proxy wrote one.
    pub method: Option<&'a str>,
    /// The request target in origin form (`/path?query`), as written.
    pub target: &'a str,
}

impl<'a> OriginalRequest<'a> {
    /// The path of [`Self::target`], without its query.
    pub fn path(&self) -> &'a str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }
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

/// Most `X-Forwarded-For` hops looked at: more proxies than any platform chains.
const MAX_HOPS: usize = 16;

/// The client's address: walking `X-Forwarded-For` from the right, through trusted proxies
/// only (`real_ip_recursive` in NGINX's words), the first address that is not one; the peer
/// itself when it is not a trusted proxy. Each proxy appends the address it saw (or, for an
/// untrusted peer, writes it alone), so entries left of the first untrusted one are the
/// client's own word and never read. A malformed entry ends the walk at the last trusted hop;
/// a chain of trusted hops only gives its leftmost.
pub fn client_address<'a, I>(peer: IpAddr, trusted: &[IpNet], forwarded_for: I) -> IpAddr
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: DoubleEndedIterator,
{
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // Read from the right without collecting: the access rules ask on the hot path.
    let entries = forwarded_for.into_iter().flat_map(|v| v.split(','));
    let mut client = peer;
    for entry in entries.rev().take(MAX_HOPS) {
        let Some(ip) = hop_address(entry.trim()) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip, trusted) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an IP address, or one with a port (`[v6]:port`, `v4:port`).
fn hop_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Resolves the host the request is for, from the headers `form`'s proxy writes: on the
/// subrequest `X-Original-URL`, on the other forms `X-Forwarded-Host`, each only from a
/// trusted peer, else `Host`. A header the form reads that is malformed is an error, never a
/// reason to fall back to the next.
pub fn resolve(
    form: RouteForm,
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
    let proxied = match (trust, form) {
        (false, _) => None,
        (true, RouteForm::Subrequest) => h.original_url.map(|url| {
            original_url_parts(url)
                .map(|(authority, _)| ("X-Original-URL", url, authority))
                .map_err(|p| malformed("X-Original-URL", url, p))
        }),
        (true, RouteForm::ForwardAuth | RouteForm::Browser) => {
            h.forwarded_host.map(|fh| Ok(("X-Forwarded-Host", fh, fh)))
        }
    };
    let (header, value, host) = match proxied {
        Some(found) => found?,
        None => {
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

/// The original request `form`'s proxy describes: on the subrequest `X-Original-Method` and
/// the target of `X-Original-URL`, on the ForwardAuth form `X-Forwarded-Method` and
/// `X-Forwarded-Uri` (parsed strictly, [`parse_forwarded_uri`]); on the browser's routes, from
/// an untrusted peer, or without a well-formed target, none.
pub fn original_request<'a>(
    form: RouteForm,
    trusted: bool,
    h: &ForwardingHeaders<'a>,
) -> Option<OriginalRequest<'a>> {
    if !trusted {
        return None;
    }
    let (method, target) = match form {
        RouteForm::Subrequest => (
            h.original_method,
            original_url_parts(h.original_url?).ok()?.1?,
        ),
        RouteForm::ForwardAuth => (
            h.forwarded_method,
            parse_forwarded_uri(h.forwarded_uri?).ok()?,
        ),
        RouteForm::Browser => return None,
    };
    Some(OriginalRequest { method, target })
}

/// The authority of an absolute `http`/`https` URL as written, and its target (`/path?query`)
/// when it has one in origin form, without parsing it into anything else: the authority is
/// what lies between `://` and the first `/`, `?` or `#`.
fn original_url_parts(url: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (scheme, rest) = url.split_once("://").ok_or("not an absolute URL")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("not an http or https URL");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let target = parse_forwarded_uri(&rest[end..]).ok();
    Ok((&rest[..end], target))
}

/// An original request target (`X-Forwarded-Uri`, or the path and query of `X-Original-URL`),
/// checked as strictly as a host: origin form only — a `/`, then visible ASCII without `\`,
/// at most 4096 bytes — and never `//` or `/\`, which a browser reads as another host.
/// Anything else is refused, never repaired.
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
        original_method: Some("GET"),
        forwarded_host: Some("perso.devlabai.work"),
        forwarded_method: Some("POST"),
        forwarded_uri: Some("/admin"),
        host: Some("authgate.authgate.svc"),
    };

    use RouteForm::{Browser, ForwardAuth, Subrequest};

    fn trusted() -> IpAddr {
        "10.1.2.3".parse().unwrap()
    }

    /// Each route form reads its own proxy's headers and no other, whichever are present.
    #[test]
    fn each_route_form_reads_only_its_own_proxys_host_header() {
        for (form, host) in [
            (Subrequest, "mcd.devlabai.work"),
            (ForwardAuth, "perso.devlabai.work"),
            (Browser, "perso.devlabai.work"),
        ] {
            let t = resolve(form, trusted(), &nets(), H).unwrap();
            assert_eq!(t.host, host, "{form:?}");
            assert!(t.trusted);
        }
        // Without its own header, a form falls back to Host, never to another proxy's header:
        // ingress-nginx passes a client's X-Forwarded-Host on, Traefik and Caddy a client's
        // X-Original-URL.
        let no_original = ForwardingHeaders {
            original_url: None,
            ..H
        };
        assert_eq!(
            resolve(Subrequest, trusted(), &nets(), no_original)
                .unwrap()
                .host,
            "authgate.authgate.svc"
        );
        let no_forwarded = ForwardingHeaders {
            forwarded_host: None,
            ..H
        };
        for form in [ForwardAuth, Browser] {
            assert_eq!(
                resolve(form, trusted(), &nets(), no_forwarded)
                    .unwrap()
                    .host,
                "authgate.authgate.svc",
                "{form:?}"
            );
        }
    }

    #[test]
    fn each_route_form_reads_only_its_own_proxys_original_request() {
        let t = |form| original_request(form, true, &H);
        assert_eq!(
            t(Subrequest),
            Some(OriginalRequest {
                method: Some("GET"),
                target: "/helloworld?x=1"
            })
        );
        assert_eq!(t(Subrequest).unwrap().path(), "/helloworld");
        assert_eq!(
            t(ForwardAuth),
            Some(OriginalRequest {
                method: Some("POST"),
                target: "/admin"
            })
        );
        assert_eq!(t(Browser), None);
        // A client's copy of the other proxy's headers is never read instead.
        let only_forwarded = ForwardingHeaders {
            original_url: None,
            original_method: None,
            ..H
        };
        assert_eq!(original_request(Subrequest, true, &only_forwarded), None);
        let only_original = ForwardingHeaders {
            forwarded_uri: None,
            forwarded_method: None,
            ..H
        };
        assert_eq!(original_request(ForwardAuth, true, &only_original), None);
        // From an untrusted peer there is no original request at all.
        for form in [Subrequest, ForwardAuth, Browser] {
            assert_eq!(original_request(form, false, &H), None, "{form:?}");
        }
    }

    #[test]
    fn an_original_target_that_is_not_origin_form_is_none() {
        for url in [
            "https://mcd.devlabai.work",
            "https://mcd.devlabai.work?x=/healthz",
            "https://mcd.devlabai.work//healthz",
            "https://mcd.devlabai.work/a b",
        ] {
            let h = ForwardingHeaders {
                original_url: Some(url),
                ..H
            };
            assert_eq!(original_request(Subrequest, true, &h), None, "{url}");
            // The host is still the URL's.
            assert_eq!(
                resolve(Subrequest, trusted(), &nets(), h).unwrap().host,
                "mcd.devlabai.work"
            );
        }
    }

    #[test]
    fn a_malformed_original_url_is_refused_not_skipped() {
        let h = ForwardingHeaders {
            original_url: Some("not a url"),
            ..H
        };
        assert!(matches!(
            resolve(Subrequest, trusted(), &nets(), h),
            Err(HostError::Malformed {
                header: "X-Original-URL",
                ..
            })
        ));
    }

    #[test]
    fn untrusted_peer_is_judged_by_its_host_header() {
        for form in [Subrequest, ForwardAuth, Browser] {
            let t = resolve(form, "203.0.113.9".parse().unwrap(), &nets(), H).unwrap();
            assert_eq!(t.host, "authgate.authgate.svc");
            assert!(!t.trusted);
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_peer_is_matched_as_ipv4() {
        assert!(is_trusted("::ffff:10.0.0.5".parse().unwrap(), &nets()));
        assert!(!is_trusted("::ffff:8.8.8.8".parse().unwrap(), &nets()));
    }

    #[test]
    fn the_client_address_is_the_first_untrusted_hop_from_the_right() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let client = |peer: &str, xff: &[&str]| client_address(ip(peer), &nets(), xff.to_vec());
        for (peer, xff, want) in [
            // ingress-nginx's auth subrequest: X-Forwarded-For is $remote_addr alone.
            ("10.1.2.3", &["198.51.100.7"][..], "198.51.100.7"),
            // A client's own entries stay left of what Cloudflare and the proxies append.
            (
                "10.1.2.3",
                &["6.6.6.6, 198.51.100.7, 10.42.0.9"][..],
                "198.51.100.7",
            ),
            (
                "10.1.2.3",
                &["6.6.6.6", "198.51.100.7, 10.42.0.9"][..],
                "198.51.100.7",
            ),
            (
                "10.1.2.3",
                &["[2001:db8::7]:4711, 10.42.0.9"][..],
                "2001:db8::7",
            ),
            ("10.1.2.3", &["198.51.100.7:4711"][..], "198.51.100.7"),
            // Nothing but trusted hops: the leftmost of them.
            ("10.1.2.3", &["10.42.0.9, 10.42.0.1"][..], "10.42.0.9"),
            // A malformed entry ends the walk at the last trusted hop.
            (
                "10.1.2.3",
                &["198.51.100.7, junk, 10.42.0.9"][..],
                "10.42.0.9",
            ),
            ("10.1.2.3", &["junk"][..], "10.1.2.3"),
            ("10.1.2.3", &[][..], "10.1.2.3"),
            // An untrusted peer is the client, whatever it claims.
            ("203.0.113.9", &["198.51.100.7"][..], "203.0.113.9"),
        ] {
            assert_eq!(client(peer, xff), ip(want), "{peer} {xff:?}");
        }
    }

    #[test]
    fn no_host_at_all() {
        assert_eq!(
            resolve(
                Browser,
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
                resolve(Subrequest, trusted(), &nets(), h).is_err(),
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
            assert_eq!(
                resolve(Subrequest, trusted(), &nets(), h).unwrap().host,
                host,
                "{url}"
            );
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
                forwarded_host: Some(bad),
                host: Some("ok.test"),
                ..ForwardingHeaders::default()
            };
            for form in [ForwardAuth, Browser] {
                assert!(resolve(form, trusted(), &nets(), h).is_err(), "{bad:?}");
            }
            let h = ForwardingHeaders {
                host: Some(bad),
                ..ForwardingHeaders::default()
            };
            for form in [Subrequest, ForwardAuth, Browser] {
                assert!(resolve(form, trusted(), &nets(), h).is_err(), "{bad:?}");
            }
        }
    }
}
