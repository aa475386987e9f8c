//! Authorization: may this authenticated identity pass? Pure predicates, table-tested.
//!
//! Owns the meaning of `[authz]` and of oauth2-proxy's per-Ingress narrowing query
//! (`/oauth2/auth?allowed_groups=a,b&allowed_emails=…`). Never authenticates; never does I/O.

use crate::config::AuthzRules;
use crate::identity::{EmailWithheld, Identity};

/// How a refusal for an unverified email begins, so a page can tell it from other denials
/// where the denial reaches it only as text.
pub const EMAIL_UNVERIFIED: &str = "the identity provider has not verified the email address";

/// Why an authenticated user is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// Neither the address nor its domain is allowed.
    #[error("email `{0}` is not allowed")]
    Email(String),
    /// None of the user's groups is allowed.
    #[error("no allowed group")]
    Group,
    /// A rule needs an email, and the provider sent one it did not vouch for.
    #[error("{EMAIL_UNVERIFIED} ({0}) and a rule admits users by email")]
    EmailUnverified(EmailWithheld),
    /// A `deny` rule decides the request.
    #[error("denied by {0}")]
    Rule(crate::rules::Origin),
    /// The rule admits machine clients only.
    #[error("the rule admits only machine clients")]
    UsersNotAllowed,
    /// The machine client is not one the rule (or the default) names.
    #[error("machine client `{0}` is not allowed here")]
    Client(String),
    /// A claim condition of the rule does not hold.
    #[error("claim `{0}` does not match")]
    Claim(String),
}

impl AuthzRules {
    /// Parses the narrowing query of `/oauth2/auth` (`allowed_groups`, `allowed_emails`,
    /// `allowed_email_domains`, each comma-separated).
    pub fn from_query(query: &[(String, String)]) -> Self {
        let mut rules = Self::default();
        for (k, v) in query {
            let items = v.split(',').map(str::trim).filter(|s| !s.is_empty());
            match k.as_str() {
                "allowed_groups" => rules.groups.extend(items.map(str::to_string)),
                "allowed_emails" => rules.emails.extend(items.map(str::to_ascii_lowercase)),
                "allowed_email_domains" => rules
                    .email_domains
                    .extend(items.map(|d| d.trim_start_matches('@').to_ascii_lowercase())),
                _ => {}
            }
        }
        rules
    }

    /// Whether no rule is set (everyone authenticated passes).
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.email_domains.is_empty() && self.groups.is_empty()
    }

    /// Checks one identity. Emails and email domains together form one rule (either may match);
    /// groups form another; every rule that is set must pass.
    ///
    /// A login whose email the provider did not vouch for carries no email (see
    /// [`Identity::email_withheld`]): it passes where no rule reads an email, and is refused with
    /// [`Denial::EmailUnverified`] where one does, so the user learns why.
    pub fn check(&self, id: &Identity) -> Result<(), Denial> {
        check_lists(&self.emails, &self.email_domains, &self.groups, id)
    }
}

/// The check of [`AuthzRules::check`] on its lists, shared with the `allow` rules
/// (`rules::Subject`): emails and domains one condition, groups another, each set one must pass.
pub fn check_lists(
    emails: &[String],
    email_domains: &[String],
    groups: &[String],
    id: &Identity,
) -> Result<(), Denial> {
    if !emails.is_empty() || !email_domains.is_empty() {
        if let (true, Some(why)) = (id.email.is_empty(), id.email_withheld) {
            return Err(Denial::EmailUnverified(why));
        }
        // Addresses are compared without case; the config and the query hold them lower-cased.
        let domain = id.email.rsplit_once('@').map_or("", |(_, d)| d);
        let ok = !id.email.is_empty()
            && (emails.iter().any(|e| e.eq_ignore_ascii_case(&id.email))
                || email_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)));
        if !ok {
            return Err(Denial::Email(id.email.clone()));
        }
    }
    if !groups.is_empty() && !id.groups.iter().any(|g| groups.contains(g)) {
        return Err(Denial::Group);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(emails: &[&str], domains: &[&str], groups: &[&str]) -> AuthzRules {
        AuthzRules {
            emails: emails.iter().map(|s| s.to_string()).collect(),
            email_domains: domains.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            allow_any_account: false,
        }
    }

    fn who(email: &str, groups: &[&str]) -> Identity {
        Identity {
            user: email.into(),
            email: email.into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            ..Identity::default()
        }
    }

    #[test]
    fn table() {
        let cases: &[(AuthzRules, Identity, bool)] = &[
            (rules(&[], &[], &[]), who("a@x.test", &[]), true),
            (rules(&["a@x.test"], &[], &[]), who("A@X.test", &[]), true),
            (rules(&["a@x.test"], &[], &[]), who("b@x.test", &[]), false),
            (rules(&[], &["x.test"], &[]), who("b@x.test", &[]), true),
            (
                rules(&[], &["x.test"], &[]),
                who("b@evil-x.test", &[]),
                false,
            ),
            (
                rules(&[], &["x.test"], &[]),
                who("b@sub.x.test", &[]),
                false,
            ),
            (rules(&[], &["x.test"], &[]), who("", &[]), false),
            (
                rules(&["a@y.test"], &["x.test"], &[]),
                who("a@y.test", &[]),
                true,
            ),
            (
                rules(&[], &[], &["admins"]),
                who("a@x.test", &["staff", "admins"]),
                true,
            ),
            (
                rules(&[], &[], &["admins"]),
                who("a@x.test", &["staff"]),
                false,
            ),
            (rules(&[], &[], &["admins"]), who("a@x.test", &[]), false),
            (
                rules(&[], &["x.test"], &["admins"]),
                who("a@x.test", &["staff"]),
                false,
            ),
            (
                rules(&[], &["x.test"], &["admins"]),
                who("a@y.test", &["admins"]),
                false,
            ),
            (
                rules(&[], &["x.test"], &["admins"]),
                who("a@x.test", &["admins"]),
                true,
            ),
        ];
        for (i, (r, id, allowed)) in cases.iter().enumerate() {
            assert_eq!(r.check(id).is_ok(), *allowed, "case {i}: {r:?} {id:?}");
        }
    }

    #[test]
    fn an_unvouched_email_is_refused_by_email_rules_only() {
        let withheld = Identity {
            user: "sub-1".into(),
            email_withheld: Some(EmailWithheld::NotVerified),
            groups: vec!["admins".into()],
            ..Identity::default()
        };
        let unverified = Err(Denial::EmailUnverified(EmailWithheld::NotVerified));
        assert_eq!(rules(&[], &[], &[]).check(&withheld), Ok(()));
        assert_eq!(rules(&[], &[], &["admins"]).check(&withheld), Ok(()));
        assert_eq!(rules(&[], &["x.test"], &[]).check(&withheld), unverified);
        assert_eq!(rules(&["a@x.test"], &[], &[]).check(&withheld), unverified);
        assert_eq!(
            rules(&[], &["x.test"], &["admins"]).check(&withheld),
            unverified
        );
        let q = vec![("allowed_emails".to_string(), "a@x.test".to_string())];
        assert_eq!(AuthzRules::from_query(&q).check(&withheld), unverified);
        assert!(Denial::EmailUnverified(EmailWithheld::NotVerified)
            .to_string()
            .starts_with(EMAIL_UNVERIFIED));
        // No email at all (none sent): the plain email denial, as before.
        let none = who("", &[]);
        assert_eq!(
            rules(&[], &["x.test"], &[]).check(&none),
            Err(Denial::Email(String::new()))
        );
    }

    #[test]
    fn narrowing_query_is_parsed_like_oauth2_proxy() {
        let q = vec![
            ("allowed_groups".to_string(), "a, b,,".to_string()),
            ("allowed_emails".to_string(), "X@Y.test".to_string()),
            ("allowed_email_domains".to_string(), "@Z.test".to_string()),
            ("other".to_string(), "ignored".to_string()),
        ];
        assert_eq!(
            AuthzRules::from_query(&q),
            rules(&["x@y.test"], &["z.test"], &["a", "b"])
        );
        assert!(AuthzRules::from_query(&[]).is_empty());
    }
}
