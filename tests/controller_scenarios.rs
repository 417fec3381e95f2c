//! The scenarios of the controller's brief through `controller simulate`
//! with the default six-day plan: healthy, error spike, latency spike in the
//! canary and mid tiers, no traffic, job down, critical alert. With the
//! `prometheus` feature, the early-ending ones also run on a real Prometheus
//! holding each scenario's samples, and must reach the same decisions.

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::support::controller as bin;

fn simulate(dir: &Path, scenario: &Value, extra: &[&str]) -> (Option<i32>, Value) {
    std::fs::write(dir.join("s.json"), scenario.to_string()).unwrap();
    let mut args = vec!["simulate", "--scenario", "s.json", "--output", "json"];
    args.extend(extra);
    let out: Output = std::process::Command::new(bin::controller())
        .current_dir(dir)
        .args(&args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

fn scenario(start: &str, duration: &str, events: Value) -> Value {
    json!({ "start": start, "duration": duration, "step": "1m",
            "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120,
                          "jobs_down": [], "critical_alerts": [] },
            "events": events })
}

fn last(v: &Value) -> (String, String) {
    let e = v["events"].as_array().unwrap().last().unwrap();
    (
        e["offset"].as_str().unwrap().to_owned(),
        e["decision"].as_str().unwrap().to_owned(),
    )
}

const START: &str = "2025-10-23T09:00:00Z";

/// (name, events, outcome, offset and decision of the last event)
fn cases() -> Vec<(
    &'static str,
    Value,
    &'static str,
    (&'static str, &'static str),
)> {
    vec![
        ("healthy", json!([]), "completed", ("144h", "complete")),
        (
            "error spike",
            json!([{ "from": "30h", "to": "31h", "error_rate": 0.012 }]),
            "rolled_back",
            ("30h9m", "rollback"),
        ),
        (
            "latency spike, canary",
            json!([{ "from": "2h", "to": "3h", "p95_ms": 350 }]),
            "rolled_back",
            ("2h8m", "rollback"),
        ),
        (
            "latency spike, mid",
            json!([{ "from": "30h", "to": "31h", "p95_ms": 350 }]),
            "completed",
            ("144h", "complete"),
        ),
        (
            "no traffic",
            json!([{ "from": "50h", "to": "51h", "requests_per_second": 0 }]),
            "paused",
            ("50h35m", "pause"),
        ),
        (
            "job down",
            json!([{ "from": "60h", "to": "60h10m", "jobs_down": ["genesis"] }]),
            "rolled_back",
            ("60h3m", "rollback"),
        ),
        // Stage 2 starts 65 minutes late, and so does everything after it.
        (
            "critical alert",
            json!([{ "from": "11h", "to": "13h", "critical_alerts": ["GenesisHighErrorRate"] }]),
            "completed",
            ("145h5m", "complete"),
        ),
    ]
}

#[test]
fn every_scenario_ends_as_the_plan_says() {
    let dir = tempfile::tempdir().unwrap();
    for (name, events, outcome, (offset, decision)) in cases() {
        let (code, v) = simulate(dir.path(), &scenario(START, "7d", events), &[]);
        assert_eq!(v["outcome"], outcome, "{name}: {v}");
        assert_eq!(last(&v), (offset.to_owned(), decision.to_owned()), "{name}");
        assert_eq!(
            code,
            Some(if outcome == "completed" { 0 } else { 1 }),
            "{name}"
        );
        if name == "critical alert" {
            assert_eq!(
                v["events"][0]["offset"], "13h5m",
                "the alert delays stage 2"
            );
        }
    }
}

#[cfg(feature = "prometheus")]
use crate::support::prometheus as prom;

#[cfg(feature = "prometheus")]
#[test]
fn every_scenario_agrees_on_a_real_prometheus() {
    if !prom::available("every_scenario_agrees_on_a_real_prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Backfilled data must lie in the past: seven days ending four hours ago.
    let start = prom::scenario_hours_ago(7 * 24 + 4, 1).start.to_string();
    let mut outcomes = Vec::new();
    for (name, events, _, _) in cases() {
        let s = scenario(&start, "7d", events);
        let parsed =
            genesis_flags::rollout::simulation::Scenario::from_json(&s.to_string()).unwrap();
        let server = prom::PrometheusServer::start(&parsed.openmetrics(), "[]");
        // 30-minute ticks keep the number of queries reasonable; both gates
        // agree at every minute, so they must agree at every tick.
        let (_, direct) = simulate(dir.path(), &s, &["--tick", "30m"]);
        let (_, via) = simulate(
            dir.path(),
            &s,
            &["--tick", "30m", "--prometheus", &server.url],
        );
        assert_eq!(via["events"], direct["events"], "{name}");
        assert_eq!(via["outcome"], direct["outcome"], "{name}");
        outcomes.push(direct["outcome"].as_str().unwrap().to_owned());
    }
    // Not vacuous: at this tick too, some complete and some roll back.
    assert!(outcomes.iter().any(|o| o == "completed"), "{outcomes:?}");
    assert!(outcomes.iter().any(|o| o == "rolled_back"), "{outcomes:?}");
}
