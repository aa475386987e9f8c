//! The access-rule matcher: `rules::RuleSet::decide` and `rules::Rule::mismatch`, on the
//! README's recipes (examples/rules) plus rules on every condition.
//!
//! The first byte picks the method, the second the client address (inside or outside the
//! rules' networks, v4 or v4-mapped v6), the third whether a preflight's headers came and
//! whether the host is the workspace's other one; the rest is the request target. Properties:
//! a rule decides only a plain path (`public::is_plain_path`) it covers, with a method it
//! lists (or a preflight it opts into), on a host and from a network it names; every rule
//! before the deciding one names why it did not match, and `decide` agrees with `mismatch`.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use authgate::forward::OriginalRequest;
use authgate::host::Host;
use authgate::public::{is_plain_path, PathPattern, PublicRule};
use authgate::rules::{Action, Origin, Rule, RuleRequest, RuleSet, Subject, Verdict};
use libfuzzer_sys::fuzz_target;

fn rule(
    i: usize,
    path: Option<PathPattern>,
    methods: Option<&[&str]>,
    nets: &[&str],
    action: Action,
) -> Rule {
    Rule {
        origin: Origin::Rule(i),
        path,
        methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
        hosts: Vec::new(),
        networks: nets.iter().map(|n| n.parse().expect("net")).collect(),
        cors_preflight: false,
        action,
    }
}

fn rules() -> &'static RuleSet {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    SET.get_or_init(|| {
        let allow = Action::Allow(Subject {
            users: true,
            ..Subject::default()
        });
        let mut on_b = rule(
            5,
            Some(PathPattern::Prefix("/ops/".into())),
            None,
            &[],
            Action::Deny,
        );
        on_b.hosts = vec![Host::parse("b.example.com").expect("host")];
        RuleSet {
            rules: vec![
                Rule::public((
                    0,
                    PublicRule {
                        path: PathPattern::Exact("/healthz".into()),
                        methods: vec!["GET".into(), "HEAD".into()],
                        cors_preflight: false,
                    },
                )),
                Rule::public((
                    1,
                    PublicRule {
                        path: PathPattern::Prefix("/api/".into()),
                        methods: vec![],
                        cors_preflight: true,
                    },
                )),
                rule(
                    0,
                    Some(PathPattern::Exact("/hooks/deploy".into())),
                    Some(&["POST"]),
                    &["192.0.2.0/24", "2001:db8::/32"],
                    allow.clone(),
                ),
                rule(
                    1,
                    Some(PathPattern::Prefix("/hooks/".into())),
                    None,
                    &[],
                    Action::Deny,
                ),
                rule(
                    2,
                    Some(PathPattern::Prefix("/api/".into())),
                    Some(&["GET", "HEAD"]),
                    &[],
                    allow.clone(),
                ),
                rule(
                    3,
                    Some(PathPattern::Prefix("/admin/".into())),
                    None,
                    &[],
                    allow,
                ),
                rule(4, None, Some(&["DELETE"]), &["10.0.0.0/8"], Action::Deny),
                on_b,
            ],
        }
    })
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "DELETE", "OPTIONS", "get", ""];
const CLIENTS: &[&str] = &[
    "192.0.2.7",
    "::ffff:192.0.2.7",
    "10.1.2.3",
    "203.0.113.5",
    "2001:db8::1",
];

fuzz_target!(|data: &[u8]| {
    let [m, c, flags, rest @ ..] = data else {
        return;
    };
    let Ok(target) = std::str::from_utf8(rest) else {
        return;
    };
    let method = METHODS[*m as usize % METHODS.len()];
    let client: IpAddr = CLIENTS[*c as usize % CLIENTS.len()].parse().expect("ip");
    let host = Host::parse(if flags & 2 == 0 {
        "a.example.com"
    } else {
        "b.example.com"
    })
    .expect("host");
    let req = RuleRequest {
        original: Some(OriginalRequest {
            method: (!method.is_empty()).then_some(method),
            target,
        }),
        host: Some(&host),
        client: (flags & 4 == 0).then_some(client),
        preflight_headers: flags & 1 == 1,
    };
    let set = rules();
    let verdict = set.decide(&req);
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let decided = match verdict {
        Verdict::Rule(r) => set
            .rules
            .iter()
            .position(|x| std::ptr::eq(x, r))
            .expect("a rule of the set"),
        Verdict::Default => set.rules.len(),
    };
    for (i, r) in set.rules.iter().enumerate() {
        let why = r.mismatch(&req);
        if i < decided {
            assert!(
                why.is_some(),
                "{target:?}: rule {i} matches before the deciding one"
            );
        } else if i == decided {
            assert!(
                why.is_none(),
                "{target:?}: the deciding rule does not match"
            );
        }
    }
    if let Verdict::Rule(r) = verdict {
        assert!(
            is_plain_path(path),
            "{target:?}: a doubtful path was decided by a rule"
        );
        if let Some(p) = &r.path {
            assert!(
                p.covers(path),
                "{target:?}: the rule does not cover the path"
            );
        }
        let preflight = r.cors_preflight && method == "OPTIONS" && flags & 1 == 1;
        if let Some(ms) = &r.methods {
            assert!(
                preflight || ms.iter().any(|x| x == method),
                "{target:?}: method {method}"
            );
        }
        if !r.hosts.is_empty() {
            assert!(r.hosts.contains(&host));
        }
        if !r.networks.is_empty() {
            let c = match client {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
                v4 => v4,
            };
            assert!(flags & 4 == 0 && r.networks.iter().any(|n| n.contains(&c)));
        }
        assert!(!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()));
    }
});
