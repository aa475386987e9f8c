//! The importer's access table: for each restriction oauth2-proxy knows, the import carries it
//! (the `[authz]` written, checked by `config::load` and the authz predicate) or refuses naming
//! the option, and `--accept-loss` writes a workspace that lets nobody in.

use std::collections::HashMap;

use super::{oauth2_proxy, public_rule, ImportError, Imported, Options};
use crate::identity::Identity;

const KEYCLOAK: &str = r#"provider = "keycloak-oidc"
client_id = "oauth2-proxy"
client_secret = "x"
redirect_url = "https://team.example.com/oauth2/callback"
oidc_issuer_url = "https://keycloak.example.com/realms/platform"
"#;

const GITHUB: &str = r#"provider = "github"
client_id = "Iv1.0123456789abcdef"
redirect_url = "https://perso.example.com/oauth2/callback"
"#;

const OIDC: &str = r#"provider = "oidc"
client_id = "app"
redirect_url = "https://app.example.com/oauth2/callback"
oidc_issuer_url = "https://idp.example.com"
"#;

const AZURE: &str = r#"provider = "azure"
client_id = "app"
azure_tenant = "0b5c1f0a-1234-4f6e-9abc-0123456789ab"
redirect_url = "https://mcd.example.com/oauth2/callback"
"#;

const ENTRA_ANY_TENANT: &str = r#"provider = "entra-id"
client_id = "app"
oidc_issuer_url = "https://login.microsoftonline.com/organizations/v2.0"
redirect_url = "https://mcd.example.com/oauth2/callback"
"#;

/// A provider authgate reads as generic OIDC, whose groups come from its own API.
fn other(provider: &str) -> String {
    format!(
        "provider = \"{provider}\"\nclient_id = \"app\"\n\
         redirect_url = \"https://app.example.com/oauth2/callback\"\n\
         oidc_issuer_url = \"https://idp.example.com\"\n"
    )
}

const ANY: &str = "email_domains = [\"*\"]\n";

/// The addresses file the rows that name `emails.txt` read, as oauth2-proxy reads it (CSV,
/// `#` comments, first field, lower-cased).
const EMAILS: &str = "# staff\nA@Example.com\n\nb@example.org, Bob\n";

fn run(cfg: &str, accept_loss: bool) -> Result<Imported, ImportError> {
    let read = |path: &str| match path {
        "emails.txt" => Ok(EMAILS.to_string()),
        _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    oauth2_proxy(
        cfg,
        &Options {
            host: None,
            secret_env: "CLIENT_SECRET",
            accept_loss,
            read_file: &read,
        },
    )
}

/// What an import must give.
enum Want {
    /// Written, with exactly this `[authz]`.
    Authz(&'static str),
    /// Written, with exactly this `[authz]` and this line elsewhere.
    AuthzAnd(&'static str, &'static str),
    /// Refused, naming this option (and only it).
    Refused(&'static str),
}

/// The workspace as `authgate check` reads it (`workspaces/app.toml`).
fn load(workspace: &str) -> crate::config::WorkspaceConfig {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("workspaces")).unwrap();
    std::fs::write(dir.path().join("workspaces/app.toml"), workspace).unwrap();
    let mut config = crate::config::load(dir.path(), &HashMap::new())
        .unwrap_or_else(|e| panic!("{e}\n---\n{workspace}"));
    config.workspaces.remove(0)
}

fn authz_of(workspace: &str) -> toml::Value {
    let table: toml::Table = toml::from_str(workspace).unwrap();
    table
        .get("authz")
        .cloned()
        .unwrap_or(toml::Value::Table(toml::Table::new()))
}

#[test]
fn one_option_in_two_cases_is_refused() {
    let cfg = format!("{KEYCLOAK}{ANY}allowed_roles = [\"admin\"]\nALLOWED_ROLES = [\"x\"]\n");
    assert!(
        matches!(run(&cfg, false), Err(ImportError::Unusable(why)) if why.contains("ALLOWED_ROLES") || why.contains("allowed_roles")),
        "{:?}",
        run(&cfg, false)
    );
}

#[test]
fn each_restriction_is_carried_or_refused() {
    use Want::{Authz, AuthzAnd, Refused};
    let rows: Vec<(&str, String, Want)> = vec![
        // oauth2-proxy's config loader ignores the case of option names.
        (
            "an option name in another case is the option",
            format!("{KEYCLOAK}{ANY}ALLOWED_ROLES = [\"admin\"]\n"),
            Authz("groups = [\"admin\"]"),
        ),
        (
            "a restriction in mixed case that cannot be carried is refused",
            format!("{KEYCLOAK}{ANY}Allowed_Roles = [\"grafana:editor\"]\n"),
            Refused("allowed_roles"),
        ),
        (
            "keycloak realm role",
            format!("{KEYCLOAK}{ANY}allowed_roles = [\"admin\"]\n"),
            Authz("groups = [\"admin\"]"),
        ),
        (
            "keycloak role of this client",
            format!("{KEYCLOAK}{ANY}allowed_roles = [\"oauth2-proxy:editor\"]\n"),
            Authz("groups = [\"oauth2-proxy:editor\"]"),
        ),
        (
            "keycloak role of another client",
            format!("{KEYCLOAK}{ANY}allowed_roles = [\"grafana:editor\"]\n"),
            Refused("allowed_roles"),
        ),
        (
            "keycloak groups or roles",
            format!(
                "{KEYCLOAK}{ANY}allowed_groups = [\"/admins\"]\nallowed_roles = \"admin,auditor\"\n"
            ),
            Authz("groups = [\"/admins\", \"admin\", \"auditor\"]"),
        ),
        (
            "keycloak group without its path",
            format!("{KEYCLOAK}{ANY}allowed_groups = [\"admins\"]\n"),
            Refused("allowed_groups"),
        ),
        (
            "keycloak groups from another claim",
            format!("{KEYCLOAK}{ANY}allowed_groups = [\"/admins\"]\noidc_groups_claim = \"grp\"\n"),
            Refused("oidc_groups_claim"),
        ),
        (
            "keycloak_groups of the legacy keycloak provider",
            format!("{}{ANY}keycloak_groups = [\"/admins\"]\n", other("keycloak")),
            Refused("keycloak_groups"),
        ),
        (
            "authenticated_emails_file alone",
            format!("{OIDC}authenticated_emails_file = \"emails.txt\"\n"),
            Authz("emails = [\"a@example.com\", \"b@example.org\"]"),
        ),
        (
            "authenticated_emails_file or email_domains",
            format!(
                "{OIDC}authenticated_emails_file = \"emails.txt\"\nemail_domains = [\"Example.net\"]\n"
            ),
            Authz(
                "emails = [\"a@example.com\", \"b@example.org\"]\nemail_domains = [\"example.net\"]",
            ),
        ),
        (
            "authenticated_emails_file and allowed_groups",
            format!("{OIDC}authenticated_emails_file = \"emails.txt\"\nallowed_groups = [\"staff\"]\n"),
            Authz("emails = [\"a@example.com\", \"b@example.org\"]\ngroups = [\"staff\"]"),
        ),
        (
            "authenticated_emails_file unreadable",
            format!("{OIDC}authenticated_emails_file = \"missing.txt\"\n"),
            Refused("authenticated_emails_file"),
        ),
        (
            "email domain of subdomains",
            format!("{OIDC}email_domains = [\".example.com\"]\n"),
            Refused("email_domains"),
        ),
        (
            "email domain wildcard",
            format!("{OIDC}email_domains = [\"*.example.com\"]\n"),
            Refused("email_domains"),
        ),
        (
            "no email rule at all",
            OIDC.to_string(),
            Refused("email_domains"),
        ),
        (
            "* next to a domain, with groups",
            format!("{OIDC}email_domains = [\"*\", \"example.com\"]\nallowed_groups = [\"staff\"]\n"),
            Authz("groups = [\"staff\"]"),
        ),
        (
            "* alone",
            format!("{OIDC}{ANY}"),
            Authz("allow_any_account = true"),
        ),
        (
            "a plain email domain",
            format!("{OIDC}email_domains = [\"example.com\"]\n"),
            Authz("email_domains = [\"example.com\"]"),
        ),
        (
            "github_users alone",
            format!("{GITHUB}{ANY}github_users = [\"alice\"]\n"),
            Refused("github_users"),
        ),
        (
            "github_users next to github_org",
            format!("{GITHUB}{ANY}github_org = \"devlabai\"\ngithub_users = \"alice,bob\"\n"),
            Refused("github_users"),
        ),
        (
            "github_team as org:team",
            format!("{GITHUB}{ANY}github_team = \"devlabai:platform\"\n"),
            Authz("groups = [\"devlabai/platform\"]"),
        ),
        (
            "github_team without an org",
            format!("{GITHUB}{ANY}github_team = \"platform\"\n"),
            Refused("github_team"),
        ),
        (
            "github_org and github_team",
            format!("{GITHUB}{ANY}github_org = \"devlabai\"\ngithub_team = \"platform, ops\"\n"),
            Authz("groups = [\"devlabai/platform\", \"devlabai/ops\"]"),
        ),
        (
            "github_org",
            format!("{GITHUB}{ANY}github_org = \"devlabai\"\n"),
            Authz("groups = [\"devlabai\"]"),
        ),
        (
            "github_repo alone",
            format!("{GITHUB}{ANY}github_repo = \"devlabai/site\"\n"),
            Refused("github_repo"),
        ),
        (
            "github_repo next to github_org (oauth2-proxy ignores it)",
            format!("{GITHUB}{ANY}github_org = \"devlabai\"\ngithub_repo = \"devlabai/site\"\n"),
            Authz("groups = [\"devlabai\"]"),
        ),
        (
            "github allowed_groups",
            format!("{GITHUB}{ANY}allowed_groups = [\"devlabai\", \"devlabai:ops\"]\n"),
            Authz("groups = [\"devlabai\", \"devlabai/ops\"]"),
        ),
        (
            "github allowed_groups and github_org (both must hold)",
            format!("{GITHUB}{ANY}github_org = \"devlabai\"\nallowed_groups = [\"devlabai:ops\"]\n"),
            Refused("allowed_groups"),
        ),
        (
            "github with email domains and an org",
            format!("{GITHUB}email_domains = [\"example.com\"]\ngithub_org = \"devlabai\"\n"),
            Authz("email_domains = [\"example.com\"]\ngroups = [\"devlabai\"]"),
        ),
        (
            "gitlab_groups",
            format!("{}{ANY}gitlab_groups = [\"platform\"]\n", other("gitlab")),
            Refused("gitlab_groups"),
        ),
        (
            "gitlab_projects",
            format!("{}{ANY}gitlab_projects = [\"platform/site\"]\n", other("gitlab")),
            Refused("gitlab_projects"),
        ),
        (
            "google_groups",
            format!(
                "{}{ANY}google_groups = [\"admins@example.com\"]\ngoogle_admin_email = \"root@example.com\"\n",
                other("google")
            ),
            Refused("google_groups"),
        ),
        (
            "bitbucket_team",
            format!("{}{ANY}bitbucket_team = \"platform\"\n", other("bitbucket")),
            Refused("bitbucket_team"),
        ),
        (
            "bitbucket_repository",
            format!("{}{ANY}bitbucket_repository = \"platform/site\"\n", other("bitbucket")),
            Refused("bitbucket_repository"),
        ),
        (
            "allowed_groups of a provider read as generic OIDC",
            format!("{}{ANY}allowed_groups = [\"platform\"]\n", other("gitlab")),
            Refused("allowed_groups"),
        ),
        (
            "oidc groups from another claim",
            format!("{OIDC}{ANY}allowed_groups = [\"staff\"]\noidc_groups_claim = \"grp\"\n"),
            AuthzAnd("groups = [\"staff\"]", "[headers]\ngroups = \"grp\""),
        ),
        (
            "azure groups",
            format!("{AZURE}{ANY}allowed_groups = [\"8e9f2b1c-0000-4a5b-9c8d-0123456789ab\"]\n"),
            Authz("groups = [\"8e9f2b1c-0000-4a5b-9c8d-0123456789ab\"]"),
        ),
        (
            "azure groups from another claim",
            format!("{AZURE}{ANY}allowed_groups = [\"g\"]\noidc_groups_claim = \"roles\"\n"),
            Refused("oidc_groups_claim"),
        ),
        (
            "azure groups by display name",
            format!("{AZURE}{ANY}allowed_groups = [\"Admins\"]\nazure_graph_group_field = \"displayName\"\n"),
            Refused("azure_graph_group_field"),
        ),
        (
            "entra_id_allowed_tenants on a multi-tenant issuer",
            format!(
                "{ENTRA_ANY_TENANT}{ANY}entra_id_allowed_tenants = [\"0b5c1f0a-1234-4f6e-9abc-0123456789ab\"]\n"
            ),
            AuthzAnd(
                "allow_any_account = true",
                "allowed_tenants = [\"0b5c1f0a-1234-4f6e-9abc-0123456789ab\"]",
            ),
        ),
        (
            "entra_id_allowed_tenants not naming the issuer's own tenant",
            "provider = \"entra-id\"\nclient_id = \"app\"\n\
             oidc_issuer_url = \"https://login.microsoftonline.com/0b5c1f0a-1234-4f6e-9abc-0123456789ab/v2.0\"\n\
             redirect_url = \"https://mcd.example.com/oauth2/callback\"\n\
             email_domains = [\"*\"]\nentra_id_allowed_tenants = [\"11111111-2222-3333-4444-555555555555\"]\n"
                .to_string(),
            Refused("entra_id_allowed_tenants"),
        ),
        (
            "allowed_roles of another provider (oauth2-proxy ignores it)",
            format!("{OIDC}{ANY}allowed_roles = [\"admin\"]\n"),
            Authz("allow_any_account = true"),
        ),
        (
            "github_org of another provider (oauth2-proxy ignores it)",
            format!("{OIDC}{ANY}github_org = \"devlabai\"\n"),
            Authz("allow_any_account = true"),
        ),
        (
            "keycloak_groups with keycloak-oidc (oauth2-proxy ignores it)",
            format!("{KEYCLOAK}{ANY}keycloak_groups = [\"/admins\"]\nallowed_roles = [\"admin\"]\n"),
            Authz("groups = [\"admin\"]"),
        ),
        (
            "what only opens more is dropped: htpasswd_file, trusted_ips",
            format!(
                "{OIDC}email_domains = [\"example.com\"]\nhtpasswd_file = \"users\"\n\
                 trusted_ips = [\"10.0.0.0/8\"]\nskip_jwt_bearer_tokens = true\n"
            ),
            Authz("email_domains = [\"example.com\"]"),
        ),
    ];
    let mut failed = Vec::new();
    for (name, cfg, want) in &rows {
        let got = run(cfg, false);
        let ok = match (want, &got) {
            (Want::Authz(text), Ok(i)) => {
                let want: toml::Value = toml::from_str(text).unwrap();
                authz_of(&i.workspace) == want
            }
            (Want::AuthzAnd(text, line), Ok(i)) => {
                let want: toml::Value = toml::from_str(text).unwrap();
                authz_of(&i.workspace) == want && i.workspace.contains(line)
            }
            (Want::Refused(option), Err(ImportError::Lost(lost))) => {
                lost.iter().map(|l| l.option.as_str()).collect::<Vec<_>>() == [*option]
            }
            _ => false,
        };
        if !ok {
            failed.push(format!("{name}: {got:?}"));
        }
        if let Ok(i) = &got {
            load(&i.workspace);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn a_refusal_names_the_option_and_why() {
    let e = run(
        &format!("{OIDC}authenticated_emails_file = \"missing.txt\"\n"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("authenticated_emails_file: "), "{e}");
    assert!(e.contains("missing.txt"), "{e}");
    let e = run(
        &format!("{KEYCLOAK}{ANY}allowed_roles = [\"grafana:editor\"]\n"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("allowed_roles: ") && e.contains("grafana:editor"),
        "{e}"
    );
}

/// An identity of the shape each provider gives.
fn who(email: &str, groups: &[&str]) -> Identity {
    Identity {
        user: email.into(),
        email: email.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Identity::default()
    }
}

#[test]
fn accepted_loss_writes_a_workspace_that_lets_nobody_in() {
    for (cfg, carried) in [
        (format!("{GITHUB}{ANY}github_users = [\"alice\"]\n"), None),
        (
            format!("{GITHUB}{ANY}github_org = \"devlabai\"\ngithub_users = [\"alice\"]\n"),
            Some("groups = [\"devlabai\"]"),
        ),
        (
            format!(
                "{KEYCLOAK}authenticated_emails_file = \"emails.txt\"\n\
                 allowed_roles = [\"admin\", \"grafana:editor\"]\n"
            ),
            Some("groups = [\"admin\"]"),
        ),
        (format!("{OIDC}email_domains = [\".example.com\"]\n"), None),
    ] {
        let imported = run(&cfg, true).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
        let ws = &imported.workspace;
        assert!(!ws.contains("allow_any_account"), "{ws}");
        let lost = imported
            .notes
            .iter()
            .filter(|n| n.contains("accepted with --accept-loss"))
            .count();
        assert!(lost >= 1, "{:?}", imported.notes);
        // Each lost option is named in the file, and a carried rule is kept there commented.
        for note in imported
            .notes
            .iter()
            .filter(|n| n.contains("--accept-loss"))
        {
            let option = note.split(':').next().unwrap();
            assert!(ws.contains(&format!("#   {option}: ")), "{option}\n{ws}");
        }
        if let Some(rule) = carried {
            assert!(ws.contains(&format!("# {rule}")), "{ws}");
        }
        let config = load(ws);
        for id in [
            who("alice@example.com", &["devlabai", "admin", "/admins"]),
            who("a@example.com", &["admin"]),
            who("b@sub.example.com", &[]),
            who("", &["devlabai"]),
        ] {
            assert!(config.authz.check(&id).is_err(), "{id:?} passes\n{ws}");
        }
    }
}

#[test]
fn session_cookies_keep_or_gain_the_host_prefix_over_https() {
    for (cfg, want) in [
        (
            format!("{OIDC}{ANY}cookie_name = \"__Host-team\"\n"),
            "__Host-team",
        ),
        (
            format!("{OIDC}{ANY}cookie_name = \"_oauth2_proxy\"\n"),
            "__Host-_oauth2_proxy",
        ),
        (
            format!("{OIDC}{ANY}cookie_name = \"__Secure-team\"\n"),
            "__Host-team",
        ),
        (
            "provider = \"oidc\"\nclient_id = \"app\"\noidc_issuer_url = \"https://idp.example.com\"\n\
             redirect_url = \"http://app.localhost:8080/oauth2/callback\"\n\
             email_domains = [\"*\"]\ncookie_name = \"__Host-team\"\n"
                .to_string(),
            "team",
        ),
    ] {
        let ws = run(&cfg, false).unwrap().workspace;
        assert!(
            ws.contains(&format!("cookie_name = \"{want}\"")),
            "{want}\n{ws}"
        );
        let config = load(&ws);
        assert_eq!(config.session.cookie_name, want);
    }
}

#[test]
fn only_anchored_literal_routes_become_public_rules() {
    for (route, want) in [
        ("^/healthz$", Some("path = \"/healthz\"")),
        (
            "GET=^/healthz$",
            Some("path = \"/healthz\"\nmethods = [\"GET\"]"),
        ),
        ("^/static/", Some("prefix = \"/static/\"")),
        ("^/static/.*", Some("prefix = \"/static/\"")),
        ("^/app\\.js$", Some("path = \"/app.js\"")),
        ("/healthz", None),
        ("^/static", None),
        ("^/static/../admin/", None),
        ("^/(a|b)$", None),
        ("^/a.*b$", None),
        ("^//x$", None),
        ("^/a;b$", None),
        ("^/a%2fb$", None),
        ("get=^/healthz$", None),
        ("GET!=^/healthz$", None),
        ("!=^/healthz$", None),
    ] {
        let got = public_rule(route);
        match want {
            Some(w) => assert!(
                got.as_deref().is_some_and(|g| g.contains(w)),
                "{route}: {got:?}"
            ),
            None => assert_eq!(got, None, "{route}"),
        }
    }
}

#[test]
fn extra_jwt_issuers_become_commented_machine_clients_and_narrow() {
    let cfg = format!(
        "{OIDC}email_domains = [\"example.com\"]\nskip_jwt_bearer_tokens = true\n\
         extra_jwt_issuers = [\"https://token.actions.githubusercontent.com=authgate\", \"k8s=x\"]\n\
         api_routes = [\"^/api/\"]\n"
    );
    let i = run(&cfg, false).unwrap();
    assert!(
        i.workspace.contains(
            "# [[client]]\n# name = \"issuer-0\"\n# issuer = \"https://token.actions.githubusercontent.com\"\n# audience = \"authgate\"\n"
        ),
        "{}",
        i.workspace
    );
    // Loaded as written: no client is active, so no token of the issuer passes.
    let ws = load(&i.workspace);
    assert!(ws.jwt_clients.is_empty() && ws.clients.is_empty());
    let notes = i.notes.join("\n");
    assert!(notes.contains("extra_jwt_issuers: `https://token.actions.githubusercontent.com=authgate` is written as a commented [[client]] `issuer-0`"), "{notes}");
    assert!(
        notes.contains("extra_jwt_issuers: `k8s=x` is not `https://issuer=audience`"),
        "{notes}"
    );
    assert!(
        notes.contains("api_routes: not carried over: it changes no access"),
        "{notes}"
    );
    // Uncommented with the claims named, the client loads.
    let active = i
        .workspace
        .replace("# [[client]]", "[[client]]")
        .replace("# name", "name")
        .replace("# issuer =", "issuer =")
        .replace("# audience", "audience")
        .replace("# claims", "claims");
    assert_eq!(load(&active).jwt_clients[0].audience, "authgate");
}
