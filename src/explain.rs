//! `authgate explain`: which rule decides a request, and what `/oauth2/auth` would answer.
//!
//! Owns the question (a workspace, method, path, host, client address, and who asks: nobody,
//! a user with an email, groups and claims, or a machine client by name) and the structured
//! [`Explanation`]: each rule tried before the deciding one with the condition it failed, the
//! deciding rule (or the workspace's `[authz]`), and the answer with the identity headers a
//! 202 would carry. It runs the same `rules` and `authz` code as the auth route, on the
//! original request a trusted proxy would describe. Pure: no I/O, nothing verified (the
//! question says who the caller is; tokens and sessions are not checked here).

use std::fmt;
use std::net::IpAddr;

use crate::authz::Denial;
use crate::config::{AuthMode, AuthzRules, WorkspaceConfig};
use crate::forward::OriginalRequest;
use crate::host::Host;
use crate::identity::Identity;
use crate::rules::{Action, Mismatch, Origin, RuleRequest, Subject, Verdict};

/// Who makes the request in question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No session, no token.
    Anonymous,
    /// A signed-in user (an email the provider vouches for, groups, `[headers.claims]` claims
    /// by claim name).
    User {
        /// The email (also the user, as with the default `[headers] user = "email"`).
        email: String,
        /// Groups or roles.
        groups: Vec<String>,
        /// Claims, by claim name as the token carries them.
        claims: Vec<(String, String)>,
    },
    /// A machine client of the workspace, by name.
    Client(String),
}

/// The request in question.
#[derive(Debug, Clone)]
pub struct Question<'a> {
    /// Method, upper-case as HTTP writes it.
    pub method: &'a str,
    /// Path and query as the client writes them (`/admin/users?x=1`).
    pub target: &'a str,
    /// The host; the workspace's first when `None`.
    pub host: Option<Host>,
    /// The client's address, as the trusted proxy reports it; unknown when `None`.
    pub client: Option<IpAddr>,
    /// Who asks.
    pub caller: Caller,
    /// The Ingress's narrowing query (`allowed_groups=…`), as pairs.
    pub narrowing: Vec<(String, String)>,
}

/// What `/oauth2/auth` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 202 without identity headers.
    Public,
    /// 202 with these identity headers.
    Allowed(Vec<(String, String)>),
    /// 401: the decision needs a login the request lacks.
    Unauthenticated,
    /// 403, and why.
    Forbidden(String),
}

impl Answer {
    /// The process exit code `authgate explain` ends with for this answer: 0 for 202 with
    /// identity, 20 public, 41 for 401, 43 for 403.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Allowed(_) => 0,
            Self::Public => 20,
            Self::Unauthenticated => 41,
            Self::Forbidden(_) => 43,
        }
    }
}

/// The rule that decides and why every earlier one did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The workspace's name.
    pub workspace: String,
    /// Each rule tried before the deciding one, with the condition it failed.
    pub skipped: Vec<(Origin, Mismatch)>,
    /// The deciding rule and what it says; `None`: no rule matched, the default applies.
    pub decided_by: Option<(Origin, String)>,
    /// The default that applied when no rule did (`[authz]`, or `auth = "none"`).
    pub default: Option<String>,
    /// The answer.
    pub answer: Answer,
}

/// Why a question cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// The host is not one of the workspace's.
    #[error("`{0}` is not one of the workspace's hosts: /oauth2/auth refuses it with 403")]
    ForeignHost(String),
    /// The target is not in origin form.
    #[error("`{0}` is not a path (write it as the client does: `/admin/users?x=1`)")]
    NotAPath(String),
    /// The machine client is not one of the workspace's.
    #[error("`{0}` is not a [[client]] of this workspace")]
    UnknownClient(String),
}

/// Answers `q` for the workspace `ws`.
pub fn explain(ws: &WorkspaceConfig, q: &Question<'_>) -> Result<Explanation, ExplainError> {
    if !q.target.starts_with('/') {
        return Err(ExplainError::NotAPath(q.target.into()));
    }
    let host = match &q.host {
        Some(h) if !ws.hosts.contains(h) => return Err(ExplainError::ForeignHost(h.to_string())),
        Some(h) => h,
        None => &ws.hosts[0],
    };
    if let Caller::Client(name) = &q.caller {
        let known = ws.clients.iter().map(|c| &c.name);
        if !known
            .chain(ws.jwt_clients.iter().map(|c| &c.name))
            .any(|n| n == name)
        {
            return Err(ExplainError::UnknownClient(name.clone()));
        }
    }
    let req = RuleRequest {
        original: Some(OriginalRequest {
            method: Some(q.method),
            target: q.target,
        }),
        host: Some(host),
        client: q.client,
        preflight_headers: false,
    };
    let mut skipped = Vec::new();
    let mut verdict = Verdict::Default;
    for rule in &ws.rules.rules {
        match rule.mismatch(&req) {
            Some(why) => skipped.push((rule.origin, why)),
            None => {
                verdict = Verdict::Rule(rule);
                break;
            }
        }
    }
    let decided_by = match verdict {
        Verdict::Rule(r) => Some((r.origin, describe(&r.action))),
        Verdict::Default => None,
    };
    let default = match (verdict, ws.auth) {
        (Verdict::Rule(_), _) => None,
        (Verdict::Default, AuthMode::None) => Some("auth = \"none\": everyone passes".into()),
        (Verdict::Default, AuthMode::Login) => Some(format!("[authz] {}", authz_text(&ws.authz))),
    };
    let identity = identity_of(ws, &q.caller);
    let answer = match verdict {
        Verdict::Rule(r) if r.action == Action::Public => Answer::Public,
        Verdict::Rule(r) if r.action == Action::Deny => {
            Answer::Forbidden(Denial::Rule(r.origin).to_string())
        }
        Verdict::Default if ws.auth == AuthMode::None => Answer::Public,
        _ => match &identity {
            None => Answer::Unauthenticated,
            Some(id) => {
                let subject = match verdict {
                    Verdict::Rule(r) => match &r.action {
                        Action::Allow(s) => Some(s),
                        _ => None,
                    },
                    Verdict::Default => None,
                };
                match authorize(ws, subject, id, &q.narrowing) {
                    Ok(()) => Answer::Allowed(headers(ws, id)),
                    Err(d) => Answer::Forbidden(d.to_string()),
                }
            }
        },
    };
    Ok(Explanation {
        workspace: ws.name.clone(),
        skipped,
        decided_by,
        default,
        answer,
    })
}

/// The decision of `Workspace::authorize`, on the config alone.
fn authorize(
    ws: &WorkspaceConfig,
    subject: Option<&Subject>,
    id: &Identity,
    narrowing: &[(String, String)],
) -> Result<(), Denial> {
    match (subject, &id.client) {
        (Some(s), _) => s.check(id)?,
        (None, Some(c)) => return Err(Denial::Client(c.clone())),
        (None, None) => ws.authz.check(id)?,
    }
    if narrowing.is_empty() {
        Ok(())
    } else {
        AuthzRules::from_query(narrowing).check(id)
    }
}

/// The identity a session or token of `caller` would carry.
fn identity_of(ws: &WorkspaceConfig, caller: &Caller) -> Option<Identity> {
    match caller {
        Caller::Anonymous => None,
        Caller::Client(name) => Some(Identity::machine_client(name)),
        Caller::User {
            email,
            groups,
            claims,
        } => Some(Identity {
            user: email.clone(),
            email: email.clone(),
            groups: groups.clone(),
            claims: ws
                .headers
                .claims
                .iter()
                .filter_map(|(header, claim)| {
                    let (_, v) = claims.iter().find(|(c, _)| c == claim)?;
                    Some((header.clone(), v.clone()))
                })
                .collect(),
            ..Identity::default()
        }),
    }
}

/// The identity headers a 202 carries for `id` (tokens left out: explain has none).
fn headers(ws: &WorkspaceConfig, id: &Identity) -> Vec<(String, String)> {
    let mut out = vec![("X-Auth-Request-User".to_string(), id.user.clone())];
    if !id.email.is_empty() {
        out.push(("X-Auth-Request-Email".into(), id.email.clone()));
    }
    if !id.groups.is_empty() && ws.headers.groups.is_some() {
        out.push(("X-Auth-Request-Groups".into(), id.groups.join(",")));
    }
    for (header, _) in &ws.headers.claims {
        if let Some(v) = id.claims.get(header) {
            out.push((header.clone(), v.clone()));
        }
    }
    out
}

fn describe(action: &Action) -> String {
    match action {
        Action::Public => "public".into(),
        Action::Deny => "deny".into(),
        Action::Allow(s) => {
            let mut parts = Vec::new();
            if s.users && s.emails.is_empty() && s.email_domains.is_empty() && s.groups.is_empty() {
                parts.push("any signed-in user".to_string());
            }
            let mut list = |name: &str, items: &[String]| {
                if !items.is_empty() {
                    parts.push(format!("{name} {}", items.join(", ")));
                }
            };
            list("emails", &s.emails);
            list("email_domains", &s.email_domains);
            list("groups", &s.groups);
            list("clients", &s.clients);
            for c in &s.claims {
                parts.push(match &c.test {
                    crate::rules::ClaimTest::EqualsOneOf(v) => {
                        format!("claim {} equals one of {}", c.claim, v.join(", "))
                    }
                    crate::rules::ClaimTest::Contains(v) => {
                        format!("claim {} contains {v}", c.claim)
                    }
                });
            }
            format!("allow {}", parts.join("; "))
        }
    }
}

fn authz_text(a: &AuthzRules) -> String {
    if a.is_empty() {
        return "(empty: any signed-in user)".into();
    }
    let mut parts = Vec::new();
    for (name, items) in [
        ("emails", &a.emails),
        ("email_domains", &a.email_domains),
        ("groups", &a.groups),
    ] {
        if !items.is_empty() {
            parts.push(format!("{name} {}", items.join(", ")));
        }
    }
    parts.join("; ")
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (origin, why) in &self.skipped {
            writeln!(f, "{:<10} no match: {why}", origin.to_string())?;
        }
        match (&self.decided_by, &self.default) {
            (Some((origin, action)), _) => {
                writeln!(f, "{:<10} decides: {action}", origin.to_string())?
            }
            (None, Some(default)) => writeln!(f, "{:<10} no rule matches: {default}", "default")?,
            (None, None) => {}
        }
        match &self.answer {
            Answer::Public => writeln!(f, "answer: 202 public (no login, no identity headers)"),
            Answer::Allowed(headers) => {
                writeln!(f, "answer: 202 with")?;
                for (name, value) in headers {
                    writeln!(f, "  {name}: {value}")?;
                }
                Ok(())
            }
            Answer::Unauthenticated => {
                writeln!(f, "answer: 401 (sign-in or a token needed)")
            }
            Answer::Forbidden(why) => writeln!(f, "answer: 403 ({why})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The README's recipes (`examples/rules`), loaded as `authgate explain` loads them.
    fn recipes() -> WorkspaceConfig {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules");
        let config = crate::config::load(&dir, &HashMap::new()).unwrap();
        config.workspaces.into_iter().next().unwrap()
    }

    fn user(email: &str, groups: &[&str]) -> Caller {
        Caller::User {
            email: email.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            claims: Vec::new(),
        }
    }

    #[test]
    fn each_recipe_is_decided_by_its_rule_with_its_answer() {
        let ws = recipes();
        let ann = || user("ann@example.com", &["admins"]);
        let bob = || user("bob@example.com", &["staff"]);
        let eve = || user("eve@evil.test", &["admins"]);
        let ci = || Caller::Client("ci".into());
        let hook = || Caller::Client("deploy-hook".into());
        let rule = |i| Some(Origin::Rule(i));
        for (method, target, ip, caller, decided, code) in [
            (
                "GET",
                "/healthz",
                None,
                Caller::Anonymous,
                Some(Origin::Public(0)),
                20,
            ),
            ("GET", "/healthz", None, ann(), Some(Origin::Public(0)), 20),
            ("POST", "/healthz", None, Caller::Anonymous, None, 41),
            (
                "POST",
                "/hooks/deploy",
                Some("192.0.2.10"),
                hook(),
                rule(0),
                0,
            ),
            (
                "POST",
                "/hooks/deploy",
                Some("192.0.2.10"),
                ci(),
                rule(0),
                43,
            ),
            (
                "POST",
                "/hooks/deploy",
                Some("192.0.2.10"),
                ann(),
                rule(0),
                43,
            ),
            (
                "POST",
                "/hooks/deploy",
                Some("198.51.100.7"),
                hook(),
                rule(1),
                43,
            ),
            ("POST", "/hooks/deploy", None, hook(), rule(1), 43),
            (
                "GET",
                "/hooks/deploy",
                Some("192.0.2.10"),
                Caller::Anonymous,
                rule(1),
                43,
            ),
            ("GET", "/api/builds", None, ci(), rule(2), 0),
            ("GET", "/api/builds", None, bob(), rule(2), 0),
            ("GET", "/api/builds", None, eve(), rule(2), 43),
            ("GET", "/api/builds", None, Caller::Anonymous, rule(2), 41),
            ("POST", "/api/builds", None, ci(), None, 43),
            ("POST", "/api/builds", None, bob(), None, 0),
            ("GET", "/admin/users", None, ann(), rule(3), 0),
            ("GET", "/admin/users", None, bob(), rule(3), 43),
            ("GET", "/admin/users", None, ci(), rule(3), 43),
            ("GET", "/admin/users", None, Caller::Anonymous, rule(3), 41),
            ("GET", "/", None, bob(), None, 0),
            ("GET", "/", None, eve(), None, 43),
            ("GET", "/", None, ci(), None, 43),
            // doubtful spellings: no rule, the default
            ("GET", "/hooks/../admin/x", None, bob(), None, 0),
            ("GET", "/admin/%2e%2e/x", None, bob(), None, 0),
            (
                "POST",
                "/hooks/deploy/.",
                Some("192.0.2.10"),
                hook(),
                None,
                43,
            ),
        ] {
            let q = Question {
                method,
                target,
                host: None,
                client: ip.map(|ip| ip.parse().unwrap()),
                caller: caller.clone(),
                narrowing: Vec::new(),
            };
            let e = explain(&ws, &q).unwrap();
            let label = format!("{method} {target} from {ip:?} as {caller:?}: {e}");
            assert_eq!(e.decided_by.map(|(o, _)| o), decided, "{label}");
            assert_eq!(e.answer.exit_code(), code, "{label}");
            // every rule before the deciding one is listed with why it did not match
            let before = match decided {
                Some(o) => ws.rules.rules.iter().position(|r| r.origin == o).unwrap(),
                None => ws.rules.rules.len(),
            };
            assert_eq!(e.skipped.len(), before, "{label}");
        }
    }

    #[test]
    fn the_text_names_each_skipped_rule_the_decider_and_the_headers() {
        let ws = recipes();
        let q = Question {
            method: "POST",
            target: "/hooks/deploy",
            host: None,
            client: Some("198.51.100.7".parse().unwrap()),
            caller: Caller::Client("deploy-hook".into()),
            narrowing: Vec::new(),
        };
        assert_eq!(
            explain(&ws, &q).unwrap().to_string(),
            "public[0]  no match: path differs\n\
             rule[0]    no match: client address in none of its networks\n\
             rule[1]    decides: deny\n\
             answer: 403 (denied by rule[1])\n"
        );
        let q = Question {
            method: "GET",
            target: "/admin/users?tab=1",
            client: None,
            caller: user("ann@example.com", &["admins"]),
            ..q
        };
        let text = explain(&ws, &q).unwrap().to_string();
        assert!(
            text.ends_with(
                "rule[3]    decides: allow groups admins\nanswer: 202 with\n  \
                 X-Auth-Request-User: ann@example.com\n  X-Auth-Request-Email: ann@example.com\n  \
                 X-Auth-Request-Groups: admins\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_narrowing_query_narrows_an_allow() {
        let ws = recipes();
        let q = Question {
            method: "GET",
            target: "/admin/users",
            host: None,
            client: None,
            caller: user("ann@example.com", &["admins"]),
            narrowing: vec![("allowed_groups".into(), "ops".into())],
        };
        assert_eq!(explain(&ws, &q).unwrap().answer.exit_code(), 43);
    }

    #[test]
    fn questions_it_cannot_answer_are_refused() {
        let ws = recipes();
        let q = |target: &'static str, host: Option<&str>, caller: Caller| Question {
            method: "GET",
            target,
            host: host.map(|h| Host::parse(h).unwrap()),
            client: None,
            caller,
            narrowing: Vec::new(),
        };
        assert_eq!(
            explain(&ws, &q("admin", None, Caller::Anonymous)),
            Err(ExplainError::NotAPath("admin".into()))
        );
        assert_eq!(
            explain(&ws, &q("/", Some("other.example.com"), Caller::Anonymous)),
            Err(ExplainError::ForeignHost("other.example.com".into()))
        );
        assert_eq!(
            explain(&ws, &q("/", None, Caller::Client("nobody".into()))),
            Err(ExplainError::UnknownClient("nobody".into()))
        );
    }
}
