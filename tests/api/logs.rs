//! What operators read: one line per login, sign-out, denial and refusal at the default level,
//! with workspace, provider, user where known, reason and request id; JSON on request; and no
//! token, code, cookie or secret in any line, even at trace.

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use crate::forge_flow::{claims, CLIENT_ID};
use crate::helpers::forge::{spawn_forge, tokens, Forge};
use crate::helpers::{spawn_authgate, AuthgateProcess, Client, ConfigDir, COOKIE_SECRET};

const HOST: &str = "mcd.test";
const CLIENT_SECRET: &str = "client-secret-0f9d8c7b";

fn config(issuer: &str) -> ConfigDir {
    ConfigDir::new("").workspace(
        "mcd",
        &format!(
            r#"hosts = ["{HOST}"]
auth = "oidc"
insecure_http = true
[[provider]]
id = "sso"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_env = "MCD_SECRET"
[session]
cookie_name = "ag"
[headers]
user = "preferred_username"
"#
        ),
    )
}

fn spawn(config: &ConfigDir, log: &[(&str, &str)], name: &str) -> AuthgateProcess {
    let mut env = vec![("MCD_SECRET", CLIENT_SECRET)];
    env.extend_from_slice(log);
    spawn_authgate(config, &env, name)
}

/// A whole login through the real binary: start, the forge's answer, the callback. Returns
/// the callback's response and the `state` used.
async fn login(
    forge: &Forge,
    ag: &AuthgateProcess,
    c: &mut Client,
    code: &str,
    request_id: &str,
    answer: impl FnOnce(&str) -> Value,
) -> (crate::helpers::Resp, String) {
    let base = format!("http://{HOST}:{}", ag.port);
    let r = c
        .get(
            &format!("{base}/oauth2/start?rd=%2Fapp"),
            &[("x-request-id", request_id)],
        )
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let authorize = r.location();
    let q = |k: &str| {
        authorize
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    forge.answer(answer(&q("nonce")));
    let state = q("state");
    let url = format!(
        "{base}/oauth2/callback?code={code}&state={state}&iss={}",
        url::form_urlencoded::byte_serialize(forge.issuer.as_bytes()).collect::<String>()
    );
    (c.get(&url, &[("x-request-id", request_id)]).await, state)
}

/// The lines of `log` holding `needle`, counted per wall-clock second of the log's own
/// timestamps (`2026-12-02T05:21:17.440931Z`).
fn lines_per_second(log: &str, needle: &str) -> std::collections::BTreeMap<String, u64> {
    let mut per_second = std::collections::BTreeMap::new();
    for line in log.lines().filter(|l| l.contains(needle)) {
        *per_second
            .entry(line.chars().take(19).collect())
            .or_default() += 1;
    }
    per_second
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The lines whose message is `message`, each its own fields and its spans' fields merged.
fn all(lines: &[Value], message: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == message)
        .map(|l| {
            let mut all = l["fields"].as_object().unwrap().clone();
            for span in l["spans"].as_array().into_iter().flatten() {
                for (k, v) in span.as_object().unwrap() {
                    all.entry(k.clone()).or_insert(v.clone());
                }
            }
            Value::Object(all)
        })
        .filter(|l| pred(l))
        .collect()
}

/// The first line whose message is `message` and that matches.
fn find(lines: &[Value], message: &str, pred: impl Fn(&Value) -> bool) -> Value {
    all(lines, message, pred)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {message:?} line matching in:\n{lines:#?}"))
}

#[tokio::test]
async fn json_lines_name_workspace_provider_user_reason_and_request_id_at_the_default_level() {
    let forge = spawn_forge().await;
    let config = config(&forge.issuer);
    let ag = spawn(
        &config,
        &[("AUTHGATE_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        "logs-json",
    );
    let auth = |extra: Vec<(&'static str, String)>| {
        let url = format!("http://svc:{}/oauth2/auth/mcd", ag.port);
        async move {
            let mut h: Vec<(&str, String)> = vec![("x-original-url", format!("http://{HOST}/app"))];
            h.extend(extra);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Client::new().get(&url, &h).await
        }
    };
    // A refusal with ingress-nginx's request id, and one without (an id is made up).
    assert_eq!(
        auth(vec![("x-request-id", "req-anon-1".into())])
            .await
            .status,
        401
    );
    assert_eq!(auth(vec![]).await.status, 401);
    // A login, a denial at an Ingress narrowed to a group alice is not in, a sign-out.
    let mut c = Client::new();
    let (r, _) = login(&forge, &ag, &mut c, "code-1", "req-login-1", |nonce| {
        json!({"access_token": "at", "token_type": "Bearer",
               "id_token": tokens::sign(Algorithm::RS256, Some(tokens::RSA_KID), &claims(&forge.issuer, nonce))})
    })
    .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let cookie = format!("ag={}", c.cookie(HOST, "ag").unwrap());
    let url = format!(
        "http://svc:{}/oauth2/auth/mcd?allowed_groups=nobody",
        ag.port
    );
    let denied = Client::new()
        .get(
            &url,
            &[
                ("x-original-url", &format!("http://{HOST}/app")),
                ("cookie", &cookie),
                ("x-request-id", "req-deny-1"),
            ],
        )
        .await;
    assert_eq!(denied.status, 403);
    let out = c
        .get(
            &format!("http://{HOST}:{}/oauth2/sign_out", ag.port),
            &[("x-request-id", "req-out-1")],
        )
        .await;
    assert_eq!(out.status, 302);

    // A refused callback (no state): one line, in the request's span.
    let bad = Client::new()
        .get(
            &format!("http://{HOST}:{}/oauth2/callback?code=x", ag.port),
            &[("x-request-id", "req-bad-cb")],
        )
        .await;
    assert_eq!(bad.status, 400);

    let lines = json_lines(&ag.log_text());
    let bad_lines = all(&lines, "refused", |l| l["proxy_request_id"] == "req-bad-cb");
    assert_eq!(bad_lines.len(), 1, "{bad_lines:?}");
    assert_eq!(bad_lines[0]["status"], 400);
    let refused = find(&lines, "refused", |l| l["proxy_request_id"] == "req-anon-1");
    assert_eq!(refused["route_workspace"], "mcd");
    assert_eq!(refused["host"], HOST);
    assert!(
        refused["reason"].as_str().unwrap().contains("no session"),
        "{refused}"
    );
    // authgate's own id on every line, never the one the proxy sent.
    for line in all(&lines, "refused", |l| l["proxy_request_id"].is_string()) {
        let id = line["request_id"].as_str().unwrap();
        assert!(!id.starts_with("req-"), "{line}");
        assert!(!id.is_empty(), "{line}");
    }
    let made_up = find(&lines, "refused", |l| {
        l["proxy_request_id"] == "" && l["route_workspace"] == "mcd"
    });
    let id = made_up["request_id"].as_str().unwrap();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let started = find(&lines, "login started", |l| {
        l["proxy_request_id"] == "req-login-1"
    });
    assert_eq!(
        (&started["workspace"], &started["provider"]),
        (&json!("mcd"), &json!("sso"))
    );
    let done = find(&lines, "login completed", |l| {
        l["proxy_request_id"] == "req-login-1"
    });
    assert_eq!(
        (&done["workspace"], &done["provider"], &done["user"]),
        (&json!("mcd"), &json!("sso"), &json!("alice"))
    );
    let deny = find(&lines, "refused", |l| l["proxy_request_id"] == "req-deny-1");
    assert_eq!(
        (&deny["user"], &deny["status"]),
        (&json!("alice"), &json!(403))
    );
    assert!(
        deny["reason"].as_str().unwrap().contains("forbidden"),
        "{deny}"
    );
    let out = find(&lines, "signed out", |l| {
        l["proxy_request_id"] == "req-out-1"
    });
    assert_eq!(
        (&out["workspace"], &out["user"]),
        (&json!("mcd"), &json!("alice"))
    );
}

#[tokio::test]
async fn no_token_code_cookie_or_secret_reaches_the_log_even_at_trace() {
    let forge = spawn_forge().await;
    let config = config(&forge.issuer);
    let ag = spawn(&config, &[("RUST_LOG", "trace")], "logs-secrets");
    let mut c = Client::new();
    let access = "AT-7c1e9a55d0b34f0e8d2a";
    let refresh = "RT-4b2f0c9e1a7d6e5f3c8b";
    let mut id_token = String::new();
    let (r, state) = login(&forge, &ag, &mut c, "CODE-9a8b7c6d5e4f", "req-1", |nonce| {
        id_token = tokens::sign(
            Algorithm::RS256,
            Some(tokens::RSA_KID),
            &claims(&forge.issuer, nonce),
        );
        json!({"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
               "id_token": id_token})
    })
    .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let login_cookies: Vec<String> = r.set_cookies();
    let session = c.cookie(HOST, "ag").unwrap();
    // A bad callback: the same state again (a replay) with another code, and a forged state.
    let base = format!("http://{HOST}:{}", ag.port);
    let replay = c
        .get(
            &format!("{base}/oauth2/callback?code=CODE-replayed-1f2e&state={state}"),
            &[],
        )
        .await;
    assert_eq!(replay.status, 400);
    let forged = c
        .get(
            &format!("{base}/oauth2/callback?code=CODE-forged-3d4c&state=STATE-forged-5b6a"),
            &[],
        )
        .await;
    assert_eq!(forged.status, 400);
    // The token endpoint refusing a code: its error is logged, the code is not.
    let (r, _) = login(
        &forge,
        &ag,
        &mut c,
        "CODE-refused-7e8f",
        "req-2",
        |_| json!({"error": "invalid_grant", "error_description": "code expired"}),
    )
    .await;
    assert_eq!(r.status, 400);

    let log = ag.log_text();
    assert!(
        log.contains("TRACE") || log.contains("trace"),
        "logging ran at trace"
    );
    assert!(log.contains("login completed"));
    let mut secrets = vec![
        ("authorization code", "CODE-9a8b7c6d5e4f".to_string()),
        ("replayed code", "CODE-replayed-1f2e".into()),
        ("forged code", "CODE-forged-3d4c".into()),
        ("refused code", "CODE-refused-7e8f".into()),
        ("access token", access.into()),
        ("refresh token", refresh.into()),
        ("ID token", id_token.clone()),
        (
            "ID token signature",
            id_token.rsplit('.').next().unwrap().into(),
        ),
        ("client secret", CLIENT_SECRET.into()),
        ("master cookie secret", COOKIE_SECRET.into()),
        ("session cookie", session.clone()),
        ("state", state.clone()),
    ];
    for c in login_cookies {
        let value = c
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        if value.len() > 16 {
            secrets.push(("a cookie set at login", value));
        }
    }
    for (what, secret) in secrets {
        assert!(!log.contains(&secret), "the {what} is in the log");
    }
}

/// A flood of refusals (garbage cookies, a host of no workspace: 1 600 of them) costs a bounded
/// number of log lines a second, and the next line logged says how many were left out.
#[tokio::test]
async fn a_flood_of_refusals_logs_at_a_bounded_rate() {
    let forge = spawn_forge().await;
    let config = config(&forge.issuer);
    let ag = spawn(&config, &[("RUST_LOG", "info")], "logs-flood");
    let url = format!("http://svc:{}/oauth2/auth/mcd", ag.port);
    let floods: Vec<_> = (0..8)
        .map(|t| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut c = Client::new();
                for i in 0..200 {
                    let (host, cookie) = if i % 2 == 0 {
                        (HOST.to_string(), format!("ag=garbage-{t}-{i}"))
                    } else {
                        (format!("nowhere-{t}-{i}.test"), String::new())
                    };
                    let r = c
                        .get(
                            &url,
                            &[
                                ("x-original-url", &format!("http://{host}/")),
                                ("cookie", &cookie),
                            ],
                        )
                        .await;
                    assert!(r.status == 401 || r.status == 403, "{}", r.status);
                }
            })
        })
        .collect();
    for f in floods {
        f.await.unwrap();
    }
    // None of the log's own seconds may pass the budget, however slow the machine.
    let per_second = lines_per_second(&ag.log_text(), " refused");
    let busiest = per_second.values().copied().max().unwrap_or(0);
    assert!(
        busiest <= 50,
        "a second logged {busiest} refusals: {per_second:?}"
    );
    let logged: u64 = per_second.values().sum();
    assert!(logged < 1_600, "every refusal was logged ({logged})");
    // The first refusal of a later second reports how many were left out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        Client::new()
            .get(&url, &[("x-original-url", &format!("http://{HOST}/"))])
            .await;
        if ag.log_text().contains("more refusals not logged") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no summary line");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Refused back-channel logouts share the refusal budget: anyone can post to that route, so
/// 300 garbage logout tokens cost at most the budget's lines a second, not 300.
#[tokio::test]
async fn back_channel_refusals_share_the_log_budget() {
    let forge = spawn_forge().await;
    let config = config(&forge.issuer);
    let ag = spawn(&config, &[("RUST_LOG", "info")], "logs-backchannel-flood");
    let url = format!("http://{HOST}:{}/oauth2/backchannel_logout/mcd", ag.port);
    let floods: Vec<_> = (0..6)
        .map(|t| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut c = Client::new();
                for i in 0..50 {
                    let token = format!("garbage-{t}-{i}");
                    let r = c.post_form(&url, &[("logout_token", &token)]).await;
                    assert_eq!(r.status, 400, "{}", r.body);
                }
            })
        })
        .collect();
    for f in floods {
        f.await.unwrap();
    }
    let per_second = lines_per_second(&ag.log_text(), "back-channel logout refused");
    let busiest = per_second.values().copied().max().unwrap_or(0);
    assert!(
        busiest <= 50,
        "a second logged {busiest} refusals: {per_second:?}"
    );
    let logged: u64 = per_second.values().sum();
    assert!(logged < 300, "every refusal was logged ({logged})");
}

/// Anyone may start logins and sign out without a session at will: "login started" lines share
/// a budget of their own (at most 50 a second), and a sign-out without a session is no info
/// line at all.
#[tokio::test]
async fn a_flood_of_login_starts_and_empty_sign_outs_logs_at_a_bounded_rate() {
    let forge = spawn_forge().await;
    let config = config(&forge.issuer);
    let ag = spawn(&config, &[("RUST_LOG", "info")], "logs-start-flood");
    let base = format!("http://{HOST}:{}", ag.port);
    let floods: Vec<_> = (0..6)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move {
                let mut c = Client::new();
                for _ in 0..50 {
                    let r = c.get(&format!("{base}/oauth2/start?rd=%2F"), &[]).await;
                    assert_eq!(r.status, 302, "{}", r.body);
                    let r = c.get(&format!("{base}/oauth2/sign_out?rd=%2F"), &[]).await;
                    assert_eq!(r.status, 302, "{}", r.body);
                }
            })
        })
        .collect();
    for f in floods {
        f.await.unwrap();
    }
    let log = ag.log_text();
    let per_second = lines_per_second(&log, "login started");
    let busiest = per_second.values().copied().max().unwrap_or(0);
    assert!(
        busiest <= 50,
        "a second logged {busiest} starts: {per_second:?}"
    );
    assert!(busiest > 0, "no login started line at all");
    assert!(
        !log.contains("signed out"),
        "a sign-out without a session was logged at info"
    );
}
