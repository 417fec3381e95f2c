//! The per-request view against the store: every flag evaluates as
//! `FlagStore::evaluate` does, in any order and with more rollouts than the
//! view's bucket slots; a cohort is `in` exactly when the bucket is under
//! the rollout's percentage.

use genesis_flags::{bucket, Attribute, AttributeKey, Cohort, Context, FlagStore};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const ROLLOUTS: [&str; 7] = ["r0", "r1", "r2", "r3", "r4", "r5", "phase_4_deployment"];
const LISTED: [&str; 3] = ["qa-1", "vip-7", ""];

#[derive(Debug, Clone)]
enum Binding {
    Everyone,
    Rollout(usize),
    Own(u32),
}

#[derive(Debug, Clone)]
struct FlagSpec {
    experimental: bool,
    enabled: bool,
    binding: Binding,
    include: Vec<usize>,
    exclude: Vec<usize>,
}

fn ppm() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(1_000_000u32), 0u32..=1_000_000]
}

fn flag_spec() -> impl Strategy<Value = FlagSpec> {
    (
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.9),
        prop_oneof![
            1 => Just(Binding::Everyone),
            4 => (0..ROLLOUTS.len()).prop_map(Binding::Rollout),
            1 => ppm().prop_map(Binding::Own),
        ],
        prop::collection::vec(0..LISTED.len(), 0..2),
        prop::collection::vec(0..LISTED.len(), 0..2),
    )
        .prop_map(
            |(experimental, enabled, binding, include, exclude)| FlagSpec {
                experimental,
                enabled,
                binding,
                include,
                exclude,
            },
        )
}

fn percent(ppm: u32) -> f64 {
    f64::from(ppm) / 10_000.0
}

fn config(rollouts: &[u32], flags: &[FlagSpec]) -> String {
    let mut r = Map::new();
    for (id, &p) in ROLLOUTS.iter().zip(rollouts) {
        r.insert((*id).into(), json!({ "percentage": percent(p) }));
    }
    let mut f = Map::new();
    for (i, spec) in flags.iter().enumerate() {
        let mut body = Map::new();
        // A rollout's flags share one class: those of r5 are experimental,
        // the other rollouts' critical.
        let experimental = match spec.binding {
            Binding::Rollout(r) => r == 5,
            _ => spec.experimental,
        };
        if experimental {
            body.insert("class".into(), json!("experimental"));
        }
        body.insert("enabled".into(), json!(spec.enabled));
        match spec.binding {
            Binding::Everyone => {}
            Binding::Rollout(r) => {
                body.insert("rollout".into(), json!(ROLLOUTS[r]));
            }
            Binding::Own(p) => {
                body.insert("percentage".into(), json!(percent(p)));
            }
        }
        let names = |list: &[usize]| -> Vec<&str> {
            let mut v: Vec<&str> = list.iter().map(|&u| LISTED[u]).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if !spec.include.is_empty() {
            body.insert("include".into(), json!(names(&spec.include)));
        }
        if !spec.exclude.is_empty() {
            body.insert("exclude".into(), json!(names(&spec.exclude)));
        }
        f.insert(format!("flag_{i}"), Value::Object(body));
    }
    json!({ "version": 1, "rollouts": r, "flags": f }).to_string()
}

fn user() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(LISTED.to_vec()).prop_map(String::from),
        4 => "[a-zA-Z0-9_-]{0,24}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_view_agrees_with_the_store(
        rollouts in prop::collection::vec(ppm(), ROLLOUTS.len()),
        flags in prop::collection::vec(flag_spec(), 0..14),
        allow_experimental in any::<bool>(),
        users in prop::collection::vec(user(), 1..6),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let store = FlagStore::builder()
            .allow_experimental(allow_experimental)
            .from_json(&config(&rollouts, &flags))
            .unwrap();
        let mut names: Vec<String> = (0..flags.len()).map(|i| format!("flag_{i}")).collect();
        names.push("no_such_flag".into());
        let handles: Vec<_> = names.iter().map(|n| store.handle(n)).collect();
        for user in &users {
            let view = store.for_user(user);
            prop_assert_eq!(view.user(), user.as_str());
            // A random order first (evictions, repeats), then every flag once.
            let picks = order.iter().map(|i| i.index(names.len())).chain(0..names.len());
            for i in picks {
                let expected = store.evaluate(&names[i], user);
                prop_assert_eq!(view.evaluate(&names[i]), expected, "{} by name", &names[i]);
                prop_assert_eq!(view.evaluate_handle(&handles[i]), expected, "{} by handle", &names[i]);
                prop_assert_eq!(view.is_enabled(&names[i]), store.is_enabled(&names[i], user));
            }
        }
    }

    #[test]
    fn a_cohort_is_in_iff_the_bucket_is_under_the_percentage(
        rollouts in prop::collection::vec(ppm(), ROLLOUTS.len()),
        users in prop::collection::vec(user(), 1..6),
        order in prop::collection::vec(0..ROLLOUTS.len(), 0..30),
    ) {
        let store = FlagStore::from_json(&config(&rollouts, &[])).unwrap();
        for user in &users {
            let view = store.for_user(user);
            for r in order.iter().copied().chain(0..ROLLOUTS.len()) {
                // An empty key is not a user: in no percentage.
                let inside = !user.is_empty() && bucket(ROLLOUTS[r], user) < rollouts[r];
                let expected = if inside { Cohort::In } else { Cohort::Out };
                prop_assert_eq!(view.cohort(ROLLOUTS[r]), Some(expected));
                prop_assert_eq!(store.cohort(ROLLOUTS[r], user), Some(expected));
                prop_assert_eq!(store.snapshot().cohort(ROLLOUTS[r], user), Some(expected));
            }
            prop_assert_eq!(view.cohort("no_such_rollout"), None);
        }
    }

    #[test]
    fn the_cohort_matches_the_rollout_flags(
        p in ppm(),
        user in user(),
    ) {
        // With no kill switch and no lists, a flag bound to the rollout is on
        // exactly for the in cohort.
        let flags = [FlagSpec {
            experimental: false,
            enabled: true,
            binding: Binding::Rollout(6),
            include: vec![],
            exclude: vec![],
        }];
        let mut rollouts = vec![0; ROLLOUTS.len()];
        rollouts[6] = p;
        let store = FlagStore::from_json(&config(&rollouts, &flags)).unwrap();
        let view = store.for_user(&user);
        let on = view.is_enabled("flag_0");
        prop_assert_eq!(view.cohort("phase_4_deployment").map(Cohort::is_in), Some(on));
    }
}

/// Values the `in` rules of the context property test name and its contexts carry.
const WORDS: [&str; 6] = ["de", "fr", "pro", "free", "x", ""];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A `for_context` view remembers each attribute's interned value; it
    /// must answer as the store does, whatever the rules, the attribute
    /// types, repeats and order.
    #[test]
    fn a_context_view_agrees_with_the_store(
        rules in prop::collection::vec(
            prop::collection::vec((0usize..4, prop::collection::vec(0usize..WORDS.len(), 0..4), any::<bool>()), 0..3),
            1..8),
        attributes in prop::collection::vec((0usize..5, 0usize..WORDS.len(), 0u8..3), 0..6),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        user in prop::sample::select(vec!["u-1", "u-2", "user-42", ""]),
    ) {
        const ATTRS: [&str; 4] = ["country", "plan", "key", "region"];
        let mut flags = serde_json::Map::new();
        for (i, conditions) in rules.iter().enumerate() {
            let when: Vec<serde_json::Value> = conditions
                .iter()
                .map(|(a, values, negate)| json!({"attribute": ATTRS[*a], "op": "in",
                    "values": values.iter().map(|v| WORDS[*v]).collect::<Vec<_>>(), "negate": negate}))
                .collect();
            // Flags of each kind a view may run compactly: not bucketed,
            // on their own percentage, in a rollout; and one with a kill switch.
            let flag = match i % 5 {
                4 => json!({"variants": {"a": "x", "b": "y", "c": "z"}, "default": "a", "off": "b",
                    "rules": [{"when": when, "split": {"a": 30, "b": 0, "c": 70}}, {"serve": "c"}]}),
                0 => json!({"default": "off", "rules": [{"when": when, "serve": "on"}]}),
                1 => json!({"percentage": 50, "rules": [{"when": when, "serve": "off"}, {"serve": "on"}]}),
                2 => json!({"rollout": "r", "rules": [{"when": when, "serve": "off"}]}),
                _ => json!({"enabled": false, "rules": [{"when": when, "serve": "on"}]}),
            };
            flags.insert(format!("flag_{i}"), flag);
        }
        let document = json!({"version": 1, "rollouts": {"r": {"percentage": 30}}, "flags": flags});
        let store = FlagStore::from_json(&document.to_string()).unwrap();
        let keys: Vec<AttributeKey> = ["country", "plan", "key", "region", "other"]
            .iter().map(|n| AttributeKey::new(n)).collect();
        let list = [WORDS[0], WORDS[2]];
        let context_attributes: Vec<Attribute<'_>> = attributes
            .iter()
            .map(|&(k, w, kind)| match kind {
                0 => keys[k].string(WORDS[w]),
                1 => keys[k].list(&list),
                _ => keys[k].number(w as f64),
            })
            .collect();
        let context = Context::new(user, &context_attributes);
        let view = store.for_context(context);
        let picks = order.iter().map(|i| i.index(rules.len())).chain(0..rules.len());
        for i in picks {
            let name = format!("flag_{i}");
            prop_assert_eq!(view.evaluate(&name), store.evaluate_for(&name, &context), "{}", name);
        }
    }
}

/// Values the text and version conditions of the compact-program property
/// test name, and the strings its contexts carry.
const TEXTS: [&str; 8] = [
    "DE",
    "@example.com",
    "a@example.com",
    "2.1.0",
    "1.9.9",
    "2.0.0-rc.1",
    "01.2.3",
    "",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Flags whose conditions (an `in` of several values, the packed text
    /// operators, semver comparisons) compile to a compact program answer
    /// as the same rules evaluated in full: a copy of each flag with a user
    /// list (which keeps it off the compact path) is the reference, by
    /// name, by handle and through both kinds of view.
    #[test]
    fn compact_programs_agree_with_full_evaluation(
        rules in prop::collection::vec(
            prop::collection::vec((0usize..3, 0usize..7, prop::collection::vec(0usize..TEXTS.len(), 0..4), any::<bool>()), 0..4),
            1..4),
        attributes in prop::collection::vec((0usize..3, 0usize..TEXTS.len(), 0u8..3), 0..5),
        user in prop::sample::select(vec!["u-1", "user-42", ""]),
    ) {
        const ATTRS: [&str; 3] = ["country", "app_version", "email"];
        const OPS: [&str; 7] = ["in", "ends_with", "starts_with", "not_in", "semver_gt", "semver_ge", "semver_lt"];
        let when: Vec<Vec<serde_json::Value>> = rules
            .iter()
            .map(|conditions| conditions
                .iter()
                .map(|(a, op, values, negate)| {
                    let op = OPS[*op];
                    if op.starts_with("semver") {
                        let version = ["2.0.0", "1.9.9", "2.0.0-rc.1", "0.10.0"][values.len()];
                        json!({"attribute": ATTRS[*a], "op": op, "value": version, "negate": negate})
                    } else {
                        json!({"attribute": ATTRS[*a], "op": op,
                            "values": values.iter().map(|v| TEXTS[*v]).collect::<Vec<_>>(), "negate": negate})
                    }
                })
                .collect())
            .collect();
        let rules_json = |serve: &[&str]| -> Vec<serde_json::Value> {
            when.iter().zip(serve.iter().cycle()).map(|(w, s)| json!({"when": w, "serve": s})).collect()
        };
        let mut flags = serde_json::Map::new();
        for (name, extra) in [("compact", json!({})), ("full", json!({"include": ["nobody"]}))] {
            let mut a = json!({"default": "off", "rules": rules_json(&["on", "off"])});
            let mut b = json!({"rollout": "r", "variants": {"x": 1, "y": 2, "z": 3}, "default": "x", "off": "z",
                "rules": rules_json(&["y", "z", "x"])});
            for flag in [&mut a, &mut b] {
                if let (Some(f), Some(e)) = (flag.as_object_mut(), extra.as_object()) {
                    f.extend(e.clone());
                }
            }
            flags.insert(format!("{name}_a"), a);
            flags.insert(format!("{name}_b"), b);
        }
        let document = json!({"version": 1, "rollouts": {"r": {"percentage": 40}}, "flags": flags});
        let store = FlagStore::from_json(&document.to_string()).unwrap_or_else(|e| panic!("{e}\n{document}"));
        let keys: Vec<AttributeKey> = ATTRS.iter().map(|n| AttributeKey::new(n)).collect();
        let list = [TEXTS[0], TEXTS[2]];
        let context_attributes: Vec<Attribute<'_>> = attributes
            .iter()
            .map(|&(k, w, kind)| match kind {
                0 => keys[k].string(TEXTS[w]),
                1 => keys[k].list(&list),
                _ => keys[k].number(w as f64),
            })
            .collect();
        let context = Context::new(user, &context_attributes);
        let view = store.for_context(context);
        for flag in ["a", "b"] {
            let (compact, full) = (format!("compact_{flag}"), format!("full_{flag}"));
            let expected = store.evaluate_for(&full, &context);
            prop_assert_eq!(store.evaluate_for(&compact, &context), expected, "{}", compact);
            prop_assert_eq!(store.handle(&compact).evaluate_for(&context), expected, "{}", compact);
            prop_assert_eq!(view.evaluate(&compact), expected, "{}", compact);
            prop_assert_eq!(store.view().evaluate_for(&compact, &context), expected, "{}", compact);
        }
    }
}
