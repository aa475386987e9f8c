//! A host as authgate compares it: `name` or `name:port`, parsed once into one canonical form.
//!
//! Owns the one parser every host goes through: the hosts a workspace file names, the host a
//! request is for ([`crate::forward`]), the host of an `rd` target ([`crate::redirect`]) and
//! the registry's lookup. Strict: a host is refused with its reason, never normalised into
//! another host. Pure.

use std::borrow::Borrow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use url::Url;

/// `name` or `name:port`: lower-case ASCII, no trailing dot, the port as written (`:80`
/// included). Two hosts are the same host exactly when their text is equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Host(String);

impl Host {
    /// Parses `host` or `host:port` strictly into its canonical lower-case form: a DNS name
    /// (letters, digits, `-`, dots; one trailing dot dropped, as NGINX drops it) or an IP
    /// literal (`192.0.2.1`, `[2001:db8::1]`), and a decimal port. Everything else is refused
    /// with the reason: userinfo (`a:1@b`), an empty host, percent-encoding, backslashes,
    /// spaces, commas (a list of hosts), Unicode, or a name that a URL parser would read as
    /// another host.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("empty host");
        }
        if text.contains('@') {
            return Err("userinfo is never part of a host");
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or("unclosed IPv6 literal")?;
            v6.parse::<Ipv6Addr>().map_err(|_| "not an IPv6 address")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 literal")?),
            };
            (&text[..v6.len() + 2], port)
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        if let Some(p) = port {
            check_port(p)?;
        }
        let host = if host.starts_with('[') {
            host.to_ascii_lowercase()
        } else {
            dns_name_or_ipv4(host)?
        };
        Ok(Self(match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }))
    }

    /// The canonical text, `name` or `name:port`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without the port (an IPv6 literal keeps its brackets).
    pub fn name(&self) -> &str {
        match self.0.rsplit_once(':') {
            Some((name, _)) if !self.0.ends_with(']') => name,
            _ => &self.0,
        }
    }

    /// The port, when one is written.
    pub fn port(&self) -> Option<u16> {
        match self.0.rsplit_once(':') {
            Some((_, port)) if !self.0.ends_with(']') => port.parse().ok(),
            _ => None,
        }
    }
}

fn check_port(p: &str) -> Result<(), &'static str> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number");
    }
    // `:080` is port 80 to a URL parser (and then no port at all for http): taking it as
    // written would name another authority than the one the request reaches.
    if p.starts_with('0') && p.len() > 1 {
        return Err("the port has a leading zero");
    }
    if p.parse::<u32>().map_or(true, |n| n == 0 || n > 65_535) {
        return Err("the port is out of range");
    }
    Ok(())
}

fn dns_name_or_ipv4(host: &str) -> Result<String, &'static str> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err("empty host");
    }
    if name.len() > 253 {
        return Err("longer than a DNS name can be");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("an empty or overlong DNS label");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, '-' and '.' make a host name");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a DNS label starts or ends with '-'");
        }
    }
    // A name whose last label starts with a digit is an IPv4 address or nothing: URL parsers
    // read `0x7f.1` or `2130706433` as 127.0.0.1, so only the dotted-quad form is taken.
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.starts_with(|c: char| c.is_ascii_digit()) && name.parse::<Ipv4Addr>().is_err() {
        return Err("neither a DNS name nor a dotted-quad IPv4 address");
    }
    Ok(name.to_ascii_lowercase())
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lets a map keyed by [`Host`] be asked with a `&str` already in canonical form (a name
/// without its port).
impl Borrow<str> for Host {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Host {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// `host` or `host:port` of a URL as its parser reads it, lower-case, the scheme's default
/// port left out: to compare with the authority as written.
pub fn url_authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_canonical_form_that_parses_again_to_itself() {
        for (written, host, name, port) in [
            (
                "MCD.devlabai.work",
                "mcd.devlabai.work",
                "mcd.devlabai.work",
                None,
            ),
            (
                "mcd.devlabai.work.",
                "mcd.devlabai.work",
                "mcd.devlabai.work",
                None,
            ),
            (
                "mcd.localhost:8080",
                "mcd.localhost:8080",
                "mcd.localhost",
                Some(8080),
            ),
            (
                "app.example.com:80",
                "app.example.com:80",
                "app.example.com",
                Some(80),
            ),
            ("192.0.2.7:81", "192.0.2.7:81", "192.0.2.7", Some(81)),
            (
                "[2001:DB8::1]:8443",
                "[2001:db8::1]:8443",
                "[2001:db8::1]",
                Some(8443),
            ),
            ("[::1]", "[::1]", "[::1]", None),
        ] {
            let h = Host::parse(written).unwrap();
            assert_eq!(h.as_str(), host, "{written}");
            assert_eq!((h.name(), h.port()), (name, port), "{written}");
            assert_eq!(Host::parse(h.as_str()), Ok(h), "{written}");
        }
    }

    #[test]
    fn anything_but_a_plain_host_is_refused_with_its_reason() {
        for (written, why) in [
            ("", "empty host"),
            ("a:1@b", "userinfo is never part of a host"),
            ("mcd.test:080", "the port has a leading zero"),
            ("mcd.test:0", "the port is out of range"),
            ("mcd.test:", "the port is not a number"),
            ("[::1", "unclosed IPv6 literal"),
            ("[::1]x", "junk after the IPv6 literal"),
            (
                "mcd_x.test",
                "only letters, digits, '-' and '.' make a host name",
            ),
            ("-mcd.test", "a DNS label starts or ends with '-'"),
            ("mcd..test", "an empty or overlong DNS label"),
            ("127.1", "neither a DNS name nor a dotted-quad IPv4 address"),
        ] {
            assert_eq!(Host::parse(written), Err(why), "{written:?}");
        }
    }
}
