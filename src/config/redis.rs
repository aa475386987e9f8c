//! `[redis]` of the server file: where the session store is, and how to reach it.
//!
//! Owns the checks that need no secret: one URL or a list of sentinels with the master's name,
//! TLS options only where TLS is asked for, and the CA and client certificate files read and
//! parsed as PEM (they are public; `authgate check` reads them). The URL, the password and the
//! client key are secrets: only located here, read when the store is opened, where what needs
//! the URL (`rediss://` for the TLS options, one password only) is checked.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::raw::RawRedis;
use super::validate::Report;
use super::SecretSource;

/// `[redis]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Where the server is.
    pub target: RedisTarget,
    /// The CA the server's certificate must chain to, instead of the Mozilla roots.
    pub ca: Option<PemFile>,
    /// A client certificate and where its key comes from, for a server that asks for one.
    pub client_cert: Option<(PemFile, SecretSource)>,
    /// ACL user; `None` keeps the URL's (else Redis's `default`).
    pub username: Option<String>,
    /// Where the password comes from; `None` keeps the URL's, if any.
    pub password: Option<SecretSource>,
    /// Where the sentinels' own password comes from, if they ask for one.
    pub sentinel_password: Option<SecretSource>,
}

/// Where the Redis server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server, by a URL kept secret (it may carry a password).
    Url(SecretSource),
    /// Whichever server the sentinels name master.
    Sentinel {
        /// The sentinels, asked in order.
        sentinels: Vec<SentinelAddr>,
        /// The master's name at the sentinels.
        master: String,
        /// Sentinels and master over TLS.
        tls: bool,
    },
}

/// One sentinel's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// A PEM file of certificates, read at load.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    /// Where it was read from (the config watcher reloads when it changes).
    pub path: PathBuf,
    /// Its bytes, holding at least one certificate.
    pub pem: Vec<u8>,
}

impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PemFile({})", self.path.display())
    }
}

impl RedisConfig {
    /// A `[redis]` naming only a URL read from the environment variable `var` (unit tests).
    #[cfg(test)]
    pub(crate) fn url_from_env(var: &str) -> Self {
        Self {
            target: RedisTarget::Url(SecretSource {
                env: Some(var.into()),
                file: None,
            }),
            ca: None,
            client_cert: None,
            username: None,
            password: None,
            sentinel_password: None,
        }
    }

    /// Whether TLS options are set (a CA or a client certificate).
    pub fn has_tls_options(&self) -> bool {
        self.ca.is_some() || self.client_cert.is_some()
    }

    /// Every file this config reads, secrets included: a change to one is a reload.
    pub fn files(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = Vec::new();
        if let RedisTarget::Url(src) = &self.target {
            files.extend(src.file.as_deref());
        }
        files.extend(self.ca.as_ref().map(|p| p.path.as_path()));
        if let Some((cert, key)) = &self.client_cert {
            files.push(cert.path.as_path());
            files.extend(key.file.as_deref());
        }
        files.extend(self.password.as_ref().and_then(|p| p.file.as_deref()));
        files.extend(
            self.sentinel_password
                .as_ref()
                .and_then(|p| p.file.as_deref()),
        );
        files
    }
}

/// Checks `[redis]`; every problem goes to `report` under `redis.<key>`.
pub(super) fn validate_redis(raw: RawRedis, report: &mut Report<'_>) -> RedisConfig {
    let has_url = raw.url_env.is_some() || raw.url_file.is_some();
    let sentinels = raw.sentinels.unwrap_or_default();
    let target = if sentinels.is_empty() {
        let stray = (raw.sentinel_master.is_some(), raw.tls.is_some());
        url_target(raw.url_env, raw.url_file, stray, report)
    } else {
        let tls = raw.tls.unwrap_or(false);
        sentinel_target(sentinels, raw.sentinel_master, tls, has_url, report)
    };
    let ca = raw
        .ca_file
        .and_then(|f| read_certificates(&f, "redis.ca_file", report));
    let client_cert = client_cert(raw.client_cert_file, raw.client_key_file, report);
    if matches!(target, RedisTarget::Sentinel { tls: false, .. })
        && (ca.is_some() || client_cert.is_some())
    {
        report.error(
            "redis.tls",
            "ca_file or a client certificate is set, but not tls = true: the sentinels and the master would be reached in plain TCP",
        );
    }
    let username = raw.username;
    if username
        .as_ref()
        .is_some_and(|u| u.is_empty() || u.contains(char::is_whitespace))
    {
        report.error(
            "redis.username",
            "not an ACL user name (empty or with spaces)",
        );
    }
    let sentinel_password = secret_source(raw.sentinel_password_env, raw.sentinel_password_file);
    if sentinel_password.is_some() && matches!(target, RedisTarget::Url(_)) {
        report.error("redis.sentinel_password_file", "set without sentinels");
    }
    RedisConfig {
        target,
        ca,
        client_cert,
        username,
        password: secret_source(raw.password_env, raw.password_file),
        sentinel_password,
    }
}

/// One server, at the URL in `url_env` or `url_file` (never inline: it may hold a password);
/// `sentinel_master` and `tls` (`stray`: whether each is set) belong to sentinels.
fn url_target(
    env: Option<String>,
    file: Option<String>,
    (master_set, tls_set): (bool, bool),
    report: &mut Report<'_>,
) -> RedisTarget {
    if env.is_none() && file.is_none() {
        report.error(
            "redis",
            "set url_env or url_file (the URL may hold a password, so never inline), or sentinels",
        );
    }
    if master_set {
        report.error("redis.sentinel_master", "set without sentinels");
    }
    if tls_set {
        report.error(
            "redis.tls",
            "only with sentinels: a URL says TLS by its scheme, rediss://",
        );
    }
    RedisTarget::Url(SecretSource {
        env,
        file: file.map(PathBuf::from),
    })
}

/// The master `master` as `sentinels` (`host:port` each) name it; no URL beside them.
fn sentinel_target(
    sentinels: Vec<String>,
    master: Option<String>,
    tls: bool,
    has_url: bool,
    report: &mut Report<'_>,
) -> RedisTarget {
    if has_url {
        report.error(
            "redis.sentinels",
            "set with url_env or url_file: the sentinels name the server, so give one or the other",
        );
    }
    let master = master.unwrap_or_default();
    if master.trim().is_empty() || master.contains(char::is_whitespace) {
        report.error(
            "redis.sentinel_master",
            "required with sentinels: the name the sentinels monitor the master by (`sentinel monitor <name> …`)",
        );
    }
    let mut addrs = Vec::new();
    for (i, s) in sentinels.iter().enumerate() {
        match parse_sentinel(s) {
            Some(a) => addrs.push(a),
            None => report.error(
                format!("redis.sentinels[{i}]"),
                format!("`{s}` is not host:port like 10.0.0.5:26379"),
            ),
        }
    }
    RedisTarget::Sentinel {
        sentinels: addrs,
        master,
        tls,
    }
}

/// A TLS client certificate (read and parsed: it is public) and where its key is (a secret,
/// read with the others); each needs the other.
fn client_cert(
    cert: Option<String>,
    key: Option<String>,
    report: &mut Report<'_>,
) -> Option<(PemFile, SecretSource)> {
    match (cert, key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let pem = read_certificates(&cert, "redis.client_cert_file", report)?;
            let key = SecretSource {
                env: None,
                file: Some(PathBuf::from(key)),
            };
            Some((pem, key))
        }
        (Some(_), None) => {
            report.error("redis.client_key_file", "required with client_cert_file");
            None
        }
        (None, Some(_)) => {
            report.error("redis.client_cert_file", "required with client_key_file");
            None
        }
    }
}

/// Where a secret comes from, when either its variable or its file is named.
fn secret_source(env: Option<String>, file: Option<String>) -> Option<SecretSource> {
    (env.is_some() || file.is_some()).then(|| SecretSource {
        env,
        file: file.map(PathBuf::from),
    })
}

/// `host:port` of a sentinel: a DNS name, an IPv4 address or a bracketed IPv6 address, and
/// a port; nothing else (no scheme, user or path).
fn parse_sentinel(text: &str) -> Option<SentinelAddr> {
    if text.contains(['/', '@', '?', '#', '\\']) || text.contains(char::is_whitespace) {
        return None;
    }
    let url = url::Url::parse(&format!("redis://{text}")).ok()?;
    let port = url.port()?;
    let host = match url.host()? {
        url::Host::Domain(d) if !d.is_empty() => d.to_string(),
        url::Host::Domain(_) => return None,
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some(SentinelAddr { host, port })
}

/// Reads `file` as PEM holding at least one certificate, each of which parses; else reports
/// why under `field`, naming the file.
fn read_certificates(file: &str, field: &str, report: &mut Report<'_>) -> Option<PemFile> {
    let pem = match std::fs::read(file) {
        Ok(p) => p,
        Err(e) => {
            report.error(field, format!("cannot read {file}: {e}"));
            return None;
        }
    };
    match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if certs.is_empty() => {
            report.error(
                field,
                format!("{file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            );
            None
        }
        Ok(_) => Some(PemFile {
            path: PathBuf::from(file),
            pem,
        }),
        Err(e) => {
            report.error(field, format!("{file} is not PEM: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/redis-ca.pem");

    /// The `[redis]` table `text`, checked: the config and each error as `field: problem`.
    fn check(text: &str) -> (RedisConfig, Vec<String>) {
        let raw: RawRedis = toml::from_str(text).unwrap();
        let mut errors: Vec<ConfigError> = Vec::new();
        let config = validate_redis(
            raw,
            &mut Report {
                file: PathBuf::from("authgate.toml"),
                source: text,
                errors: &mut errors,
            },
        );
        let errors = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.problem))
            .collect();
        (config, errors)
    }

    #[test]
    fn each_bad_redis_table_fails_for_one_named_reason() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.txt");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let not_pem = not_pem.display();
        let broken = broken.display();
        let cases = [
            ("", "redis: set url_env or url_file"),
            (
                "url_env = \"U\"\nsentinels = [\"a:26379\"]\nsentinel_master = \"m\"",
                "redis.sentinels: set with url_env or url_file",
            ),
            (
                "sentinels = [\"a:26379\"]",
                "redis.sentinel_master: required with sentinels",
            ),
            (
                "url_env = \"U\"\nsentinel_master = \"m\"",
                "redis.sentinel_master: set without sentinels",
            ),
            (
                "sentinels = [\"a\"]\nsentinel_master = \"m\"",
                "redis.sentinels[0]: `a` is not host:port",
            ),
            (
                "sentinels = [\"redis://a:26379\"]\nsentinel_master = \"m\"",
                "redis.sentinels[0]: `redis://a:26379` is not host:port",
            ),
            (
                "sentinels = [\"u@a:26379\"]\nsentinel_master = \"m\"",
                "redis.sentinels[0]",
            ),
            (
                "url_env = \"U\"\ntls = true",
                "redis.tls: only with sentinels",
            ),
            (
                &format!("sentinels = [\"a:26379\"]\nsentinel_master = \"m\"\nca_file = \"{CA}\""),
                "redis.tls: ca_file or a client certificate is set, but not tls = true",
            ),
            (
                "url_env = \"U\"\nca_file = \"/nonexistent/ca.pem\"",
                "redis.ca_file: cannot read /nonexistent/ca.pem",
            ),
            (
                &format!("url_env = \"U\"\nca_file = \"{not_pem}\""),
                "holds no PEM certificate",
            ),
            (
                &format!("url_env = \"U\"\nca_file = \"{broken}\""),
                "is not PEM",
            ),
            (
                &format!("url_env = \"U\"\nclient_cert_file = \"{CA}\""),
                "redis.client_key_file: required with client_cert_file",
            ),
            (
                "url_env = \"U\"\nclient_key_file = \"k.pem\"",
                "redis.client_cert_file: required with client_key_file",
            ),
            (
                "url_env = \"U\"\nusername = \"a b\"",
                "redis.username: not an ACL user name",
            ),
        ];
        for (text, want) in cases {
            let (_, errs) = check(text);
            assert!(
                errs.len() == 1 && errs[0].contains(want),
                "{text}: want {want}, got {errs:?}"
            );
        }
    }

    #[test]
    fn good_redis_tables_say_where_the_server_is() {
        let (c, errs) = check(&format!(
            "sentinels = [\"10.0.0.5:26379\", \"[::1]:26380\", \"sentinel.redis:26379\"]\n\
             sentinel_master = \"mymaster\"\ntls = true\nca_file = \"{CA}\"\n\
             username = \"authgate\"\npassword_file = \"/run/redis/password\""
        ));
        assert!(errs.is_empty(), "{errs:?}");
        let RedisTarget::Sentinel {
            sentinels,
            master,
            tls,
        } = &c.target
        else {
            panic!("{c:?}")
        };
        assert_eq!((master.as_str(), *tls), ("mymaster", true));
        let hosts: Vec<(&str, u16)> = sentinels
            .iter()
            .map(|s| (s.host.as_str(), s.port))
            .collect();
        assert_eq!(
            hosts,
            [
                ("10.0.0.5", 26379),
                ("::1", 26380),
                ("sentinel.redis", 26379)
            ]
        );
        assert!(c.ca.is_some() && c.has_tls_options());
        assert_eq!(c.files(), [Path::new(CA), Path::new("/run/redis/password")]);
        let (c, errs) = check("url_file = \"/run/redis/url\"");
        assert!(errs.is_empty(), "{errs:?}");
        assert!(!c.has_tls_options() && c.password.is_none());
    }
}
