//! Shared by the benches: workloads and the ratio report read back from
//! criterion's own estimates (medians), so the report and criterion agree.

#![allow(dead_code)]

use std::path::PathBuf;

/// Where criterion writes its results.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("criterion")
}

/// The median (ns per iteration) criterion measured for `group/id` in this run.
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Criterion with short defaults (0.5 s warm-up, 2 s measurement);
/// command-line flags override them.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .configure_from_args()
}

/// Iterations per chunk of a paired measurement: long enough (tens of
/// microseconds) that reading the clock is noise, short enough that the
/// machine does not change speed between the two halves of a pair.
const CHUNK: u64 = 2_000;

/// Measures `subject` for criterion while timing `baseline` in alternating
/// chunks of the same size, and records `subject / baseline` for every
/// sample. Shared machines drift by tens of percent over seconds; within a
/// pair of chunks microseconds apart they do not, so the median of these
/// paired ratios is stable where a ratio of two separate medians is not.
pub fn paired(
    b: &mut criterion::Bencher<'_>,
    ratios: &mut Vec<f64>,
    mut baseline: impl FnMut(),
    mut subject: impl FnMut(),
) {
    use std::time::{Duration, Instant};
    b.iter_custom(|iters| {
        let (mut base, mut subj) = (Duration::ZERO, Duration::ZERO);
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK);
            let start = Instant::now();
            for _ in 0..n {
                baseline();
            }
            base += start.elapsed();
            let start = Instant::now();
            for _ in 0..n {
                subject();
            }
            subj += start.elapsed();
            left -= n;
        }
        if iters >= CHUNK && !base.is_zero() {
            ratios.push(subj.as_secs_f64() / base.as_secs_f64());
        }
        subj
    });
}

/// The median of some numbers (`None` when there are none).
pub fn median_of(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Prints one line per (label, value, target) and whether the target is met.
/// Never fails: these machines are noisy, the figures are there to read.
pub fn report(title: &str, rows: &[(String, Option<f64>, String)]) {
    println!("\n== {title} ==");
    for (label, value, target) in rows {
        match value {
            Some(v) if v.abs() < 0.01 && *v != 0.0 => println!("{label:<62} {v:>10.2e}   {target}"),
            Some(v) => println!("{label:<62} {v:>10.3}   {target}"),
            None => println!("{label:<62} {:>10}   {target}", "n/a"),
        }
    }
}

/// `numerator / denominator` when both were measured.
pub fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    Some(numerator? / denominator?)
}

/// A verdict string for a ratio against a bound.
pub fn verdict(value: Option<f64>, bound: f64, at_most: bool) -> String {
    match value {
        Some(v) if (at_most && v <= bound) || (!at_most && v >= bound) => "met".into(),
        Some(_) => "NOT MET".into(),
        None => "not measured".into(),
    }
}

/// The 10 critical Genesis flags (as in `examples/config/genesis.json`), bound to `phase_4_deployment`.
pub const CRITICAL: [&str; 10] = [
    "htdag_enabled",
    "halo_enabled",
    "aop_enabled",
    "error_handling_enabled",
    "circuit_breaker_enabled",
    "otel_tracing_enabled",
    "otel_metrics_enabled",
    "performance_monitoring_enabled",
    "cost_optimization_enabled",
    "security_hardening_enabled",
];

/// User ids to cycle through, so no single key stays hot in a cache.
pub fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i:08}")).collect()
}

/// A config with the Genesis flag set plus `filler` flags of every kind.
pub fn config_with(filler: usize) -> String {
    let genesis: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/config/genesis.json")).unwrap();
    let mut doc = genesis;
    let flags = doc["flags"].as_object_mut().unwrap();
    // Same name length as "htdag_enabled" (13 bytes), for like-for-like lookups.
    flags.insert("maint_enabled".into(), serde_json::json!({}));
    flags.insert(
        "legacy_x_flag".into(),
        serde_json::json!({ "enabled": false }),
    );
    for i in 0..filler {
        let body = match i % 4 {
            0 => serde_json::json!({ "rollout": "phase_4_deployment" }),
            1 => serde_json::json!({ "percentage": (i % 100) as f64 + 0.5 }),
            2 => {
                serde_json::json!({ "percentage": 25, "include": ["qa-1", "qa-2"], "exclude": ["vip-7"] })
            }
            _ => serde_json::json!({ "enabled": i % 8 != 3 }),
        };
        flags.insert(format!("filler_flag_{i:05}"), body);
    }
    doc.to_string()
}

/// The targeted flags added to the benchmark's config: three conditions;
/// a string variant split 50/50; ten flags with rules over three attributes.
pub fn targeted_flags() -> serde_json::Value {
    let mut flags = serde_json::Map::new();
    flags.insert(
        "three_conditions".into(),
        serde_json::json!({"default": "off", "rules": [{"when": [
            {"attribute": "country", "op": "in", "values": ["DE", "FR", "IT", "ES"]},
            {"attribute": "app_version", "op": "semver_ge", "value": "2.0.0"},
            {"attribute": "email", "op": "ends_with", "values": ["@example.com"]}],
            "serve": "on"}]}),
    );
    flags.insert(
        "checkout_color".into(),
        serde_json::json!({"variants": {"control": "blue", "treatment": "green"},
            "default": "control", "off": "control",
            "rules": [{"split": {"control": 50, "treatment": 50}}]}),
    );
    for i in 0..10 {
        flags.insert(
            format!("targeted_{i}"),
            serde_json::json!({"rollout": "phase_4_deployment", "default": "on",
                "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["internal"]}], "serve": "on"},
                          {"when": [{"attribute": "country", "op": "in", "values": [format!("X{i}")]}], "serve": "off"}]}),
        );
    }
    serde_json::Value::Object(flags)
}

/// The configuration of `benches/evaluate.rs` (and of the instruction-count
/// driver, `examples/instructions.rs`): `flags` flags in all, the Genesis set,
/// filler of every kind and the targeted flags.
pub fn evaluate_config(flags: usize) -> String {
    let mut config: serde_json::Value = serde_json::from_str(&config_with(flags - 27)).unwrap();
    if let (Some(all), serde_json::Value::Object(extra)) =
        (config["flags"].as_object_mut(), targeted_flags())
    {
        all.extend(extra);
    }
    config.to_string()
}
