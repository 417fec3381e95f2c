//! Cohort scenarios (the flagged users judged against the others) through
//! `simulate` with the six-day plan: flagged-only errors roll back, a global
//! incident rolls back with both cohorts affected, a lagging instance holds
//! then pauses, healthy cohort data completes on time. With the
//! `prometheus` feature, each also runs on a real Prometheus holding the
//! scenario's samples and must reach the same decisions.

use std::time::Duration;

use genesis_flags::rollout::simulation::{
    simulate, Outcome, Scenario, Simulation, SimulationOptions,
};
use genesis_flags::rollout::Plan;

const WINDOW: Duration = Duration::from_secs(300);

fn load(name: &str) -> Scenario {
    let path = format!(
        "{}/examples/scenarios/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
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
    assert!(
        why.contains("waiting for every instance to apply 10%"),
        "{why}"
    );
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
use crate::support::prometheus as prom;

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
        (
            "cohort-lagging-instance",
            5 * MINUTE,
            "waiting for every instance to apply 10%",
        ),
        (
            "cohort-healthy",
            30 * MINUTE,
            "final validation of 48h held",
        ),
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
        assert_eq!(
            decisions(&via),
            decisions(&direct),
            "{name}: {:#?}",
            via.events
        );
        assert_eq!(via.outcome, direct.outcome, "{name}");
        for r in [&direct, &via] {
            let (_, _, why) = last(r);
            assert!(why.contains(phrase), "{name}: {why}");
            assert!(!why.contains("global series only"), "{name}: {why}");
        }
    }
}

mod policy {
    //! The cohort rules through `decide`, on hand-made observations.

    use std::time::Duration;

    use genesis_flags::rollout::{
        decide, Action, CheckKind, CohortFigures, CohortObservation, FleetPercentage, Observation,
        Plan, Reading, RolloutState, Timestamp, Verdict,
    };
    use genesis_flags::Percentage;

    const MINUTE: Duration = Duration::from_secs(60);

    fn t0() -> Timestamp {
        "2025-10-23T09:00:00Z".parse().unwrap()
    }

    fn started() -> RolloutState {
        let mut state = RolloutState::new("phase_4_deployment", Plan::six_day(), t0());
        state.start(t0(), "alice").unwrap();
        state
    }

    /// A 5-minute window of 60,000 requests split at `share`, with the given
    /// error rates, every instance on `percent`.
    fn cohorts(share: f64, in_rate: f64, out_rate: f64, percent: f64) -> CohortObservation {
        let figures = |n: f64, rate: f64| CohortFigures {
            requests: n,
            errors: (n * rate).round(),
            p95_ms: Some(120.0),
            slow: (n * 0.01).round(),
        };
        let total = 60_000.0;
        CohortObservation::converged(
            "phase_4_deployment",
            5 * MINUTE,
            Percentage::from_percent(percent).unwrap(),
            figures(total * share, in_rate),
            figures(total * (1.0 - share), out_rate),
        )
    }

    fn observe(c: CohortObservation) -> Observation {
        let requests = c.in_cohort.requests + c.out_cohort.requests;
        let errors = c.in_cohort.errors + c.out_cohort.errors;
        Observation::healthy()
            .with_error_rate(errors / requests)
            .with_cohorts(c)
    }

    /// Ticks every minute from `from` until a decision other than Hold, or
    /// `limit`.
    fn until_action(
        state: &mut RolloutState,
        from: Timestamp,
        limit: Duration,
        obs: &dyn Fn(Timestamp) -> Observation,
    ) -> Option<(Timestamp, genesis_flags::rollout::Decision)> {
        let mut now = from;
        while now.since(from) <= limit {
            let d = decide(state, &obs(now), now);
            state.apply(&d);
            if d.action != Action::Hold {
                return Some((now, d));
            }
            now = now + MINUTE;
        }
        None
    }

    #[test]
    fn without_cohort_series_every_explanation_says_global_only() {
        let state = started();
        let d = decide(&state, &Observation::healthy(), t0() + MINUTE);
        assert!(
            d.explanation
                .message
                .contains("global series only: the gate found no cohort series"),
            "{}",
            d.explanation
        );
        assert!(d.verdicts.cohort.is_none());
    }

    #[test]
    fn a_significant_excess_under_every_threshold_rolls_back() {
        // 0.3% in the in cohort (under the 0.5% threshold and the tier),
        // 0.05% elsewhere: only the in-vs-out test can see it.
        let mut state = started();
        let obs = |_| observe(cohorts(0.05, 0.003, 0.0005, 5.0));
        let (at, d) = until_action(
            &mut state,
            t0() + MINUTE,
            Duration::from_secs(12 * 3600),
            &obs,
        )
        .expect("a decision");
        assert!(
            matches!(d.action, Action::Rollback { .. }),
            "{}",
            d.explanation
        );
        assert_eq!(d.explanation.check, Some(CheckKind::CohortErrorExcess));
        let why = &d.explanation.message;
        assert!(why.contains("in-vs-out error excess significant"), "{why}");
        assert!(why.contains("e-value"), "{why}");
        assert!(why.contains("the flagged users only"), "{why}");
        // Within hours, not days; never before the sustained limit.
        let took = at.since(t0());
        assert!(
            took > 5 * MINUTE && took < Duration::from_secs(6 * 3600),
            "{took:?}"
        );
    }

    #[test]
    fn the_same_rates_in_both_cohorts_never_trip_the_test() {
        let mut state = started();
        let obs = |_| observe(cohorts(0.05, 0.0005, 0.0005, 5.0));
        let (at, d) = until_action(
            &mut state,
            t0() + MINUTE,
            Duration::from_secs(13 * 3600),
            &obs,
        )
        .expect("an advance");
        assert!(
            matches!(d.action, Action::Advance { stage: 2, .. }),
            "{}",
            d.explanation
        );
        assert_eq!(at, t0() + Duration::from_secs(12 * 3600));
        let c = d.verdicts.cohort.as_ref().unwrap();
        assert_eq!(c.error_excess.verdict, Verdict::Pass);
        assert!(c.sample.go, "{}", c.sample.detail);
    }

    #[test]
    fn a_sample_ratio_mismatch_holds_then_pauses() {
        // Every instance says 5%, but only 2% of requests are in the cohort.
        let mut state = started();
        let obs = |_| observe(cohorts(0.02, 0.0005, 0.0005, 5.0));
        let (at, d) = until_action(&mut state, t0() + MINUTE, Duration::from_secs(3600), &obs)
            .expect("a pause");
        assert!(
            matches!(d.action, Action::Pause { .. }),
            "{}",
            d.explanation
        );
        assert!(
            d.explanation.message.contains("sample ratio mismatch"),
            "{}",
            d.explanation
        );
        // Judged once a whole window follows convergence (6m), then the
        // 30-minute no-data budget.
        assert_eq!(at, t0() + 36 * MINUTE);
    }

    #[test]
    fn the_soak_starts_when_the_fleet_converges() {
        let mut state = started();
        // One instance still applies 0% for the first 20 minutes.
        let obs = |now: Timestamp| {
            let mut c = cohorts(0.05, 0.0005, 0.0005, 5.0);
            if now < t0() + 20 * MINUTE {
                c.fleet = Reading::Value(FleetPercentage {
                    min_percent: 0.0,
                    max_percent: 5.0,
                    instances: 2,
                    reports: vec!["a=0%".into(), "b=5%".into()],
                });
            }
            observe(c)
        };
        let d = decide(&state, &obs(t0() + MINUTE), t0() + MINUTE);
        assert!(
            d.explanation.message.contains("has not started"),
            "{}",
            d.explanation
        );
        assert_eq!(
            d.verdicts.cohort.as_ref().unwrap().fleet.verdict,
            Verdict::NoData
        );
        let (at, d) = until_action(
            &mut state,
            t0() + MINUTE,
            Duration::from_secs(13 * 3600),
            &obs,
        )
        .expect("an advance");
        assert!(
            matches!(d.action, Action::Advance { stage: 2, .. }),
            "{}",
            d.explanation
        );
        assert_eq!(at, t0() + 20 * MINUTE + Duration::from_secs(12 * 3600));
    }

    #[test]
    fn too_few_in_cohort_requests_hold_go_until_the_sample_is_there() {
        // 0.02% of 60,000 requests is 12 in-cohort requests a window: the
        // soak ends long before a doubling could be detected.
        let mut state = started();
        let mut c = cohorts(0.0002, 0.0, 0.0005, 5.0);
        // Keep the sample ratio check out of it.
        c.rules.sample_ratio_tolerance = 0.999;
        let obs = |_| observe(c.clone());
        let at = t0() + Duration::from_secs(12 * 3600);
        let mut now = t0() + MINUTE;
        while now < at {
            state.apply(&decide(&state, &obs(now), now));
            now = now + MINUTE;
        }
        let d = decide(&state, &obs(at), at);
        assert_eq!(d.action, Action::Hold, "{}", d.explanation);
        assert!(
            d.explanation
                .message
                .contains("needed to detect a doubling"),
            "{}",
            d.explanation
        );
        // max_sample_wait (by default one more soak, 12 h) after the soak's
        // end, go stops
        // waiting for the sample, and says so.
        let (at, d) =
            until_action(&mut state, at, Duration::from_secs(25 * 3600), &obs).expect("an advance");
        assert!(
            matches!(d.action, Action::Advance { stage: 2, .. }),
            "{}",
            d.explanation
        );
        assert_eq!(at, t0() + Duration::from_secs(24 * 3600));
        assert!(
            d.explanation
                .message
                .contains("waived: 12h past the soak's end"),
            "{}",
            d.explanation
        );
    }

    #[test]
    fn one_stray_error_in_a_small_in_cohort_is_not_a_breach() {
        let state = started();
        // 40 in-cohort requests in the window: one error is 2.5%, over 0.5%.
        let mut c = cohorts(40.0 / 60_000.0, 0.0, 0.0005, 5.0);
        c.in_cohort.errors = 1.0;
        let d = decide(&state, &observe(c.clone()), t0() + MINUTE);
        let check = d.verdicts.cohort.as_ref().unwrap().in_error_rate.clone();
        assert_eq!(check.verdict, Verdict::Pass, "{}", check.detail);
        assert!(check.detail.contains("min_in_errors"), "{}", check.detail);
        assert!(!check.go, "2.5% still misses the go criterion");
        c.in_cohort.errors = 3.0;
        let d = decide(&state, &observe(c), t0() + MINUTE);
        let check = &d.verdicts.cohort.as_ref().unwrap().in_error_rate;
        assert_eq!(check.verdict, Verdict::Breach, "{}", check.detail);
    }

    #[test]
    fn failed_cohort_queries_are_errors_not_passes() {
        let state = started();
        let mut obs = Observation::healthy();
        obs.cohorts = Reading::Failed("connection refused".into());
        let d = decide(&state, &obs, t0() + MINUTE);
        let c = d.verdicts.cohort.as_ref().unwrap();
        assert!(c.all().iter().all(|k| k.verdict == Verdict::Error));
        assert!(!d.verdicts.go());
    }
}

use crate::support::controller as bin;

/// `controller simulate --scenario` reads cohort scenarios too: the flagged
/// path's errors roll back (exit 1) and the explanation names the cohorts.
#[test]
fn controller_simulate_reads_cohort_scenarios() {
    let scenarios = format!("{}/examples/scenarios", env!("CARGO_MANIFEST_DIR"));
    for (name, code, outcome, phrase) in [
        (
            "cohort-flagged-errors",
            1,
            "rolled_back",
            "the flagged users only",
        ),
        (
            "cohort-global-incident",
            1,
            "rolled_back",
            "both cohorts affected",
        ),
        (
            "cohort-lagging-instance",
            1,
            "paused",
            "waiting for every instance",
        ),
    ] {
        let out = std::process::Command::new(bin::controller())
            .args(["simulate", "--output", "json", "--scenario"])
            .arg(format!("{scenarios}/{name}.json"))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(out.status.code(), Some(code), "{name}: {v}");
        assert_eq!(v["outcome"], outcome, "{name}: {v}");
        let why = v["events"].as_array().unwrap().last().unwrap()["why"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(why.contains(phrase), "{name}: {why}");
    }
}

mod properties {
    //! Invariants of the policy on arbitrary cohort observations.

    use std::time::Duration;

    use genesis_flags::rollout::{
        decide, Action, CohortFigures, CohortObservation, FleetPercentage, Observation, Plan,
        Reading, RolloutState, Timestamp, Verdict,
    };
    use genesis_flags::Percentage;
    use proptest::prelude::*;

    /// Mostly healthy windows (so that soaks end and stages advance), now
    /// and then anything.
    fn figures() -> impl Strategy<Value = CohortFigures> {
        let build = |(requests, rate, p95_ms, slow): (f64, f64, Option<f64>, f64)| CohortFigures {
            requests,
            errors: (requests * rate).round(),
            p95_ms,
            slow: (requests * slow).round(),
        };
        prop_oneof![
            4 => (1e3f64..1e5, 0.0f64..0.0008, prop::option::of(80.0f64..190.0), 0.005f64..0.012)
                .prop_map(build),
            1 => (0.0f64..1e5, 0.0f64..0.2, prop::option::of(1.0f64..2000.0), 0.0f64..0.5)
                .prop_map(build),
        ]
    }

    /// (in cohort, out cohort's error rate, lagging fleet's min and max,
    /// whether the fleet converged, minutes since the last tick)
    fn tick() -> impl Strategy<Value = (CohortFigures, f64, f64, f64, bool, u64)> {
        (
            figures(),
            prop_oneof![4 => 0.0f64..0.0008, 1 => 0.0f64..0.2],
            0.0f64..100.0,
            0.0f64..100.0,
            prop::bool::weighted(0.85),
            prop_oneof![3 => 1u64..30, 1 => 30u64..900],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever the cohort series say: a rollback follows a Breach on
        /// its tick, an advance needs every check reporting and its go
        /// criterion holding, and a fleet off the stage's percentage never
        /// advances.
        #[test]
        fn cohort_decisions_keep_the_rules(ticks in prop::collection::vec(tick(), 1..60)) {
            let t0: Timestamp = Timestamp::from_unix_millis(1_761_210_000_000);
            let mut state = RolloutState::new("p", Plan::six_day(), t0);
            state.start(t0, "alice").unwrap();
            let mut now = t0;
            for (inn, out_rate, lo, hi, converged, gap) in ticks {
                // Long gaps reach the end of soaks now and then.
                now = now + Duration::from_secs(gap * 60);
                let (min_percent, max_percent) = (lo.min(hi), lo.max(hi));
                // The out cohort in proportion (the sample ratio holds).
                let share = state.percentage.as_percent() / 100.0;
                let out_requests = (inn.requests * (1.0 - share) / share.max(0.01)).round();
                let out = CohortFigures {
                    requests: out_requests,
                    errors: (out_requests * out_rate).round(),
                    p95_ms: Some(120.0),
                    slow: (out_requests * 0.01).round(),
                };
                let mut c = CohortObservation::converged(
                    "p",
                    Duration::from_secs(300),
                    state.percentage,
                    inn,
                    out,
                );
                if !converged {
                    c.fleet = Reading::Value(FleetPercentage {
                        min_percent,
                        max_percent,
                        instances: 2,
                        reports: Vec::new(),
                    });
                }
                let requests = inn.requests + out.requests;
                let mut obs = Observation::healthy()
                    .with_error_rate((inn.errors + out.errors) / requests.max(1.0))
                    .with_cohorts(c);
                obs.requests = Reading::Value(requests);
                let d = decide(&state, &obs, now);
                match &d.action {
                    Action::Rollback { .. } => {
                        prop_assert!(d.verdicts.any_breach(), "{}", d.explanation);
                    }
                    Action::Advance { .. } => {
                        prop_assert!(d.verdicts.go(), "{}", d.explanation);
                        let fleet = &d.verdicts.cohort.as_ref().unwrap().fleet;
                        prop_assert_eq!(fleet.verdict, Verdict::Pass);
                        let stage_percent = state.percentage;
                        prop_assert!(
                            converged
                                || (min_percent - stage_percent.as_percent()).abs() < 1e-4
                                    && (max_percent - stage_percent.as_percent()).abs() < 1e-4
                        );
                    }
                    _ => {}
                }
                state.apply(&d);
                if matches!(d.action, Action::Rollback { .. } | Action::Pause { .. }) {
                    break;
                }
                prop_assert!(state.percentage <= Percentage::HUNDRED);
            }
        }
    }
}
