//! `GET /metrics` after a known sequence of requests: exact counts per workspace and result,
//! labels only from the config and fixed lists, and nothing a request carried.

use serde_json::json;

use crate::forge_flow::{edited, rs256, setup, Env, COOKIE, HOST};
use crate::helpers::{env_with, Client};

/// The value of one series, as the text format writes it.
fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(env: &Env) -> String {
    let r = Client::new()
        .get(&env.url("authgate.svc", "/metrics"), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.body
}

/// `/oauth2/auth/<route>` for `host`, with extra headers, as NGINX asks it.
async fn auth(env: &Env, route: &str, host: &str, extra: &[(&str, &str)]) -> u16 {
    let original = format!("http://{host}/app");
    let mut headers = vec![("x-original-url", original.as_str())];
    headers.extend_from_slice(extra);
    Client::new()
        .get(&env.url("authgate.svc", route), &headers)
        .await
        .status
}

#[tokio::test]
async fn metrics_count_every_decision_login_and_cache_lookup_without_user_data() {
    let mut env = setup().await;

    // A login that completes, and one whose callback state leads nowhere.
    let done = env
        .login_with_token(|iss, nonce| {
            rs256(&edited(iss, nonce, |c| {
                c["email"] = json!("alice@example.test")
            }))
        })
        .await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(
        env.callback(&[("code", "c"), ("state", "forged-state")])
            .await
            .status,
        400
    );

    // Cookie: allowed, then forbidden by the Ingress's narrowing query.
    let cookie = format!("{COOKIE}={}", env.client.cookie(HOST, COOKIE).unwrap());
    let with_cookie = [("cookie", cookie.as_str())];
    assert_eq!(
        auth(&env, "/oauth2/auth/mcd", HOST, &with_cookie).await,
        202
    );
    let narrowed = "/oauth2/auth/mcd?allowed_groups=nobody";
    assert_eq!(auth(&env, narrowed, HOST, &with_cookie).await, 403);
    // No session.
    assert_eq!(auth(&env, "/oauth2/auth/mcd", HOST, &[]).await, 401);
    // A host of another workspace on mcd's route; a route naming no configured workspace.
    assert_eq!(
        auth(&env, "/oauth2/auth/mcd", "team.test", &with_cookie).await,
        403
    );
    let foreign = "/oauth2/auth/attacker-ws";
    assert_eq!(auth(&env, foreign, "evil-host.example", &[]).await, 403);

    // Bearer: verified once (miss), then from the cache (hit); a garbage token (miss, 401).
    let token = rs256(&edited(&env.forge.issuer, "", |c| {
        drop(c.as_object_mut().unwrap().remove("nonce"))
    }));
    let bearer = format!("Bearer {token}");
    let with_bearer = [("authorization", bearer.as_str())];
    assert_eq!(
        auth(&env, "/oauth2/auth/mcd", HOST, &with_bearer).await,
        202
    );
    assert_eq!(
        auth(&env, "/oauth2/auth/mcd", HOST, &with_bearer).await,
        202
    );
    let garbage = [("authorization", "Bearer not.a.jwt")];
    assert_eq!(auth(&env, "/oauth2/auth/mcd", HOST, &garbage).await, 401);

    // A reload that is refused.
    let refused = authgate::server::reload(
        &env.app.state,
        std::path::Path::new("/nonexistent/authgate-config"),
        &env_with(&[]),
    );
    assert!(refused.is_err());

    let text = scrape(&env).await;
    // Printed for the record (`cargo test --test api metrics -- --nocapture`).
    println!("{text}");
    let expect = [
        (
            r#"authgate_auth_decisions_total{workspace="mcd",result="allowed"}"#,
            3,
        ),
        (
            r#"authgate_auth_decisions_total{workspace="mcd",result="forbidden"}"#,
            1,
        ),
        (
            r#"authgate_auth_decisions_total{workspace="mcd",result="unauthenticated"}"#,
            2,
        ),
        (
            r#"authgate_auth_decisions_total{workspace="mcd",result="refused-host"}"#,
            1,
        ),
        (
            r#"authgate_auth_decisions_total{workspace="(unknown)",result="refused-host"}"#,
            1,
        ),
        (
            r#"authgate_auth_decisions_total{workspace="team",result="refused-host"}"#,
            0,
        ),
        ("authgate_auth_duration_seconds_count", 8),
        (
            r#"authgate_logins_started_total{workspace="mcd",provider="oidc"}"#,
            1,
        ),
        (
            r#"authgate_logins_completed_total{workspace="mcd",provider="oidc"}"#,
            1,
        ),
        (
            r#"authgate_logins_failed_total{workspace="mcd",provider="(unknown)",reason="state"}"#,
            1,
        ),
        (
            r#"authgate_logins_failed_total{workspace="mcd",provider="oidc",reason="state"}"#,
            0,
        ),
        (
            r#"authgate_bearer_cache_lookups_total{workspace="mcd",result="hit"}"#,
            1,
        ),
        (
            r#"authgate_bearer_cache_lookups_total{workspace="mcd",result="miss"}"#,
            2,
        ),
        (r#"authgate_config_reloads_total{result="refused"}"#, 1),
        (r#"authgate_config_reloads_total{result="ok"}"#, 0),
        (
            r#"authgate_redis_errors_total{workspace="mcd",operation="read"}"#,
            0,
        ),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, series), Some(want), "{series} in:\n{text}");
    }
    // The login discovered the forge and fetched its keys (the warm-up may have too).
    for series in [
        r#"authgate_idp_fetches_total{document="discovery",result="ok"}"#,
        r#"authgate_idp_fetches_total{document="jwks",result="ok"}"#,
    ] {
        assert!(
            value(&text, series).is_some_and(|n| n >= 1),
            "{series} in:\n{text}"
        );
    }
    let build = format!(
        r#"authgate_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.lines().any(|l| l == build), "{text}");

    // Nothing a request carried: users, emails, hosts, route names, states, tokens.
    for user_data in [
        "alice",
        "example.test",
        "mcd.test",
        "team.test",
        "evil-host",
        "attacker-ws",
        "forged-state",
        "not.a.jwt",
        &token[..20],
    ] {
        assert!(!text.contains(user_data), "{user_data:?} in:\n{text}");
    }
}

#[tokio::test]
async fn metrics_is_not_served_when_switched_off() {
    let env = setup().await;
    env.app.state.metrics().set_enabled(false);
    assert_eq!(auth(&env, "/oauth2/auth/mcd", HOST, &[]).await, 401);
    let r = Client::new()
        .get(&env.url("authgate.svc", "/metrics"), &[])
        .await;
    assert_eq!(r.status, 404);
    env.app.state.metrics().set_enabled(true);
    let text = scrape(&env).await;
    let unauthenticated =
        r#"authgate_auth_decisions_total{workspace="mcd",result="unauthenticated"}"#;
    assert_eq!(
        value(&text, unauthenticated),
        Some(0),
        "nothing recorded while off"
    );
}
