//! Building a snapshot of 10,000 flags: parse, validate, compile.
//!
//! Reported with a baseline measured in the same run: parsing the same text
//! into a `serde_json::Value` (what any JSON config costs before any check).
//! Target: under 50 ms.

mod support;

use std::hint::black_box;

use genesis_flags::Snapshot;

const GROUP: &str = "build";

fn main() {
    let mut c = support::criterion().sample_size(20);
    let text = support::config_with(10_000 - 15);
    assert_eq!(Snapshot::from_json(&text).unwrap().len(), 10_000);

    let mut group = c.benchmark_group(GROUP);
    group.bench_function("serde_json_value_10k", |b| {
        b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap()))
    });
    group.bench_function("snapshot_10k", |b| {
        b.iter(|| black_box(Snapshot::from_json(black_box(&text)).unwrap()))
    });
    group.finish();
    c.final_summary();

    let value = support::median_ns(GROUP, "serde_json_value_10k");
    let build = support::median_ns(GROUP, "snapshot_10k");
    let build_ms = build.map(|ns| ns / 1e6);
    support::report(
        "build: criterion medians",
        &[
            (
                "config text, bytes".to_string(),
                Some(text.len() as f64),
                String::new(),
            ),
            (
                "serde_json::Value parse only, ms".into(),
                value.map(|ns| ns / 1e6),
                String::new(),
            ),
            (
                "Snapshot::from_json, 10,000 flags, ms".into(),
                build_ms,
                format!("target < 50 ms: {}", support::verdict(build_ms, 50.0, true)),
            ),
            (
                "ratio: snapshot build / Value parse".into(),
                support::ratio(build, value),
                String::new(),
            ),
        ],
    );
}
