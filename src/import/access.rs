//! Who may pass: oauth2-proxy's restriction options carried onto `[authz]` exactly, or named as
//! lost.
//!
//! Owns the meaning of each oauth2-proxy option that narrows who passes (`email_domains`,
//! `authenticated_emails_file`, `allowed_groups`, `allowed_roles`, the GitHub, GitLab, Google,
//! Bitbucket and Keycloak ones, Entra's tenants, the claim groups are read from) and how
//! oauth2-proxy combines them: the addresses and domains form one rule (either may match), the
//! group rules are checked on top of it. authgate's `[authz]` has the same shape (emails or
//! domains, and any one of `groups`), so a restriction is carried only where the result admits
//! exactly whom oauth2-proxy admitted; anything else is a [`Lost`] restriction. Never writes
//! `allow_any_account` unless `email_domains = ["*"]` was the whole policy, and never drops a
//! restriction silently: an option only oauth2-proxy's other providers read is named as ignored.

use toml::Table;

use super::{list, quote, str_of, strings, Lost};
use crate::host::Host;

/// Where the restriction options are read: the oauth2-proxy provider, and what authgate makes
/// of it.
pub(super) struct Context<'a> {
    /// oauth2-proxy's `provider` (`keycloak-oidc`, `github`, `entra-id`, …).
    pub(super) provider: &'a str,
    /// The authgate provider kind it becomes (`keycloak`, `github`, `azure`, `oidc`).
    pub(super) kind: &'a str,
    /// `client_id`: Keycloak's client roles are read for this client only.
    pub(super) client_id: &'a str,
    /// The issuer URL: Entra's tenant segment.
    pub(super) issuer: &'a str,
}

/// The restrictions carried, and those that could not be.
#[derive(Debug, Default)]
pub(super) struct Access {
    /// `[authz] emails`, from `authenticated_emails_file`.
    pub(super) emails: Vec<String>,
    /// `[authz] email_domains`.
    pub(super) email_domains: Vec<String>,
    /// `[authz] groups`: groups, roles, organisations and teams, any of which lets a user in.
    pub(super) groups: Vec<String>,
    /// `email_domains = ["*"]`: no rule on the address.
    pub(super) any_address: bool,
    /// Lines for the `[[provider]]` table (`allowed_tenants`).
    pub(super) provider_lines: Vec<String>,
    /// `[headers] groups`: the claim generic OIDC reads groups from.
    pub(super) groups_claim: Option<String>,
    /// A scope the provider needs for the groups rule to see anything (GitHub's `read:org`).
    pub(super) scope: Option<&'static str>,
    /// Options carried differently, or dropped where dropping only lets fewer users in.
    pub(super) notes: Vec<String>,
    /// Restrictions authgate cannot express.
    pub(super) lost: Vec<Lost>,
}

/// Options a single oauth2-proxy provider reads (with the flags' singular spellings); under any
/// other provider oauth2-proxy ignores them, so leaving them out changes nothing.
const OWNED: &[(&str, &str)] = &[
    ("allowed_roles", "keycloak-oidc"),
    ("allowed_role", "keycloak-oidc"),
    ("keycloak_groups", "keycloak"),
    ("keycloak_group", "keycloak"),
    ("github_org", "github"),
    ("github_team", "github"),
    ("github_repo", "github"),
    ("github_users", "github"),
    ("github_user", "github"),
    ("github_token", "github"),
    ("gitlab_groups", "gitlab"),
    ("gitlab_group", "gitlab"),
    ("gitlab_projects", "gitlab"),
    ("gitlab_project", "gitlab"),
    ("google_groups", "google"),
    ("google_group", "google"),
    ("bitbucket_team", "bitbucket"),
    ("bitbucket_repository", "bitbucket"),
    ("entra_id_allowed_tenants", "entra-id"),
    ("entra_id_allowed_tenant", "entra-id"),
    ("azure_graph_group_field", "azure"),
];

/// Restrictions of providers authgate reads as generic OIDC: their lists come from the
/// provider's own API, which authgate does not call.
const PROVIDER_API_RULES: &[(&str, &str)] = &[
    (
        "keycloak_groups",
        "groups from Keycloak's userinfo endpoint",
    ),
    ("gitlab_groups", "GitLab group membership"),
    ("gitlab_projects", "GitLab project membership"),
    (
        "google_groups",
        "Google Workspace groups read through the Admin API",
    ),
    ("bitbucket_team", "Bitbucket team membership"),
    ("bitbucket_repository", "Bitbucket repository access"),
];

/// Entra's tenant segments that stand for many tenants.
const ENTRA_MANY: &[&str] = &["common", "organizations", "consumers"];

/// Takes every restriction option out of `cfg` and carries what it can. `read_file` reads
/// `authenticated_emails_file` (the caller resolves a relative path).
pub(super) fn carry(
    cfg: &mut Table,
    ctx: &Context<'_>,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
) -> Access {
    let mut a = Access::default();
    for (option, owner) in OWNED {
        if ctx.provider != *owner && cfg.contains_key(*option) {
            cfg.remove(*option);
            a.notes.push(format!("{option}: not carried over: only oauth2-proxy's provider `{owner}` reads it, and it ignored it under `{}`", ctx.provider));
        }
    }
    addresses(cfg, read_file, &mut a);
    let allowed = take_list(cfg, &["allowed_groups", "allowed_group"]);
    match ctx.provider {
        "keycloak-oidc" => keycloak(cfg, ctx, allowed, &mut a),
        "github" => github(cfg, allowed, &mut a),
        "keycloak" => {
            if let Some((option, _)) = allowed {
                a.notes.push(format!("{option}: not carried over: oauth2-proxy's provider `keycloak` replaces it with keycloak_groups"));
            }
        }
        _ if ctx.kind != "oidc" || ctx.provider == "oidc" => {
            a.groups.extend(allowed.map(|(_, g)| g).unwrap_or_default());
        }
        other => {
            if let Some((option, groups)) = allowed {
                a.lose(option, format!("`{}`: provider `{other}` takes its groups from its own API, which authgate does not call (it reads the ID token's groups claim, another list)", groups.join("`, `")));
            }
        }
    }
    for (option, what) in PROVIDER_API_RULES {
        let values = take_list(cfg, &[option, option.trim_end_matches('s')]);
        if let Some((written, values)) = values {
            a.lose(
                written,
                format!(
                    "`{}`: {what}, which authgate does not read",
                    values.join("`, `")
                ),
            );
        }
    }
    groups_claim(cfg, ctx, &mut a);
    if let Some(field) = str_of(cfg.remove("azure_graph_group_field")) {
        if field != "id" && !a.groups.is_empty() {
            a.lose("azure_graph_group_field", format!("`{field}`: groups were named by `{field}`; authgate matches Entra's group object ids (and app roles)"));
        } else {
            a.notes.push("azure_graph_group_field: not carried over: authgate reads group object ids, as oauth2-proxy's default `id`".into());
        }
    }
    tenants(cfg, ctx, &mut a);
    a
}

impl Access {
    fn lose(&mut self, option: &str, why: String) {
        self.lost.push(Lost {
            option: option.to_string(),
            why,
        });
    }
}

/// `email_domains` and `authenticated_emails_file`: one rule, either may match (oauth2-proxy's
/// validator); `*` lets every address in.
fn addresses(cfg: &mut Table, read_file: &dyn Fn(&str) -> std::io::Result<String>, a: &mut Access) {
    let (domains_option, domains) =
        take_list(cfg, &["email_domains", "email_domain"]).unwrap_or(("email_domains", Vec::new()));
    let file = str_of(cfg.remove("authenticated_emails_file"));
    if domains.iter().any(|d| d == "*") {
        a.any_address = true;
        if domains.len() > 1 || file.is_some() {
            a.notes.push(format!("{domains_option}: `*` lets every address in: its other entries and authenticated_emails_file add nothing"));
        }
        return;
    }
    for d in domains {
        let d = d.trim().to_ascii_lowercase();
        if d.starts_with('.') || d.starts_with("*.") {
            a.lose(domains_option, format!("`{d}` admits the addresses of every subdomain; authgate's email_domains matches one domain exactly: list each domain"));
        } else if d.contains('*') || d.contains('@') || Host::parse(&d).is_err() {
            a.lose(
                domains_option,
                format!("`{d}` is not a domain authgate matches as oauth2-proxy does"),
            );
        } else {
            a.email_domains.push(d);
        }
    }
    let Some(path) = file else {
        if a.email_domains.is_empty() && a.lost.is_empty() {
            a.lose(domains_option, "absent, and no authenticated_emails_file: oauth2-proxy lets no address in; write `email_domains = [\"*\"]` to let every account in, or list the domains".into());
        }
        return;
    };
    match read_file(&path).map(|text| emails_file(&text)) {
        Err(e) => a.lose(
            "authenticated_emails_file",
            format!("cannot read `{path}`: {e}"),
        ),
        Ok(Err((line, entry))) => a.lose(
            "authenticated_emails_file",
            format!("`{path}` line {line}: `{entry}` is not an email address"),
        ),
        Ok(Ok(emails)) if emails.is_empty() && a.email_domains.is_empty() => a.lose(
            "authenticated_emails_file",
            format!(
                "`{path}` lists no address and email_domains none: oauth2-proxy lets no address in"
            ),
        ),
        Ok(Ok(emails)) => {
            a.emails = emails;
            a.notes.push(format!("authenticated_emails_file: the addresses of `{path}` are carried into [authz] emails; oauth2-proxy re-read the file on change, authgate reads the workspace file"));
        }
    }
}

/// The addresses of an `authenticated_emails_file` as oauth2-proxy reads it: CSV, `#` comment
/// lines, the first field, trimmed and lower-cased. An entry without `@` is `(line, entry)`.
fn emails_file(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let field = line.split(',').next().unwrap_or("");
        let entry = field.trim().trim_matches('"').trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if !entry.contains('@') {
            return Err((i + 1, entry));
        }
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// keycloak-oidc: `allowed_groups` and `allowed_roles` form one list (oauth2-proxy adds each
/// role to the allowed groups as `role:<name>`), which authgate's `groups` is.
fn keycloak(
    cfg: &mut Table,
    ctx: &Context<'_>,
    allowed: Option<(&str, Vec<String>)>,
    a: &mut Access,
) {
    if let Some((option, groups)) = allowed {
        for g in groups {
            if g.starts_with('/') {
                a.groups.push(g);
            } else {
                a.lose(option, format!("`{g}`: authgate reads Keycloak's group paths (`/name`, the mapper's \"Full group path\") and realm roles (`name`) into one list, so a group named without its path would also match a realm role of that name: write the group's full path"));
            }
        }
    }
    if let Some((option, roles)) = take_list(cfg, &["allowed_roles", "allowed_role"]) {
        for r in roles {
            match r.split_once(':') {
                Some((client, _)) if client != ctx.client_id => a.lose(option, format!("`{r}` is a role of client `{client}`: authgate reads the client roles of its own client_id (`{}`) only", ctx.client_id)),
                _ => a.groups.push(r),
            }
        }
    }
}

/// github: `github_org` alone, or with `github_team`; `github_team` alone as `org:team`;
/// `allowed_groups` (organisations, `org:team`) when nothing else names groups. Users and
/// repositories are no rule authgate has.
fn github(cfg: &mut Table, allowed: Option<(&str, Vec<String>)>, a: &mut Access) {
    let org = str_of(cfg.remove("github_org"));
    let teams = strings(cfg.remove("github_team"));
    let mut named = Vec::new();
    match &org {
        Some(org) if teams.is_empty() => named.push(org.clone()),
        Some(org) => named.extend(teams.iter().map(|t| format!("{org}/{t}"))),
        None => {
            for t in &teams {
                match t.split_once(':') {
                    Some((o, t)) if !o.is_empty() && !t.is_empty() => named.push(format!("{o}/{t}")),
                    _ => a.lose("github_team", format!("`{t}` names no organisation (oauth2-proxy then lets nobody in): write `org:team`, or set github_org")),
                }
            }
        }
    }
    if let Some(repo) = str_of(cfg.remove("github_repo")) {
        if org.is_some() {
            a.notes.push(format!(
                "github_repo: not carried over: oauth2-proxy ignores `{repo}` next to github_org"
            ));
        } else {
            a.lose("github_repo", format!("`{repo}`: access to a repository is no rule authgate has (it reads organisations and teams)"));
        }
    }
    if let Some((option, users)) = take_list(cfg, &["github_users", "github_user"]) {
        a.lose(option, format!("`{}`: authgate's rules read the email, organisations and teams, not the GitHub login", users.join("`, `")));
    }
    if cfg.remove("github_token").is_some() {
        a.notes.push("github_token: not carried over: it served oauth2-proxy's repository check, and is a secret".into());
    }
    match allowed {
        Some((option, _)) if !named.is_empty() || !teams.is_empty() => a.lose(option, "must hold together with github_org/github_team, and authgate's groups is one list any of which lets a user in".into()),
        Some((_, groups)) => named.extend(groups.iter().map(|g| g.replacen(':', "/", 1))),
        None => {}
    }
    if !named.is_empty() {
        a.scope = Some("read:org");
    }
    a.groups.extend(named);
}

/// `oidc_groups_claim`: generic OIDC reads groups from the claim `[headers] groups` names; Entra
/// and Keycloak read their own claims, so another claim there is a rule authgate cannot follow.
fn groups_claim(cfg: &mut Table, ctx: &Context<'_>, a: &mut Access) {
    let Some(claim) = str_of(cfg.remove("oidc_groups_claim")) else {
        return;
    };
    match ctx.kind {
        "oidc" => a.groups_claim = Some(claim),
        "azure" | "keycloak" if claim != "groups" && !a.groups.is_empty() => a.lose("oidc_groups_claim", format!("`{claim}`: groups were read from it; authgate reads Entra's `groups` and `roles`, Keycloak's `groups` and roles, not another claim")),
        _ => a.notes.push(format!("oidc_groups_claim: `{claim}` is not carried over: {} reads its own claims", ctx.kind)),
    }
}

/// `entra_id_allowed_tenants`: carried as `allowed_tenants` on an issuer of many tenants; on an
/// issuer of one tenant, that tenant must be listed (else oauth2-proxy let nobody in).
fn tenants(cfg: &mut Table, ctx: &Context<'_>, a: &mut Access) {
    let Some((option, tenants)) = take_list(
        cfg,
        &["entra_id_allowed_tenants", "entra_id_allowed_tenant"],
    ) else {
        return;
    };
    let segment = url::Url::parse(ctx.issuer)
        .ok()
        .and_then(|u| u.path_segments()?.next().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if ENTRA_MANY.contains(&segment.as_str()) || segment.contains("tenantid") {
        a.provider_lines
            .push(format!("allowed_tenants = {}", list(&tenants)));
    } else if tenants.iter().any(|t| t.eq_ignore_ascii_case(&segment)) {
        a.notes.push(format!(
            "{option}: not carried over: the issuer names tenant `{segment}` already"
        ));
    } else {
        a.lose(option, format!("the issuer names tenant `{segment}`, which `{}` does not: oauth2-proxy let nobody in, authgate's issuer check admits that tenant", tenants.join("`, `")));
    }
}

/// A list option under one of its spellings: the spelling written and the values.
fn take_list<'a>(cfg: &mut Table, names: &[&'a str]) -> Option<(&'a str, Vec<String>)> {
    let mut found: Option<(&'a str, Vec<String>)> = None;
    for name in names {
        if let Some(v) = cfg.remove(*name) {
            let values = strings(Some(v));
            match &mut found {
                Some((_, all)) => all.extend(values),
                None => found = Some((name, values)),
            }
        }
    }
    found.filter(|(_, v)| !v.is_empty())
}

/// The `[authz]` table: the carried rules; with lost restrictions (accepted), a rule no account
/// passes, the lost options and the carried rules as comments.
pub(super) fn authz_table(a: &Access) -> String {
    let mut rules = Vec::new();
    if !a.emails.is_empty() {
        rules.push(format!("emails = {}", list(&a.emails)));
    }
    if !a.email_domains.is_empty() {
        rules.push(format!("email_domains = {}", list(&a.email_domains)));
    }
    if !a.groups.is_empty() {
        rules.push(format!("groups = {}", list(&a.groups)));
    }
    let mut out = String::from("\n[authz]\n");
    // Without a loss there is always a rule or `*`; the test keeps an empty `[authz]` (which
    // lets everyone in) from ever being written.
    if a.lost.is_empty() && (!rules.is_empty() || a.any_address) {
        if rules.is_empty() && a.any_address {
            out.push_str("allow_any_account = true\n");
        }
        for r in rules {
            out.push_str(&r);
            out.push('\n');
        }
        return out;
    }
    out.push_str("# Not carried over (accepted with --accept-loss): authgate cannot express these\n# restrictions of the oauth2-proxy config, so this workspace lets nobody in until\n# its rules are written by hand.\n");
    for l in &a.lost {
        out.push_str(&format!(
            "#   {}: {}\n",
            l.option,
            l.why.replace(['\n', '\r'], " ")
        ));
    }
    if !rules.is_empty() {
        out.push_str("# Carried over, to keep once the rest is written:\n");
        for r in rules {
            out.push_str(&format!("# {r}\n"));
        }
    }
    out.push_str(&format!(
        "# No one receives mail at `.invalid` (RFC 2606), so no account passes this rule.\nemails = [{}]\n",
        quote(NOBODY)
    ));
    out
}

/// The one address of a workspace that lets nobody in.
const NOBODY: &str = "nobody@invalid";

#[cfg(test)]
mod tests {
    use super::emails_file;

    #[test]
    fn an_emails_file_is_read_as_oauth2_proxy_reads_it() {
        assert_eq!(
            emails_file("# a comment\n A@X.test \n\nb@y.test,Bob\n\"c@z.test\"\na@x.test\n"),
            Ok(vec![
                "a@x.test".into(),
                "b@y.test".into(),
                "c@z.test".into()
            ])
        );
        assert_eq!(emails_file("a@x.test\nbob\n"), Err((2, "bob".into())));
        assert_eq!(emails_file(""), Ok(vec![]));
    }
}
