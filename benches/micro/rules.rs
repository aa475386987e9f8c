//! Access rules (`rules::RuleSet::decide`): what 50 rules add to `/oauth2/auth`. The set mixes
//! every condition (exact paths and prefixes, methods, hosts, client networks); the request is
//! decided by the second rule, by the 50th, or by none (the workspace's `[authz]`), and a
//! doubtful spelling that every rule refuses at its first checks.

use std::net::IpAddr;

use authgate::forward::OriginalRequest;
use authgate::host::Host;
use authgate::public::PathPattern;
use authgate::rules::{Action, Origin, Rule, RuleRequest, RuleSet, Subject, Verdict};

use crate::runner::Runner;

/// 50 rules, none of which matches `/app/…` except the last, which covers `/app/`.
fn fifty_rules(host: &Host) -> RuleSet {
    let allow = Action::Allow(Subject {
        users: true,
        groups: vec!["admins".into()],
        ..Subject::default()
    });
    let rules = (0..50)
        .map(|i| {
            let last = i == 49;
            Rule {
                origin: Origin::Rule(i),
                path: Some(match (last, i % 2) {
                    (true, _) => PathPattern::Prefix("/app/".into()),
                    (false, 0) => PathPattern::Prefix(format!("/area-{i}/")),
                    (false, _) => PathPattern::Exact(format!("/hooks/service-{i}")),
                }),
                methods: (i % 3 == 0 && !last).then(|| vec!["POST".into(), "PUT".into()]),
                hosts: if i % 5 == 0 {
                    vec![host.clone()]
                } else {
                    Vec::new()
                },
                networks: if i % 7 == 0 && !last {
                    vec!["192.0.2.0/24".parse().expect("net")]
                } else {
                    Vec::new()
                },
                cors_preflight: false,
                action: if i % 4 == 0 {
                    Action::Deny
                } else {
                    allow.clone()
                },
            }
        })
        .collect();
    RuleSet { rules }
}

pub(crate) fn bench(r: &mut Runner) {
    let host = Host::parse("mcd.devlabai.work").expect("host");
    let set = fifty_rules(&host);
    let client: IpAddr = "203.0.113.7".parse().expect("ip");
    let request = |target: &'static str| RuleRequest {
        original: Some(OriginalRequest {
            method: Some("GET"),
            target,
        }),
        host: Some(&host),
        client: Some(client),
        preflight_headers: false,
    };
    for (name, target, decided_by) in [
        ("50_second", "/hooks/service-1", Some(1)),
        ("50_last", "/app/dashboard?tab=2", Some(49)),
        ("50_none", "/elsewhere/page", None),
        ("50_doubtful", "/app/../area-0/x", None),
    ] {
        let req = request(target);
        let got = match set.decide(&req) {
            Verdict::Rule(rule) => match rule.origin {
                Origin::Rule(i) => Some(i),
                Origin::Public(_) => None,
            },
            Verdict::Default => None,
        };
        assert_eq!(got, decided_by, "{target}");
        r.run("rules", name, || set.decide(std::hint::black_box(&req)));
    }
}
