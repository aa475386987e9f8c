//! Each provider kind through a full code flow: the real `oidc-provider` shaped as Entra ID and
//! as Keycloak, and a GitHub API stand-in (GitHub cannot be reached from tests; the stand-in
//! follows GitHub's documented request and response shapes). Plus several providers in one
//! workspace, and allow/deny cases of the rules at the end of a login.

use serde_json::json;

use crate::helpers::node::{spawn_node, spawn_oidc_provider, NodeProcess};
use crate::helpers::{
    env_with, free_port, spawn_in_process_at, Client, ConfigDir, InProcess, Resp,
};

const ADMINS: &str = "6a5c8f2e-1d3b-4c7a-9e0f-a1b2c3d4e501";
const STAFF: &str = "7b6d9a3f-2e4c-4d8b-8f1a-b2c3d4e5f602";
const AUDITORS: &str = "8c7e0b4a-3f5d-4e9c-9a2b-c3d4e5f6a703";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";

/// authgate serving one workspace `ws.localhost` whose `[[provider]]` table(s) and `[authz]`
/// are given, in front of whatever IdP the test started.
struct Setup {
    app: InProcess,
    _config: ConfigDir,
    host: String,
    client: Client,
}

fn workspace_toml(host: &str, providers: &str, authz: &str) -> String {
    format!(
        "hosts = [\"{host}\"]\nauth = \"oidc\"\ninsecure_http = true\n{providers}\n[session]\ncookie_name = \"ag\"\n[headers]\nuser = \"email\"\nemail = \"email\"\npreferred_username = \"preferred_username\"\ngroups = \"groups\"\n[authz]\n{authz}\n"
    )
}

async fn serve(port: u16, providers: &str, authz: &str) -> Setup {
    let host = format!("ws.localhost:{port}");
    let config = ConfigDir::new("").workspace("ws", &workspace_toml(&host, providers, authz));
    let app = spawn_in_process_at(
        &config,
        env_with(&[
            ("CLIENT_SECRET", "client-secret"),
            ("GH_SECRET", "gh-secret"),
        ]),
        port,
    )
    .await;
    Setup {
        app,
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
        let cookie = format!(
            "ag={}",
            self.client.cookie("ws.localhost", "ag").unwrap_or_default()
        );
        Client::new()
            .get(
                &format!("http://svc:{}/oauth2/auth", self.app.port),
                &[
                    ("x-original-url", &format!("http://{}/hello", self.host)),
                    ("cookie", &cookie),
                ],
            )
            .await
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
async fn azure_user_without_email_gets_preferred_username() {
    let (mut s, _idp) = azure("", "").await;
    let steps = s.login("", "noemail").await;
    assert_eq!(s.callback(&steps).status, 302);
    assert_eq!(
        s.auth().await.header("x-auth-request-email"),
        Some("noemail@example.test")
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
        &oidc_provider_table("keycloak", &idp.issuer, ""),
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
    assert_eq!(s.auth().await.status, 401, "session cleared");
}

// === GitHub (API stand-in) ===

fn spawn_github() -> NodeProcess {
    spawn_node("github-api.mjs", &[])
}

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
    let (mut s, _gh) = github("", true).await;
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
    let (mut s, _gh) = github("", false).await;
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
    let (mut s, _gh) = github("", false).await;
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
    let mut s = serve(port, &providers, "").await;
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
