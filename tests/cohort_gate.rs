//! Cohort scenarios (the flagged users judged against the others) through
//! `simulate` with the six-day plan: flagged-only errors roll back, a global
//! incident rolls back with both cohorts affected, a lagging instance holds
//! then pauses, healthy cohort data completes on time. With the
//! `prometheus` feature, each also runs on a real Prometheus holding the
//! scenario's samples and must reach the same decisions.

use std::time::Duration;

use genesis_flags::rollout::{
    simulate, Outcome, Plan, Scenario, Simulation, SimulationOptions,
};

const WINDOW: Duration = Duration::from_secs(300);

fn load(name: &str) -> Scenario {
    let path = format!("{}/examples/scenarios/{name}.json", env!("CARGO_MANIFEST_DIR"));
    Scenario::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn options(s: &Scenario, tick: Duration) -> SimulationOptions {
    SimulationOptions {
        rollout: "phase_4_deployment".into(),
        start: s.start,
        until: s.start + s.duration,
        tick,
        auto_signoff: true,
        keep_samples: false,
    }
}

fn run(s: &Scenario, tick: Duration) -> Simulation {
    run_over(s, tick, WINDOW)
}

fn run_over(s: &Scenario, tick: Duration, window: Duration) -> Simulation {
    simulate(Plan::six_day(), s.gate(window), &options(s, tick))
}

fn last(run: &Simulation) -> (&str, &str, &str) {
    let e = run.events.last().expect("an event");
    (e.offset.as_str(), e.decision.as_str(), e.why.as_str())
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn flagged_only_errors_roll_back_though_the_global_rate_stays_under_the_threshold() {
    let s = load("cohort-flagged-errors");
    let run = run(&s, MINUTE);
    assert_eq!(run.outcome, Outcome::RolledBack, "{:?}", run.events);
    let (offset, decision, why) = last(&run);
    assert_eq!((offset, decision), ("6m", "rollback"), "{why}");
    assert!(why.contains("in-cohort error rate 5.000%"), "{why}");
    assert!(why.contains("the flagged users only"), "{why}");
    assert!(why.contains("150 errors / 3000 requests"), "{why}");
    // The same data judged globally only: 0.3%, under the 0.5% threshold.
    let mut global = s.clone();
    global.cohorts = None;
    global.events[0].error_rate = Some(0.0005 + 0.05 * 0.05);
    let g = global.gate(WINDOW);
    let mut g = g;
    let obs = genesis_flags::rollout::HealthGate::observe(&mut g, s.start + 10 * MINUTE);
    assert!(obs.error_rate.value().unwrap() < &0.005, "{obs:?}");
}

#[test]
fn a_global_incident_rolls_back_with_both_cohorts_affected() {
    let s = load("cohort-global-incident");
    let run = run(&s, MINUTE);
    assert_eq!(run.outcome, Outcome::RolledBack, "{:?}", run.events);
    let (offset, decision, why) = last(&run);
    // The second bad minute tips the 5-minute window over 0.5%.
    assert_eq!((offset, decision), ("2h7m", "rollback"), "{why}");
    assert!(why.contains("both cohorts affected"), "{why}");
}

#[test]
fn a_lagging_instance_holds_then_pauses() {
    let s = load("cohort-lagging-instance");
    let run = run(&s, MINUTE);
    assert_eq!(run.outcome, Outcome::Paused, "{:?}", run.events);
    let decisions: Vec<(&str, &str)> = run
        .events
        .iter()
        .map(|e| (e.offset.as_str(), e.decision.as_str()))
        .collect();
    assert_eq!(decisions, [("12h", "advance"), ("12h31m", "pause")]);
    let (_, _, why) = last(&run);
    assert!(why.contains("waiting for every instance to apply 10%"), "{why}");
    assert!(why.contains("instance-0=5%"), "{why}");
}

#[test]
fn healthy_cohort_data_completes_on_time() {
    let s = load("cohort-healthy");
    let run = run(&s, MINUTE);
    assert_eq!(run.outcome, Outcome::Completed, "{:?}", run.events);
    let offsets: Vec<&str> = run.events.iter().map(|e| e.offset.as_str()).collect();
    assert_eq!(offsets, ["12h", "24h", "48h", "72h", "96h", "144h"]);
    let advance = &run.events[0].why;
    assert!(advance.contains("in cohort: error rate"), "{advance}");
    assert!(advance.contains("needed to detect a doubling"), "{advance}");
}

#[cfg(feature = "prometheus")]
#[path = "support/prometheus.rs"]
mod prom;

/// Each cohort scenario, backfilled into a real Prometheus (seven days
/// ending four hours ago at most), judged through `PrometheusGate` with the
/// default cohort queries, reaches the decisions of the direct gate.
#[cfg(feature = "prometheus")]
#[test]
fn every_cohort_scenario_agrees_on_a_real_prometheus() {
    use genesis_flags::rollout::prometheus::{GateConfig, PrometheusGate, ServerConfig};
    if !prom::available("every_cohort_scenario_agrees_on_a_real_prometheus") {
        return;
    }
    // (scenario, tick, the last decision's key phrase). The stage's cohort
    // counts add up whole windows, so a tick longer than the window would
    // count only part of the traffic: the healthy week runs 30-minute ticks
    // over a 30-minute window.
    let cases = [
        ("cohort-flagged-errors", MINUTE, "the flagged users only"),
        ("cohort-global-incident", MINUTE, "both cohorts affected"),
        ("cohort-lagging-instance", 5 * MINUTE, "waiting for every instance to apply 10%"),
        ("cohort-healthy", 30 * MINUTE, "final validation of 48h held"),
    ];
    for (name, tick, phrase) in cases {
        let window = tick.max(WINDOW);
        let mut s = load(name);
        let hours = s.duration.as_secs() / 3600 + 4;
        s.start = prom::scenario_hours_ago(hours, 1).start;
        let server = prom::PrometheusServer::start(&s.openmetrics(), "[]");
        let direct = run_over(&s, tick, window);
        let config = GateConfig {
            prometheus: ServerConfig {
                url: server.url.clone(),
                ..ServerConfig::default()
            },
            variables: [(
                "window".to_owned(),
                genesis_flags::rollout::format_duration(window),
            )]
            .into(),
            ..GateConfig::default()
        }
        .for_rollout("phase_4_deployment");
        let gate = PrometheusGate::new(config).unwrap();
        let via = simulate(Plan::six_day(), gate, &options(&s, tick));
        let decisions = |r: &Simulation| -> Vec<(String, String)> {
            r.events
                .iter()
                .map(|e| (e.offset.clone(), e.decision.clone()))
                .collect()
        };
        assert_eq!(decisions(&via), decisions(&direct), "{name}: {:#?}", via.events);
        assert_eq!(via.outcome, direct.outcome, "{name}");
        for r in [&direct, &via] {
            let (_, _, why) = last(r);
            assert!(why.contains(phrase), "{name}: {why}");
            assert!(!why.contains("global series only"), "{name}: {why}");
        }
    }
}
