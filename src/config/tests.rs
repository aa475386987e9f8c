//! Refusals of whole files as `authgate check` reports them: a misspelt key of each provider
//! kind, a key of another kind, and a value no enum has. Each names the file, the field and
//! the line, and is the only problem reported.

use std::collections::HashMap;

use super::load;

/// The one problem `load` finds in a directory holding `workspaces/x.toml` with `text`.
fn the_problem(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("workspaces")).unwrap();
    std::fs::write(dir.path().join("workspaces/x.toml"), text).unwrap();
    let errors = load(dir.path(), &HashMap::new()).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{text}\n{errors:?}");
    errors[0].to_string()
}

/// A workspace whose `[[provider]]` (line 3) has `kind` (line 4) and then `more` (line 8).
fn provider(kind: &str, more: &str) -> String {
    let issuer = match kind {
        "azure" => "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
        "github" => "https://github.com",
        _ => "https://idp.example.com",
    };
    format!(
        "hosts = [\"x.example.com\"]\nauth = \"oidc\"\n[[provider]]\nkind = \"{kind}\"\n\
         issuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n{more}\n\
         [authz]\nemails = [\"a@example.com\"]\n"
    )
}

#[test]
fn a_misspelt_key_of_each_provider_kind_names_file_field_and_line() {
    for (kind, key, known) in [
        ("oidc", "trust_emial", "trust_email_without_email_verified"),
        (
            "keycloak",
            "trust_email_without_email_verifed",
            "trust_email_without_email_verified",
        ),
        (
            "azure",
            "allowed_tenant",
            "tenant, authority, allowed_tenants, resolve_group_overage, graph_url",
        ),
        (
            "azure",
            "resolve_group_overages",
            "tenant, authority, allowed_tenants, resolve_group_overage, graph_url",
        ),
        ("github", "api_uri", "api_url"),
    ] {
        assert_eq!(
            the_problem(&provider(kind, &format!("{key} = true"))),
            format!(
                "workspaces/x.toml: provider[0].{key}: unknown field for kind = \"{kind}\" \
                 (known: {known}) (line 8)"
            ),
        );
    }
}

#[test]
fn a_key_of_another_kind_is_refused() {
    for (kind, line) in [
        (
            "github",
            "allowed_tenants = [\"72f988bf-86f1-41af-91ab-2d7cd011db47\"]",
        ),
        ("github", "trust_email_without_email_verified = true"),
        ("oidc", "tenant = \"organizations\""),
        ("keycloak", "resolve_group_overage = true"),
        ("azure", "api_url = \"https://api.github.com\""),
        ("azure", "trust_email_without_email_verified = true"),
    ] {
        let key = line.split(' ').next().unwrap();
        let got = the_problem(&provider(kind, line));
        let want =
            format!("workspaces/x.toml: provider[0].{key}: unknown field for kind = \"{kind}\"");
        assert!(got.starts_with(&want), "{got}");
        assert!(got.ends_with("(line 8)"), "{got}");
    }
}

#[test]
fn a_value_no_enum_has_names_file_field_and_line() {
    let with_session =
        |store: &str| format!("{}[session]\nstore = \"{store}\"\n", provider("oidc", ""));
    for (text, want) in [
        (
            "hosts = [\"x.example.com\"]\nauth = \"saml\"\n".to_string(),
            "workspaces/x.toml: auth: unknown variant `saml`, expected one of `none`, `login`, `oidc` (line 2)",
        ),
        (
            provider("okta", ""),
            "workspaces/x.toml: provider[0].kind: unknown variant `okta`, expected one of \
             `oidc`, `azure`, `keycloak`, `github` (line 4)",
        ),
        (
            with_session("memcached"),
            "workspaces/x.toml: session.store: unknown variant `memcached`, expected `cookie` \
             or `redis` (line 12)",
        ),
        (
            provider("oidc", "algorithms = [\"RS256\", \"RS257\"]"),
            "workspaces/x.toml: provider[0].algorithms[1]: unknown variant `RS257`, expected \
             one of `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, \
             `EdDSA`, `HS256`, `HS384`, `HS512`, `none` (line 8)",
        ),
    ] {
        assert_eq!(the_problem(&text), want, "{text}");
    }
}

#[test]
fn a_value_of_the_wrong_type_names_file_field_and_line() {
    for (more, want) in [
        (
            "logout_at_idp = \"yes\"",
            "workspaces/x.toml: provider[0].logout_at_idp: invalid type: string \"yes\", \
             expected a boolean (line 8)",
        ),
        (
            "algorithms = \"RS256\"",
            "workspaces/x.toml: provider[0].algorithms: invalid type: string \"RS256\", \
             expected a sequence (line 8)",
        ),
        (
            "scopes = \"openid\"",
            "workspaces/x.toml: provider[0].scopes: invalid type: string \"openid\", expected a \
             sequence (line 8)",
        ),
    ] {
        assert_eq!(the_problem(&provider("oidc", more)), want);
    }
    assert_eq!(
        the_problem(&provider("azure", "allowed_tenants = [\"a\", 2]")),
        "workspaces/x.toml: provider[0].allowed_tenants[1]: invalid type: integer `2`, \
         expected a string (line 8)"
    );
}
