//! Whole plans simulated against scenarios read directly: the healthy run,
//! an error spike, latency spikes in the canary and mid tiers, no traffic, a
//! job down and a critical alert, with the offsets of the decisions.

use std::time::Duration;

use genesis_flags::rollout::simulation::{
    simulate, Event, Outcome, Scenario, Simulation, SimulationOptions,
};
use genesis_flags::rollout::{Plan, Timestamp};

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn run(events: Vec<Event>) -> Simulation {
    let start: Timestamp = "2025-10-23T09:00:00Z".parse().unwrap();
    let mut scenario = Scenario::healthy(start);
    scenario.events = events;
    let options = SimulationOptions {
        rollout: "phase_4_deployment".into(),
        start,
        until: start + scenario.duration,
        tick: minutes(1),
        auto_signoff: true,
        keep_samples: false,
    };
    simulate(Plan::six_day(), scenario.gate(minutes(5)), &options)
}

fn offsets(sim: &Simulation) -> Vec<(String, String)> {
    sim.events
        .iter()
        .map(|e| (e.offset.clone(), e.decision.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn healthy_completes_at_144_hours() {
    let sim = run(vec![]);
    assert_eq!(sim.outcome, Outcome::Completed);
    assert_eq!(sim.final_percentage.ppm(), 1_000_000);
    assert_eq!(
        offsets(&sim),
        pairs(&[
            ("12h", "advance"),
            ("24h", "advance"),
            ("48h", "advance"),
            ("72h", "advance"),
            ("96h", "advance"),
            ("144h", "complete")
        ])
    );
}

#[test]
fn an_hour_of_errors_rolls_back_five_minutes_after_the_window_crosses_the_tier() {
    // 1.2% from 30h, at stage 3 (25%, mid tier: 0.8%). Over a 5-minute
    // window the ratio crosses 0.8% when 4 of the 5 minutes are bad (30h4m);
    // sustained 5 minutes, it rolls back at 30h9m.
    let sim = run(vec![Event {
        error_rate: Some(0.012),
        ..Event::between(hours(30), hours(31))
    }]);
    assert_eq!(sim.outcome, Outcome::RolledBack);
    let last = sim.events.last().unwrap();
    assert_eq!(
        (last.offset.as_str(), last.decision.as_str()),
        ("30h9m", "rollback")
    );
    assert!(last.why.contains("mid"), "{}", last.why);
    assert_eq!(sim.final_percentage.ppm(), 0);
}

#[test]
fn a_six_minute_spike_is_not_sustained_over_the_window() {
    // The scenario file's example: 1.2% for 6 minutes at 30h. The windowed
    // ratio stays above 0.8% for less than 5 minutes, so it does not roll back.
    let sim = run(vec![Event {
        error_rate: Some(0.012),
        ..Event::between(hours(30), hours(30) + minutes(6))
    }]);
    assert_eq!(sim.outcome, Outcome::Completed, "{:?}", sim.events);
}

#[test]
fn the_same_latency_spike_rolls_back_the_canary_but_not_mid() {
    let spike = |from: Duration| {
        vec![Event {
            p95_ms: Some(350.0),
            ..Event::between(from, from + hours(1))
        }]
    };
    // Stage 1 (canary, 300 ms): rolled back.
    let canary = run(spike(hours(2)));
    assert_eq!(canary.outcome, Outcome::RolledBack);
    let last = canary.events.last().unwrap();
    assert!(
        last.why.contains("P95") && last.why.contains("canary"),
        "{}",
        last.why
    );
    let at = last.offset.clone();
    assert!(at.starts_with("2h") && at != "2h", "{at}");
    // Stage 3 (mid, 400 ms): no rollback; go fails meanwhile, nothing is skipped.
    let mid = run(spike(hours(30)));
    assert_eq!(mid.outcome, Outcome::Completed);
    assert_eq!(mid.events.last().unwrap().offset, "144h");
}

#[test]
fn an_hour_without_traffic_pauses_after_the_no_data_budget() {
    let sim = run(vec![Event {
        requests_per_second: Some(0.0),
        ..Event::between(hours(50), hours(51))
    }]);
    assert_eq!(sim.outcome, Outcome::Paused);
    let last = sim.events.last().unwrap();
    // The window empties at 50h5m; 30 minutes of NoData later it pauses.
    assert_eq!(
        (last.offset.as_str(), last.decision.as_str()),
        ("50h35m", "pause")
    );
    assert!(last.why.contains("no usable data"), "{}", last.why);
    assert_eq!(
        sim.final_percentage.ppm(),
        500_000,
        "a pause keeps the percentage"
    );
}

#[test]
fn a_job_down_for_ten_minutes_rolls_back_on_the_fourth_failed_tick_in_mid() {
    let sim = run(vec![Event {
        jobs_down: Some(vec!["genesis".into()]),
        ..Event::between(hours(60), hours(60) + minutes(10))
    }]);
    assert_eq!(sim.outcome, Outcome::RolledBack);
    let last = sim.events.last().unwrap();
    assert_eq!(last.offset, "60h3m");
    assert!(last.why.contains("genesis"), "{}", last.why);
}

#[test]
fn a_critical_alert_delays_the_advance_until_it_clears() {
    // Firing 11h to 13h; the instant query still sees it for the 5-minute
    // lookback, so stage 2 starts at 13h5m instead of 12h.
    let sim = run(vec![Event {
        critical_alerts: Some(vec!["GenesisHighErrorRate".into()]),
        ..Event::between(hours(11), hours(13))
    }]);
    assert_eq!(sim.events[0].offset, "13h5m");
    assert_eq!(sim.events[0].decision, "advance");
    assert_eq!(sim.outcome, Outcome::Completed);
}
