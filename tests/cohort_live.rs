//! The cohort gate live: a real Prometheus scraping two instances of the
//! example service every second, the load generator, and `controller run
//! --tick 1s` with the live demo's gate file (15 s soaks, 5 s sustained, a
//! 15 s window). The gate file sets no query: the gate's default queries
//! find the services' `cohort="in"|"out"` series and judge the flagged users
//! as well as everyone. 5% errors for the flagged users only (0.05% for
//! everyone) roll back within sustained + window + a few ticks, on an
//! in-cohort check, although the global error rate stays under the canary
//! threshold (a gate on global series alone would have let it through) —
//! also when someone left the flags file invalid meanwhile (the last good
//! document is published at 0%, the broken one kept beside), and the
//! notification names the deciding check first; a healthy service completes.

#![cfg(feature = "prometheus")]

use crate::support::controller as bin;
use crate::support::live;
use crate::support::prometheus as prom;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The short live plan: 5 → 50 → 100%.
const PLAN: &str = r#"{ "name": "live-short", "signoffs": [],
  "stages": [ { "percentage": 5,   "soak": "15s", "report_every": "15s", "tier": "canary" },
              { "percentage": 50,  "soak": "15s", "report_every": "15s", "tier": "canary" },
              { "percentage": 100, "soak": "15s", "report_every": "15s", "tier": "canary" } ],
  "final": { "duration": "15s", "report_every": "15s", "tier": "canary" },
  "tiers": { "canary": { "error_rate_percent": 2.0, "p95_ms": 300, "sustained": "5s", "consecutive_health_failures": 3 } },
  "go": { "error_rate_percent_below": 1.0, "p95_ms_below": 200, "no_critical_alerts": true },
  "no_data_budget": "30s", "min_requests": 50 }"#;
const SUSTAINED_S: u64 = 5;
const WINDOW_S: u64 = 15;
/// "A few ticks" of 1 s: scrape lag, the services' reload poll, a busy machine.
const SLACK_TICKS: u64 = 10;
const GLOBAL_ERRORS: &str =
    "sum(increase(genesis_errors_total[15s])) / sum(increase(genesis_requests_total[15s]))";
const IN_ERRORS: &str = r#"sum(increase(genesis_errors_total{cohort="in"}[15s]))"#;
/// The canary tier's error-rate threshold, in percent.
const CANARY_ERROR_PERCENT: f64 = 2.0;

fn gate(prometheus_url: &str) -> String {
    let gate: Value =
        serde_json::from_str(include_str!("../examples/gates/live-demo.json")).unwrap();
    let mut gate = gate;
    gate["prometheus"]["url"] = Value::String(prometheus_url.to_owned());
    gate.to_string()
}

fn controller(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = bin::run(dir, args);
    eprintln!(
        "controller {}: exit {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains(" hold: "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    out
}

/// A fresh rollout at 0% of `flags.json`, on the short plan.
fn init(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("rollout-state.json"));
    let out = controller(
        dir,
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
            "--plan",
            "plan.json",
        ],
    );
    assert!(out.status.success());
}

fn state(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("rollout-state.json")).unwrap()).unwrap()
}

/// Milliseconds of a history entry's `at` (RFC 3339, UTC, milliseconds).
fn at_millis(entry: &Value) -> i64 {
    let at = entry["at"].as_str().unwrap();
    let (date, time) = at.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, millis) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    // Days since 1970 by the civil-from-days inverse (Howard Hinnant's).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + millis.parse::<i64>().unwrap()
}

/// The audit log's entries for `event`, oldest first.
fn audited(dir: &Path, event: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join("rollout-state.json.audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == event)
        .collect()
}

fn event<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {}", state["history"]))
}

#[test]
fn flagged_only_errors_roll_back_and_a_healthy_service_completes() {
    if !prom::available("flagged_only_errors_roll_back_and_a_healthy_service_completes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("plan.json"), PLAN).unwrap();
    assert!(controller(d, &["init", "--example-flags", "flags.json"])
        .status
        .success());
    init(d);

    let services = [
        live::Service::start(d, &d.join("flags.json"), 0.0005),
        live::Service::start(d, &d.join("flags.json"), 0.0005),
    ];
    let targets: Vec<String> = services
        .iter()
        .map(|s| format!("'127.0.0.1:{}'", s.port))
        .collect();
    let scrape = format!(
        "[{{ job_name: genesis-service, scrape_interval: 1s, static_configs: [{{ targets: [{}] }}] }}]",
        targets.join(", ")
    );
    let server = prom::PrometheusServer::start("", &scrape);
    std::fs::write(d.join("gate.json"), gate(&server.url)).unwrap();
    let ports: Vec<u16> = services.iter().map(|s| s.port).collect();
    let _load = live::loadgen(d, &ports, 300);
    assert!(
        live::wait_for(Duration::from_secs(60), || {
            live::query(server.port, r#"count(up{job="genesis-service"} == 1)"#) == Some(2.0)
                && live::query(server.port, "sum(increase(genesis_requests_total[15s]))")
                    .is_some_and(|n| n > 100.0)
        }),
        "Prometheus never scraped both instances under load"
    );

    // 1. 5% errors for the in cohort only: rolled back, exit 1.
    for s in &services {
        s.fault(0.05);
    }
    assert!(controller(d, &["promote", "--reason", "live test"])
        .status
        .success());
    // A colleague's typo in the flags file: the services refuse it (they
    // keep serving 5%), and it must not silence the rollback.
    let good = std::fs::read_to_string(d.join("flags.json")).unwrap();
    let broken = good.replacen(',', ",,", 1);
    std::fs::write(d.join("flags.json"), &broken).unwrap();
    let out = controller(d, &["run", "--gate", "gate.json", "--tick", "1s"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a flagged-only fault must roll back"
    );
    // The broken document is kept beside; the published one is valid.
    let kept = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("flags.json.rejected-")
        })
        .count();
    assert_eq!(kept, 1, "the broken flags file is kept beside");
    genesis_flags::Snapshot::from_json(&std::fs::read_to_string(d.join("flags.json")).unwrap())
        .expect("the published flags file is valid");
    // The notification names the deciding check first, among every check.
    let outbox = std::fs::read_to_string(d.join("rollout-state.json.outbox.jsonl")).unwrap();
    let rolled_back: Value = outbox
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|e| e["type"] == "rolled_back")
        .expect("a rolled_back event in the outbox");
    let checks = rolled_back["checks"].as_array().unwrap();
    assert_eq!(checks[0]["check"], rolled_back["check"], "{rolled_back}");
    assert_eq!(checks[0]["verdict"], "breach", "{rolled_back}");
    assert!(checks.len() > 4, "the cohort checks too: {rolled_back}");
    let s = state(d);
    assert_eq!(s["phase"], "rolled_back", "{}", s["reason"]);
    let reason = s["reason"].as_str().unwrap();
    // An in-cohort check rolled it back, and the gate says only the flagged
    // users were hit.
    assert!(
        reason.starts_with("in-cohort error rate") || reason.starts_with("in-vs-out error excess"),
        "{reason}"
    );
    assert!(reason.contains("the flagged users only"), "{reason}");
    let rollbacks = audited(d, "rollback");
    let rollback = rollbacks.last().expect("a rollback in the audit log");
    assert!(
        ["in_cohort_error_rate", "cohort_error_excess"]
            .contains(&rollback["explanation"]["check"].as_str().unwrap_or("")),
        "{}",
        rollback["explanation"]
    );
    assert_eq!(
        rollback["verdicts"]["scope"], r#"cohort series {rollout="phase_4_deployment"}"#,
        "the gate judged this rollout's cohort series"
    );
    // The point of cohorts: at the rollback the global error rate, as the
    // gate itself read it, was under the canary threshold and passed.
    let global = &rollback["verdicts"]["error_rate"];
    eprintln!("global error rate at the rollback: {global}");
    assert_eq!(global["verdict"], "pass", "{global}");
    assert!(
        global["value"].as_f64().unwrap() < CANARY_ERROR_PERCENT,
        "{global}"
    );
    let took = at_millis(event(&s, "rollback")) - at_millis(event(&s, "promote"));
    let bound = (SUSTAINED_S + WINDOW_S + SLACK_TICKS) as i64 * 1000;
    eprintln!("rolled back {took} ms after the move to 5% (bound {bound} ms)");
    assert!(
        took <= bound,
        "rolled back {took} ms after the move; the bound is {bound} ms"
    );
    // The point of cohorts: globally the errors were diluted under every threshold.
    let global = live::query(server.port, GLOBAL_ERRORS).expect("a global error rate");
    eprintln!("global error ratio over the last 15 s: {global}");
    assert!(
        global * 100.0 < CANARY_ERROR_PERCENT,
        "global error ratio {global}"
    );
    // Both instances follow the rolled-back flags file.
    assert!(live::wait_for(Duration::from_secs(30), || {
        services.iter().all(|s| {
            s.metric(r#"genesis_flags_rollout_percentage{rollout="phase_4_deployment"} "#)
                == Some(0.0)
        })
    }));

    // 2. Healthy: once the fault's errors have left the window, the whole
    // plan completes, exit 0, the flags file at 100%.
    for s in &services {
        s.fault(0.0);
    }
    assert!(
        live::wait_for(Duration::from_secs(60), || {
            live::query(server.port, IN_ERRORS) == Some(0.0)
        }),
        "the in cohort's errors never left the window"
    );
    init(d);
    assert!(controller(d, &["promote", "--reason", "live test"])
        .status
        .success());
    let out = controller(d, &["run", "--gate", "gate.json", "--tick", "1s"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a healthy service must complete"
    );
    let s = state(d);
    assert_eq!(s["phase"], "completed");
    // Every move was judged on the cohort series, and says so.
    let moves: Vec<Value> = ["advance", "complete"]
        .iter()
        .flat_map(|e| audited(d, e))
        .collect();
    assert_eq!(moves.len(), 3, "two advances and the completion");
    for m in &moves {
        let message = m["explanation"]["message"].as_str().unwrap();
        assert!(message.contains("in cohort: error rate"), "{message}");
        assert!(!message.contains("global series only"), "{message}");
    }
    let flags: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("flags.json")).unwrap()).unwrap();
    assert_eq!(flags["rollouts"]["phase_4_deployment"]["percentage"], 100);
    assert!(live::wait_for(Duration::from_secs(30), || {
        services.iter().all(|s| {
            s.metric(r#"genesis_flags_rollout_percentage{rollout="phase_4_deployment"} "#)
                == Some(100.0)
        })
    }));
}

#[test]
fn the_demo_plan_and_gate_file_load() {
    use genesis_flags::rollout::prometheus::GateConfig;
    use genesis_flags::rollout::Plan;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = Plan::from_file(root.join("examples/plans/live-demo.json")).unwrap();
    let percentages: Vec<u32> = plan
        .stages
        .iter()
        .map(|s| s.percentage.ppm() / 10_000)
        .collect();
    assert_eq!(percentages, [5, 10, 25, 50, 100]);
    assert!(plan
        .stages
        .iter()
        .all(|s| s.soak == Duration::from_secs(15)));
    let short = Plan::from_json(PLAN).unwrap();
    assert_eq!(short.stages.len(), 3);

    // The demo's gate file: the default queries over a 15 s window, the
    // cohort series of phase_4_deployment, no wait for a doubling's sample,
    // and the one job the demo's Prometheus scrapes.
    let gate = GateConfig::from_json(&gate("http://127.0.0.1:9090")).unwrap();
    let defaults = GateConfig::default().queries;
    assert_eq!(gate.queries, defaults, "the demo uses the default queries");
    let queries = gate.rendered_queries().unwrap();
    assert_eq!(
        queries.error_rate,
        "sum(rate(genesis_errors_total[15s])) / sum(rate(genesis_requests_total[15s]))"
    );
    assert_eq!(queries.cohort.window, Duration::from_secs(15));
    assert_eq!(queries.cohort.selector, r#"rollout="phase_4_deployment""#);
    for q in [
        &queries.cohort.requests,
        &queries.cohort.errors,
        &queries.cohort.latency_buckets,
    ] {
        assert!(
            q.contains(r#"rollout="phase_4_deployment",cohort=~"in|out""#) && q.contains("[15s]"),
            "{q}"
        );
    }
    assert_eq!(queries.cohort.rules.max_sample_wait, Some(Duration::ZERO));
    assert_eq!(
        queries.health_checks,
        [(
            "service".to_owned(),
            r#"up{job="genesis-service"}"#.to_owned()
        )]
    );
}
