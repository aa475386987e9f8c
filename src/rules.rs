//! Ordered access rules of a workspace (`[[public]]` and `[[rule]]`): which rule decides a
//! request, and whether a subject passes an `allow`.
//!
//! Owns the compiled rule list and the match. A workspace's `[[public]]` rules come first (as
//! they did before `[[rule]]` existed), then its `[[rule]]`s in file order; the first rule whose
//! every condition holds decides, and when none does the workspace's `[authz]` applies
//! ([`Verdict::Default`]). A rule reads only the one [`OriginalRequest`] the route's own proxy
//! describes, the host already checked against the workspace, and the client address
//! `forward::client_address` found. The path is compared as written and only when plain
//! (`public::is_plain_path`): a doubtful spelling, a missing original request, or a method
//! missing or not in upper-case letters matches no rule at all, so it gets the workspace's
//! default, never a rule's exception.
//! Pure and allocation-free when matching; it never authenticates (an `allow` says who may
//! pass, `authn` finds out who it is).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::authz::Denial;
use crate::forward::OriginalRequest;
use crate::host::Host;
use crate::identity::Identity;
use crate::public::{is_plain_path, PathPattern, PublicRule};

/// Where a compiled rule was written: `public[i]` or `rule[i]` of the workspace file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `i`-th `[[public]]` table.
    Public(usize),
    /// The `i`-th `[[rule]]` table.
    Rule(usize),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Public(i) => write!(f, "public[{i}]"),
            Self::Rule(i) => write!(f, "rule[{i}]"),
        }
    }
}

/// One compiled rule. Every condition that is set must hold; an empty list is no condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Where it was written.
    pub origin: Origin,
    /// Which paths it covers; `None`: every plain path.
    pub path: Option<PathPattern>,
    /// Methods it covers, upper-case; `None`: every method (`[[public]]` with an empty list
    /// and `cors_preflight` covers preflights only).
    pub methods: Option<Vec<String>>,
    /// Hosts it covers (of the workspace's own); empty: every host.
    pub hosts: Vec<Host>,
    /// Client networks it covers; empty: every client.
    pub networks: Vec<IpNet>,
    /// `[[public]]`'s `cors_preflight`: a CORS preflight (OPTIONS with both headers) matches too.
    pub cors_preflight: bool,
    /// What it decides.
    pub action: Action,
}

/// What a rule decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 202 without login and without identity headers.
    Public,
    /// 403, signed in or not.
    Deny,
    /// Authenticate, then pass only the subject (and the Ingress's narrowing query).
    Allow(Subject),
}

/// Who passes an `allow` rule. Users: every set condition must hold (emails and email domains
/// together are one condition, as in `[authz]`); a machine client passes only when named in
/// `clients`, never by a user condition. Validation refuses a subject that names nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// Users pass (subject to the conditions below); false: only the named machine clients.
    pub users: bool,
    /// Exact addresses, lower-cased.
    pub emails: Vec<String>,
    /// Domains after the `@`, lower-cased.
    pub email_domains: Vec<String>,
    /// Groups or roles, any of which passes.
    pub groups: Vec<String>,
    /// Claim conditions, all of which must hold.
    pub claims: Vec<ClaimMatch>,
    /// Machine clients (`[[client]]` names) that pass.
    pub clients: Vec<String>,
}

/// A condition on a claim the session keeps (through `[headers.claims]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMatch {
    /// The claim, as written in the rule.
    pub claim: String,
    /// The lower-case header name the identity keeps it under.
    pub header: String,
    /// How it is compared.
    pub test: ClaimTest,
}

/// How a claim is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTest {
    /// The whole value equals one of these.
    EqualsOneOf(Vec<String>),
    /// The value, a list (kept comma-joined), holds this item.
    Contains(String),
}

/// The workspace's rules, in the order they are tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// `[[public]]` first, then `[[rule]]`.
    pub rules: Vec<Rule>,
}

/// What a rule is matched against. Built from the route's [`OriginalRequest`] without copying.
#[derive(Debug, Clone, Copy)]
pub struct RuleRequest<'a> {
    /// The original request, when the route's trusted proxy described one.
    pub original: Option<OriginalRequest<'a>>,
    /// The host, already checked to be one of the workspace's.
    pub host: Option<&'a Host>,
    /// The client's address (`forward::client_address`); `None` when no rule reads it (a
    /// network condition then never holds).
    pub client: Option<IpAddr>,
    /// The request carried both `Origin` and `Access-Control-Request-Method`.
    pub preflight_headers: bool,
}

/// Why a rule did not match a request: the first condition that failed, in the order checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// No original request (an untrusted peer, or the route's proxy wrote none), or no method.
    NoOriginalRequest,
    /// The method is not upper-case letters (`get`): a server may read it as `GET` or not.
    DoubtfulMethod,
    /// The path is not plain (`public::is_plain_path`): no rule judges a doubtful spelling.
    DoubtfulPath,
    /// The path is not the rule's.
    Path,
    /// The method is not one of the rule's.
    Method,
    /// The host is not one of the rule's.
    Host,
    /// The client address is in none of the rule's networks.
    Network,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoOriginalRequest => "no original request or method from a trusted proxy",
            Self::DoubtfulMethod => "the method is not upper-case letters",
            Self::DoubtfulPath => "the path is not plain (encoded, dot or empty segments)",
            Self::Path => "path differs",
            Self::Method => "method not listed",
            Self::Host => "host not listed",
            Self::Network => "client address in none of its networks",
        })
    }
}

/// The rule that decides, or the workspace's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'r> {
    /// This rule matched first.
    Rule(&'r Rule),
    /// No rule matched: `[authz]` applies.
    Default,
}

impl RuleSet {
    /// The first rule matching `req`, or [`Verdict::Default`].
    pub fn decide(&self, req: &RuleRequest<'_>) -> Verdict<'_> {
        // What every rule would check the same way is checked once.
        let Ok(facts) = Facts::of(req) else {
            return Verdict::Default;
        };
        self.rules
            .iter()
            .find(|r| r.differs(&facts).is_none())
            .map_or(Verdict::Default, Verdict::Rule)
    }

    /// Whether there are no rules (nothing to read from the request).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a rule names client networks, so the client's address must be found.
    pub fn reads_client(&self) -> bool {
        self.rules.iter().any(|r| !r.networks.is_empty())
    }
}

/// A request's values as every rule compares them, found once per decision: the method and
/// path, checked plain; the host; the client address with a v4-mapped v6 address read as v4.
struct Facts<'a> {
    method: &'a str,
    path: &'a str,
    host: Option<&'a Host>,
    client: Option<IpAddr>,
    /// An `OPTIONS` with both CORS preflight headers.
    preflight: bool,
}

impl<'a> Facts<'a> {
    /// The facts, or why no rule can match: no original request or method, a method not in
    /// upper-case letters, a path that is not plain.
    fn of(req: &RuleRequest<'a>) -> Result<Self, Mismatch> {
        let (method, path) = req
            .original
            .and_then(|o| Some((o.method?, o.path())))
            .ok_or(Mismatch::NoOriginalRequest)?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Mismatch::DoubtfulMethod);
        }
        if !is_plain_path(path) {
            return Err(Mismatch::DoubtfulPath);
        }
        Ok(Self {
            method,
            path,
            host: req.host,
            client: req.client.map(|c| match c {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(c, IpAddr::V4),
                v4 => v4,
            }),
            preflight: method == "OPTIONS" && req.preflight_headers,
        })
    }
}

impl Rule {
    /// The `i`-th `[[public]]` rule, as the rule list holds it: its path and methods (or a
    /// CORS preflight where it opts in), any host and client, action `public`.
    pub fn public((i, p): (usize, PublicRule)) -> Self {
        Self {
            origin: Origin::Public(i),
            path: Some(p.path),
            methods: Some(p.methods),
            hosts: Vec::new(),
            networks: Vec::new(),
            cors_preflight: p.cors_preflight,
            action: Action::Public,
        }
    }

    /// Why this rule does not match `req`, or `None` when it does.
    pub fn mismatch(&self, req: &RuleRequest<'_>) -> Option<Mismatch> {
        match Facts::of(req) {
            Ok(facts) => self.differs(&facts),
            Err(why) => Some(why),
        }
    }

    /// The conditions of this rule on a request whose spelling is already known to be plain.
    fn differs(&self, f: &Facts<'_>) -> Option<Mismatch> {
        if self.path.as_ref().is_some_and(|p| !p.covers(f.path)) {
            return Some(Mismatch::Path);
        }
        let preflight = self.cors_preflight && f.preflight;
        let listed = |ms: &Vec<String>| ms.iter().any(|m| m == f.method);
        if !preflight && self.methods.as_ref().is_some_and(|ms| !listed(ms)) {
            return Some(Mismatch::Method);
        }
        if !self.hosts.is_empty() && !f.host.is_some_and(|h| self.hosts.contains(h)) {
            return Some(Mismatch::Host);
        }
        if !self.networks.is_empty()
            && !f
                .client
                .is_some_and(|c| self.networks.iter().any(|n| n.contains(&c)))
        {
            return Some(Mismatch::Network);
        }
        None
    }

    /// Whether every request this rule matches is also matched by `earlier`, so that this one
    /// can never decide. Conservative: false whenever unsure.
    pub fn shadowed_by(&self, earlier: &Rule) -> bool {
        let path = match (&earlier.path, &self.path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(e), Some(s)) => e.covers(s.as_str()) && (e.is_prefix() || !s.is_prefix()),
        };
        let methods = match (&earlier.methods, &self.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(e), Some(s)) => {
                s.iter().all(|m| e.contains(m)) && (!self.cors_preflight || earlier.cors_preflight)
            }
        };
        let hosts = earlier.hosts.is_empty()
            || (!self.hosts.is_empty() && self.hosts.iter().all(|h| earlier.hosts.contains(h)));
        let networks = earlier.networks.is_empty()
            || (!self.networks.is_empty()
                && self
                    .networks
                    .iter()
                    .all(|n| earlier.networks.iter().any(|e| e.contains(n))));
        path && methods && hosts && networks
    }
}

impl Subject {
    /// Whether `id` passes: a machine client when named, a user when users pass and every
    /// condition holds. The denial says which condition failed.
    pub fn check(&self, id: &Identity) -> Result<(), Denial> {
        if let Some(client) = &id.client {
            return match self.clients.contains(client) {
                true => Ok(()),
                false => Err(Denial::Client(client.clone())),
            };
        }
        if !self.users {
            return Err(Denial::UsersNotAllowed);
        }
        crate::authz::check_lists(&self.emails, &self.email_domains, &self.groups, id)?;
        for c in &self.claims {
            if !c.holds(id) {
                return Err(Denial::Claim(c.claim.clone()));
            }
        }
        Ok(())
    }
}

impl ClaimMatch {
    /// Whether the identity's value of the claim passes.
    pub fn holds(&self, id: &Identity) -> bool {
        let Some(value) = id.claims.get(&self.header) else {
            return false;
        };
        match &self.test {
            ClaimTest::EqualsOneOf(items) => items.iter().any(|i| i == value),
            ClaimTest::Contains(item) => value.split(',').any(|v| v == item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(i: usize, path: Option<&str>, methods: &[&str], nets: &[&str], action: Action) -> Rule {
        Rule {
            origin: Origin::Rule(i),
            path: path.map(|p| match p.ends_with('/') {
                true => PathPattern::Prefix(p.into()),
                false => PathPattern::Exact(p.into()),
            }),
            methods: (!methods.is_empty()).then(|| methods.iter().map(|m| m.to_string()).collect()),
            hosts: Vec::new(),
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            cors_preflight: false,
            action,
        }
    }

    fn allow(groups: &[&str], clients: &[&str]) -> Action {
        Action::Allow(Subject {
            users: !groups.is_empty(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            clients: clients.iter().map(|c| c.to_string()).collect(),
            ..Subject::default()
        })
    }

    /// The recipes: public health check, webhook by source network, read-only API for a CI
    /// client, admin area by group, and everything else left to `[authz]`.
    fn recipes() -> RuleSet {
        let mut admin_host = rule(4, Some("/ops/"), &[], &[], Action::Deny);
        admin_host.hosts = vec![Host::parse("b.example.com").unwrap()];
        RuleSet {
            rules: vec![
                rule(0, Some("/healthz"), &["GET", "HEAD"], &[], Action::Public),
                rule(
                    1,
                    Some("/hooks/"),
                    &["POST"],
                    &["192.0.2.0/24"],
                    allow(&[], &["hooks"]),
                ),
                rule(2, Some("/hooks/"), &[], &[], Action::Deny),
                rule(3, Some("/api/"), &["GET"], &[], allow(&[], &["ci"])),
                admin_host,
                rule(5, Some("/admin/"), &[], &[], allow(&["admins"], &[])),
            ],
        }
    }

    fn decide(method: &str, target: &str, host: &str, client: &str) -> Option<Origin> {
        let host = Host::parse(host).unwrap();
        let req = RuleRequest {
            original: Some(OriginalRequest {
                method: Some(method),
                target,
            }),
            host: Some(&host),
            client: Some(client.parse().unwrap()),
            preflight_headers: false,
        };
        match recipes().decide(&req) {
            Verdict::Rule(r) => Some(r.origin),
            Verdict::Default => None,
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_none_means_the_default() {
        let a = "a.example.com";
        let r = |i| Some(Origin::Rule(i));
        for (method, target, host, client, want) in [
            ("GET", "/healthz", a, "203.0.113.9", r(0)),
            ("HEAD", "/healthz?x=1", a, "203.0.113.9", r(0)),
            ("POST", "/healthz", a, "203.0.113.9", None),
            ("POST", "/hooks/deploy", a, "192.0.2.7", r(1)),
            ("POST", "/hooks/deploy", a, "::ffff:192.0.2.7", r(1)),
            ("POST", "/hooks/deploy", a, "198.51.100.1", r(2)),
            ("GET", "/hooks/deploy", a, "192.0.2.7", r(2)),
            ("GET", "/api/items", a, "10.0.0.1", r(3)),
            ("DELETE", "/api/items", a, "10.0.0.1", None),
            ("GET", "/ops/x", "b.example.com", "10.0.0.1", r(4)),
            ("GET", "/ops/x", a, "10.0.0.1", None),
            ("GET", "/admin/users", a, "10.0.0.1", r(5)),
            ("GET", "/admin", a, "10.0.0.1", None),
            ("GET", "/administrator/", a, "10.0.0.1", None),
            ("GET", "/", a, "10.0.0.1", None),
            // doubtful spellings match no rule at all: not the webhook's exception, not the
            // deny, not the public health check; the default (`[authz]`) applies
            ("POST", "/hooks/../admin/x", a, "192.0.2.7", None),
            ("GET", "/healthz/../admin", a, "10.0.0.1", None),
            ("GET", "/heal%74hz", a, "10.0.0.1", None),
            ("GET", "/admin/%2e%2e/healthz", a, "10.0.0.1", None),
            ("GET", "//admin/x", a, "10.0.0.1", None),
            ("GET", "/api;x/items", a, "10.0.0.1", None),
            ("get", "/api/items", a, "10.0.0.1", None),
            // a rule without methods still never judges a method spelled another way
            ("get", "/hooks/deploy", a, "10.0.0.1", None),
            ("Post", "/admin/x", a, "10.0.0.1", None),
        ] {
            assert_eq!(
                decide(method, target, host, client),
                want,
                "{method} {target} on {host} from {client}"
            );
        }
    }

    #[test]
    fn without_an_original_request_method_or_client_no_rule_matches() {
        let set = recipes();
        let none = RuleRequest {
            original: None,
            host: None,
            client: None,
            preflight_headers: false,
        };
        assert_eq!(set.decide(&none), Verdict::Default);
        assert_eq!(
            set.rules[0].mismatch(&none),
            Some(Mismatch::NoOriginalRequest)
        );
        let no_method = RuleRequest {
            original: Some(OriginalRequest {
                method: None,
                target: "/healthz",
            }),
            ..none
        };
        assert_eq!(set.decide(&no_method), Verdict::Default);
        let no_client = RuleRequest {
            original: Some(OriginalRequest {
                method: Some("POST"),
                target: "/hooks/x",
            }),
            ..none
        };
        assert_eq!(set.rules[1].mismatch(&no_client), Some(Mismatch::Network));
    }

    #[test]
    fn each_mismatch_names_the_first_condition_that_failed() {
        let set = recipes();
        let host = Host::parse("a.example.com").unwrap();
        let req = |method, target| RuleRequest {
            original: Some(OriginalRequest {
                method: Some(method),
                target,
            }),
            host: Some(&host),
            client: Some("198.51.100.1".parse().unwrap()),
            preflight_headers: false,
        };
        assert_eq!(
            set.rules[0].mismatch(&req("GET", "/x")),
            Some(Mismatch::Path)
        );
        assert_eq!(
            set.rules[0].mismatch(&req("PUT", "/healthz")),
            Some(Mismatch::Method)
        );
        assert_eq!(
            set.rules[1].mismatch(&req("POST", "/hooks/a")),
            Some(Mismatch::Network)
        );
        assert_eq!(
            set.rules[4].mismatch(&req("GET", "/ops/a")),
            Some(Mismatch::Host)
        );
        assert_eq!(
            set.rules[4].mismatch(&req("GET", "/a/./b")),
            Some(Mismatch::DoubtfulPath)
        );
    }

    fn user(groups: &[&str]) -> Identity {
        Identity {
            user: "u".into(),
            email: "u@x.test".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Identity::default()
        }
    }

    fn client(name: &str) -> Identity {
        Identity {
            user: format!("client:{name}"),
            client: Some(name.into()),
            ..Identity::default()
        }
    }

    #[test]
    fn subjects_admit_users_by_their_conditions_and_clients_only_by_name() {
        let Action::Allow(admins) = allow(&["admins"], &[]) else {
            unreachable!()
        };
        let Action::Allow(ci) = allow(&[], &["ci"]) else {
            unreachable!()
        };
        let Action::Allow(both) = allow(&["admins"], &["ci"]) else {
            unreachable!()
        };
        let any = Subject {
            users: true,
            ..Subject::default()
        };
        let tenant = Subject {
            users: true,
            claims: vec![
                ClaimMatch {
                    claim: "tid".into(),
                    header: "x-auth-request-tenant".into(),
                    test: ClaimTest::EqualsOneOf(vec!["t1".into(), "t2".into()]),
                },
                ClaimMatch {
                    claim: "amr".into(),
                    header: "x-auth-request-amr".into(),
                    test: ClaimTest::Contains("mfa".into()),
                },
            ],
            ..Subject::default()
        };
        let with_claims = |tid: &str, amr: &str| {
            let mut id = user(&[]);
            id.claims.insert("x-auth-request-tenant".into(), tid.into());
            id.claims.insert("x-auth-request-amr".into(), amr.into());
            id
        };
        for (subject, id, pass) in [
            (&admins, user(&["admins"]), true),
            (&admins, user(&["staff"]), false),
            (&admins, client("admins"), false),
            (&ci, client("ci"), true),
            (&ci, client("other"), false),
            (&ci, user(&["admins"]), false),
            (&both, client("ci"), true),
            (&both, user(&["admins"]), true),
            (&any, user(&[]), true),
            (&any, client("ci"), false),
            (&tenant, with_claims("t2", "pwd,mfa"), true),
            (&tenant, with_claims("t3", "mfa"), false),
            (&tenant, with_claims("t1", "pwd,mfaX"), false),
            (&tenant, with_claims("t1,t2", "mfa"), false),
            (&tenant, user(&[]), false),
        ] {
            assert_eq!(subject.check(&id).is_ok(), pass, "{subject:?} {id:?}");
        }
    }

    #[test]
    fn shadowing_is_found_only_where_certain() {
        let r = |path, methods: &[&str], nets: &[&str]| rule(9, path, methods, nets, Action::Deny);
        for (earlier, later, shadowed) in [
            (r(None, &[], &[]), r(Some("/a"), &["GET"], &[]), true),
            (
                r(Some("/a/"), &[], &[]),
                r(Some("/a/b/"), &["GET"], &[]),
                true,
            ),
            (r(Some("/a/"), &[], &[]), r(Some("/a/b"), &[], &[]), true),
            (r(Some("/a/b"), &[], &[]), r(Some("/a/"), &[], &[]), false),
            (
                r(Some("/a/b"), &[], &[]),
                r(Some("/a/b"), &["GET"], &[]),
                true,
            ),
            (
                r(Some("/a/"), &["GET"], &[]),
                r(Some("/a/b"), &[], &[]),
                false,
            ),
            (
                r(Some("/a/"), &["GET", "POST"], &[]),
                r(Some("/a/b"), &["POST"], &[]),
                true,
            ),
            (
                r(Some("/a/"), &[], &["10.0.0.0/8"]),
                r(Some("/a/b"), &[], &[]),
                false,
            ),
            (
                r(Some("/a/"), &[], &["10.0.0.0/8"]),
                r(Some("/a/b"), &[], &["10.1.0.0/16"]),
                true,
            ),
            (r(Some("/a/"), &[], &[]), r(Some("/b/"), &[], &[]), false),
        ] {
            assert_eq!(
                later.shadowed_by(&earlier),
                shadowed,
                "{earlier:?} then {later:?}"
            );
        }
    }
}
