//! Session refresh (`session.refresh_interval`) against the real `oidc-provider`, which issues
//! refresh tokens (its `issueRefreshToken` policy, `tests/support/node/idp.mjs`) and lets a
//! test change a user's groups, revoke their grants and count refresh grants at its token
//! endpoint (`/test/…`). The browser's side goes through the real NGINX, configured as
//! ingress-nginx renders the auth annotations: the renewed cookie reaches the browser as the
//! `Set-Cookie` ingress-nginx copies from the auth answer.
//!
//! authgate runs in this process on a clock the test moves on, so "after the interval" needs no
//! waiting; its log is captured (the tests run on one thread, the server's tasks too).

use std::sync::Arc;
use std::time::Duration;

use authgate::server::Application;
use serde_json::{json, Value};

use crate::helpers::browser::{run_browser, screenshots};
use crate::helpers::log::capture;
use crate::helpers::nginx::{spawn_nginx_at, Nginx, Site};
use crate::helpers::node::{spawn_oidc_provider, Idp};
use crate::helpers::redis::{eventually, spawn_redis, until_store_connected, Redis};
use crate::helpers::upstream::{spawn_upstream, Upstream};
use crate::helpers::{
    env_with, free_port, serve_in_process, spawn_authgate, Client, ConfigDir, InProcess,
    MovedClock, Resp,
};

const HOST: &str = "ws.localhost";
/// g-auditors' object id in the Entra-shaped IdP (`tests/support/node/idp.mjs`).
const AUDITORS: &str = "8c7e0b4a-3f5d-4e9c-9a2b-c3d4e5f6a703";
const INTERVAL: u64 = 300;

/// oidc-provider, authgate (workspace `ws`, refreshed every [`INTERVAL`] seconds, admitting
/// `g-admins` only), an upstream that echoes its headers, and NGINX in front.
struct Refreshing {
    idp: Idp,
    app: InProcess,
    clock: Arc<MovedClock>,
    nginx: Nginx,
    _upstream: Upstream,
    _config: ConfigDir,
    _redis: Option<Redis>,
    browser: Client,
}

async fn platform(idp_config: Value, redis: bool) -> Refreshing {
    platform_with(Shape::Generic, idp_config, redis).await
}

/// The `[[provider]]` of the workspace: its kind, issuer and kind-specific keys.
struct Provider<'a> {
    kind: &'a str,
    issuer: &'a str,
    extra: &'a str,
}

/// Workspace `ws` on `ws.localhost:<nginx_port>`, refreshed every `interval`, admitting the
/// group `admit` only, passing the access token to apps.
fn workspace_toml(
    p: &Provider<'_>,
    nginx_port: u16,
    store: &str,
    admit: &str,
    interval: &str,
) -> String {
    format!(
        r#"hosts = ["{HOST}:{nginx_port}"]
auth = "oidc"
insecure_http = true
[[provider]]
id = "sso"
kind = "{kind}"
issuer = "{issuer}"
client_id = "authgate"
client_secret_env = "CLIENT_SECRET"
{extra}[session]
cookie_name = "ag"
refresh_interval = "{interval}"
{store}[authz]
groups = ["{admit}"]
[headers]
user = "sub"
email = "email"
groups = "groups"
pass_access_token = true
"#,
        kind = p.kind,
        issuer = p.issuer,
        extra = p.extra,
    )
}

/// Which IdP the test's oidc-provider plays, with the provider table and admission rule
/// authgate gets for it.
#[derive(Clone, Copy)]
enum Shape {
    /// Generic OIDC; `g-admins` admitted.
    Generic,
    /// Entra ID with a user in too many groups for the token (resolved through the Graph
    /// stand-in); g-auditors' object id admitted.
    EntraOverage,
    /// Keycloak; the realm role `admin` (read from the access token) admitted.
    Keycloak,
}

async fn platform_with(shape: Shape, idp_config: Value, redis: bool) -> Refreshing {
    let nginx_port = free_port();
    let callback = format!("http://{HOST}:{nginx_port}/oauth2/callback");
    let name = match shape {
        Shape::Generic => "generic",
        Shape::EntraOverage => "azure",
        Shape::Keycloak => "keycloak",
    };
    let mut idp_config = idp_config;
    if let Shape::EntraOverage = shape {
        idp_config["tenant"] = json!("11111111-2222-3333-4444-555555555555");
    }
    let idp = spawn_oidc_provider(name, "authgate", "client-secret", &[callback], idp_config);
    let (kind, extra, admit) = match shape {
        Shape::Generic => ("oidc", String::new(), "g-admins"),
        Shape::EntraOverage => (
            "azure",
            format!(
                "resolve_group_overage = true\ngraph_url = \"http://127.0.0.1:{}/\"\n",
                idp.process.ready["port"]
            ),
            AUDITORS,
        ),
        Shape::Keycloak => ("keycloak", String::new(), "admin"),
    };
    let redis = redis.then(spawn_redis);
    let store = if redis.is_some() {
        "store = \"redis\"\n"
    } else {
        ""
    };
    let ws = workspace_toml(
        &Provider {
            kind,
            issuer: &idp.issuer,
            extra: &extra,
        },
        nginx_port,
        store,
        admit,
        &format!("{INTERVAL}s"),
    );
    let server = if redis.is_some() {
        "[redis]\nurl_env = \"REDIS_URL\"\n"
    } else {
        ""
    };
    let config = ConfigDir::new(server).workspace("ws", &ws);
    let mut env = env_with(&[("CLIENT_SECRET", "client-secret")]);
    if let Some(r) = &redis {
        env.insert("REDIS_URL".into(), r.url());
    }
    let clock = Arc::new(MovedClock::default());
    let app = Application::build(
        config.path(),
        // Any free port: NGINX is told which once it is bound.
        Some(([127, 0, 0, 1], 0).into()),
        Arc::new(env),
    )
    .await
    .unwrap_or_else(|e| panic!("authgate did not start: {e}"))
    .with_clock(clock.clone());
    let app = serve_in_process(app);
    let upstream = spawn_upstream().await;
    let nginx = spawn_nginx_at(
        &[Site::protected(HOST, &["/hello"])],
        app.port,
        upstream.port,
        nginx_port,
    );
    Refreshing {
        idp,
        app,
        clock,
        nginx,
        _upstream: upstream,
        _config: config,
        _redis: redis,
        browser: Client::new(),
    }
}

impl Refreshing {
    fn page(&self) -> String {
        format!("{}/hello", self.nginx.url(HOST))
    }

    /// Logs `user` in through NGINX, as a browser does from a protected page.
    async fn login(&mut self, user: &str) {
        let page = self.page();
        let steps = self.browser.follow(&page, user).await;
        let last = steps.last().unwrap();
        assert_eq!(
            (last.status, last.url.as_str()),
            (200, page.as_str()),
            "{}",
            last.body
        );
    }

    /// The session cookie the browser holds.
    fn cookie(&self) -> String {
        self.browser.cookie(HOST, "ag").expect("a session cookie")
    }

    /// `/oauth2/auth/ws` straight at authgate, with `cookie`.
    async fn auth(&self, cookie: &str) -> Resp {
        auth_at(self.app.port, self.nginx.port, cookie.to_string()).await
    }

    /// The IdP's counters: refresh grants answered and refused.
    async fn idp_stats(&self) -> (u64, u64) {
        let s = stats(&self.idp).await;
        (
            s["refresh_grants"].as_u64().unwrap(),
            s["refresh_errors"].as_u64().unwrap(),
        )
    }

    async fn idp_control(&self, path: &str) {
        let r = Client::new()
            .post_form(&control_url(&self.idp, path), &[])
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }

    /// Every refresh token the IdP issued.
    async fn refresh_tokens(&self) -> Vec<String> {
        let s = stats(&self.idp).await;
        let tokens: Vec<String> = s["refresh_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert!(!tokens.is_empty(), "the IdP issued refresh tokens");
        tokens
    }

    /// `authgate_session_refreshes_total` for `result`, from `/metrics`.
    async fn refreshes(&self, result: &str) -> u64 {
        let text = Client::new()
            .get(&format!("http://127.0.0.1:{}/metrics", self.app.port), &[])
            .await
            .body;
        let series =
            format!("authgate_session_refreshes_total{{workspace=\"ws\",result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// The IdP's `/test/stats`: refresh grants answered and refused, refresh tokens issued.
async fn stats(idp: &Idp) -> Value {
    let body = Client::new()
        .get(&control_url(idp, "/test/stats"), &[])
        .await
        .body;
    serde_json::from_str(&body).unwrap()
}

/// A test control of the IdP (`/test/…`), on its loopback port.
fn control_url(idp: &Idp, path: &str) -> String {
    let port = url::Url::parse(&idp.issuer).unwrap().port().unwrap();
    format!("http://127.0.0.1:{port}{path}")
}

/// `/oauth2/auth/ws` at the authgate on `port`, for a page of the site on port `site`, with the
/// session cookie `cookie`.
async fn auth_at(port: u16, site: u16, cookie: String) -> Resp {
    Client::new()
        .get(
            &format!("http://127.0.0.1:{port}/oauth2/auth/ws"),
            &[
                ("x-original-url", &format!("http://{HOST}:{site}/hello")),
                ("cookie", &format!("ag={cookie}")),
            ],
        )
        .await
}

/// The answers to `/oauth2/auth/ws` sent at once with `cookie` to each port of `ports`.
async fn at_once(ports: impl IntoIterator<Item = u16>, site: u16, cookie: &str) -> Vec<Resp> {
    let mut set = tokio::task::JoinSet::new();
    for port in ports {
        set.spawn(auth_at(port, site, cookie.to_string()));
    }
    set.join_all().await
}

#[tokio::test]
async fn a_due_session_is_renewed_through_nginx_and_a_group_removed_at_the_idp_is_gone() {
    let (log, _guard) = capture();
    let mut p = platform(json!({}), false).await;
    p.login("alice").await;
    let first = p.cookie();
    let before = p.auth(&first).await;
    assert_eq!(before.status, 202);
    let token_before = before
        .header("x-auth-request-access-token")
        .unwrap()
        .to_string();

    // Within the interval: no refresh, no cookie.
    p.clock.advance(INTERVAL - 10);
    let r = p.browser.get(&p.page(), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    assert_eq!(p.idp_stats().await, (0, 0));

    // Past it: the page is answered at once, with the renewed cookie that NGINX passed on.
    p.clock.advance(20);
    let r = p.browser.get(&p.page(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("x-auth-request-user: alice"), "{}", r.body);
    let ok_page = r.body.clone();
    assert_eq!(r.set_cookies().len(), 1, "{:?}", r.set_cookies());
    let renewed = p.cookie();
    assert_ne!(renewed, first, "the browser holds the renewed session");
    assert_eq!(p.idp_stats().await, (1, 0));
    // The app's token is the new one; the renewed cookie needs no refresh for an interval.
    let after = p.auth(&renewed).await;
    assert_eq!(after.status, 202);
    let token_after = after.header("x-auth-request-access-token").unwrap();
    assert_ne!(
        token_after, token_before,
        "the access token passed to apps is the current one"
    );
    assert!(after.set_cookies().is_empty());
    assert_eq!(p.idp_stats().await, (1, 0));

    // The next renewal reaches the browser on a page the app does not have, too (the manifests'
    // auth-always-set-cookie).
    p.clock.advance(INTERVAL);
    let missing = p.browser.get(&format!("{}/missing", p.page()), &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.set_cookies().len(),
        1,
        "{:?}",
        missing.set_cookies()
    );
    assert_ne!(p.cookie(), renewed, "the browser holds the second renewal");
    assert_eq!(p.idp_stats().await, (2, 0));

    // An admin removes alice from g-admins at the IdP: within one interval she is refused.
    p.idp_control("/test/accounts/alice/groups?set=g-staff")
        .await;
    assert_eq!(
        p.browser.get(&p.page(), &[]).await.status,
        200,
        "not yet: the interval runs"
    );
    p.clock.advance(INTERVAL);
    let r = p.browser.get(&p.page(), &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(p.idp_stats().await, (3, 0));

    // No refresh token, old or new, in any log line or in what the app received (the binary at
    // trace: `no_refresh_token_reaches_the_binarys_log_even_at_trace`).
    let text = log.text();
    assert!(text.contains("session refreshed"), "{text}");
    for token in p.refresh_tokens().await {
        assert!(!text.contains(&token), "a refresh token is in the log");
        assert!(!ok_page.contains(&token), "a refresh token reached the app");
    }
}

#[tokio::test]
async fn a_revoked_grant_ends_the_session_at_the_next_refresh() {
    let (log, _guard) = capture();
    let mut p = platform(json!({}), false).await;
    p.login("alice").await;
    let cookie = p.cookie();
    p.idp_control("/test/accounts/alice/revoke").await;
    assert_eq!(
        p.auth(&cookie).await.status,
        202,
        "the session stands until it is due"
    );
    p.clock.advance(INTERVAL);
    assert_eq!(
        p.auth(&cookie).await.status,
        401,
        "invalid_grant: never a pass"
    );
    assert_eq!(p.idp_stats().await, (0, 1));
    // Through NGINX, the browser is sent to sign in again.
    let r = p.browser.get(&p.page(), &[]).await;
    assert_eq!(r.status, 302);
    assert!(
        r.raw_location().contains("/oauth2/start"),
        "{}",
        r.raw_location()
    );
    assert!(
        log.text().contains("session ended at refresh"),
        "{}",
        log.text()
    );
}

#[tokio::test]
async fn an_unreachable_idp_keeps_the_session_until_it_ends() {
    let (log, _guard) = capture();
    let mut p = platform(json!({}), false).await;
    p.login("alice").await;
    let cookie = p.cookie();
    p.idp.process.stop();
    p.clock.advance(INTERVAL);
    let r = p.auth(&cookie).await;
    assert_eq!(r.status, 202, "kept while the provider is down");
    assert!(r.set_cookies().is_empty());
    assert!(
        log.text()
            .contains("session not refreshed: the provider cannot be reached"),
        "{}",
        log.text()
    );
    assert_eq!(p.refreshes("kept").await, 1);
    // Kept until its end (12 h after the login), not past it.
    p.clock.advance(12 * 3600);
    assert_eq!(p.auth(&cookie).await.status, 401);
}

/// Many requests carrying one old cookie at once: the IdP's token endpoint sees one refresh,
/// and every request passes. The IdP rotates refresh tokens, so a second refresh with the old
/// token would be refused and revoke the grant (oidc-provider's reuse detection): the later
/// requests passing shows they shared the first one's outcome.
#[tokio::test]
async fn concurrent_requests_with_one_old_session_refresh_it_once() {
    let mut p = platform(json!({"rotate_refresh_tokens": true}), false).await;
    p.login("alice").await;
    let cookie = p.cookie();
    p.clock.advance(INTERVAL);
    let answers = at_once(std::iter::repeat_n(p.app.port, 24), p.nginx.port, &cookie).await;
    for a in &answers {
        assert_eq!(a.status, 202);
        assert_eq!(
            a.set_cookies().len(),
            1,
            "each answer carries the renewed session"
        );
    }
    assert_eq!(
        p.idp_stats().await,
        (1, 0),
        "one refresh at the token endpoint"
    );
    // A straggler with the old cookie, later on: the same outcome, no second refresh.
    assert_eq!(p.auth(&cookie).await.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0));
}

/// With the Redis store, two replicas sharing one `redis-server`: the same old session sent to
/// both at once is refreshed once across them.
#[tokio::test]
async fn with_the_redis_store_replicas_refresh_a_session_once() {
    let mut p = platform(json!({"rotate_refresh_tokens": true}), true).await;
    p.login("alice").await;
    let cookie = p.cookie();
    let second = replica(&p).await;
    // Ready when its Redis store has connected (in the background); then it reads the session.
    until_store_connected(second.app.port).await;
    assert_eq!(
        auth_at(second.app.port, p.nginx.port, cookie.clone())
            .await
            .status,
        202
    );
    p.clock.advance(INTERVAL);
    second.clock.advance(INTERVAL);
    let ports = [p.app.port, second.app.port];
    let answers = at_once(
        ports.iter().copied().cycle().take(16),
        p.nginx.port,
        &cookie,
    )
    .await;
    for a in &answers {
        assert_eq!(a.status, 202);
        assert!(
            a.set_cookies().is_empty(),
            "the cookie is a ticket: it stays"
        );
    }
    assert_eq!(
        p.idp_stats().await,
        (1, 0),
        "one refresh across both replicas"
    );
    // Removed from g-admins at the IdP: the next interval's refresh on either replica ends it
    // for both.
    p.idp_control("/test/accounts/alice/groups?set=g-staff")
        .await;
    p.clock.advance(INTERVAL);
    second.clock.advance(INTERVAL);
    assert_eq!(
        auth_at(second.app.port, p.nginx.port, cookie.clone())
            .await
            .status,
        403
    );
    assert_eq!(p.idp_stats().await, (2, 0));
    // The first replica reads the second's outcome from the record: no refresh of its own.
    assert_eq!(p.auth(&cookie).await.status, 403);
    assert_eq!(p.idp_stats().await, (2, 0));
}

/// Runs `ACL SETUSER default <rules>` on `redis` (the user authgate connects as).
async fn acl_default(redis: &Redis, rules: &[&str]) {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg("default");
    for r in rules {
        cmd.arg(*r);
    }
    let _: () = cmd.query_async(&mut redis.connect().await).await.unwrap();
}

/// The refresh token in the one session record `redis` holds.
async fn stored_refresh_token(redis: &Redis) -> String {
    let keys: Vec<String> = redis
        .session_keys()
        .await
        .into_iter()
        .filter(|k| !k.ends_with(":refreshing"))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let json: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut redis.connect().await)
        .await
        .unwrap();
    let record: Value = serde_json::from_str(&json).unwrap();
    record["t"]["r"]
        .as_str()
        .expect("a refresh token")
        .to_string()
}

/// With a provider that rotates refresh tokens (and revokes the grant when a spent one comes
/// back), the renewed record cannot be saved (its key is read-only for authgate's Redis user a
/// while): the request is served the session as it was, not a renewal only this process knows,
/// and the renewal, rotated refresh token included, is written once the store takes writes
/// again. The other replica then reads it instead of spending the old token, and the next
/// interval's refresh uses the rotated one.
#[tokio::test]
async fn a_renewal_that_cannot_be_saved_is_kept_and_its_rotated_token_written_later() {
    let (log, _guard) = capture();
    let mut p = platform(json!({"rotate_refresh_tokens": true}), true).await;
    p.login("alice").await;
    let cookie = p.cookie();
    let second = replica(&p).await;
    until_store_connected(second.app.port).await;
    let redis = p._redis.as_ref().unwrap();
    let first_token = stored_refresh_token(redis).await;
    // Session records read-only; the refresh lock (`…:refreshing`) and the rest writable.
    acl_default(redis, RECORDS_READ_ONLY).await;
    p.clock.advance(INTERVAL);
    second.clock.advance(INTERVAL);
    let r = p.auth(&cookie).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(p.idp_stats().await, (1, 0), "the IdP rotated the token");
    assert!(
        log.text().contains("cannot save the refreshed session"),
        "{}",
        log.text()
    );
    assert_eq!(stored_refresh_token(redis).await, first_token, "not saved");

    // Redis takes writes again; a little later the renewal is written, without the IdP and
    // without a request.
    acl_default(redis, &["allkeys"]).await;
    eventually(
        Duration::from_secs(10),
        "the rotated refresh token is in the record",
        || async { (stored_refresh_token(redis).await != first_token).then_some(()) },
    )
    .await;
    assert_eq!(p.auth(&cookie).await.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0));

    // The other replica reads the renewal: no refresh with the spent token (which would be
    // refused, and revoke the grant).
    assert_eq!(
        auth_at(second.app.port, p.nginx.port, cookie.clone())
            .await
            .status,
        202
    );
    assert_eq!(p.idp_stats().await, (1, 0));
    // The next interval's refresh, on either replica, spends the rotated token.
    p.clock.advance(INTERVAL);
    second.clock.advance(INTERVAL);
    assert_eq!(
        auth_at(second.app.port, p.nginx.port, cookie.clone())
            .await
            .status,
        202
    );
    assert_eq!(p.idp_stats().await, (2, 0), "no spent token came back");
}

/// Session records read-only for authgate's Redis user, the refresh lock (`…:refreshing`) and
/// the rest writable: a renewal cannot be saved.
const RECORDS_READ_ONLY: &[&str] = &["resetkeys", "%R~authgate:session:*", "%RW~*:refreshing"];

/// How long a request to the replica that does not hold the refresh lock may take at most: the
/// peer's outcome is waited for a short while (`PEER_WAIT`), far less than the lock's 30 s.
const PEER_ANSWER: Duration = Duration::from_secs(8);

/// `/oauth2/auth/ws` at the authgate on `port` with `cookie`: 202, answered within
/// [`PEER_ANSWER`].
async fn passes_soon(port: u16, site: u16, cookie: &str) {
    let started = std::time::Instant::now();
    let r = auth_at(port, site, cookie.to_string()).await;
    let took = started.elapsed();
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(took < PEER_ANSWER, "answered after {took:?}");
}

/// A rotating IdP; replica A refreshes the session but cannot save the renewal, then Redis takes
/// writes again at once and the session's next requests go to replica B. A writes the renewal
/// itself, in the background (no request of its needed), while B waits only briefly for it and
/// never spends the old refresh token: one refresh grant, none refused, the rotated token in the
/// record, both replicas passing, and the next interval's refresh spends the rotated token.
#[tokio::test]
async fn an_unsaved_renewal_is_written_by_its_replica_while_another_serves_the_session() {
    let mut p = platform(json!({"rotate_refresh_tokens": true}), true).await;
    p.login("alice").await;
    let cookie = p.cookie();
    let second = replica(&p).await;
    until_store_connected(second.app.port).await;
    let redis = p._redis.as_ref().unwrap();
    let first_token = stored_refresh_token(redis).await;
    acl_default(redis, RECORDS_READ_ONLY).await;
    p.clock.advance(INTERVAL);
    second.clock.advance(INTERVAL);
    assert_eq!(p.auth(&cookie).await.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0), "the IdP rotated the token");
    assert_eq!(stored_refresh_token(redis).await, first_token, "not saved");

    acl_default(redis, &["allkeys"]).await;
    for _ in 0..3 {
        passes_soon(second.app.port, p.nginx.port, &cookie).await;
    }
    let rotated = eventually(
        Duration::from_secs(10),
        "the renewal is written by the replica holding it",
        || async {
            let t = stored_refresh_token(redis).await;
            (t != first_token).then_some(t)
        },
    )
    .await;
    assert!(
        p.refresh_tokens().await.contains(&rotated),
        "the record holds the token the IdP issued"
    );
    assert_eq!(p.idp_stats().await, (1, 0), "no spent token came back");
    passes_soon(second.app.port, p.nginx.port, &cookie).await;
    assert_eq!(p.auth(&cookie).await.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0));

    // The next interval's refresh, on B, spends the rotated token.
    p.clock.advance(INTERVAL);
    second.clock.advance(INTERVAL);
    passes_soon(second.app.port, p.nginx.port, &cookie).await;
    assert_eq!(p.auth(&cookie).await.status, 202);
    assert_eq!(p.idp_stats().await, (2, 0));
}

/// While the renewal stays unsaved (Redis read-only for session records), the replica that does
/// not hold it serves the session as it is, soon, without asking the IdP: the record's refresh
/// token has been spent by the other replica.
#[tokio::test]
async fn a_replica_serves_the_session_as_it_is_while_another_holds_an_unsaved_renewal() {
    let mut p = platform(json!({"rotate_refresh_tokens": true}), true).await;
    p.login("alice").await;
    let cookie = p.cookie();
    let second = replica(&p).await;
    until_store_connected(second.app.port).await;
    let redis = p._redis.as_ref().unwrap();
    let first_token = stored_refresh_token(redis).await;
    acl_default(redis, RECORDS_READ_ONLY).await;
    p.clock.advance(INTERVAL);
    second.clock.advance(INTERVAL);
    assert_eq!(p.auth(&cookie).await.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0));

    for _ in 0..3 {
        passes_soon(second.app.port, p.nginx.port, &cookie).await;
    }
    // Past the retry delay, B looks again, and still leaves the IdP alone.
    second.clock.advance(authgate::refresh::RETRY_AFTER);
    passes_soon(second.app.port, p.nginx.port, &cookie).await;
    assert_eq!(p.auth(&cookie).await.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0), "B never asked the IdP");
    assert_eq!(stored_refresh_token(redis).await, first_token);
}

/// A refresh lock that ran out while its owner was still asking the provider (held here at the
/// token endpoint) and was taken by another replica is not deleted by the first owner: only the
/// owner's own value is ever released.
#[tokio::test]
async fn a_refresh_never_releases_a_lock_another_replica_holds() {
    let mut p = platform(json!({"rotate_refresh_tokens": true}), true).await;
    p.login("alice").await;
    let cookie = p.cookie();
    let redis = p._redis.as_ref().unwrap();
    let lock_key = format!("{}:refreshing", redis.session_keys().await[0]);
    p.idp_control("/test/token/hold").await;
    p.clock.advance(INTERVAL);
    let refreshing = tokio::spawn(auth_at(p.app.port, p.nginx.port, cookie.clone()));
    // The refresh holds the lock and waits at the token endpoint.
    eventually(
        Duration::from_secs(10),
        "the refresh reaches the IdP",
        || async { (stats(&p.idp).await["token_waiting"].as_u64() == Some(1)).then_some(()) },
    )
    .await;
    let mut c = redis.connect().await;
    let held: Option<String> = redis::cmd("GET")
        .arg(&lock_key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(held.is_some(), "the refresh holds the lock");
    // Its lock runs out and another replica takes it.
    let _: () = redis::cmd("SET")
        .arg(&lock_key)
        .arg("another-replica")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut c)
        .await
        .unwrap();
    p.idp_control("/test/token/release").await;
    assert_eq!(refreshing.await.unwrap().status, 202);
    let after: Option<String> = redis::cmd("GET")
        .arg(&lock_key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        after.as_deref(),
        Some("another-replica"),
        "the other replica's lock stays"
    );
}

/// A second authgate process with the same config, its own clock.
struct Replica {
    app: InProcess,
    clock: Arc<MovedClock>,
}

async fn replica(p: &Refreshing) -> Replica {
    let mut env = env_with(&[("CLIENT_SECRET", "client-secret")]);
    env.insert("REDIS_URL".into(), p._redis.as_ref().unwrap().url());
    let clock = Arc::new(MovedClock::default());
    let app = Application::build(
        p._config.path(),
        Some(([127, 0, 0, 1], 0).into()),
        Arc::new(env),
    )
    .await
    .unwrap()
    .with_clock(clock.clone());
    Replica {
        app: serve_in_process(app),
        clock,
    }
}

/// Entra: groups come from Microsoft Graph when the user has too many for the token; a refresh
/// asks Graph again with the new access token.
#[tokio::test]
async fn an_entra_refresh_reads_overage_groups_from_graph_again() {
    let mut p = platform_with(Shape::EntraOverage, json!({}), false).await;
    p.login("overage").await;
    let cookie = p.cookie();
    let groups = p
        .auth(&cookie)
        .await
        .header("x-auth-request-groups")
        .unwrap()
        .to_string();
    assert!(groups.contains(AUDITORS), "{groups}");
    p.idp_control("/test/accounts/overage/groups?set=g-staff")
        .await;
    p.clock.advance(INTERVAL);
    let r = p.browser.get(&p.page(), &[]).await;
    assert_eq!(r.status, 403, "no longer in g-auditors: {}", r.body);
    assert_eq!(p.idp_stats().await, (1, 0));
}

/// Keycloak: realm roles live only in the access token; a refresh reads the new one's.
#[tokio::test]
async fn a_keycloak_refresh_reads_realm_roles_from_the_new_access_token() {
    let mut p = platform_with(Shape::Keycloak, json!({"realm": "platform"}), false).await;
    p.login("alice").await;
    let cookie = p.cookie();
    assert_eq!(p.auth(&cookie).await.status, 202);
    p.idp_control("/test/accounts/alice/realm_roles?set=user")
        .await;
    p.clock.advance(INTERVAL);
    let r = p.auth(&cookie).await;
    assert_eq!(r.status, 403, "the realm role admin is gone");
    assert_eq!(p.idp_stats().await, (1, 0));
}

/// Chromium, through NGINX: logged in, then (the test's clock moved past the interval by a page
/// the browser opens) the next page load renews the session, and the browser's own cookie jar
/// holds the renewed cookie.
#[tokio::test]
async fn chromium_receives_the_renewed_cookie_through_nginx() {
    let p = platform(json!({}), false).await;
    let clock = p.clock.clone();
    let control = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_port = control.local_addr().unwrap().port();
    let advance = axum::Router::new().route(
        "/advance",
        axum::routing::get(move || async move {
            clock.advance(INTERVAL);
            "moved on"
        }),
    );
    let server = tokio::spawn(async move { axum::serve(control, advance).await });
    let page = p.page();
    let result = run_browser(json!({
        "start_url": page,
        "login": "alice",
        "kind": "oidc",
        "expect_text": "x-auth-request-user: alice",
        "screenshot_dir": screenshots(),
        "name": "refresh",
        "after_steps": [
            {"record_cookies": "before"},
            {"goto": format!("http://127.0.0.1:{control_port}/advance")},
            {"wait_for_text": "moved on"},
            {"goto": page},
            {"wait_for_text": "x-auth-request-user: alice"},
        ],
    }))
    .await;
    server.abort();
    let digest = |jar: &Value| {
        jar.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "ag")
            .map(|c| c["digest"].as_str().unwrap().to_string())
            .expect("the session cookie in the jar")
    };
    let before = digest(&result["recorded"]["before"]);
    let after = digest(&result["cookies"]);
    assert_ne!(before, after, "the browser holds the renewed cookie");
    assert_eq!(result["final_status"], 200);
    assert_eq!(p.idp_stats().await, (1, 0));
}

/// The binary at `RUST_LOG=trace`, on the real clock with a 1 s interval, behind NGINX: a login,
/// refreshes with rotating refresh tokens, then a refused one (the grant revoked). No refresh
/// token the IdP issued appears in any line of the log.
#[tokio::test]
async fn no_refresh_token_reaches_the_binarys_log_even_at_trace() {
    let nginx_port = free_port();
    let callback = format!("http://{HOST}:{nginx_port}/oauth2/callback");
    let idp = spawn_oidc_provider(
        "generic",
        "authgate",
        "client-secret",
        &[callback],
        json!({"rotate_refresh_tokens": true}),
    );
    let provider = Provider {
        kind: "oidc",
        issuer: &idp.issuer,
        extra: "",
    };
    let config = ConfigDir::new("").workspace(
        "ws",
        &workspace_toml(&provider, nginx_port, "", "g-admins", "1s"),
    );
    let ag = spawn_authgate(
        &config,
        &[("CLIENT_SECRET", "client-secret"), ("RUST_LOG", "trace")],
        "refresh-trace",
    );
    let upstream = spawn_upstream().await;
    let nginx = spawn_nginx_at(
        &[Site::protected(HOST, &["/hello"])],
        ag.port,
        upstream.port,
        nginx_port,
    );
    let page = format!("{}/hello", nginx.url(HOST));
    let mut browser = Client::new();
    let steps = browser.follow(&page, "alice").await;
    assert_eq!(steps.last().unwrap().status, 200);
    // Browse until two refreshes have happened (each at least 1 s after the last).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ag.log_text().matches("session refreshed").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh: {}",
            ag.log_text()
        );
        assert_eq!(browser.get(&page, &[]).await.status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The grant revoked at the IdP: the next due refresh is refused, the browser signs in again.
    let revoke = control_url(&idp, "/test/accounts/alice/revoke");
    assert_eq!(Client::new().post_form(&revoke, &[]).await.status, 200);
    while browser.get(&page, &[]).await.status != 302 {
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let stats = stats(&idp).await;
    let log = ag.log_text();
    assert!(log.contains("TRACE"), "logging ran at trace");
    assert!(log.contains("session ended at refresh"), "{log}");
    let issued = stats["refresh_tokens"].as_array().unwrap();
    assert!(issued.len() >= 3, "a login and two rotations: {issued:?}");
    for token in issued {
        assert!(
            !log.contains(token.as_str().unwrap()),
            "a refresh token is in the log"
        );
    }
}

/// A request still carrying the old cookie after a refresh gets the renewal, dated when the
/// provider answered: it is due again one interval after the refresh, not one interval after
/// the straggler (so a group removed at the IdP stays effective within one interval).
#[tokio::test]
async fn a_renewal_handed_to_a_straggler_is_due_one_interval_after_the_refresh() {
    let mut p = platform(json!({}), false).await;
    p.login("alice").await;
    let old = p.cookie();
    p.clock.advance(INTERVAL);
    assert_eq!(p.auth(&old).await.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0));
    p.clock.advance(INTERVAL - 5);
    let straggler = p.auth(&old).await;
    assert_eq!(straggler.status, 202);
    assert_eq!(p.idp_stats().await, (1, 0), "the outcome is reused");
    let handed = straggler.set_cookies()[0]
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("ag=")
        .to_string();
    p.clock.advance(10);
    assert_eq!(p.auth(&handed).await.status, 202);
    assert_eq!(
        p.idp_stats().await,
        (2, 0),
        "due one interval after the refresh"
    );
}
