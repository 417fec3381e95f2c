//! Targeting through the public API: contexts, rules and their operators,
//! segments, typed variants and splits, bucketing by an attribute,
//! prerequisites, exposure counts, readiness; property tests of the split
//! and of first-match; the Unleash client-specification measurement
//! (`unleash` below).

#[path = "unleash/mod.rs"]
mod unleash;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use genesis_flags::{
    bucket, AttributeKey, Context, FlagStore, Reason, Semver, Snapshot, VariantType, VariantValue,
};
use proptest::prelude::*;

fn key(name: &str) -> AttributeKey {
    AttributeKey::new(name)
}

const CHECKOUT: &str = r##"{"version": 1,
  "segments": {
    "beta_testers": {"when": [{"attribute": "groups", "op": "in", "values": ["beta"]}]},
    "eu": {"when": [{"attribute": "country", "op": "in", "values": ["de", "fr"], "case_insensitive": true}]}
  },
  "flags": {
    "checkout_color": {
      "variants": {"red": "#c00", "green": "#0c0", "blue": "#00c"},
      "default": "red", "off": "blue",
      "include": ["qa-1"], "exclude": ["vip-7"],
      "rules": [
        {"when": [{"segment": "beta_testers"}, {"attribute": "app_version", "op": "semver_ge", "value": "2.0.0-rc.1"}],
         "serve": "green"},
        {"when": [{"segment": "eu"}], "split": {"red": 50, "green": 50}}
      ]
    },
    "limits": {"variants": {"small": 10, "large": 1000}, "default": "small", "off": "small",
               "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "serve": "large"}]},
    "ratio": {"variants": {"low": 0.25, "high": 0.75}, "default": "low", "off": "low"},
    "layout": {"variants": {"compact": {"rows": 10, "dense": true}, "wide": {"rows": 40}},
               "default": "wide", "off": "compact"},
    "killed": {"enabled": false, "variants": {"a": "x", "b": "y"}, "default": "a", "off": "b"}
  }
}"##;

#[test]
fn a_targeted_flag_follows_the_evaluation_order() {
    let store = FlagStore::from_json(CHECKOUT).unwrap();
    let (groups, version, country) = (key("groups"), key("app_version"), key("country"));
    let view = store.view();
    let variant = |user: &str, attrs: &[genesis_flags::Attribute<'_>]| {
        let v = view.variation("checkout_color", &Context::new(user, attrs));
        (v.name().unwrap().to_owned(), v.reason())
    };
    // Exclude beats include beats rules.
    let beta = [groups.list(&["beta", "x"]), version.string("2.0.0")];
    assert_eq!(variant("vip-7", &beta), ("blue".into(), Reason::Excluded));
    assert_eq!(variant("qa-1", &beta), ("red".into(), Reason::Included));
    assert_eq!(variant("u-1", &beta), ("green".into(), Reason::RuleMatch));
    // A pre-release below the bound misses the first rule.
    let old = [groups.list(&["beta"]), version.string("2.0.0-beta.9")];
    assert_eq!(variant("u-1", &old), ("red".into(), Reason::Default));
    // The second rule splits on the flag's bucket.
    let eu = [country.string("DE")];
    let split = view.variation("checkout_color", &Context::new("u-1", &eu));
    assert_eq!(split.reason(), Reason::Split);
    let b = bucket("checkout_color", "u-1");
    assert_eq!(split.evaluation().bucket, Some(b));
    assert_eq!(
        split.name(),
        Some(if b < 500_000 { "red" } else { "green" })
    );
    // No attributes: the default; kill switch: the off variant.
    assert_eq!(variant("u-1", &[]), ("red".into(), Reason::Default));
    let killed = view.variation("killed", &Context::key_only("u-1"));
    assert_eq!(
        (killed.name(), killed.reason()),
        (Some("b"), Reason::KillSwitch)
    );
    assert_eq!(killed.value(), Some(&VariantValue::String("y".into())));
}

#[test]
fn the_readme_config_loads_and_targets() {
    let readme = include_str!("../README.md");
    let start = readme.find("## Config format").expect("the config section");
    let rest = &readme[start..];
    let open = rest.find("```json\n").expect("a JSON block") + "```json\n".len();
    let close = rest[open..].find("```").expect("closed");
    let store =
        FlagStore::from_json(&rest[open..open + close]).expect("the README's document loads");
    let (groups, version) = (key("groups"), key("app_version"));
    let attrs = [groups.list(&["beta"]), version.string("2.0.0")];
    let view = store.view();
    let e = view.variation("checkout_color", &Context::new("qa-1", &attrs));
    assert_eq!(
        (e.name(), e.reason()),
        (Some("treatment"), Reason::RuleMatch)
    );
    // The prerequisite: new_checkout is at 12.5%, so most users get `off`.
    let e = view.variation("checkout_color", &Context::new("user-1", &attrs));
    let parent = store.is_enabled("new_checkout", "user-1");
    assert_eq!(e.reason() == Reason::PrerequisiteFailed, !parent);
}

#[test]
fn typed_values_are_borrowed_from_the_snapshot() {
    let store = FlagStore::from_json(CHECKOUT).unwrap();
    let plan = key("plan");
    let view = store.view();
    let pro = [plan.string("pro")];
    let ctx = Context::new("u", &pro);
    assert_eq!(view.variation("limits", &ctx).i64_or(0), 1000);
    assert_eq!(
        view.variation("limits", &Context::key_only("u")).i64_or(0),
        10
    );
    assert_eq!(view.variation("ratio", &ctx).f64_or(0.0), 0.25);
    let layout = view.variation("layout", &ctx);
    assert_eq!(layout.object().unwrap()["rows"], 40);
    let color = view.variation("checkout_color", &ctx);
    let a = color.str_or("");
    let b = view.variation("checkout_color", &ctx).str_or("");
    assert!(std::ptr::eq(a, b), "the same bytes, not a copy");
    assert_eq!(view.variation("nope", &ctx).str_or("fallback"), "fallback");
    let snapshot = store.snapshot();
    assert_eq!(
        snapshot.flag("limits").unwrap().variant_type(),
        VariantType::Integer
    );
    assert_eq!(
        snapshot.flag("ratio").unwrap().variant_type(),
        VariantType::Float
    );
    assert_eq!(
        snapshot.flag("layout").unwrap().variant_type(),
        VariantType::Object
    );
    assert_eq!(
        snapshot.flag("checkout_color").unwrap().off_variant(),
        "blue"
    );
}

fn one_condition(condition: &str) -> FlagStore {
    FlagStore::from_json(&format!(
        r#"{{"version":1,"flags":{{"f":{{"default":"off","rules":[{{"when":[{condition}],"serve":"on"}}]}}}}}}"#
    ))
    .unwrap_or_else(|e| panic!("{condition}: {e}"))
}

#[test]
fn every_operator_on_every_type() {
    let a = key("a");
    let t = |condition: &str, value: genesis_flags::AttributeValue<'_>| {
        let attrs = [genesis_flags::Attribute::new(a, value)];
        one_condition(condition).is_enabled_for("f", &Context::new("u", &attrs))
    };
    use genesis_flags::AttributeValue as V;
    let cases: &[(&str, V<'_>, bool)] = &[
        (
            r#"{"attribute":"a","op":"in","values":["x","y"]}"#,
            V::String("y"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"in","values":["x","y"]}"#,
            V::String("Y"),
            false,
        ),
        (
            r#"{"attribute":"a","op":"in","values":["x","y"],"case_insensitive":true}"#,
            V::String("Y"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"not_in","values":["x"]}"#,
            V::String("z"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"not_in","values":["x"]}"#,
            V::String("x"),
            false,
        ),
        (
            r#"{"attribute":"a","op":"in","values":["3"]}"#,
            V::Number(3.0),
            true,
        ),
        (
            r#"{"attribute":"a","op":"in","values":["true"]}"#,
            V::Bool(true),
            true,
        ),
        (
            r#"{"attribute":"a","op":"in","values":["b"]}"#,
            V::List(&["a", "b"]),
            true,
        ),
        (
            r#"{"attribute":"a","op":"starts_with","values":["ab"]}"#,
            V::String("abc"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"ends_with","values":["@x.com"]}"#,
            V::String("me@x.com"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"ends_with","values":["@X.COM"],"case_insensitive":true}"#,
            V::String("me@x.com"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"contains","values":["mid"]}"#,
            V::String("amidst"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"contains","values":["MID"]}"#,
            V::String("amidst"),
            false,
        ),
        (
            r#"{"attribute":"a","op":"matches","value":"^u-[0-9]+$"}"#,
            V::String("u-42"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"matches","value":"^U-","case_insensitive":true}"#,
            V::String("u-42"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"matches","value":"^u-[0-9]+$"}"#,
            V::Number(4.0),
            false,
        ),
        (
            r#"{"attribute":"a","op":"eq","value":5}"#,
            V::Number(5.0),
            true,
        ),
        (
            r#"{"attribute":"a","op":"ne","value":5}"#,
            V::Number(5.0),
            false,
        ),
        (
            r#"{"attribute":"a","op":"lt","value":5}"#,
            V::String("4.5"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"le","value":5}"#,
            V::Number(5.0),
            true,
        ),
        (
            r#"{"attribute":"a","op":"gt","value":5}"#,
            V::Number(5.0),
            false,
        ),
        (
            r#"{"attribute":"a","op":"ge","value":5}"#,
            V::Number(f64::NAN),
            false,
        ),
        (
            r#"{"attribute":"a","op":"gt","value":5}"#,
            V::String("lots"),
            false,
        ),
        (
            r#"{"attribute":"a","op":"semver_eq","value":"1.2.3"}"#,
            V::String("1.2.3+build"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"semver_ne","value":"1.2.3"}"#,
            V::String("1.2.4"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"semver_lt","value":"1.0.0"}"#,
            V::String("1.0.0-rc.1"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"semver_le","value":"1.0.0-rc.10"}"#,
            V::String("1.0.0-rc.9"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"semver_gt","value":"1.0.0-alpha"}"#,
            V::String("1.0.0-alpha.1"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"semver_ge","value":"1.0.0"}"#,
            V::Semver(Semver::parse("0.9.9").unwrap()),
            false,
        ),
        (
            r#"{"attribute":"a","op":"semver_ge","value":"1.0.0"}"#,
            V::String("not.a.version"),
            false,
        ),
        (
            r#"{"attribute":"a","op":"before","value":"2030-01-01T00:00:00Z"}"#,
            V::Timestamp(SystemTime::UNIX_EPOCH),
            true,
        ),
        (
            r#"{"attribute":"a","op":"after","value":"2030-01-01T00:00:00Z"}"#,
            V::String("2031-06-01T12:00:00Z"),
            true,
        ),
        (
            r#"{"attribute":"a","op":"after","value":"2030-01-01T00:00:00Z"}"#,
            V::String("soon"),
            false,
        ),
        (r#"{"attribute":"a","op":"exists"}"#, V::Bool(false), true),
        (
            r#"{"attribute":"a","op":"exists","negate":true}"#,
            V::Bool(false),
            false,
        ),
        (
            r#"{"attribute":"a","op":"in","values":["x"],"negate":true}"#,
            V::String("x"),
            false,
        ),
    ];
    for (condition, value, expected) in cases {
        assert_eq!(t(condition, *value), *expected, "{condition} on {value:?}");
    }
    // A missing attribute fails every operator, and negation flips that.
    for condition in [
        r#"{"attribute":"a","op":"in","values":["x"]}"#,
        r#"{"attribute":"a","op":"lt","value":1}"#,
        r#"{"attribute":"a","op":"exists"}"#,
    ] {
        let store = one_condition(condition);
        assert!(
            !store.is_enabled_for("f", &Context::key_only("u")),
            "{condition}"
        );
    }
    assert!(
        one_condition(r#"{"attribute":"a","op":"not_in","values":["x"]}"#)
            .is_enabled_for("f", &Context::key_only("u"))
    );
    // The reserved attribute `key` is the context's key.
    let by_key = one_condition(r#"{"attribute":"key","op":"starts_with","values":["qa-"]}"#);
    assert!(by_key.is_enabled_for("f", &Context::key_only("qa-7")));
    assert!(!by_key.is_enabled_for("f", &Context::key_only("u-7")));
}

#[test]
fn bucketing_by_an_attribute_with_a_seed() {
    let store = FlagStore::from_json(
        r#"{"version":1,"flags":{
            "by_tenant":{"percentage":50,"bucket_by":"tenant"},
            "reseeded":{"percentage":50,"seed":"v2"},
            "plain":{"percentage":100}}}"#,
    )
    .unwrap();
    let tenant = key("tenant");
    let mut same_tenant = Vec::new();
    for i in 0..50 {
        let user = format!("user-{i}");
        let attrs = [tenant.string("acme")];
        same_tenant.push(store.is_enabled_for("by_tenant", &Context::new(&user, &attrs)));
        let e = store.evaluate("reseeded", &user);
        assert_eq!(e.bucket, Some(bucket("reseeded/v2", &user)));
    }
    assert!(
        same_tenant.iter().all(|&x| x == same_tenant[0]),
        "one tenant, one answer"
    );
    let attrs = [tenant.string("acme")];
    let e = store.evaluate_for("by_tenant", &Context::new("u", &attrs));
    assert_eq!(e.bucket, Some(bucket("by_tenant", "acme")));
    // A missing or empty bucketing key is in no percentage, even 100%.
    let missing = store.evaluate_for("by_tenant", &Context::key_only("u"));
    assert_eq!(
        (missing.enabled, missing.reason, missing.bucket),
        (false, Reason::OutOfRollout, None)
    );
    let empty = store.evaluate("plain", "");
    assert_eq!((empty.enabled, empty.bucket), (false, None));
    assert!(store.is_enabled("plain", "someone"));
}

#[test]
fn a_shared_rollout_decides_the_variant_of_its_flags() {
    let store = FlagStore::from_json(
        r#"{"version":1,"rollouts":{"r":{"percentage":30}},"flags":{
            "theme":{"rollout":"r","variants":{"old":"light","new":"dark"},"default":"new","off":"old"},
            "limit":{"rollout":"r","variants":{"old":10,"new":100},"default":"new","off":"old"},
            "plain":{"rollout":"r"}}}"#,
    )
    .unwrap();
    let view = store.view();
    for i in 0..2000 {
        let user = format!("user-{i}");
        let ctx = Context::key_only(&user);
        let inside = bucket("r", &user) < 300_000;
        let theme = view.variation("theme", &ctx);
        assert_eq!(theme.str_or(""), if inside { "dark" } else { "light" });
        assert_eq!(
            view.variation("limit", &ctx).i64_or(0),
            if inside { 100 } else { 10 }
        );
        // The bundle moves together: the boolean flag of the same rollout agrees.
        assert_eq!(store.is_enabled("plain", &user), inside);
        assert_eq!(theme.evaluation().enabled, inside);
    }
}

#[test]
fn prerequisites_gate_their_flags() {
    let store = FlagStore::from_json(
        r#"{"version":1,"flags":{
            "parent":{"variants":{"a":"A","b":"B"},"default":"a","off":"b",
                      "rules":[{"when":[{"attribute":"plan","op":"in","values":["free"]}],"serve":"b"}]},
            "child":{"prerequisites":[{"flag":"parent","variants":["a"]}]},
            "grandchild":{"prerequisites":[{"flag":"child"}]},
            "when_off":{"prerequisites":[{"flag":"killed","enabled":false}]},
            "killed":{"enabled":false}}}"#,
    )
    .unwrap();
    let plan = key("plan");
    let free = [plan.string("free")];
    let pro = [plan.string("pro")];
    assert!(store.is_enabled_for("grandchild", &Context::new("u", &pro)));
    let e = store.evaluate_for("grandchild", &Context::new("u", &free));
    assert_eq!((e.enabled, e.reason), (false, Reason::PrerequisiteFailed));
    assert!(store.is_enabled("when_off", "u"));
}

#[test]
fn exposures_are_counted_per_flag_variant_and_reason() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicU64::new(0));
    let (s, c) = (Arc::clone(&seen), Arc::clone(&calls));
    let store = FlagStore::builder()
        .count_exposures(true)
        .on_exposure(move |e| {
            c.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut seen) = s.lock() {
                seen.push(format!("{} {} {} {}", e.flag, e.key, e.variant, e.reason));
            }
        })
        .from_json(
            r#"{"version":1,"flags":{"a":{"track":true,"exclude":["x"]},"b":{"enabled":false}}}"#,
        )
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let _ = store.is_enabled("a", &format!("u{i}"));
                    let _ = store.is_enabled("b", "u");
                    let _ = store.is_enabled("gone", "u");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let _ = store.is_enabled("a", "x");
    // A reload keeps the totals; the flag dropped by it is counted as unknown.
    store
        .replace_from_json(r#"{"version":1,"flags":{"a":{}}}"#)
        .unwrap();
    let _ = store.is_enabled("b", "u");
    let _ = store.is_enabled("a", "u");
    let counts: Vec<(Option<String>, String, Reason, u64)> = store
        .exposures()
        .into_iter()
        .map(|c| (c.flag, c.variant, c.reason, c.count))
        .collect();
    let find = |flag: Option<&str>, reason: Reason| {
        counts
            .iter()
            .find(|(f, _, r, _)| f.as_deref() == flag && *r == reason)
            .map(|(_, v, _, n)| (v.as_str(), *n))
    };
    assert_eq!(find(Some("a"), Reason::On), Some(("on", 4001)));
    assert_eq!(find(Some("a"), Reason::Excluded), Some(("off", 1)));
    assert_eq!(find(Some("b"), Reason::KillSwitch), Some(("off", 4000)));
    assert_eq!(find(None, Reason::UnknownFlag), Some(("", 4001)));
    assert_eq!(
        calls.load(Ordering::Relaxed),
        4001,
        "only tracked flags call back"
    );
    assert!(seen
        .lock()
        .unwrap()
        .contains(&"a x off excluded".to_owned()));
}

#[test]
fn readiness_and_defaults_for_unknown_flags() {
    let store = FlagStore::builder().pending();
    assert!(!store.is_ready());
    assert!(!store.wait_ready(Duration::from_millis(20)));
    assert!(
        store.is_enabled_or("banner", "u", true),
        "unknown: the caller's default"
    );
    let loader = store.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        loader.replace_from_json(r#"{"version":1,"flags":{"banner":{"enabled":false}}}"#)
    });
    assert!(store.wait_ready(Duration::from_secs(10)));
    t.join().unwrap().unwrap();
    assert!(
        !store.is_enabled_or("banner", "u", true),
        "known: the flag's answer"
    );
    assert!(FlagStore::from_json(r#"{"version":1,"flags":{}}"#)
        .unwrap()
        .is_ready());
}

#[test]
fn a_reloader_reports_its_first_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    let store = FlagStore::builder().pending();
    let reloader = genesis_flags::Reloader::builder(store.clone(), &path)
        .interval(Duration::from_millis(20))
        .spawn()
        .unwrap();
    assert!(!reloader.has_loaded() && !store.is_ready());
    std::fs::write(&path, r#"{"version":1,"flags":{"banner":{}}}"#).unwrap();
    assert!(reloader.wait_loaded(Duration::from_secs(10)));
    assert!(store.wait_ready(Duration::from_secs(10)));
    assert!(store.is_enabled("banner", "u"));
}

#[test]
fn plain_flags_answer_as_before_through_contexts() {
    let store = FlagStore::from_json(
        r#"{"version":1,"rollouts":{"r":{"percentage":30}},"flags":{
            "a":{"rollout":"r"},"b":{"percentage":12.5,"include":["qa"],"exclude":["vip"]},"c":{}}}"#,
    )
    .unwrap();
    let country = key("country");
    for i in 0..500 {
        let user = format!("user-{i}");
        let attrs = [country.string("DE")];
        for flag in ["a", "b", "c"] {
            let plain = store.evaluate(flag, &user);
            assert_eq!(
                plain,
                store.evaluate_for(flag, &Context::new(&user, &attrs))
            );
            assert_eq!(plain, store.for_user(&user).evaluate(flag));
            assert_eq!(plain, store.handle(flag).evaluate(&user));
            assert_eq!(plain.variant, Some(u16::from(plain.enabled)));
        }
    }
}

/// Three variants' weights (ppm) summing to 100%.
fn weights() -> impl Strategy<Value = [u32; 3]> {
    (0u32..=1_000_000, 0u32..=1_000_000).prop_map(|(a, b)| {
        let (lo, hi) = (a.min(b), a.max(b));
        [lo, hi - lo, 1_000_000 - hi]
    })
}

fn split_store(w: [u32; 3]) -> Snapshot {
    let pct = |ppm: u32| ppm as f64 / 10_000.0;
    Snapshot::from_json(&format!(
        r#"{{"version":1,"flags":{{"s":{{"variants":{{"a":"A","b":"B","c":"C"}},"default":"a","off":"a",
            "rules":[{{"split":{{"a":{},"b":{},"c":{}}}}}]}}}}}}"#,
        pct(w[0]),
        pct(w[1]),
        pct(w[2])
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Moving weight between two neighbouring variants moves users only
    /// from the one that shrinks to the one that grows.
    #[test]
    fn growing_a_variant_takes_users_only_from_its_shrinking_neighbour(
        w in weights(), moved in 0u32..=1_000_000, pair in 0usize..2, grow_left in any::<bool>(),
    ) {
        let (grow, shrink) = if grow_left { (pair, pair + 1) } else { (pair + 1, pair) };
        let moved = moved.min(w[shrink]);
        let mut after = w;
        after[shrink] -= moved;
        after[grow] += moved;
        let (before, after) = (split_store(w), split_store(after));
        for i in 0..2000 {
            let user = format!("user-{i}");
            let a = before.evaluate("s", &user, false).variant;
            let b = after.evaluate("s", &user, false).variant;
            prop_assert!(a == b || (a == Some(shrink as u16) && b == Some(grow as u16)),
                "{user}: {a:?} -> {b:?}");
        }
    }

    /// Rules are tried in order and the first that matches serves.
    #[test]
    fn the_first_matching_rule_wins(thresholds in prop::collection::vec(0u32..100, 1..6), age in 0u32..100) {
        let rules: Vec<String> = thresholds
            .iter()
            .enumerate()
            .map(|(i, t)| format!(r#"{{"when":[{{"attribute":"age","op":"ge","value":{t}}}],"serve":"v{i}"}}"#))
            .collect();
        let variants: Vec<String> = (0..thresholds.len()).map(|i| format!(r#""v{i}":{i}"#)).collect();
        let store = FlagStore::from_json(&format!(
            r#"{{"version":1,"flags":{{"f":{{"variants":{{{},"none":-1}},"default":"none","off":"none","rules":[{}]}}}}}}"#,
            variants.join(","), rules.join(",")
        )).unwrap();
        let attrs = [key("age").number(f64::from(age))];
        let served = store.view().variation("f", &Context::new("u", &attrs)).i64_or(-2);
        let expected = thresholds.iter().position(|t| age >= *t).map_or(-1, |i| i as i64);
        prop_assert_eq!(served, expected);
    }

    /// Segments and prerequisites in any arrangement either validate and
    /// evaluate (bounded), or are refused as cycles; never a hang or panic.
    #[test]
    fn references_never_loop(edges in prop::collection::vec((0usize..5, 0usize..5), 0..8)) {
        let mut segs: Vec<Vec<usize>> = vec![Vec::new(); 5];
        for (from, to) in &edges { segs[*from].push(*to); }
        let segments: Vec<String> = segs.iter().enumerate().map(|(i, to)| {
            let mut when: Vec<String> = to.iter().map(|t| format!(r#"{{"segment":"s{t}"}}"#)).collect();
            when.push(r#"{"attribute":"k","op":"exists"}"#.into());
            format!(r#""s{i}":{{"when":[{}]}}"#, when.join(","))
        }).collect();
        let flags: Vec<String> = segs.iter().enumerate().map(|(i, to)| {
            let pre: Vec<String> = to.iter().map(|t| format!(r#"{{"flag":"f{t}"}}"#)).collect();
            format!(r#""f{i}":{{"prerequisites":[{}],"rules":[{{"when":[{{"segment":"s{i}"}}],"serve":"on"}}],"default":"off"}}"#, pre.join(","))
        }).collect();
        let doc = format!(r#"{{"version":1,"segments":{{{}}},"flags":{{{}}}}}"#, segments.join(","), flags.join(","));
        match FlagStore::from_json(&doc) {
            Ok(store) => {
                let attrs = [key("k").boolean(true)];
                for i in 0..5 {
                    let flag = format!("f{i}");
                    prop_assert!(store.is_enabled_for(&flag, &Context::new("u", &attrs)), "{}", flag);
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("circular"), "{e}"),
        }
    }
}

#[test]
fn split_shares_converge_to_their_weights() {
    let store = FlagStore::from_json(
        r#"{"version":1,"flags":{"s":{"variants":{"a":1,"b":2,"c":3},"default":"a","off":"a",
            "rules":[{"split":{"a":10,"b":25.5,"c":64.5}}]}}}"#,
    )
    .unwrap();
    let view = store.view();
    let mut counts = [0u64; 3];
    let mut user = String::new();
    for i in 0..1_000_000u32 {
        user.clear();
        use std::fmt::Write;
        let _ = write!(user, "user-{i}");
        let v = view
            .evaluate_for("s", &Context::key_only(&user))
            .variant
            .unwrap();
        counts[usize::from(v)] += 1;
    }
    for (count, expected) in counts.iter().zip([0.10, 0.255, 0.645]) {
        let share = *count as f64 / 1e6;
        // Five standard deviations of a binomial share over 10^6 users.
        let sigma = (expected * (1.0 - expected) / 1e6_f64).sqrt();
        assert!(
            (share - expected).abs() < 5.0 * sigma,
            "{share} vs {expected}"
        );
    }
}
