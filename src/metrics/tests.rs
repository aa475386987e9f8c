//! Label bounding and the shape of the output.

use super::*;

/// Every `name="value"` label pair in an encoded output.
fn label_values(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((labels, _)) = rest.rsplit_once('}') else {
            continue;
        };
        for pair in labels.split(',') {
            let (k, v) = pair.split_once('=').expect("label has a value");
            out.push((k.to_string(), v.trim_matches('"').to_string()));
        }
    }
    out
}

fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn counters_of_a_workspace_exist_at_zero_once_its_registry_is_built() {
    let m = Metrics::default();
    m.workspace("mcd", &["entra", "github"]);
    let text = m.encode();
    for series in [
        r#"authgate_auth_decisions_total{workspace="mcd",result="allowed"}"#,
        r#"authgate_auth_decisions_total{workspace="mcd",result="refused-host"}"#,
        r#"authgate_auth_decisions_total{workspace="(unknown)",result="refused-host"}"#,
        r#"authgate_logins_started_total{workspace="mcd",provider="github"}"#,
        r#"authgate_logins_failed_total{workspace="mcd",provider="entra",reason="token-rejected"}"#,
        r#"authgate_logins_failed_total{workspace="mcd",provider="(unknown)",reason="state"}"#,
        r#"authgate_bearer_cache_lookups_total{workspace="mcd",result="miss"}"#,
        r#"authgate_redis_errors_total{workspace="mcd",operation="read"}"#,
        r#"authgate_idp_fetches_total{document="jwks",result="error"}"#,
        r#"authgate_config_reloads_total{result="refused"}"#,
    ] {
        assert_eq!(value(&text, series), Some(0), "{series} in:\n{text}");
    }
    let build = format!(
        r#"authgate_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.lines().any(|l| l == build), "{build} in:\n{text}");
}

#[test]
fn a_provider_id_the_workspace_lacks_is_counted_as_unknown_not_as_a_label() {
    let m = Metrics::default();
    let ws = m.workspace("mcd", &["entra"]);
    ws.login(Some("attacker-chosen"))
        .failed(LoginFailure::State);
    ws.login(None).started();
    ws.login(Some("entra")).completed();
    let text = m.encode();
    assert!(!text.contains("attacker"), "{text}");
    let failed =
        r#"authgate_logins_failed_total{workspace="mcd",provider="(unknown)",reason="state"}"#;
    assert_eq!(value(&text, failed), Some(1));
    let started = r#"authgate_logins_started_total{workspace="mcd",provider="(unknown)"}"#;
    assert_eq!(value(&text, started), Some(1));
    let completed = r#"authgate_logins_completed_total{workspace="mcd",provider="entra"}"#;
    assert_eq!(value(&text, completed), Some(1));
}

#[test]
fn every_label_value_comes_from_the_config_or_a_fixed_list() {
    let m = Metrics::default();
    let ws = m.workspace("mcd", &["entra"]);
    for d in Decision::ALL {
        ws.decisions.record(d);
        m.unknown_workspace().record(d);
    }
    for r in LoginFailure::ALL {
        ws.login(Some("entra")).failed(r);
    }
    ws.bearer_cache(true);
    ws.redis_error(RedisOp::Write);
    ws.refresh(RefreshResult::Kept);
    m.reloaded(false);
    m.observe_auth(Duration::from_micros(30));
    let fixed: Vec<&str> = Decision::ALL
        .iter()
        .map(|d| d.as_str())
        .chain(LoginFailure::ALL.iter().map(|r| r.as_str()))
        .chain(RedisOp::ALL.iter().map(|o| o.as_str()))
        .chain(RefreshResult::ALL.iter().map(|r| r.as_str()))
        .chain([
            "mcd", "entra", UNKNOWN, "hit", "miss", "ok", "error", "refused",
        ])
        .chain(["discovery", "jwks", env!("CARGO_PKG_VERSION")])
        .collect();
    let text = m.encode();
    for (k, v) in label_values(&text) {
        let allowed =
            fixed.contains(&v.as_str()) || (k == "le" && (v == "+Inf" || v.parse::<f64>().is_ok()));
        assert!(allowed, "label {k}={v:?} is from no fixed list:\n{text}");
    }
}

#[test]
fn a_rebuilt_registry_records_into_the_same_series() {
    let m = Metrics::default();
    m.workspace("mcd", &["entra"])
        .decisions
        .record(Decision::Allowed);
    // A reload builds the workspace again: same labels, same counter.
    m.workspace("mcd", &["entra"])
        .decisions
        .record(Decision::Allowed);
    let text = m.encode();
    let series = r#"authgate_auth_decisions_total{workspace="mcd",result="allowed"}"#;
    assert_eq!(value(&text, series), Some(2));
    assert_eq!(text.matches(series).count(), 1);
}

#[test]
fn fetch_counters_registered_by_the_metrics_are_the_caches_own() {
    let fetches = FetchCounters::default();
    let m = Metrics::new(&fetches);
    fetches.jwks(false);
    fetches.discovery(true);
    fetches.discovery(true);
    let text = m.encode();
    assert_eq!(
        value(
            &text,
            r#"authgate_idp_fetches_total{document="jwks",result="error"}"#
        ),
        Some(1)
    );
    assert_eq!(
        value(
            &text,
            r#"authgate_idp_fetches_total{document="discovery",result="ok"}"#
        ),
        Some(2)
    );
}

#[test]
fn reloads_and_latency_are_counted() {
    let m = Metrics::default();
    m.reloaded(true);
    m.reloaded(false);
    m.reloaded(false);
    m.observe_auth(Duration::from_micros(30));
    let text = m.encode();
    assert_eq!(
        value(&text, r#"authgate_config_reloads_total{result="ok"}"#),
        Some(1)
    );
    assert_eq!(
        value(&text, r#"authgate_config_reloads_total{result="refused"}"#),
        Some(2)
    );
    assert_eq!(
        value(&text, "authgate_auth_duration_seconds_count"),
        Some(1)
    );
    assert_eq!(
        value(
            &text,
            r#"authgate_auth_duration_seconds_bucket{le="2.5e-05"}"#
        ),
        Some(0)
    );
    assert_eq!(
        value(
            &text,
            r#"authgate_auth_duration_seconds_bucket{le="5e-05"}"#
        ),
        Some(1)
    );
}
