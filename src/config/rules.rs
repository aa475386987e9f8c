//! The checks on `[[rule]]` tables, and their compilation, with the workspace's `[[public]]`
//! rules first, into the one ordered [`RuleSet`] the matcher (`crate::rules`) reads. Each
//! problem names `rule[i].<field>`; a rule is either exactly what it says or refused: no
//! empty subject, no public rule without a condition, no path spelled another way than the
//! matcher compares.

use ipnet::IpNet;

use super::public::check_path;
use super::raw::{RawClaimMatch, RawRule, RuleActionKind};
use super::validate::{validate_hosts, Report};
use super::{AuthMode, HeaderMapping};
use crate::host::Host;
use crate::public::{PathPattern, PublicRule};
use crate::rules::{Action, ClaimMatch, ClaimTest, Origin, Rule, RuleSet, Subject};

/// What a rule is checked against: the rest of its workspace.
pub(super) struct Context<'a> {
    /// The workspace's hosts (a rule's hosts must be among them).
    pub(super) hosts: &'a [Host],
    /// `{domain}` for rule hosts.
    pub(super) domain: &'a str,
    /// Whether the workspace asks for a login at all.
    pub(super) auth: AuthMode,
    /// The claims the session keeps, by header.
    pub(super) headers: &'a HeaderMapping,
    /// The names of the workspace's machine clients.
    pub(super) clients: &'a [String],
}

/// `[[public]]` (already checked) then every `[[rule]]`, in order. Invalid rules are left out
/// (the report then refuses the file anyway).
pub(super) fn compile(
    public: Vec<PublicRule>,
    raw: Vec<RawRule>,
    cx: &Context<'_>,
    report: &mut Report<'_>,
) -> RuleSet {
    let mut rules: Vec<Rule> = public.into_iter().enumerate().map(Rule::public).collect();
    for (i, r) in raw.into_iter().enumerate() {
        if let Some(rule) = rule(i, r, cx, report) {
            rules.push(rule);
        }
    }
    RuleSet { rules }
}

fn rule(i: usize, raw: RawRule, cx: &Context<'_>, report: &mut Report<'_>) -> Option<Rule> {
    let start = report.errors.len();
    let at = |field: &str| format!("rule[{i}].{field}");
    let path = match (raw.path, raw.prefix) {
        (Some(p), None) => {
            if let Err(e) = check_path(&p) {
                report.error(at("path"), e.to_string());
            }
            Some(PathPattern::Exact(p))
        }
        (None, Some(p)) => {
            if let Err(e) = check_path(&p) {
                report.error(at("prefix"), e.to_string());
            } else if !p.ends_with('/') {
                report.error(
                    at("prefix"),
                    format!("`{p}` must end with '/' (a prefix covers whole segments: `{p}/`)"),
                );
            }
            Some(PathPattern::Prefix(p))
        }
        (Some(_), Some(_)) => {
            report.error(
                format!("rule[{i}]"),
                "has both `path` and `prefix`: one rule names one of them",
            );
            None
        }
        (None, None) => None,
    };
    let methods = raw.methods;
    if methods.as_ref().is_some_and(Vec::is_empty) {
        report.error(
            at("methods"),
            "is empty: the rule would match nothing (leave it out for every method)",
        );
    }
    for (j, m) in methods.iter().flatten().enumerate() {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
            report.error(
                at(&format!("methods[{j}]")),
                format!("`{m}` is not an upper-case HTTP method (GET, HEAD, POST…)"),
            );
        }
    }
    let hosts = validate_hosts(&at("hosts"), &raw.hosts, cx.domain, report);
    for (j, h) in hosts.iter().enumerate() {
        if !cx.hosts.contains(h) {
            report.error(
                at(&format!("hosts[{j}]")),
                format!(
                    "`{h}` is not one of this workspace's hosts, so the rule could never match"
                ),
            );
        }
    }
    let mut networks = Vec::new();
    for (j, n) in raw.networks.iter().enumerate() {
        match n.parse::<IpNet>() {
            Ok(net) if net.trunc() == net => networks.push(net),
            Ok(net) => report.error(
                at(&format!("networks[{j}]")),
                format!("`{n}` has host bits set: write `{}`", net.trunc()),
            ),
            Err(_) => report.error(
                at(&format!("networks[{j}]")),
                format!("`{n}` is not a CIDR (`10.0.0.0/8`, `2001:db8::/32`)"),
            ),
        }
    }
    let has_subject = raw.any_user
        || !raw.emails.is_empty()
        || !raw.email_domains.is_empty()
        || !raw.groups.is_empty()
        || !raw.claims.is_empty()
        || !raw.clients.is_empty();
    let action = match raw.action {
        RuleActionKind::Public | RuleActionKind::Deny if has_subject => {
            report.error(
                at("action"),
                "`public` and `deny` take no subject (any_user, emails, email_domains, groups, \
                 claims, clients): those belong to `allow`",
            );
            None
        }
        RuleActionKind::Public => {
            if path.is_none() && methods.is_none() && hosts.is_empty() && networks.is_empty() {
                report.error(
                    format!("rule[{i}]"),
                    "`public` with no path, prefix, methods, hosts or networks would open the \
                     whole workspace; write auth = \"none\" if that is meant",
                );
            }
            Some(Action::Public)
        }
        RuleActionKind::Deny => Some(Action::Deny),
        RuleActionKind::Allow if !has_subject => {
            report.error(
                at("action"),
                "`allow` names nobody: set any_user = true, or emails, email_domains, groups, \
                 claims or clients",
            );
            None
        }
        RuleActionKind::Allow if cx.auth == AuthMode::None => {
            report.error(
                at("action"),
                "`allow` in a workspace with auth = \"none\", where nobody signs in",
            );
            None
        }
        RuleActionKind::Allow => subject(
            i,
            raw.any_user,
            raw.emails,
            raw.email_domains,
            raw.groups,
            raw.claims,
            raw.clients,
            cx,
            report,
        )
        .map(Action::Allow),
    };
    (report.errors.len() == start).then_some(Rule {
        origin: Origin::Rule(i),
        path,
        methods,
        hosts,
        networks,
        cors_preflight: false,
        action: action?,
    })
}

#[allow(clippy::too_many_arguments)]
fn subject(
    i: usize,
    any_user: bool,
    emails: Vec<String>,
    email_domains: Vec<String>,
    groups: Vec<String>,
    claims: Vec<RawClaimMatch>,
    clients: Vec<String>,
    cx: &Context<'_>,
    report: &mut Report<'_>,
) -> Option<Subject> {
    let start = report.errors.len();
    let at = |field: &str| format!("rule[{i}].{field}");
    let emails: Vec<String> = emails
        .iter()
        .map(|e| e.trim().to_ascii_lowercase())
        .collect();
    for (j, e) in emails.iter().enumerate() {
        if !e.contains('@') {
            report.error(
                at(&format!("emails[{j}]")),
                format!("`{e}` is not an email address"),
            );
        }
    }
    let email_domains: Vec<String> = email_domains
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .collect();
    for (j, d) in email_domains.iter().enumerate() {
        if Host::parse(d).is_err() {
            report.error(
                at(&format!("email_domains[{j}]")),
                format!("`{d}` is not a domain"),
            );
        }
    }
    for (j, g) in groups.iter().enumerate() {
        if g.is_empty() {
            report.error(at(&format!("groups[{j}]")), "is empty");
        }
    }
    let mut matches = Vec::new();
    for (j, c) in claims.into_iter().enumerate() {
        let field = at(&format!("claims[{j}]"));
        let header = cx
            .headers
            .claims
            .iter()
            .find(|(_, claim)| *claim == c.claim)
            .map(|(h, _)| h.clone());
        let Some(header) = header else {
            report.error(
                format!("{field}.claim"),
                format!(
                    "`{}` is not kept in the session: map it to a header in [headers.claims] \
                     (\"X-Auth-Request-…\" = \"{}\")",
                    c.claim, c.claim
                ),
            );
            continue;
        };
        let test = match (c.equals, c.contains) {
            (Some(v), None) if !v.is_empty() && v.iter().all(|s| !s.is_empty()) => {
                ClaimTest::EqualsOneOf(v)
            }
            (None, Some(item)) if !item.is_empty() && !item.contains(',') => {
                ClaimTest::Contains(item)
            }
            (Some(_), None) => {
                report.error(
                    format!("{field}.equals"),
                    "is empty or holds an empty value",
                );
                continue;
            }
            (None, Some(_)) => {
                report.error(format!("{field}.contains"), "is empty or holds a comma");
                continue;
            }
            _ => {
                report.error(
                    field,
                    "needs exactly one of `equals` (a list) and `contains`",
                );
                continue;
            }
        };
        matches.push(ClaimMatch {
            claim: c.claim,
            header,
            test,
        });
    }
    for (j, c) in clients.iter().enumerate() {
        if !cx.clients.contains(c) {
            report.error(
                at(&format!("clients[{j}]")),
                format!("`{c}` is not a [[client]] of this workspace"),
            );
        }
    }
    let users = any_user
        || !emails.is_empty()
        || !email_domains.is_empty()
        || !groups.is_empty()
        || !matches.is_empty();
    (report.errors.len() == start).then_some(Subject {
        users,
        emails,
        email_domains,
        groups,
        claims: matches,
        clients,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config::load;
    use crate::rules::{Action, Origin};

    const LOGIN: &str = "hosts = [\"x.example.com\", \"y.example.com\"]\nauth = \"oidc\"\n\
        [[provider]]\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\n\
        client_secret_env = \"S\"\n[headers.claims]\n\"X-Auth-Request-Tenant\" = \"tid\"\n";

    fn load_ws(text: &str) -> Result<crate::config::WorkspaceConfig, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("workspaces")).unwrap();
        std::fs::write(dir.path().join("workspaces/x.toml"), text).unwrap();
        load(dir.path(), &HashMap::new())
            .map(|c| c.workspaces.into_iter().next().unwrap())
            .map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn public_rules_come_first_then_rules_in_file_order() {
        let ws = load_ws(&format!(
            "{LOGIN}[[rule]]\nprefix = \"/admin/\"\naction = \"allow\"\ngroups = [\"admins\"]\n\
             [[public]]\npath = \"/healthz\"\n\
             [[rule]]\nmethods = [\"POST\"]\nnetworks = [\"10.0.0.0/8\"]\naction = \"deny\"\n\
             [[rule]]\nprefix = \"/api/\"\naction = \"allow\"\nclaims = [{{ claim = \"tid\", equals = [\"t1\"] }}]\n"
        ))
        .unwrap();
        let origins: Vec<_> = ws.rules.rules.iter().map(|r| r.origin).collect();
        assert_eq!(
            origins,
            [
                Origin::Public(0),
                Origin::Rule(0),
                Origin::Rule(1),
                Origin::Rule(2)
            ]
        );
        assert_eq!(ws.rules.rules[0].action, Action::Public);
        assert_eq!(ws.rules.rules[2].action, Action::Deny);
        let Action::Allow(s) = &ws.rules.rules[3].action else {
            panic!()
        };
        assert_eq!(s.claims[0].header, "x-auth-request-tenant");
    }

    #[test]
    fn each_bad_rule_is_named_with_its_file_index_and_field() {
        for (rule, want) in [
            ("prefix = \"/a\"\naction = \"deny\"", "rule[0].prefix: `/a` must end with '/'"),
            ("path = \"/a/../b\"\naction = \"deny\"", "rule[0].path: `/a/../b` holds a `.` or `..` segment"),
            ("path = \"/a%2f\"\naction = \"deny\"", "rule[0].path: `/a%2f` holds `%`"),
            ("path = \"/a\"\nprefix = \"/b/\"\naction = \"deny\"", "rule[0]: has both `path` and `prefix`"),
            ("path = \"/a\"\nmethods = [\"get\"]\naction = \"deny\"", "rule[0].methods[0]: `get` is not an upper-case"),
            ("path = \"/a\"\nhosts = [\"z.example.com\"]\naction = \"deny\"", "rule[0].hosts[0]: `z.example.com` is not one of this workspace's hosts"),
            ("path = \"/a\"\nhosts = [\"https://x.example.com\"]\naction = \"deny\"", "rule[0].hosts[0]: `https://x.example.com` is not a host name"),
            ("networks = [\"10.1.2.3/8\"]\naction = \"deny\"", "rule[0].networks[0]: `10.1.2.3/8` has host bits set: write `10.0.0.0/8`"),
            ("networks = [\"ten\"]\naction = \"deny\"", "rule[0].networks[0]: `ten` is not a CIDR"),
            ("action = \"public\"", "rule[0]: `public` with no path, prefix, methods, hosts or networks"),
            ("path = \"/a\"\naction = \"public\"\ngroups = [\"g\"]", "rule[0].action: `public` and `deny` take no subject"),
            ("path = \"/a\"\naction = \"deny\"\nany_user = true", "rule[0].action: `public` and `deny` take no subject"),
            ("path = \"/a\"\naction = \"allow\"", "rule[0].action: `allow` names nobody"),
            ("path = \"/a\"\naction = \"allow\"\ngroups = []", "rule[0].action: `allow` names nobody"),
            ("path = \"/a\"\naction = \"allow\"\nemails = [\"bob\"]", "rule[0].emails[0]: `bob` is not an email address"),
            ("path = \"/a\"\naction = \"allow\"\nemail_domains = [\"a b\"]", "rule[0].email_domains[0]: `a b` is not a domain"),
            ("path = \"/a\"\naction = \"allow\"\nclaims = [{ claim = \"oid\", equals = [\"1\"] }]", "rule[0].claims[0].claim: `oid` is not kept in the session"),
            ("path = \"/a\"\naction = \"allow\"\nclaims = [{ claim = \"tid\" }]", "rule[0].claims[0]: needs exactly one of `equals`"),
            ("path = \"/a\"\naction = \"allow\"\nclaims = [{ claim = \"tid\", equals = [] }]", "rule[0].claims[0].equals: is empty"),
            ("path = \"/a\"\naction = \"allow\"\nclients = [\"ci\"]", "rule[0].clients[0]: `ci` is not a [[client]] of this workspace"),
        ] {
            let errs = load_ws(&format!("{LOGIN}[[rule]]\n{rule}\n")).unwrap_err();
            assert_eq!(errs.len(), 1, "{rule}: {errs:?}");
            assert!(
                errs[0].starts_with(&format!("workspaces/x.toml: {want}")),
                "{rule}: {errs:?}"
            );
        }
    }

    #[test]
    fn allow_needs_a_login_workspace_and_action_is_required() {
        let none = "hosts = [\"x.example.com\"]\nauth = \"none\"\n";
        let errs = load_ws(&format!(
            "{none}[[rule]]\npath = \"/a\"\naction = \"allow\"\nany_user = true\n"
        ))
        .unwrap_err();
        assert!(
            errs[0].contains("rule[0].action: `allow` in a workspace with auth = \"none\""),
            "{errs:?}"
        );
        assert!(load_ws(&format!(
            "{none}[[rule]]\npath = \"/a\"\naction = \"deny\"\n"
        ))
        .is_ok());
        let errs = load_ws(&format!("{LOGIN}[[rule]]\npath = \"/a\"\n")).unwrap_err();
        assert!(errs[0].contains("missing field `action`"), "{errs:?}");
        let errs = load_ws(&format!(
            "{LOGIN}[[rule]]\npath = \"/a\"\naction = \"open\"\n"
        ))
        .unwrap_err();
        assert!(errs[0].contains("unknown variant `open`"), "{errs:?}");
    }
}
