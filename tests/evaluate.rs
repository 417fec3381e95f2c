//! The evaluation API on the Genesis flag set and on small documents.

use genesis_flags::{bucket, ConfigError, FlagClass, FlagStore, Percentage, Reason, Snapshot};

const GENESIS: &str = include_str!("../examples/config/genesis.json");
const CRITICAL: [&str; 10] = [
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
const EXPERIMENTAL: [&str; 3] = [
    "aatc_system_enabled",
    "darwin_integration_enabled",
    "a2a_integration_enabled",
];

#[test]
fn the_genesis_set_rolls_out_together_at_five_percent() {
    let store = FlagStore::from_json(GENESIS).unwrap();
    let status = store.rollout_status("phase_4_deployment").unwrap();
    assert_eq!(status.percentage, Percentage::from_percent(5.0).unwrap());
    assert_eq!(status.flags, CRITICAL);

    let users = 100_000;
    let mut on = 0;
    for i in 0..users {
        let user = format!("user-{i}");
        let view = store.view();
        let first = view.evaluate(CRITICAL[0], &user);
        for flag in CRITICAL {
            assert_eq!(view.evaluate(flag, &user), first, "{flag} for {user}");
        }
        assert_eq!(first.enabled, bucket("phase_4_deployment", &user) < 50_000);
        for flag in EXPERIMENTAL {
            assert!(!view.is_enabled(flag, &user));
        }
        on += usize::from(first.enabled);
    }
    let share = on as f64 / f64::from(users);
    assert!((share - 0.05).abs() < 0.003, "share {share}");
}

#[test]
fn experimental_flags_need_an_opted_in_store() {
    let doc = r#"{"version":1,"flags":{"x":{"class":"experimental"},"k":{"class":"experimental","enabled":false}}}"#;
    let production = FlagStore::from_json(doc).unwrap();
    assert_eq!(
        production.evaluate("x", "u").reason,
        Reason::ExperimentalDisabled
    );
    assert!(!production.allows_experimental());
    let staging = FlagStore::builder()
        .allow_experimental(true)
        .from_json(doc)
        .unwrap();
    assert_eq!(staging.evaluate("x", "u").reason, Reason::On);
    // The kill switch beats everything, even in an opted-in store.
    assert_eq!(staging.evaluate("k", "u").reason, Reason::KillSwitch);
    assert_eq!(production.evaluate("k", "u").reason, Reason::KillSwitch);
    assert_eq!(
        production.snapshot().flag("x").unwrap().class(),
        FlagClass::Experimental
    );
}

#[test]
fn evaluation_order_is_first_match_wins() {
    let store = FlagStore::from_json(
        r#"{"version":1,"rollouts":{"zero":{"percentage":0},"all":{"percentage":100}},
            "flags":{
              "lists":  {"rollout":"zero","include":["in","both"],"exclude":["out","both"]},
              "full":   {"rollout":"all","exclude":["out"]},
              "off":    {"enabled":false,"include":["in"]},
              "plain":  {}
            }}"#,
    )
    .unwrap();
    let reason = |f, u| store.evaluate(f, u).reason;
    assert_eq!(reason("missing", "in"), Reason::UnknownFlag);
    assert_eq!(reason("off", "in"), Reason::KillSwitch);
    assert_eq!(reason("lists", "both"), Reason::Excluded);
    assert_eq!(reason("lists", "out"), Reason::Excluded);
    assert_eq!(reason("lists", "in"), Reason::Included);
    assert_eq!(reason("lists", "anyone"), Reason::OutOfRollout);
    assert_eq!(reason("full", "anyone"), Reason::InRollout);
    assert_eq!(reason("full", "out"), Reason::Excluded);
    assert_eq!(reason("plain", "anyone"), Reason::On);
    assert!(store.is_enabled("lists", "in"));
    assert!(!store.is_enabled("lists", "both"));
    let e = store.evaluate("full", "anyone");
    assert_eq!(e.bucket, Some(bucket("all", "anyone")));
    assert_eq!(store.evaluate("plain", "x").bucket, None);
}

#[test]
fn own_percentages_are_salted_by_the_flag_key() {
    let store = FlagStore::from_json(
        r#"{"version":1,"flags":{"a":{"percentage":50},"b":{"percentage":50}}}"#,
    )
    .unwrap();
    let mut differ = 0;
    for i in 0..1000 {
        let user = format!("user-{i}");
        let a = store.evaluate("a", &user);
        assert_eq!(a.bucket, Some(bucket("a", &user)));
        assert_eq!(a.enabled, bucket("a", &user) < 500_000);
        differ += usize::from(a.enabled != store.is_enabled("b", &user));
    }
    // Independent salts disagree on about half the users.
    assert!((400..600).contains(&differ), "{differ}");
}

#[test]
fn files_load_and_a_bad_file_keeps_the_last_good_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    std::fs::write(&path, GENESIS).unwrap();
    let store = FlagStore::from_file(&path).unwrap();
    let before = store.snapshot().id();

    std::fs::write(&path, r#"{"version":1,"flags":{"x":{"percentage":"5"}}}"#).unwrap();
    let err = store.replace_from_file(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("flags.json"), "{text}");
    assert!(
        text.contains("flags.x.percentage: expected a number, found a string"),
        "{text}"
    );
    assert_eq!(store.snapshot().id(), before);
    assert_eq!(store.snapshot().len(), 13);

    let missing = store
        .replace_from_file(dir.path().join("nope.json"))
        .unwrap_err();
    assert!(matches!(missing, ConfigError::Io(_)), "{missing:?}");
    assert!(missing.to_string().contains("nope.json"));

    std::fs::write(&path, b"{\"version\":1,\xff}").unwrap();
    let utf8 = store.replace_from_file(&path).unwrap_err();
    // `{"version":1,` is 13 bytes: the bad byte is at column 14.
    assert_eq!(utf8.line_column(), Some((1, 14)), "{utf8}");
    assert_eq!(store.snapshot().id(), before);
}

#[test]
fn oversized_files_are_refused_without_reading_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(genesis_flags::MAX_CONFIG_BYTES as u64 + 10)
        .unwrap();
    let err = Snapshot::from_file(&path).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn snapshots_describe_their_flags() {
    let snapshot = Snapshot::from_json(GENESIS).unwrap();
    assert_eq!(snapshot.len(), 13);
    let htdag = snapshot.flag("htdag_enabled").unwrap();
    assert_eq!(htdag.rollout(), Some("phase_4_deployment"));
    assert_eq!(htdag.percentage().map(Percentage::ppm), Some(50_000));
    assert!(htdag.is_enabled());
    let aatc = snapshot.flag("aatc_system_enabled").unwrap();
    assert!(!aatc.is_enabled());
    assert_eq!(snapshot.rollouts().count(), 1);
    assert_eq!(snapshot.flags().len(), 13);
}
