//! Each provider kind through a full code flow: the real `oidc-provider` shaped as Entra ID and
//! as Keycloak, and a GitHub API stand-in (GitHub cannot be reached from tests; the stand-in
//! follows GitHub's documented request and response shapes). Plus several providers in one
//! workspace, allow/deny cases of the rules at the end of a login, and which emails count:
//! only those the IdP vouches for reach `X-Auth-Request-Email` and the email rules.

use serde_json::json;
use testkit::ChildGuard;

use crate::helpers::node::{spawn_node, spawn_oidc_provider, NodeProcess};
use crate::helpers::{
    artifacts, env_with, free_port, spawn_in_process_at, wait_for_port, Client, ConfigDir,
    InProcess, Resp, COOKIE_SECRET,
};

const ADMINS: &str = "6a5c8f2e-1d3b-4c7a-9e0f-a1b2c3d4e501";
const STAFF: &str = "7b6d9a3f-2e4c-4d8b-8f1a-b2c3d4e5f602";
const AUDITORS: &str = "8c7e0b4a-3f5d-4e9c-9a2b-c3d4e5f6a703";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";

/// authgate serving one workspace `ws.localhost` whose `[[provider]]` table(s) and `[authz]`
/// are given, in front of whatever IdP the test started.
struct Setup {
    app: Server,
    port: u16,
    _config: ConfigDir,
    host: String,
    client: Client,
}

/// authgate in this process, or the binary (when a test reads its log).
enum Server {
    /// Held for its drop, which stops it.
    InProcess(#[allow(dead_code)] InProcess),
    Binary(Binary),
}

/// The authgate binary on a given port, logging to a file; killed on drop.
struct Binary {
    _child: ChildGuard,
    log: std::path::PathBuf,
}

fn workspace_toml(host: &str, providers: &str, authz: &str) -> String {
    workspace_toml_with(host, providers, authz, "")
}

/// Same, with more `[headers]` keys (and tables after them).
fn workspace_toml_with(host: &str, providers: &str, authz: &str, headers: &str) -> String {
    format!(
        "hosts = [\"{host}\"]\nauth = \"oidc\"\ninsecure_http = true\n{providers}\n[session]\ncookie_name = \"ag\"\n[authz]\n{authz}\n[headers]\nuser = \"email\"\nemail = \"email\"\npreferred_username = \"preferred_username\"\ngroups = \"groups\"\n{headers}\n"
    )
}

const SECRETS: &[(&str, &str)] = &[
    ("CLIENT_SECRET", "client-secret"),
    ("GH_SECRET", "gh-secret"),
];

async fn serve(port: u16, providers: &str, authz: &str) -> Setup {
    serve_with(port, providers, authz, "").await
}

/// [`serve`] with more `[headers]` keys.
async fn serve_with(port: u16, providers: &str, authz: &str, headers: &str) -> Setup {
    let host = format!("ws.localhost:{port}");
    let config =
        ConfigDir::new("").workspace("ws", &workspace_toml_with(&host, providers, authz, headers));
    let app = spawn_in_process_at(&config, env_with(SECRETS), port).await;
    Setup {
        app: Server::InProcess(app),
        port,
        _config: config,
        host,
        client: Client::new(),
    }
}

/// Same, with the binary, whose log the test reads.
fn serve_binary(port: u16, providers: &str, authz: &str, name: &str) -> Setup {
    let host = format!("ws.localhost:{port}");
    let config = ConfigDir::new("").workspace("ws", &workspace_toml(&host, providers, authz));
    let log = artifacts().join(format!("authgate-{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["serve", "--config"])
        .arg(config.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("AUTHGATE_COOKIE_SECRETS", COOKIE_SECRET)
        .env("RUST_LOG", "authgate=debug,info")
        .envs(SECRETS.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let binary = Binary {
        _child: child.into(),
        log,
    };
    wait_for_port(port, "authgate");
    Setup {
        app: Server::Binary(binary),
        port,
        _config: config,
        host,
        client: Client::new(),
    }
}

impl Setup {
    async fn login(&mut self, query: &str, user: &str) -> Vec<Resp> {
        let url = format!("http://{}/oauth2/start?rd=%2Fhello{query}", self.host);
        self.client.follow(&url, user).await
    }

    /// The callback's answer among the followed steps.
    fn callback<'a>(&self, steps: &'a [Resp]) -> &'a Resp {
        steps
            .iter()
            .find(|r| r.url.path() == "/oauth2/callback")
            .expect("the flow reached the callback")
    }

    async fn auth(&self) -> Resp {
        self.auth_query("").await
    }

    /// `/oauth2/auth` with a narrowing query (`?allowed_…`), or none for "".
    async fn auth_query(&self, query: &str) -> Resp {
        let cookie = format!(
            "ag={}",
            self.client.cookie("ws.localhost", "ag").unwrap_or_default()
        );
        Client::new()
            .get(
                &format!("http://svc:{}/oauth2/auth{query}", self.port),
                &[
                    ("x-original-url", &format!("http://{}/hello", self.host)),
                    ("cookie", &cookie),
                ],
            )
            .await
    }

    /// The binary's log so far.
    fn log(&self) -> String {
        match &self.app {
            Server::Binary(b) => std::fs::read_to_string(&b.log).unwrap_or_default(),
            Server::InProcess(_) => panic!("an in-process authgate has no log of its own"),
        }
    }

    /// Logs `login` in (a fresh browser) and returns the callback's status and the
    /// `/oauth2/auth` answer's email and user headers.
    async fn who(&mut self, login: &str) -> (u16, Option<String>, Option<String>) {
        self.client = Client::new();
        let steps = self.login("", login).await;
        let status = self.callback(&steps).status;
        let a = self.auth().await;
        let h = |n: &str| a.header(n).map(str::to_string);
        (status, h("x-auth-request-email"), h("x-auth-request-user"))
    }
}

fn callback_url(port: u16) -> String {
    format!("http://ws.localhost:{port}/oauth2/callback")
}

fn oidc_provider_table(kind: &str, issuer: &str, extra: &str) -> String {
    format!("[[provider]]\nid = \"{kind}\"\nkind = \"{kind}\"\nissuer = \"{issuer}\"\nclient_id = \"authgate\"\nclient_secret_env = \"CLIENT_SECRET\"\n{extra}\n")
}

// === Entra ID (Azure AD) ===

async fn azure(extra: &str, authz: &str) -> (Setup, crate::helpers::node::Idp) {
    let port = free_port();
    let idp = spawn_oidc_provider(
        "azure",
        "authgate",
        "client-secret",
        &[callback_url(port)],
        json!({"tenant": TENANT}),
    );
    assert!(
        idp.issuer.ends_with(&format!("/{TENANT}/v2.0")),
        "Entra's tenant issuer shape"
    );
    let setup = serve(
        port,
        &oidc_provider_table("azure", &idp.issuer, extra),
        authz,
    )
    .await;
    (setup, idp)
}

#[tokio::test]
async fn azure_login_maps_groups_roles_and_email_without_an_iss_parameter() {
    let (mut s, _idp) = azure("", "").await;
    let steps = s.login("", "alice").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 302, "{}", cb.body);
    assert!(
        !cb.url.query().unwrap_or("").contains("iss="),
        "Entra sends no iss on the callback"
    );
    let a = s.auth().await;
    assert_eq!(a.status, 202);
    assert_eq!(a.header("x-auth-request-email"), Some("alice@example.test"));
    let groups = a.header("x-auth-request-groups").unwrap();
    for g in [ADMINS, STAFF, "App.Admin", "App.Reader"] {
        assert!(groups.split(',').any(|x| x == g), "{g} in {groups}");
    }
}

#[tokio::test]
async fn azure_user_without_email_never_gets_preferred_username_or_upn_as_email() {
    let (mut s, _idp) = azure("", "").await;
    let steps = s.login("", "noemail").await;
    assert_eq!(s.callback(&steps).status, 302);
    let a = s.auth().await;
    assert_eq!(
        a.header("x-auth-request-email"),
        None,
        "preferred_username is the UPN noemail@example.test: a sign-in name, not an address"
    );
    assert_eq!(a.header("x-auth-request-user"), Some("noemail"), "sub");
    assert_eq!(
        a.header("x-auth-request-preferred-username"),
        Some("noemail@example.test")
    );
}

#[tokio::test]
async fn azure_single_tenant_email_counts_without_xms_edov() {
    // The issuer names the tenant: its directory is the workspace's own.
    let (mut s, _idp) = azure("", "email_domains = [\"example.test\"]").await;
    let (status, email, user) = s.who("unverified").await;
    assert_eq!(status, 302, "no xms_edov, but one tenant");
    assert_eq!(email.as_deref(), Some("unverified@example.test"));
    assert_eq!(user.as_deref(), Some("unverified@example.test"));
}

/// Entra as a multi-tenant app: the workspace's issuer is `…/organizations/v2.0`, discovery
/// answers with the `{tenantid}` template, tokens come from the test tenant (listed in
/// `allowed_tenants`, so the workspace is not open to every tenant).
async fn azure_multi_tenant(authz: &str) -> (Setup, crate::helpers::node::Idp) {
    let port = free_port();
    let idp = spawn_oidc_provider(
        "azure",
        "authgate",
        "client-secret",
        &[callback_url(port)],
        json!({"tenant": TENANT}),
    );
    let organizations = idp.issuer.replace(TENANT, "organizations");
    let extra = format!("allowed_tenants = [\"{TENANT}\"]");
    let setup = serve(
        port,
        &oidc_provider_table("azure", &organizations, &extra),
        authz,
    )
    .await;
    (setup, idp)
}

#[tokio::test]
async fn azure_multi_tenant_email_counts_only_with_xms_edov() {
    let (mut s, _idp) = azure_multi_tenant("").await;
    let alice = Some("alice@example.test".to_string());
    assert_eq!(
        s.who("alice").await,
        (302, alice.clone(), alice),
        "xms_edov: true"
    );
    let bob = Some("bob@example.test".to_string());
    assert_eq!(
        s.who("bob").await,
        (302, bob.clone(), bob),
        "xms_edov: \"1\""
    );
    assert_eq!(
        s.who("unverified").await,
        (302, None, Some("unverified".into())),
        "no xms_edov: the login proceeds without an email, the user is sub"
    );
    // oauth2-proxy's narrowing query cannot be met without a vouched email.
    assert_eq!(
        s.auth_query("?allowed_email_domains=example.test")
            .await
            .status,
        403
    );
    assert_eq!(s.auth_query("?allowed_groups=").await.status, 202);
}

#[tokio::test]
async fn azure_multi_tenant_domain_rule_refuses_an_email_without_xms_edov() {
    let (mut s, _idp) = azure_multi_tenant("email_domains = [\"example.test\"]").await;
    let steps = s.login("", "unverified").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 403, "{}", cb.body);
    assert!(
        cb.body.contains("Email address not verified"),
        "{}",
        cb.body
    );
    assert_eq!(s.auth().await.status, 401, "no session");
    let (status, email, _) = s.who("alice").await;
    assert_eq!(
        (status, email.as_deref()),
        (302, Some("alice@example.test"))
    );
}

#[tokio::test]
async fn azure_group_overage_is_resolved_through_graph_in_two_pages() {
    let port = free_port();
    let idp = spawn_oidc_provider(
        "azure",
        "authgate",
        "client-secret",
        &[callback_url(port)],
        json!({"tenant": TENANT}),
    );
    let graph = format!("http://127.0.0.1:{}/", idp.process.ready["port"]);
    let extra = format!("resolve_group_overage = true\ngraph_url = \"{graph}\"");
    let mut s = serve(
        port,
        &oidc_provider_table("azure", &idp.issuer, &extra),
        &format!("groups = [\"{AUDITORS}\"]"),
    )
    .await;
    let steps = s.login("", "overage").await;
    assert_eq!(
        s.callback(&steps).status,
        302,
        "{}",
        s.callback(&steps).body
    );
    let groups = s
        .auth()
        .await
        .header("x-auth-request-groups")
        .unwrap()
        .to_string();
    for g in [ADMINS, STAFF, AUDITORS] {
        assert!(groups.contains(g), "{g} in {groups}");
    }
    assert!(
        !groups.contains("Global Reader"),
        "directory roles are not groups: {groups}"
    );
}

#[tokio::test]
async fn azure_group_overage_without_graph_is_refused_not_treated_as_no_groups() {
    let (mut s, _idp) = azure("", "").await;
    let steps = s.login("", "overage").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 400);
    assert!(cb.body.contains("Sign-in failed"));
    assert_eq!(s.auth().await.status, 401);
}

#[tokio::test]
async fn azure_group_rule_allows_members_and_denies_others() {
    let (mut s, _idp) = azure("", &format!("groups = [\"{ADMINS}\"]")).await;
    let steps = s.login("", "bob").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 403, "bob is not in g-admins");
    assert!(cb.body.contains("Access denied"));
    s.client = Client::new(); // a new browser: the IdP session of bob stays behind
    let steps = s.login("", "alice").await;
    assert_eq!(s.callback(&steps).status, 302);
}

// === Keycloak ===

async fn keycloak(authz: &str) -> (Setup, crate::helpers::node::Idp) {
    let port = free_port();
    let idp = spawn_oidc_provider(
        "keycloak",
        "authgate",
        "client-secret",
        &[callback_url(port)],
        json!({"realm": "platform"}),
    );
    assert!(
        idp.issuer.ends_with("/realms/platform"),
        "Keycloak's realm issuer shape"
    );
    let setup = serve(
        port,
        &oidc_provider_table("keycloak", &idp.issuer, "logout_at_idp = true"),
        authz,
    )
    .await;
    (setup, idp)
}

#[tokio::test]
async fn keycloak_roles_come_from_the_verified_access_token() {
    let (mut s, _idp) = keycloak("").await;
    let steps = s.login("", "alice").await;
    assert_eq!(
        s.callback(&steps).status,
        302,
        "{}",
        s.callback(&steps).body
    );
    let a = s.auth().await;
    let groups: Vec<&str> = a
        .header("x-auth-request-groups")
        .unwrap()
        .split(',')
        .collect();
    // Realm and client roles exist only in the access token (the IdP puts none in the ID token).
    for g in ["admin", "user", "authgate:editor", "/g-admins", "/g-staff"] {
        assert!(groups.contains(&g), "{g} in {groups:?}");
    }
}

#[tokio::test]
async fn keycloak_realm_role_rule_and_logout_through_end_session() {
    let (mut s, idp) = keycloak("groups = [\"admin\"]").await;
    let steps = s.login("", "bob").await;
    assert_eq!(s.callback(&steps).status, 403, "bob has only the user role");
    s.client = Client::new();
    let steps = s.login("", "alice").await;
    assert_eq!(s.callback(&steps).status, 302);
    let out = s
        .client
        .get(&format!("http://{}/oauth2/sign_out", s.host), &[])
        .await;
    assert_eq!(out.status, 302);
    let loc = out.location();
    assert!(
        loc.as_str()
            .starts_with(&format!("{}/protocol/openid-connect/logout", idp.issuer)),
        "{loc}"
    );
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "authgate");
    assert_eq!(q["post_logout_redirect_uri"], format!("http://{}/", s.host));
    assert_eq!(q["id_token_hint"].matches('.').count(), 2, "the ID token");
    assert_eq!(s.auth().await.status, 401, "session cleared");
}

#[tokio::test]
async fn keycloak_unverified_email_is_not_sent_and_fails_an_email_rule() {
    let (mut s, _idp) = keycloak("").await;
    assert_eq!(
        s.who("unverified").await,
        (302, None, Some("unverified".into())),
        "email_verified: false"
    );
    let alice = Some("alice@example.test".to_string());
    assert_eq!(s.who("alice").await, (302, alice.clone(), alice));
    let (mut s, _idp) = keycloak("email_domains = [\"example.test\"]").await;
    let steps = s.login("", "unverified").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 403);
    assert!(
        cb.body.contains("Email address not verified"),
        "{}",
        cb.body
    );
}

// === Generic OIDC: which emails count ===

fn generic(port: u16) -> crate::helpers::node::Idp {
    spawn_oidc_provider(
        "generic",
        "authgate",
        "client-secret",
        &[callback_url(port)],
        json!({}),
    )
}

#[tokio::test]
async fn generic_unverified_email_is_neither_email_nor_user() {
    let port = free_port();
    let idp = generic(port);
    let mut s = serve(port, &oidc_provider_table("oidc", &idp.issuer, ""), "").await;
    assert_eq!(
        s.who("unverified").await,
        (302, None, Some("unverified".into())),
        "email_verified: false; the user falls back to sub"
    );
    for q in [
        "?allowed_email_domains=example.test",
        "?allowed_emails=unverified@example.test",
    ] {
        assert_eq!(s.auth_query(q).await.status, 403, "{q}");
    }
    let alice = Some("alice@example.test".to_string());
    assert_eq!(s.who("alice").await, (302, alice.clone(), alice));
    assert_eq!(
        s.auth_query("?allowed_email_domains=example.test")
            .await
            .status,
        202
    );
}

#[tokio::test]
async fn generic_email_without_email_verified_counts_only_with_the_opt_out() {
    let (port, opt_out_port) = (free_port(), free_port());
    let idp = spawn_oidc_provider(
        "generic",
        "authgate",
        "client-secret",
        &[callback_url(port), callback_url(opt_out_port)],
        json!({}),
    );
    let mut s = serve(port, &oidc_provider_table("oidc", &idp.issuer, ""), "").await;
    assert_eq!(
        s.who("unattested").await,
        (302, None, Some("unattested".into())),
        "no email_verified claim"
    );
    let opt_out = "trust_email_without_email_verified = true";
    let mut s = serve(
        opt_out_port,
        &oidc_provider_table("oidc", &idp.issuer, opt_out),
        "",
    )
    .await;
    let unattested = Some("unattested@example.test".to_string());
    assert_eq!(
        s.who("unattested").await,
        (302, unattested.clone(), unattested)
    );
    assert_eq!(
        s.who("unverified").await,
        (302, None, Some("unverified".into())),
        "an explicit false never counts"
    );
}

#[tokio::test]
async fn generic_domain_rule_refuses_an_unverified_email_with_a_page_and_a_log_line() {
    let port = free_port();
    let idp = generic(port);
    let mut s = serve_binary(
        port,
        &oidc_provider_table("oidc", &idp.issuer, ""),
        "email_domains = [\"example.test\"]",
        "claims-unverified",
    );
    let steps = s.login("", "unverified").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 403);
    assert!(
        cb.body.contains("Email address not verified")
            && cb.body.contains("has not verified your email address"),
        "{}",
        cb.body
    );
    assert_eq!(s.auth().await.status, 401, "no session");
    let log = s.log();
    assert!(
        log.lines().any(|l| l.contains("INFO")
            && l.contains("the identity provider has not verified the email address (email_verified is not true)")),
        "{log}"
    );
    let (status, email, _) = s.who("alice").await;
    assert_eq!(
        (status, email.as_deref()),
        (302, Some("alice@example.test"))
    );
}

// === GitHub (API stand-in) ===

fn spawn_github() -> NodeProcess {
    spawn_node("github-api.mjs", &[])
}

/// GitHub admits every GitHub account: a workspace says so, or sets a rule.
const ANY: &str = "allow_any_account = true";

async fn github(authz: &str, enterprise: bool) -> (Setup, NodeProcess) {
    let gh = spawn_github();
    let base = gh.ready["base"].as_str().unwrap().to_string();
    let api = if enterprise {
        format!("api_url = \"{base}/api/v3\"")
    } else {
        format!("api_url = \"{base}\"")
    };
    let table = format!("[[provider]]\nid = \"github\"\nkind = \"github\"\nissuer = \"{base}\"\nclient_id = \"gh-client\"\nclient_secret_env = \"GH_SECRET\"\n{api}\n");
    (serve(free_port(), &table, authz).await, gh)
}

#[tokio::test]
async fn github_login_uses_the_primary_verified_email_and_lists_orgs_and_teams() {
    let (mut s, _gh) = github(ANY, true).await;
    let steps = s.login("", "octocat").await;
    assert_eq!(
        s.callback(&steps).status,
        302,
        "{}",
        s.callback(&steps).body
    );
    let a = s.auth().await;
    assert_eq!(
        a.header("x-auth-request-email"),
        Some("octocat@example.test"),
        "public email is null; primary verified is used"
    );
    assert_eq!(
        a.header("x-auth-request-preferred-username"),
        Some("octocat")
    );
    assert_eq!(
        a.header("x-auth-request-groups"),
        Some("devlabai,devlabai/platform")
    );
}

#[tokio::test]
async fn github_user_without_a_verified_primary_email_is_refused() {
    let (mut s, _gh) = github(ANY, false).await;
    let steps = s.login("", "unverified").await;
    assert_eq!(s.callback(&steps).status, 400);
}

#[tokio::test]
async fn github_org_rule_denies_outsiders_and_finds_orgs_on_later_pages() {
    let (mut s, _gh) = github("groups = [\"devlabai\"]", false).await;
    let steps = s.login("", "outsider").await;
    assert_eq!(s.callback(&steps).status, 403);
    let steps = s.login("", "manyorgs").await;
    assert_eq!(
        s.callback(&steps).status,
        302,
        "devlabai is on the second page of /user/orgs"
    );
}

#[tokio::test]
async fn github_team_rule() {
    let (mut s, _gh) = github("groups = [\"devlabai/platform\"]", false).await;
    let steps = s.login("", "unverified").await;
    assert_eq!(s.callback(&steps).status, 400);
    let steps = s.login("", "octocat").await;
    assert_eq!(s.callback(&steps).status, 302);
}

#[tokio::test]
async fn github_rate_limit_is_an_unavailable_page() {
    let (mut s, _gh) = github(ANY, false).await;
    let steps = s.login("", "ratelimited").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 503);
    assert!(cb.body.contains("could not be reached"));
}

// === Several providers in one workspace ===

#[tokio::test]
async fn several_providers_get_a_sign_in_page_and_each_works() {
    let port = free_port();
    let idp = spawn_oidc_provider(
        "generic",
        "authgate",
        "client-secret",
        &[callback_url(port)],
        json!({}),
    );
    let gh = spawn_github();
    let base = gh.ready["base"].as_str().unwrap();
    let providers = format!(
        "{}\n[[provider]]\nid = \"github\"\nkind = \"github\"\nissuer = \"{base}\"\napi_url = \"{base}\"\nclient_id = \"gh-client\"\nclient_secret_env = \"GH_SECRET\"\n",
        oidc_provider_table("oidc", &idp.issuer, "display_name = \"Company SSO\"")
    );
    let mut s = serve(port, &providers, ANY).await;
    let page = s
        .client
        .get(&format!("http://{}/oauth2/start?rd=%2Fhello", s.host), &[])
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Sign in with Company SSO") && page.body.contains("Sign in with GitHub"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("/oauth2/start?provider=github&amp;rd=%2Fhello"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script"), "no JavaScript");
    let steps = s.login("&provider=github", "octocat").await;
    assert_eq!(s.callback(&steps).status, 302);
    assert_eq!(
        s.auth().await.header("x-auth-request-email"),
        Some("octocat@example.test")
    );
    let mut other = Client::new();
    let steps = other
        .follow(
            &format!("http://{}/oauth2/start?provider=oidc&rd=%2F", s.host),
            "bob",
        )
        .await;
    assert_eq!(
        steps
            .iter()
            .find(|r| r.url.path() == "/oauth2/callback")
            .unwrap()
            .status,
        302
    );
    let bad = s
        .client
        .get(
            &format!("http://{}/oauth2/start?provider=nope", s.host),
            &[],
        )
        .await;
    assert_eq!(bad.status, 400);
}

// === Sessions: tokens and claims for apps, logout at the IdP, large identities ===

/// Whether a followed login stopped at the IdP's login form.
fn asked_to_log_in(steps: &[Resp]) -> bool {
    steps.iter().any(|r| r.body.contains("name=\"login\""))
}

/// The value of the hidden input `name` in a page.
fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\""))?;
    let tag_start = body[..at].rfind('<')?;
    let tag = &body[tag_start..tag_start + body[tag_start..].find('>')?];
    let v = tag.find("value=\"")? + 7;
    Some(tag[v..v + tag[v..].find('"')?].to_string())
}

#[tokio::test]
async fn generic_logout_at_idp_ends_the_idp_session_with_the_id_token_hint() {
    let port = free_port();
    let idp = generic(port);
    let mut s = serve(
        port,
        &oidc_provider_table("oidc", &idp.issuer, "logout_at_idp = true"),
        "",
    )
    .await;
    let steps = s.login("", "alice").await;
    assert!(asked_to_log_in(&steps));
    assert_eq!(s.callback(&steps).status, 302);
    // Control: while the IdP session lives, a new login needs no form.
    let again = s.login("", "alice").await;
    assert!(!asked_to_log_in(&again), "the IdP logs alice in at once");
    assert_eq!(s.callback(&again).status, 302);

    let out = s
        .client
        .get(&format!("http://{}/oauth2/sign_out", s.host), &[])
        .await;
    assert_eq!(out.status, 302);
    let loc = out.location();
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "authgate");
    assert_eq!(q["post_logout_redirect_uri"], format!("http://{}/", s.host));
    assert_eq!(q["id_token_hint"].matches('.').count(), 2, "the ID token");
    assert_eq!(s.auth().await.status, 401, "authgate's session is gone");
    // The OP asks to confirm (oidc-provider's logout form), then returns to the host's root.
    let page = s.client.get(loc.as_str(), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let xsrf = hidden(&page.body, "xsrf").expect("the logout form");
    let action = page.url.join("/session/end/confirm").unwrap();
    let done = s
        .client
        .post_form(action.as_str(), &[("xsrf", &xsrf), ("logout", "yes")])
        .await;
    assert!((300..400).contains(&done.status), "{}", done.body);
    assert_eq!(done.location().as_str(), format!("http://{}/", s.host));
    // The IdP session is gone: the next login shows the form again.
    let after = s.login("", "alice").await;
    assert!(asked_to_log_in(&after), "the IdP asks again");
}

/// authgate for `ws.localhost:<port>` whose `rd` may also name `docs.localhost:<port>`
/// (`allowed_redirect_hosts`), logging out at an oidc-provider that has both hosts' roots as
/// `post_logout_redirect_uris` (and nothing else: it matches them exactly).
async fn logout_setup() -> (Setup, crate::helpers::node::Idp) {
    let port = free_port();
    let idp = spawn_oidc_provider(
        "generic",
        "authgate",
        "client-secret",
        &[
            callback_url(port),
            format!("http://docs.localhost:{port}/oauth2/callback"),
        ],
        json!({}),
    );
    let host = format!("ws.localhost:{port}");
    let providers = oidc_provider_table("oidc", &idp.issuer, "logout_at_idp = true");
    let toml = format!(
        "allowed_redirect_hosts = [\"docs.localhost:{port}\"]\n{}",
        workspace_toml(&host, &providers, "")
    );
    let config = ConfigDir::new("").workspace("ws", &toml);
    let app = spawn_in_process_at(&config, env_with(SECRETS), port).await;
    let setup = Setup {
        app: Server::InProcess(app),
        port,
        _config: config,
        host,
        client: Client::new(),
    };
    (setup, idp)
}

impl Setup {
    /// Logs alice in (the IdP's session, once made, needs no form) and signs out with `rd`;
    /// returns the redirect to the IdP's `end_session_endpoint` and its query.
    async fn sign_out_at_idp(
        &mut self,
        rd: &str,
    ) -> (url::Url, std::collections::HashMap<String, String>) {
        let steps = self.login("", "alice").await;
        assert_eq!(self.callback(&steps).status, 302);
        let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        let out = self
            .client
            .get(
                &format!("http://{}/oauth2/sign_out?rd={rd}", self.host),
                &[],
            )
            .await;
        assert_eq!(out.status, 302);
        let loc = out.location();
        let q = loc.query_pairs().into_owned().collect();
        (loc, q)
    }

    /// Confirms the IdP's logout form at `end_session` and returns where the IdP sends the
    /// browser.
    async fn confirm_idp_logout(&mut self, end_session: &url::Url) -> url::Url {
        let page = self.client.get(end_session.as_str(), &[]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let xsrf = hidden(&page.body, "xsrf").expect("the logout form");
        let action = page.url.join("/session/end/confirm").unwrap();
        let done = self
            .client
            .post_form(action.as_str(), &[("xsrf", &xsrf), ("logout", "yes")])
            .await;
        assert!((300..400).contains(&done.status), "{}", done.body);
        done.location()
    }
}

#[tokio::test]
async fn logout_at_idp_returns_to_the_root_of_the_validated_rd() {
    let (mut s, _idp) = logout_setup().await;
    let home = format!("http://{}/", s.host);
    let docs = format!("http://docs.localhost:{}/", s.port);
    // A path stays on the host signed out from: its root is what the IdP has registered.
    for rd in ["/bye?x=1", "/", &format!("http://{}/deep/page", s.host)] {
        let (_, q) = s.sign_out_at_idp(rd).await;
        assert_eq!(q["post_logout_redirect_uri"], home, "rd {rd}");
        assert_eq!(q["id_token_hint"].matches('.').count(), 2);
        assert_eq!(s.auth().await.status, 401, "authgate's session is gone");
    }
    // An allowed other host: the root of its origin, and the IdP sends the browser there.
    let (end_session, q) = s.sign_out_at_idp(&format!("{docs}guide?x=1")).await;
    assert_eq!(q["post_logout_redirect_uri"], docs);
    assert_eq!(s.confirm_idp_logout(&end_session).await.as_str(), docs);
    // The IdP session ended: the next login shows the form again.
    assert!(asked_to_log_in(&s.login("", "alice").await));
}

#[tokio::test]
async fn logout_at_idp_never_sends_a_refused_rd_to_the_idp() {
    let (mut s, _idp) = logout_setup().await;
    let home = format!("http://{}/", s.host);
    let hostile = [
        "//evil.example".to_string(),
        "https://evil.example/".to_string(),
        "/\\evil".to_string(),
        "/\\evil.example/x".to_string(),
        format!("http://docs.localhost:{}.evil.example/", s.port),
        format!("http://ws.localhost:{}@evil.example/", s.port),
    ];
    let mut last = None;
    for rd in &hostile {
        let (end_session, q) = s.sign_out_at_idp(rd).await;
        assert_eq!(q["post_logout_redirect_uri"], home, "rd {rd}");
        // (The ID token in `id_token_hint` is base64: left out of the search.)
        assert!(
            q.iter()
                .all(|(k, v)| k == "id_token_hint" || !v.contains("evil")),
            "{end_session}"
        );
        last = Some(end_session);
    }
    // After the IdP's logout the browser is on the host's root, nowhere else.
    let back = s.confirm_idp_logout(&last.unwrap()).await;
    assert_eq!(back.as_str(), home);
}

#[tokio::test]
async fn sign_out_stays_at_authgate_unless_the_provider_asks_for_idp_logout() {
    let port = free_port();
    let idp = generic(port);
    let mut s = serve(port, &oidc_provider_table("oidc", &idp.issuer, ""), "").await;
    let steps = s.login("", "alice").await;
    assert_eq!(s.callback(&steps).status, 302);
    let out = s
        .client
        .get(&format!("http://{}/oauth2/sign_out?rd=/bye", s.host), &[])
        .await;
    assert_eq!(out.status, 302);
    assert_eq!(out.location().path(), "/bye");
    assert_eq!(s.auth().await.status, 401);
}

#[tokio::test]
async fn tokens_and_mapped_claims_reach_apps_when_the_workspace_asks() {
    let port = free_port();
    let idp = generic(port);
    let headers = "pass_access_token = true\npass_authorization_header = true\npass_id_token = true\n[headers.claims]\n\"X-Auth-Request-Name\" = \"name\"\n";
    let mut s = serve_with(
        port,
        &oidc_provider_table("oidc", &idp.issuer, ""),
        "",
        headers,
    )
    .await;
    let steps = s.login("", "alice").await;
    assert_eq!(s.callback(&steps).status, 302);
    let a = s.auth().await;
    assert_eq!(a.status, 202);
    let access = a
        .header("x-auth-request-access-token")
        .expect("access token");
    assert!(!access.is_empty());
    assert_eq!(
        a.header("authorization"),
        Some(format!("Bearer {access}").as_str())
    );
    let id = a.header("x-auth-request-id-token").expect("ID token");
    assert_eq!(id.matches('.').count(), 2);
    assert_eq!(a.header("x-auth-request-name"), Some("Alice Admin"));

    // Without the options, none of it is sent.
    let port = free_port();
    let idp = generic(port);
    let mut s = serve(port, &oidc_provider_table("oidc", &idp.issuer, ""), "").await;
    let steps = s.login("", "alice").await;
    assert_eq!(s.callback(&steps).status, 302);
    let a = s.auth().await;
    for h in [
        "x-auth-request-access-token",
        "authorization",
        "x-auth-request-id-token",
        "x-auth-request-name",
    ] {
        assert_eq!(a.header(h), None, "{h}");
    }
}

#[tokio::test]
async fn two_hundred_groups_split_over_cookies_and_reach_the_app() {
    let port = free_port();
    let idp = generic(port);
    let mut s = serve(port, &oidc_provider_table("oidc", &idp.issuer, ""), "").await;
    let steps = s.login("", "many").await;
    let cb = s.callback(&steps);
    assert_eq!(cb.status, 302, "{}", cb.body);
    let chunks: Vec<String> = (0..3)
        .filter_map(|i| {
            s.client
                .cookie("ws.localhost", &format!("ag-{i}"))
                .map(|v| format!("ag-{i}={v}"))
        })
        .collect();
    assert!(chunks.len() >= 2, "split: {}", chunks.len());
    assert!(chunks.iter().all(|c| c.len() <= 4096));
    let cookie = chunks.join("; ");
    let a = Client::new()
        .get(
            &format!("http://svc:{}/oauth2/auth", s.port),
            &[
                ("x-original-url", &format!("http://{}/hello", s.host)),
                ("cookie", &cookie),
            ],
        )
        .await;
    assert_eq!(a.status, 202);
    assert_eq!(
        a.header("x-auth-request-groups")
            .unwrap()
            .split(',')
            .count(),
        200
    );
    // Sign-out clears every chunk.
    let out = s
        .client
        .get(&format!("http://{}/oauth2/sign_out", s.host), &[])
        .await;
    assert_eq!(out.status, 302);
    for i in 0..3 {
        assert_eq!(
            s.client.cookie("ws.localhost", &format!("ag-{i}")),
            None,
            "ag-{i}"
        );
    }
}
