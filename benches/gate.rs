//! One gate evaluation (every default query of one tick, run concurrently)
//! against a real, local Prometheus holding a backfilled scenario.
//! Target: median under 50 ms. Needs the `prometheus` feature and Debian's
//! `prometheus` package; without the package it says so and measures nothing.
//!
//! `cargo bench --features prometheus --bench gate`

#[path = "../tests/support/prometheus.rs"]
mod prom;
mod support;

use std::hint::black_box;

use genesis_flags::rollout::prometheus::{GateConfig, PrometheusGate};
use genesis_flags::rollout::{HealthGate, Reading};

const GROUP: &str = "gate";

fn main() {
    if !prom::available("benches/gate.rs") {
        return;
    }
    let scenario = prom::scenario_hours_ago(8, 240);
    let server = prom::PrometheusServer::start(&scenario.openmetrics(), "[]");
    let config = GateConfig::from_json(&format!(
        r#"{{ "prometheus": {{ "url": "{}" }} }}"#,
        server.url
    ))
    .unwrap();
    let mut gate = PrometheusGate::new(config).unwrap();
    let at = |minute: u64| prom::minute(&scenario, minute);
    // The tick must see real data, or the figure would be for empty answers.
    let probe = gate.observe(at(100));
    assert!(matches!(probe.error_rate, Reading::Value(_)), "{probe:?}");

    let mut c = support::criterion().sample_size(30);
    let mut group = c.benchmark_group(GROUP);
    let mut minute = 10;
    group.bench_function("observe_one_tick", |b| {
        b.iter(|| {
            minute = 10 + (minute + 7) % 220;
            black_box(gate.observe(at(minute)))
        })
    });
    group.finish();
    c.final_summary();
    drop(server);

    let median_ms = support::median_ns(GROUP, "observe_one_tick").map(|ns| ns / 1e6);
    let queries = 4 + 5;
    support::report(
        "gate: one tick against a local Prometheus 2.42",
        &[
            (
                format!("observe(): {queries} queries, concurrent, median ms"),
                median_ms,
                format!(
                    "target < 50 ms: {}",
                    support::verdict(median_ms, 50.0, true)
                ),
            ),
            (
                "share of a 1-minute tick, %".into(),
                median_ms.map(|ms| ms / 60_000.0 * 100.0),
                String::new(),
            ),
        ],
    );
}
