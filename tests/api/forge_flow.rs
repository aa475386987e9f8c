//! The login flow and `/oauth2/auth` against a forging provider, for every negative case of the
//! callback (state, issuer, ID token) and of the auth endpoint (cookies, hosts, proxies).

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use testkit::config::oidc_workspace;
use url::Url;

use crate::helpers::forge::{spawn_forge, tokens, Forge};
use crate::helpers::{env_with, spawn_in_process, Client, ConfigDir, InProcess, Resp};

pub(crate) const HOST: &str = "mcd.test";
pub(crate) const CLIENT_ID: &str = "authgate-mcd";
pub(crate) const COOKIE: &str = "authgate-mcd";

pub(crate) struct Env {
    pub(crate) forge: Forge,
    pub(crate) app: InProcess,
    pub(crate) client: Client,
}

pub(crate) fn mcd_toml(issuer: &str) -> String {
    format!(
        r#"hosts = ["{HOST}", "mcd2.test"]
auth = "oidc"
insecure_http = true
allowed_redirect_hosts = ["docs.test"]
[[provider]]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_env = "MCD_SECRET"
[session]
cookie_name = "{COOKIE}"
lifetime = "1h"
[headers]
user = "preferred_username"
email = "email"
preferred_username = "preferred_username"
groups = "groups"
[[public]]
path = "/healthz"
"#
    )
}

pub(crate) fn config_for(issuer: &str, server: &str) -> ConfigDir {
    ConfigDir::new(server)
        .workspace("mcd", &mcd_toml(issuer))
        .workspace("perso", "hosts = [\"perso.test\"]\nauth = \"none\"\n")
        .workspace(
            "team",
            &format!(
                "{}[session]\ncookie_name = \"{COOKIE}\"\n",
                oidc_workspace("team.test", issuer, CLIENT_ID, "MCD_SECRET")
            ),
        )
}

pub(crate) async fn setup_with(server: &str) -> Env {
    let forge = spawn_forge().await;
    let config = config_for(&forge.issuer, server);
    let app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    Env::new(forge, app.owning(config))
}

pub(crate) async fn setup() -> Env {
    setup_with("").await
}

/// What `/oauth2/start` sent to the provider.
pub(crate) struct Started {
    pub(crate) authorize: Url,
    pub(crate) state: String,
    pub(crate) nonce: String,
}

impl Env {
    /// `app` in front of `forge`, with a fresh browser.
    pub(crate) fn new(forge: Forge, app: InProcess) -> Self {
        Env {
            forge,
            app,
            client: Client::new(),
        }
    }

    pub(crate) fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.app.port)
    }

    pub(crate) async fn start(&mut self, rd: &str) -> Started {
        self.start_on(HOST, rd).await
    }

    /// Starts an `mcd` login on `host`, one of the workspace's hosts.
    pub(crate) async fn start_on(&mut self, host: &str, rd: &str) -> Started {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("rd", rd)
            .finish();
        let r = self
            .client
            .get(&self.url(host, &format!("/oauth2/start/mcd?{q}")), &[])
            .await;
        assert_eq!(r.status, 302, "{}", r.body);
        let authorize = r.location();
        Started {
            state: param(&authorize, "state"),
            nonce: param(&authorize, "nonce"),
            authorize,
        }
    }

    /// Starts a login and arms the forge to answer its code with a valid ID token.
    pub(crate) async fn start_armed(&mut self, rd: &str) -> Started {
        let s = self.start(rd).await;
        let token = self.good_token(&s.nonce);
        self.forge.answer_id_token(&token);
        s
    }

    pub(crate) fn good_token(&self, nonce: &str) -> String {
        tokens::sign(
            Algorithm::RS256,
            Some(tokens::RSA_KID),
            &claims(&self.forge.issuer, nonce),
        )
    }

    pub(crate) async fn callback(&mut self, query: &[(&str, &str)]) -> Resp {
        self.callback_on(HOST, query).await
    }

    /// The provider's redirect back to `host` with `query`.
    pub(crate) async fn callback_on(&mut self, host: &str, query: &[(&str, &str)]) -> Resp {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.client
            .get(&self.url(host, &format!("/oauth2/callback/mcd?{q}")), &[])
            .await
    }

    /// Logs in at `mcd` with a valid ID token: the session's `Cookie` header value.
    pub(crate) async fn session_cookie(&mut self) -> String {
        let r = self
            .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
            .await;
        assert_eq!(r.status, 302, "{}", r.body);
        format!("{COOKIE}={}", self.client.cookie(HOST, COOKIE).unwrap())
    }

    /// Callback with the given ID token for a fresh login; returns the callback response.
    pub(crate) async fn login_with_token(
        &mut self,
        make: impl FnOnce(&str, &str) -> String,
    ) -> Resp {
        let s = self.start("/app?x=1").await;
        let token = make(&self.forge.issuer, &s.nonce);
        self.forge.answer_id_token(&token);
        let iss = self.forge.issuer.clone();
        self.callback(&[("code", "c-1"), ("state", &s.state), ("iss", &iss)])
            .await
    }

    pub(crate) async fn auth(&mut self, host: &str, extra: &[(&str, &str)]) -> Resp {
        let original = format!("http://{host}/app");
        let mut headers = vec![("x-original-url", original.as_str())];
        headers.extend_from_slice(extra);
        // Sent as NGINX sends it: Host is authgate's service name, the cookie is the browser's.
        let cookie = self
            .client
            .cookie(HOST, COOKIE)
            .map(|c| format!("{COOKIE}={c}"));
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        let mut raw = Client::new();
        let path = format!("/oauth2/auth/{}", workspace_of(host));
        raw.get(&self.url("authgate.authgate.svc", &path), &headers)
            .await
    }
}

/// The value of the query parameter `k` of `url`; panics when it has none.
pub(crate) fn param(url: &Url, k: &str) -> String {
    url.query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {k} in {url}"))
}

/// The workspace whose Ingress serves `host` in [`config_for`]: what the operator writes in
/// `auth-url` (`/oauth2/auth/<workspace>`).
pub(crate) fn workspace_of(host: &str) -> &'static str {
    match host {
        "perso.test" | "new.test" => "perso",
        "team.test" => "team",
        _ => "mcd",
    }
}

pub(crate) fn claims(issuer: &str, nonce: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut c = tokens::id_claims(issuer, CLIENT_ID, now, nonce);
    c["preferred_username"] = json!("alice");
    c
}

pub(crate) fn edited(issuer: &str, nonce: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims(issuer, nonce);
    edit(&mut c);
    c
}

pub(crate) fn rs256(c: &Value) -> String {
    tokens::sign(Algorithm::RS256, Some(tokens::RSA_KID), c)
}

#[tokio::test]
async fn authorization_request_carries_state_nonce_pkce_and_configured_redirect_uri() {
    let mut env = setup().await;
    // Whatever port, scheme or prefix the request claims, the redirect_uri is the configured one.
    let r = env
        .client
        .get(
            &env.url(HOST, "/oauth2/start/mcd?rd=%2Fapp"),
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-port", "8443"),
                ("x-forwarded-prefix", "/evil"),
            ],
        )
        .await;
    assert_eq!(r.status, 302);
    let loc = r.location();
    let q: std::collections::HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert!(loc
        .as_str()
        .starts_with(&format!("{}/authorize?", env.forge.issuer)));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], format!("http://{HOST}/oauth2/callback"));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 22 && q["nonce"].len() >= 22);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let sc = r.set_cookies().join("\n");
    assert!(
        sc.contains("authgate-login-") && sc.contains("HttpOnly") && sc.contains("SameSite=Lax"),
        "{sc}"
    );
    assert!(
        !sc.contains(&q["state"]),
        "the state is not stored in clear"
    );
}

#[tokio::test]
async fn full_flow_sets_session_and_auth_answers_202_with_identity_headers() {
    let mut env = setup().await;
    let s = env.start_armed("/app?x=1&y=a%20b").await;
    let iss = env.forge.issuer.clone();
    let r = env
        .callback(&[("code", "c-1"), ("state", &s.state), ("iss", &iss)])
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        r.raw_location(),
        "/app?x=1&y=a%20b",
        "back to exactly the URL asked for"
    );
    // The token request proved possession of the PKCE verifier and used the configured redirect.
    let form: std::collections::HashMap<_, _> = env
        .forge
        .shared
        .last_token_request
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .collect();
    let challenge = s
        .authorize
        .query_pairs()
        .find(|(k, _)| k == "code_challenge")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        openidconnect::PkceCodeChallenge::from_code_verifier_sha256(
            &openidconnect::PkceCodeVerifier::new(form["code_verifier"].clone())
        )
        .as_str(),
        challenge
    );
    assert_eq!(
        form["redirect_uri"],
        format!("http://{HOST}/oauth2/callback")
    );
    assert_eq!(form["grant_type"], "authorization_code");

    let sc = r.set_cookies().join("\n");
    assert!(
        sc.contains(&format!("{COOKIE}="))
            && sc.contains("HttpOnly")
            && sc.contains("SameSite=Lax"),
        "{sc}"
    );
    let a = env.auth(HOST, &[]).await;
    assert_eq!(a.status, 202);
    assert_eq!(a.header("x-auth-request-user"), Some("alice"));
    assert_eq!(a.header("x-auth-request-email"), Some("alice@example.test"));
    assert_eq!(a.header("x-auth-request-preferred-username"), Some("alice"));
    assert_eq!(a.header("x-auth-request-groups"), Some("g-admins,g-staff"));
    // Per-Ingress narrowing, as oauth2-proxy's query parameters.
    let mut raw = Client::new();
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let h = [
        ("x-original-url", "http://mcd.test/app"),
        ("cookie", cookie.as_str()),
    ];
    for (query, want) in [
        ("allowed_groups=g-admins", 202),
        ("allowed_groups=nobody,g-staff", 202),
        ("allowed_groups=nobody", 403),
        ("allowed_emails=alice@example.test", 202),
        ("allowed_emails=bob@example.test", 403),
        ("allowed_email_domains=example.test", 202),
        ("allowed_email_domains=other.test", 403),
    ] {
        let r = raw
            .get(
                &env.url("authgate.svc", &format!("/oauth2/auth/mcd?{query}")),
                &h,
            )
            .await;
        assert_eq!(r.status, want, "{query}");
    }
}

#[tokio::test]
async fn state_missing_is_refused() {
    let mut env = setup().await;
    env.start("/app").await;
    let r = env.callback(&[("code", "c-1")]).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("no longer valid"));
    assert!(env.client.cookie(HOST, COOKIE).is_none());
}

#[tokio::test]
async fn state_altered_is_refused() {
    let mut env = setup().await;
    let s = env.start_armed("/app").await;
    let altered = format!("{}x", s.state);
    let r = env.callback(&[("code", "c-1"), ("state", &altered)]).await;
    assert_eq!(r.status, 400);
    assert!(env.client.cookie(HOST, COOKIE).is_none());
}

#[tokio::test]
async fn state_replayed_is_refused() {
    let mut env = setup().await;
    let s = env.start_armed("/app").await;
    let login_cookies = env.client.jar[HOST].clone();
    let iss = env.forge.issuer.clone();
    let first = env
        .callback(&[("code", "c-1"), ("state", &s.state), ("iss", &iss)])
        .await;
    assert_eq!(first.status, 302);
    // An attacker replays the same callback with the captured login cookie.
    let mut attacker = Client::new();
    attacker.jar.insert(HOST.into(), login_cookies);
    let q = format!("code=c-1&state={}&iss={}", s.state, iss);
    let r = attacker
        .get(&env.url(HOST, &format!("/oauth2/callback/mcd?{q}")), &[])
        .await;
    assert_eq!(r.status, 400);
    assert!(attacker.cookie(HOST, COOKIE).is_none());
}

#[tokio::test]
async fn parallel_logins_in_two_tabs_both_complete() {
    let mut env = setup().await;
    let a = env.start("/a").await;
    let b = env.start("/b").await;
    let iss = env.forge.issuer.clone();
    let tb = env.good_token(&b.nonce);
    env.forge.answer_id_token(&tb);
    let rb = env
        .callback(&[("code", "c-b"), ("state", &b.state), ("iss", &iss)])
        .await;
    assert_eq!((rb.status, rb.raw_location()), (302, "/b"));
    let ta = env.good_token(&a.nonce);
    env.forge.answer_id_token(&ta);
    let ra = env
        .callback(&[("code", "c-a"), ("state", &a.state), ("iss", &iss)])
        .await;
    assert_eq!((ra.status, ra.raw_location()), (302, "/a"));
}

macro_rules! rejected_id_token {
    ($($name:ident: $make:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let mut env = setup().await;
            let r = env.login_with_token($make).await;
            assert_eq!(r.status, 400, "{}", r.body);
            assert!(r.body.contains("Sign-in failed"));
            assert!(env.client.cookie(HOST, COOKIE).is_none(), "no session");
        }
    )*};
}

rejected_id_token! {
    wrong_nonce_is_refused: |iss, _nonce| rs256(&claims(iss, "another-nonce"));
    wrong_issuer_is_refused: |_iss, nonce| rs256(&claims("https://evil.test", nonce));
    wrong_audience_is_refused: |iss, nonce| rs256(&edited(iss, nonce, |c| c["aud"] = json!("someone-else")));
    foreign_azp_is_refused: |iss, nonce| rs256(&edited(iss, nonce, |c| c["azp"] = json!("someone-else")));
    expired_id_token_is_refused: |iss, nonce| rs256(&edited(iss, nonce, |c| { c["exp"] = json!(1_000_000_000u64); c["iat"] = json!(999_999_000u64); }));
    alg_none_is_refused: |iss, nonce| tokens::unsigned(&claims(iss, nonce));
    hs256_signed_with_the_public_key_is_refused: |iss, nonce| tokens::hs256_with_public_key(Some(tokens::RSA_KID), &claims(iss, nonce));
    token_signed_by_an_unpublished_key_is_refused: |iss, nonce| tokens::sign_rsa2(Some(tokens::RSA_KID), &claims(iss, nonce));
}

#[tokio::test]
async fn unknown_kid_refetches_jwks_once_then_refuses() {
    let mut env = setup().await;
    let before = env.forge.jwks_hits();
    let r = env
        .login_with_token(|iss, nonce| tokens::sign_rsa2(Some("rsa-2"), &claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 400);
    let after_first = env.forge.jwks_hits();
    assert!(after_first > before, "an unknown kid triggers a refetch");
    // A second unknown kid inside the refresh interval does not fetch again.
    let r = env
        .login_with_token(|iss, nonce| tokens::sign_rsa2(Some("rsa-3"), &claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        env.forge.jwks_hits(),
        after_first,
        "at most one refetch per interval"
    );
}

#[tokio::test]
async fn rotated_key_is_picked_up_by_one_refetch() {
    let mut env = setup().await;
    // Warm the cache with the old JWKS.
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302);
    *env.forge.shared.jwks.lock().unwrap() = tokens::jwks_rotated();
    let r = env
        .login_with_token(|iss, nonce| {
            tokens::sign_rsa2(Some(tokens::RSA2_KID), &claims(iss, nonce))
        })
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
}

#[tokio::test]
async fn iss_parameter_of_another_issuer_is_refused() {
    let mut env = setup().await;
    let s = env.start_armed("/app").await;
    let r = env
        .callback(&[
            ("code", "c-1"),
            ("state", &s.state),
            ("iss", "https://evil.test"),
        ])
        .await;
    assert_eq!(r.status, 400);
    assert!(env.client.cookie(HOST, COOKIE).is_none());
}

#[tokio::test]
async fn missing_iss_parameter_is_refused_when_the_provider_advertises_it() {
    let mut env = setup().await;
    let s = env.start_armed("/app").await;
    let r = env.callback(&[("code", "c-1"), ("state", &s.state)]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn missing_iss_parameter_is_accepted_when_the_provider_does_not_advertise_it() {
    let mut env = setup().await;
    *env.forge.shared.iss_supported.lock().unwrap() = false;
    // Discovery is cached from start-up warm-up; a fresh app sees the new metadata.
    let config = config_for(&env.forge.issuer, "");
    env.app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    let s = env.start_armed("/app").await;
    let r = env.callback(&[("code", "c-1"), ("state", &s.state)]).await;
    assert_eq!(r.status, 302, "{}", r.body);
    drop(config);
}

#[tokio::test]
async fn provider_error_gives_a_readable_page() {
    let mut env = setup().await;
    let s = env.start("/app").await;
    let r = env
        .callback(&[
            ("state", &s.state),
            ("error", "access_denied"),
            ("error_description", "<b>user said no</b>"),
        ])
        .await;
    assert_eq!(r.status, 403);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("access_denied"));
    assert!(
        r.body.contains("&lt;b&gt;user said no&lt;/b&gt;"),
        "escaped: {}",
        r.body
    );
}

#[tokio::test]
async fn token_endpoint_refusal_is_a_page_not_a_500() {
    let mut env = setup().await;
    let s = env.start("/app").await;
    env.forge
        .answer(json!({"error": "invalid_grant", "error_description": "code expired"}));
    let iss = env.forge.issuer.clone();
    let r = env
        .callback(&[("code", "c-1"), ("state", &s.state), ("iss", &iss)])
        .await;
    assert_eq!(r.status, 400);
    let s = env.start("/app").await;
    env.forge
        .answer(json!({"access_token": "x", "token_type": "Bearer"}));
    let r = env
        .callback(&[("code", "c-1"), ("state", &s.state), ("iss", &iss)])
        .await;
    assert_eq!(r.status, 400, "no id_token");
}

#[tokio::test]
async fn bad_cookies_get_401_never_500() {
    let mut env = setup().await;
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302);
    let good = env.client.cookie(HOST, COOKIE).unwrap();
    let mut raw = Client::new();
    let mut flipped = good.clone().into_bytes();
    flipped[10] ^= 1;
    let cases = [
        ("tampered", String::from_utf8_lossy(&flipped).to_string()),
        ("truncated", good[..good.len() / 2].to_string()),
        ("garbage", "not-a-session".to_string()),
        ("oversized", "A".repeat(5000)),
        ("quoted", format!("\"{good}x\"")),
    ];
    for (name, value) in cases {
        let cookie = format!("{COOKIE}={value}");
        let r = raw
            .get(
                &env.url("authgate.svc", "/oauth2/auth/mcd"),
                &[("x-original-url", "http://mcd.test/"), ("cookie", &cookie)],
            )
            .await;
        assert_eq!(r.status, 401, "{name}");
    }
    let cookie = format!("{COOKIE}={good}");
    let ok = raw
        .get(
            &env.url("authgate.svc", "/oauth2/auth/mcd"),
            &[("x-original-url", "http://mcd.test/"), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(ok.status, 202);
}

#[tokio::test]
async fn a_session_of_one_workspace_is_refused_at_another() {
    let mut env = setup().await;
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302);
    // Same cookie name, same provider, same client: only the workspace differs.
    let a = env.auth("team.test", &[]).await;
    assert_eq!(a.status, 401);
    assert_eq!(env.auth(HOST, &[]).await.status, 202);
}

#[tokio::test]
async fn unknown_host_is_403_and_auth_none_is_202_without_identity() {
    let mut env = setup().await;
    let mut raw = Client::new();
    let r = raw
        .get(
            &env.url("authgate.svc", "/oauth2/auth/mcd"),
            &[("x-original-url", "http://nowhere.test/")],
        )
        .await;
    assert_eq!(
        r.status, 403,
        "a host of no workspace: refused, not a sign-in"
    );
    let r = raw
        .get(&env.url("nowhere.test", "/oauth2/start/mcd?rd=/"), &[])
        .await;
    assert_eq!(r.status, 403);
    let r = env.auth("perso.test", &[]).await;
    assert_eq!(r.status, 202);
    assert!(
        r.header("x-auth-request-user").is_none() && r.header("x-auth-request-email").is_none()
    );
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let mut env = setup_with("trusted_proxies = [\"10.0.0.0/8\"]\n").await;
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302);
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let mut raw = Client::new();
    // From 127.0.0.1, which is not trusted here: X-Original-URL and X-Forwarded-Host do not count.
    let r = raw
        .get(
            &env.url("authgate.svc", "/oauth2/auth/mcd"),
            &[
                ("x-original-url", "http://mcd.test/"),
                ("x-forwarded-host", "mcd.test"),
                ("cookie", &cookie),
            ],
        )
        .await;
    assert_eq!(
        r.status, 403,
        "forwarding ignored: judged by its Host, authgate.svc, no host of mcd"
    );
    let r = raw
        .get(
            &env.url(HOST, "/oauth2/auth/mcd"),
            &[
                ("x-original-url", "http://perso.test/"),
                ("cookie", &cookie),
            ],
        )
        .await;
    assert_eq!(r.status, 202, "judged by its own Host");
    assert_eq!(r.header("x-auth-request-email"), Some("alice@example.test"));
}

#[tokio::test]
async fn sign_out_clears_the_session_and_redirects_to_a_validated_rd() {
    let mut env = setup().await;
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302);
    let r = env
        .client
        .get(&env.url(HOST, "/oauth2/sign_out/mcd?rd=%2Fbye"), &[])
        .await;
    assert_eq!((r.status, r.raw_location()), (302, "/bye"));
    assert!(env.client.cookie(HOST, COOKIE).is_none());
    assert_eq!(env.auth(HOST, &[]).await.status, 401);
    let r = env
        .client
        .send(
            "POST",
            &env.url(HOST, "/oauth2/sign_out/mcd?rd=https%3A%2F%2Fevil.test%2F"),
            &[],
            None,
        )
        .await;
    assert_eq!((r.status, r.raw_location()), (302, "/"));
}

#[tokio::test]
async fn unreachable_provider_breaks_neither_start_up_nor_sessions_nor_other_workspaces() {
    // A provider on a closed port: start-up and /ready do not wait for it.
    let dead = format!("http://127.0.0.1:{}", crate::helpers::free_port());
    let mut env = setup().await;
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302);
    let config = config_for(&dead, "");
    let dead_app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    let mut c = Client::new();
    let ready = c.get(&format!("{}/ready", dead_app.base()), &[]).await;
    assert_eq!(ready.status, 200);
    let start = c
        .get(
            &format!("http://{HOST}:{}/oauth2/start/mcd?rd=/", dead_app.port),
            &[],
        )
        .await;
    assert_eq!(start.status, 503);
    assert!(start.body.contains("could not be reached"));
    // The session minted by the other instance (same master secret) still passes here.
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let a = c
        .get(
            &format!("http://svc:{}/oauth2/auth/mcd", dead_app.port),
            &[("x-original-url", "http://mcd.test/"), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(a.status, 202);
    let p = c
        .get(
            &format!("http://svc:{}/oauth2/auth/perso", dead_app.port),
            &[("x-original-url", "http://perso.test/")],
        )
        .await;
    assert_eq!(p.status, 202);
}

#[tokio::test]
async fn reload_keeps_the_old_config_when_the_new_one_is_broken() {
    let forge = spawn_forge().await;
    let config = config_for(&forge.issuer, "");
    let env = env_with(&[("MCD_SECRET", "s3cret")]);
    let app = spawn_in_process(&config, env.clone()).await;
    std::fs::write(
        config.path().join("workspaces/perso.toml"),
        "hosts = [\"perso.test\", \"mcd.test\"]\nauth = \"none\"\n",
    )
    .unwrap();
    let err = authgate::server::reload(&app.state, config.path(), &env).unwrap_err();
    assert!(
        err.to_string()
            .contains("workspaces/perso.toml: hosts[1]: `mcd.test` is already served"),
        "{err}"
    );
    let mut c = Client::new();
    let r = c
        .get(
            &format!("http://svc:{}/oauth2/auth/mcd", app.port),
            &[("x-original-url", "http://mcd.test/")],
        )
        .await;
    assert_eq!(r.status, 401, "mcd still requires a login");
    std::fs::write(
        config.path().join("workspaces/perso.toml"),
        "hosts = [\"perso.test\", \"new.test\"]\nauth = \"none\"\n",
    )
    .unwrap();
    authgate::server::reload(&app.state, config.path(), &env).unwrap();
    let r = c
        .get(
            &format!("http://svc:{}/oauth2/auth/perso", app.port),
            &[("x-original-url", "http://new.test/")],
        )
        .await;
    assert_eq!(r.status, 202, "the valid new config is live");
}

macro_rules! open_redirect_falls_back {
    ($($name:ident: $rd:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let mut env = setup().await;
            let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", $rd).finish();
            let r = env.client.get(&env.url(HOST, &format!("/oauth2/start/mcd?{q}")), &[]).await;
            let loc = r.location();
            let state = loc.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
            let nonce = loc.query_pairs().find(|(k, _)| k == "nonce").unwrap().1.into_owned();
            let token = rs256(&claims(&env.forge.issuer, &nonce));
            env.forge.answer_id_token(&token);
            let iss = env.forge.issuer.clone();
            let r = env.callback(&[("code", "c"), ("state", &state), ("iss", &iss)]).await;
            assert_eq!((r.status, r.raw_location()), (302, "/"), "rd {:?}", $rd);
            let out = env.client.get(&env.url(HOST, &format!("/oauth2/sign_out/mcd?{q}")), &[]).await;
            assert_eq!(out.raw_location(), "/", "sign_out rd {:?}", $rd);
        }
    )*};
}

open_redirect_falls_back! {
    rd_scheme_relative: "//evil.test/x";
    rd_backslash: "/\\evil.test";
    rd_userinfo: "https://mcd.test@evil.test/";
    rd_suffix_host: "https://mcd.test.evil.test/";
    rd_other_host: "https://evil.test/";
    rd_control_characters: "/\t/evil.test";
    rd_javascript: "javascript:alert(document.cookie)";
    rd_data: "data:text/html,<script>alert(1)</script>";
    rd_missing_slashes: "https:evil.test";
    rd_http_on_https_workspace_host_with_port: "https://mcd.test:8443/";
}

#[tokio::test]
async fn allowed_redirect_host_and_absolute_same_host_rd_are_kept() {
    let mut env = setup().await;
    for rd in ["http://docs.test/guide?a=1", "http://mcd.test/app?q=%2520x"] {
        let s = env.start_armed(rd).await;
        let iss = env.forge.issuer.clone();
        let r = env
            .callback(&[("code", "c"), ("state", &s.state), ("iss", &iss)])
            .await;
        assert_eq!((r.status, r.raw_location()), (302, rd));
    }
}

#[tokio::test]
async fn bearer_jwt_from_the_workspace_provider_is_accepted_from_cached_keys() {
    let mut env = setup().await;
    // A first login makes the provider's metadata and keys known, as the warm-up does.
    assert_eq!(
        env.login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
            .await
            .status,
        302
    );
    let iss = env.forge.issuer.clone();
    let bearer = |t: &str| format!("Bearer {t}");
    let call = |t: String| {
        let url = env.url("authgate.svc", "/oauth2/auth/mcd");
        async move {
            let h = bearer(&t);
            Client::new()
                .get(
                    &url,
                    &[
                        ("x-original-url", "http://mcd.test/api"),
                        ("authorization", h.as_str()),
                    ],
                )
                .await
        }
    };
    let good = rs256(&edited(&iss, "", |c| {
        drop(c.as_object_mut().unwrap().remove("nonce"))
    }));
    let ok = call(good.clone()).await;
    assert_eq!(ok.status, 202);
    assert_eq!(
        ok.header("x-auth-request-email"),
        Some("alice@example.test")
    );
    assert_eq!(
        call(good).await.status,
        202,
        "served again, from the verified-token cache"
    );
    let es = tokens::sign(Algorithm::ES256, Some(tokens::EC_KID), &claims(&iss, "n"));
    assert_eq!(call(es).await.status, 202, "ES256");
    for (name, token) in [
        (
            "wrong audience",
            rs256(&edited(&iss, "n", |c| c["aud"] = json!("other-client"))),
        ),
        ("other issuer", rs256(&claims("https://evil.test", "n"))),
        (
            "expired",
            rs256(&edited(&iss, "n", |c| c["exp"] = json!(1_000_000_000u64))),
        ),
        ("alg none", tokens::unsigned(&claims(&iss, "n"))),
        (
            "hs256 with public key",
            tokens::hs256_with_public_key(Some(tokens::RSA_KID), &claims(&iss, "n")),
        ),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        assert_eq!(call(token).await.status, 401, "{name}");
    }
}

/// `/oauth2/auth/mcd` as NGINX asks it, with `Authorization: Bearer <token>`.
async fn auth_with_bearer(env: &Env, token: &str) -> Resp {
    Client::new()
        .get(
            &env.url("authgate.svc", "/oauth2/auth/mcd"),
            &[
                ("x-original-url", "http://mcd.test/api"),
                ("authorization", &format!("Bearer {token}")),
            ],
        )
        .await
}

/// A back-channel logout token of the workspace's own provider, for its client and naming a
/// user, signed with the provider's key: never a bearer credential, typed or not.
#[tokio::test]
async fn a_logout_token_never_passes_as_a_bearer_token() {
    let mut env = setup().await;
    assert_eq!(
        env.login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
            .await
            .status,
        302
    );
    let iss = env.forge.issuer.clone();
    let logout = edited(&iss, "", |c| {
        let c = c.as_object_mut().unwrap();
        c.remove("nonce");
        c.insert("jti".into(), json!("jti-bearer"));
        c.insert(
            "events".into(),
            json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
        );
    });
    let typed = |typ: Option<&str>| {
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(tokens::RSA_KID.into());
        header.typ = typ.map(str::to_string);
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(tokens::RSA_PRIVATE.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &logout, &key).unwrap()
    };
    for (name, token) in [
        ("typ logout+jwt", typed(Some("logout+jwt"))),
        ("untyped, with events", typed(None)),
    ] {
        let r = auth_with_bearer(&env, &token).await;
        assert_eq!(r.status, 401, "{name}");
        assert!(r.header("x-auth-request-user").is_none(), "{name}");
    }
    // The same claims as an access token pass: only the logout token's marks refuse it.
    let access = rs256(&edited(&iss, "", |c| {
        drop(c.as_object_mut().unwrap().remove("nonce"))
    }));
    assert_eq!(auth_with_bearer(&env, &access).await.status, 202);
}

/// `bearer = false`: a token that would pass elsewhere is refused, and the session still counts.
#[tokio::test]
async fn a_workspace_with_bearer_off_refuses_every_bearer_token() {
    let forge = spawn_forge().await;
    let ws = mcd_toml(&forge.issuer).replace("auth = \"oidc\"", "auth = \"oidc\"\nbearer = false");
    let config = ConfigDir::new("").workspace("mcd", &ws);
    let app = spawn_in_process(&config, env_with(&[("MCD_SECRET", "s3cret")])).await;
    let mut env = Env::new(forge, app.owning(config));
    assert_eq!(
        env.login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
            .await
            .status,
        302
    );
    let iss = env.forge.issuer.clone();
    let good = rs256(&edited(&iss, "", |c| {
        drop(c.as_object_mut().unwrap().remove("nonce"))
    }));
    assert_eq!(auth_with_bearer(&env, &good).await.status, 401);
    let cookie = env.client.cookie(HOST, COOKIE).unwrap();
    let r = Client::new()
        .get(
            &env.url("authgate.svc", "/oauth2/auth/mcd"),
            &[
                ("x-original-url", "http://mcd.test/api"),
                ("cookie", &format!("{COOKIE}={cookie}")),
            ],
        )
        .await;
    assert_eq!(r.status, 202, "the session still counts");
}

#[tokio::test]
async fn bearer_with_unknown_kid_is_refused_and_refetches_in_the_background() {
    let mut env = setup().await;
    assert_eq!(
        env.login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
            .await
            .status,
        302
    );
    *env.forge.shared.jwks.lock().unwrap() = tokens::jwks_rotated();
    let before = env.forge.jwks_hits();
    let token = tokens::sign_rsa2(Some(tokens::RSA2_KID), &claims(&env.forge.issuer, "n"));
    let h = format!("Bearer {token}");
    let url = env.url("authgate.svc", "/oauth2/auth/mcd");
    let headers = [
        ("x-original-url", "http://mcd.test/api"),
        ("authorization", h.as_str()),
    ];
    let first = Client::new().get(&url, &headers).await;
    assert_eq!(
        first.status, 401,
        "no network on the request path: refused now"
    );
    // The background refetch lands; wait for it by watching the forge, then the token passes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = Client::new().get(&url, &headers).await;
        if r.status == 202 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotated key never picked up"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(env.forge.jwks_hits(), before + 1, "exactly one refetch");
}

// === Server-side sessions in Redis ===

/// authgate with `mcd` keeping its sessions in `redis`, in front of the forge at `issuer`.
async fn spawn_redis_app(
    issuer: &str,
    redis: &crate::helpers::redis::Redis,
) -> crate::helpers::InProcess {
    let ws = mcd_toml(issuer).replace("lifetime = \"1h\"", "lifetime = \"1h\"\nstore = \"redis\"");
    let config = ConfigDir::new("[redis]\nurl_env = \"REDIS_URL\"\n").workspace("mcd", &ws);
    spawn_in_process(
        &config,
        env_with(&[("MCD_SECRET", "s3cret"), ("REDIS_URL", &redis.url())]),
    )
    .await
    .owning(config)
}

async fn setup_redis(redis: &crate::helpers::redis::Redis) -> Env {
    let forge = spawn_forge().await;
    let app = spawn_redis_app(&forge.issuer, redis).await;
    crate::helpers::redis::until_store_connected(app.port).await;
    Env::new(forge, app)
}

#[tokio::test]
async fn redis_sessions_are_stored_server_side_and_sign_out_revokes_copies() {
    let redis = crate::helpers::redis::spawn_redis();
    let mut env = setup_redis(&redis).await;
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let keys = redis.session_keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("authgate:session:mcd:"));
    let copied = env.client.cookie(HOST, COOKIE).unwrap();
    let a = env.auth(HOST, &[]).await;
    assert_eq!(
        (a.status, a.header("x-auth-request-email")),
        (202, Some("alice@example.test"))
    );
    let out = env
        .client
        .get(&env.url(HOST, "/oauth2/sign_out/mcd"), &[])
        .await;
    assert_eq!(out.status, 302);
    assert!(redis.session_keys().await.is_empty(), "the record is gone");
    // A copy of the cookie taken before sign-out no longer authenticates.
    let cookie = format!("{COOKIE}={copied}");
    let replay = Client::new()
        .get(
            &env.url("svc", "/oauth2/auth/mcd"),
            &[("x-original-url", "http://mcd.test/"), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(replay.status, 401);
}

#[tokio::test]
async fn redis_down_gives_401_on_auth_and_a_503_page_at_login_never_500() {
    let mut redis = crate::helpers::redis::spawn_redis();
    let mut env = setup_redis(&redis).await;
    assert_eq!(
        env.login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
            .await
            .status,
        302
    );
    redis.stop();
    // Past the short in-process cache, the session must be read again, and cannot be.
    let fresh = setup_redis_again(&env, &redis).await;
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let a = Client::new()
        .get(
            &format!("http://svc:{}/oauth2/auth/mcd", fresh.port),
            &[("x-original-url", "http://mcd.test/"), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(a.status, 401);
    let r = env
        .login_with_token(|iss, nonce| rs256(&claims(iss, nonce)))
        .await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("could not be saved"));
}

/// A second instance on the same config and Redis URL, with a cold cache.
async fn setup_redis_again(
    env: &Env,
    redis: &crate::helpers::redis::Redis,
) -> crate::helpers::InProcess {
    spawn_redis_app(&env.forge.issuer, redis).await
}

#[tokio::test]
async fn userinfo_answers_the_sessions_identity_as_json_and_401_without_one() {
    let mut env = setup().await;
    let r = env
        .client
        .get(&env.url(HOST, "/oauth2/userinfo/mcd"), &[])
        .await;
    assert_eq!(r.status, 401, "no session");
    let r = env
        .login_with_token(|iss, nonce| {
            rs256(&edited(iss, nonce, |c| {
                c["groups"] = json!(["g-admins", "g-staff"])
            }))
        })
        .await;
    assert_eq!(r.status, 302);
    let r = env
        .client
        .get(&env.url(HOST, "/oauth2/userinfo/mcd"), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        body,
        json!({
            "user": "alice",
            "email": "alice@example.test",
            "preferredUsername": "alice",
            "groups": ["g-admins", "g-staff"],
        })
    );
    // The same cookie carried to another workspace's host: no identity there.
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let r = Client::new()
        .get(
            &env.url("team.test", "/oauth2/userinfo/team"),
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(r.status, 401);
}
