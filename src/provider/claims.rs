//! From verified claims to an [`Identity`]: the header mapping, and when an email counts.
//!
//! Owns the rule that an email reaches `[authz]` and `X-Auth-Request-Email` only when the
//! provider vouches for it ([`EmailRule`]). Pure: claims in, identity out; never verifies a
//! signature (the caller did) and never does I/O.

use serde_json::Value;

use crate::config::HeaderMapping;
use crate::identity::{EmailWithheld, Identity};
use crate::oidc::{claim_text, Claims};

/// When a provider's email claim counts as the user's email: only when the provider vouches
/// for it, because an unverified address is whatever the user (or the admin of any tenant)
/// typed in, and `[authz]` rules and upstream apps trust `X-Auth-Request-Email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailRule {
    /// OIDC Core §5.1: `email_verified` must be true (JSON `true`, or the string `"true"` some
    /// IdPs send). With `trust_absent`, an *absent* claim counts too (IdPs that never send it);
    /// an explicit `false` never does.
    EmailVerified {
        /// `trust_email_without_email_verified` of the provider.
        trust_absent: bool,
    },
    /// Entra ID sends no `email_verified`, and its `email` is any tenant's directory attribute.
    /// It counts in a single-tenant app (the tenant is the workspace's own), else only with the
    /// optional claim `xms_edov` true (the domain's owner verified it).
    Entra {
        /// The issuer names one tenant (not `common`, `organizations`, `consumers`, `{tenantid}`).
        single_tenant: bool,
    },
}

impl EmailRule {
    /// Whether the claims vouch for their email; the reason when not.
    pub fn check(self, claims: &Claims) -> Result<(), EmailWithheld> {
        match self {
            Self::EmailVerified { trust_absent } => match claims.get("email_verified") {
                None | Some(Value::Null) if trust_absent => Ok(()),
                None | Some(Value::Null) => Err(EmailWithheld::VerificationAbsent),
                Some(v) if is_true(v, false) => Ok(()),
                Some(_) => Err(EmailWithheld::NotVerified),
            },
            Self::Entra {
                single_tenant: true,
            } => Ok(()),
            Self::Entra {
                single_tenant: false,
            } => claims
                .get("xms_edov")
                .filter(|v| is_true(v, true))
                .map(|_| ())
                .ok_or(EmailWithheld::DomainOwnerUnverified),
        }
    }
}

/// A boolean claim's truth: JSON `true` or the string `"true"`; with `ones`, also `1` and `"1"`
/// (Entra documents `xms_edov` as a boolean, but optional claims have been seen as strings).
fn is_true(v: &Value, ones: bool) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true") || (ones && s == "1"),
        Value::Number(n) => ones && n.as_u64() == Some(1),
        _ => false,
    }
}

/// Builds the identity from ID-token claims through the workspace's header mapping.
///
/// The email is the mapped claim only when `rule` says the provider vouches for it; otherwise
/// the identity has no email and [`Identity::email_withheld`] says why. The user is the mapped
/// claim, else the (vouched) email, else `sub`. When the user claim *is* an email claim (the
/// mapped email claim, as with the default `user = "email"`, or the standard `email`), it is
/// read under the same rule: an address that does not count as the email does not become
/// `X-Auth-Request-User` either, and the user falls back to `sub`. Groups are read from a
/// string array or a single string.
pub fn identity_from_claims(
    claims: &Claims,
    mapping: &HeaderMapping,
    provider: &str,
    rule: EmailRule,
) -> Identity {
    let text = |name: &str| claim_text(claims, name);
    let vouched = rule.check(claims);
    let subject = text("sub").unwrap_or_default();
    let (email, email_withheld) = match (text(&mapping.email), vouched) {
        (Some(email), Ok(())) => (email, None),
        (Some(_), Err(why)) => (String::new(), Some(why)),
        (None, _) => (String::new(), None),
    };
    let user_is_email = mapping.user == mapping.email || mapping.user == "email";
    let user = text(&mapping.user)
        .filter(|_| !user_is_email || vouched.is_ok())
        .or_else(|| (!email.is_empty()).then(|| email.clone()))
        .unwrap_or_else(|| subject.clone());
    // Groups and the preferred username are always read, for authorization; whether they are
    // sent as headers is the auth endpoint's decision.
    let groups = string_list(claims.get(mapping.groups.as_deref().unwrap_or("groups")));
    let extra = mapping
        .claims
        .iter()
        .filter_map(|(header, claim)| Some((header.clone(), header_value(claims.get(claim)?)?)))
        .collect();
    Identity {
        user,
        email,
        preferred_username: text(
            mapping
                .preferred_username
                .as_deref()
                .unwrap_or("preferred_username"),
        ),
        groups,
        subject,
        provider: provider.to_string(),
        email_withheld,
        sid: text("sid"),
        claims: extra,
        client: None,
    }
}

/// A claim as one header value: a string as it is, a number or boolean written out, a list of
/// strings joined with commas; `None` for anything else (objects, nulls, empty). Whether the
/// value is header-safe is [`Identity::check_usable`]'s to say.
fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) => string_list(Some(value)).join(","),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A claim holding a string or an array of strings, as a list.
pub(crate) fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const VERIFIED: EmailRule = EmailRule::EmailVerified {
        trust_absent: false,
    };
    const TRUST_ABSENT: EmailRule = EmailRule::EmailVerified { trust_absent: true };
    const ENTRA_SINGLE: EmailRule = EmailRule::Entra {
        single_tenant: true,
    };
    const ENTRA_MULTI: EmailRule = EmailRule::Entra {
        single_tenant: false,
    };

    fn mapping(groups: Option<&str>) -> HeaderMapping {
        HeaderMapping {
            user: "sub".into(),
            email: "email".into(),
            preferred_username: None,
            groups: groups.map(str::to_string),
            ..HeaderMapping::default()
        }
    }

    /// The shipped default: `user = "email"`, `email = "email"`.
    fn email_mapping() -> HeaderMapping {
        HeaderMapping {
            user: "email".into(),
            ..mapping(None)
        }
    }

    fn id(claims: Value, rule: EmailRule) -> Identity {
        identity_from_claims(claims.as_object().unwrap(), &email_mapping(), "p", rule)
    }

    #[test]
    fn groups_and_preferred_username_are_read_even_when_not_sent_as_headers() {
        let claims = json!({"sub": "s1", "email": "a@x.test", "email_verified": true, "preferred_username": "a", "groups": ["g1", "g2"], "roles": "r"});
        let id = identity_from_claims(claims.as_object().unwrap(), &mapping(None), "p", VERIFIED);
        assert_eq!(id.groups, vec!["g1", "g2"]);
        assert_eq!(id.preferred_username.as_deref(), Some("a"));
        assert_eq!(id.user, "s1");
        let id = identity_from_claims(
            claims.as_object().unwrap(),
            &mapping(Some("roles")),
            "p",
            VERIFIED,
        );
        assert_eq!(id.groups, vec!["r"]);
    }

    #[test]
    fn user_falls_back_to_a_vouched_email_then_subject() {
        let m = HeaderMapping {
            user: "upn".into(),
            ..mapping(None)
        };
        let user = |c: Value| identity_from_claims(c.as_object().unwrap(), &m, "p", VERIFIED).user;
        assert_eq!(
            user(json!({"sub": "s1", "email": "a@x.test", "email_verified": true})),
            "a@x.test"
        );
        assert_eq!(
            user(json!({"sub": "s1", "email": "a@x.test", "email_verified": false})),
            "s1"
        );
        assert_eq!(user(json!({"sub": "s1"})), "s1");
        assert_eq!(user(json!({"sub": "s1", "upn": "u@x.test"})), "u@x.test");
    }

    /// Each row: claims, rule, then the email, the user and the reason the email was withheld.
    #[test]
    fn email_counts_only_when_the_provider_vouches_for_it() {
        use EmailWithheld::*;
        let a = "a@x.test";
        let cases: Vec<(Value, EmailRule, &str, &str, Option<EmailWithheld>)> = vec![
            // Generic OIDC and Keycloak: email_verified (OIDC Core §5.1).
            (
                json!({"sub": "s", "email": a, "email_verified": true}),
                VERIFIED,
                a,
                a,
                None,
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": "true"}),
                VERIFIED,
                a,
                a,
                None,
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": "TRUE"}),
                VERIFIED,
                a,
                a,
                None,
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": false}),
                VERIFIED,
                "",
                "s",
                Some(NotVerified),
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": "false"}),
                VERIFIED,
                "",
                "s",
                Some(NotVerified),
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": 1}),
                VERIFIED,
                "",
                "s",
                Some(NotVerified),
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": "1"}),
                VERIFIED,
                "",
                "s",
                Some(NotVerified),
            ),
            (
                json!({"sub": "s", "email": a}),
                VERIFIED,
                "",
                "s",
                Some(VerificationAbsent),
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": null}),
                VERIFIED,
                "",
                "s",
                Some(VerificationAbsent),
            ),
            (
                json!({"sub": "s", "email_verified": true}),
                VERIFIED,
                "",
                "s",
                None,
            ),
            (
                json!({"sub": "s", "email": "", "email_verified": false}),
                VERIFIED,
                "",
                "s",
                None,
            ),
            // The opt-out trusts an absent claim only, never an explicit false.
            (json!({"sub": "s", "email": a}), TRUST_ABSENT, a, a, None),
            (
                json!({"sub": "s", "email": a, "email_verified": false}),
                TRUST_ABSENT,
                "",
                "s",
                Some(NotVerified),
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": true}),
                TRUST_ABSENT,
                a,
                a,
                None,
            ),
            // Entra, single tenant: the workspace's own directory.
            (json!({"sub": "s", "email": a}), ENTRA_SINGLE, a, a, None),
            // Entra, multi-tenant: xms_edov true (bool, or the string encodings seen), else not.
            (
                json!({"sub": "s", "email": a}),
                ENTRA_MULTI,
                "",
                "s",
                Some(DomainOwnerUnverified),
            ),
            (
                json!({"sub": "s", "email": a, "xms_edov": true}),
                ENTRA_MULTI,
                a,
                a,
                None,
            ),
            (
                json!({"sub": "s", "email": a, "xms_edov": "true"}),
                ENTRA_MULTI,
                a,
                a,
                None,
            ),
            (
                json!({"sub": "s", "email": a, "xms_edov": "1"}),
                ENTRA_MULTI,
                a,
                a,
                None,
            ),
            (
                json!({"sub": "s", "email": a, "xms_edov": 1}),
                ENTRA_MULTI,
                a,
                a,
                None,
            ),
            (
                json!({"sub": "s", "email": a, "xms_edov": false}),
                ENTRA_MULTI,
                "",
                "s",
                Some(DomainOwnerUnverified),
            ),
            (
                json!({"sub": "s", "email": a, "xms_edov": "0"}),
                ENTRA_MULTI,
                "",
                "s",
                Some(DomainOwnerUnverified),
            ),
            (
                json!({"sub": "s", "email": a, "xms_edov": "yes"}),
                ENTRA_MULTI,
                "",
                "s",
                Some(DomainOwnerUnverified),
            ),
            // Entra sends no email_verified; it neither helps nor hurts.
            (
                json!({"sub": "s", "email": a, "email_verified": true}),
                ENTRA_MULTI,
                "",
                "s",
                Some(DomainOwnerUnverified),
            ),
            (
                json!({"sub": "s", "email": a, "email_verified": false}),
                ENTRA_SINGLE,
                a,
                a,
                None,
            ),
        ];
        for (i, (claims, rule, email, user, withheld)) in cases.into_iter().enumerate() {
            let got = id(claims.clone(), rule);
            assert_eq!(
                (got.email.as_str(), got.user.as_str(), got.email_withheld),
                (email, user, withheld),
                "case {i}: {claims} under {rule:?}"
            );
        }
    }

    #[test]
    fn sign_in_names_never_stand_in_for_the_email() {
        // Entra's preferred_username and upn look like addresses but nobody verified them.
        let c = json!({"sub": "s", "preferred_username": "bob@contoso.test", "upn": "bob@contoso.test"});
        for rule in [ENTRA_SINGLE, ENTRA_MULTI, VERIFIED, TRUST_ABSENT] {
            let got = id(c.clone(), rule);
            assert_eq!(
                (got.email.as_str(), got.user.as_str()),
                ("", "s"),
                "{rule:?}"
            );
            assert_eq!(
                got.email_withheld, None,
                "nothing was withheld: no email was sent"
            );
            assert_eq!(got.preferred_username.as_deref(), Some("bob@contoso.test"));
        }
    }

    #[test]
    fn a_user_claim_naming_the_email_follows_the_email_rule() {
        // `[headers] email = "mail"`, `user = "email"`: the standard claim is still an email.
        let m = HeaderMapping {
            user: "email".into(),
            email: "mail".into(),
            ..mapping(None)
        };
        let c =
            json!({"sub": "s", "email": "a@x.test", "mail": "m@x.test", "email_verified": false});
        let got = identity_from_claims(c.as_object().unwrap(), &m, "p", VERIFIED);
        assert_eq!((got.user.as_str(), got.email.as_str()), ("s", ""));
        let c =
            json!({"sub": "s", "email": "a@x.test", "mail": "m@x.test", "email_verified": true});
        let got = identity_from_claims(c.as_object().unwrap(), &m, "p", VERIFIED);
        assert_eq!(
            (got.user.as_str(), got.email.as_str()),
            ("a@x.test", "m@x.test")
        );
    }

    #[test]
    fn the_reason_survives_the_session_cookie_format() {
        let got = id(json!({"sub": "s", "email": "a@x.test"}), ENTRA_MULTI);
        let text = serde_json::to_string(&got).unwrap();
        let back: Identity = serde_json::from_str(&text).unwrap();
        assert_eq!(back, got);
        // Sessions sealed before the field existed still open.
        let old: Identity = serde_json::from_str(r#"{"u":"s","e":""}"#).unwrap();
        assert_eq!(old.email_withheld, None);
    }
}
