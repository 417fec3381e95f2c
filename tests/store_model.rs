//! The store against a naive model: a `Mutex` around the last accepted
//! config, evaluated by the crate docs' evaluation order written out directly
//! (rules on an `age` attribute included).

use std::collections::BTreeMap;
use std::sync::Mutex;

use genesis_flags::{AttributeKey, Context, FlagStore, Reason};
use proptest::prelude::*;
use serde_json::{json, Value};

const USERS: [&str; 6] = ["u0", "u1", "u2", "qa-1", "vip-7", ""];
const NAMES: [&str; 6] = ["f0", "f1", "f2", "f3", "f4", "f5"];
const ROLLOUTS: [&str; 3] = ["r0", "r1", "r2"];

#[derive(Debug, Clone)]
enum Binding {
    Everyone,
    Rollout(usize),
    Own(u32),
}

#[derive(Debug, Clone)]
struct FlagSpec {
    experimental: bool,
    enabled: Option<bool>,
    binding: Binding,
    include: Vec<usize>,
    exclude: Vec<usize>,
    /// Rules `age >= threshold` serving on (`true`) or off, in order.
    rules: Vec<(u8, bool)>,
}

#[derive(Debug, Clone)]
enum Corruption {
    PercentageOver100,
    UnknownRollout,
    BadName,
    MixedClasses,
}

#[derive(Debug, Clone)]
struct ConfigSpec {
    rollouts: Vec<u32>,
    flags: BTreeMap<usize, FlagSpec>,
    corruption: Option<Corruption>,
}

fn ppm() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(1_000_000u32), 0u32..=1_000_000]
}

fn flag_spec() -> impl Strategy<Value = FlagSpec> {
    (
        any::<bool>(),
        prop::option::of(any::<bool>()),
        prop_oneof![
            Just(Binding::Everyone),
            (0usize..3).prop_map(Binding::Rollout),
            ppm().prop_map(Binding::Own)
        ],
        prop::collection::vec(0usize..USERS.len(), 0..3),
        prop::collection::vec(0usize..USERS.len(), 0..3),
        prop::collection::vec((0u8..100, any::<bool>()), 0..3),
    )
        .prop_map(
            |(experimental, enabled, binding, include, exclude, rules)| FlagSpec {
                experimental,
                enabled,
                binding,
                include,
                exclude,
                rules,
            },
        )
}

fn config_spec() -> impl Strategy<Value = ConfigSpec> {
    (
        prop::collection::vec(ppm(), 3),
        prop::collection::btree_map(0usize..NAMES.len(), flag_spec(), 0..NAMES.len()),
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(Corruption::PercentageOver100),
                Just(Corruption::UnknownRollout),
                Just(Corruption::BadName),
                Just(Corruption::MixedClasses),
            ],
        ),
    )
        .prop_map(|(rollouts, mut flags, corruption)| {
            // Valid documents never mix classes in a rollout: rollout r1 is
            // experimental-only, the others critical-only.
            for flag in flags.values_mut() {
                if let Binding::Rollout(r) = flag.binding {
                    flag.experimental = r == 1;
                }
            }
            ConfigSpec {
                rollouts,
                flags,
                corruption,
            }
        })
}

fn percent(ppm: u32) -> f64 {
    f64::from(ppm) / 10_000.0
}

impl ConfigSpec {
    fn render(&self) -> String {
        let mut rollouts = serde_json::Map::new();
        for (i, &p) in self.rollouts.iter().enumerate() {
            rollouts.insert(ROLLOUTS[i].into(), json!({ "percentage": percent(p) }));
        }
        let mut flags = serde_json::Map::new();
        for (&i, f) in &self.flags {
            let mut body = serde_json::Map::new();
            body.insert(
                "class".into(),
                json!(if f.experimental {
                    "experimental"
                } else {
                    "critical"
                }),
            );
            if let Some(e) = f.enabled {
                body.insert("enabled".into(), json!(e));
            }
            match f.binding {
                Binding::Everyone => {}
                Binding::Rollout(r) => {
                    body.insert("rollout".into(), json!(ROLLOUTS[r]));
                }
                Binding::Own(p) => {
                    body.insert("percentage".into(), json!(percent(p)));
                }
            }
            let users = |list: &[usize]| list.iter().map(|&u| USERS[u]).collect::<Vec<_>>();
            body.insert("include".into(), json!(users(&f.include)));
            body.insert("exclude".into(), json!(users(&f.exclude)));
            if !f.rules.is_empty() {
                let rules: Vec<Value> = f
                    .rules
                    .iter()
                    .map(|&(t, on)| {
                        json!({ "when": [{ "attribute": "age", "op": "ge", "value": t }],
                                "serve": if on { "on" } else { "off" } })
                    })
                    .collect();
                body.insert("rules".into(), json!(rules));
            }
            flags.insert(NAMES[i].into(), Value::Object(body));
        }
        match self.corruption {
            None => {}
            Some(Corruption::PercentageOver100) => {
                rollouts.insert("r0".into(), json!({ "percentage": 150 }));
            }
            Some(Corruption::UnknownRollout) => {
                flags.insert("dangling".into(), json!({ "rollout": "missing" }));
            }
            Some(Corruption::BadName) => {
                flags.insert("Bad Name".into(), json!({}));
            }
            Some(Corruption::MixedClasses) => {
                flags.insert(
                    "mix_a".into(),
                    json!({ "rollout": "r2", "class": "critical" }),
                );
                flags.insert(
                    "mix_b".into(),
                    json!({ "rollout": "r2", "class": "experimental" }),
                );
            }
        }
        json!({ "version": 1, "rollouts": rollouts, "flags": flags }).to_string()
    }

    /// The evaluation order of the crate docs, written out naively.
    fn evaluate(
        &self,
        name: usize,
        user: usize,
        age: Option<u8>,
        allow_experimental: bool,
    ) -> (bool, Reason) {
        let Some(f) = self.flags.get(&name) else {
            return (false, Reason::UnknownFlag);
        };
        if f.enabled == Some(false) {
            return (false, Reason::KillSwitch);
        }
        if f.experimental && !allow_experimental {
            return (false, Reason::ExperimentalDisabled);
        }
        if f.exclude.contains(&user) {
            return (false, Reason::Excluded);
        }
        if f.include.contains(&user) {
            return (true, Reason::Included);
        }
        if let Some(age) = age {
            if let Some(&(_, on)) = f.rules.iter().find(|(t, _)| age >= *t) {
                return (on, Reason::RuleMatch);
            }
        }
        let fallthrough = if f.rules.is_empty() {
            Reason::On
        } else {
            Reason::Default
        };
        let (salt, threshold) = match f.binding {
            Binding::Everyone => return (true, fallthrough),
            Binding::Rollout(r) => (ROLLOUTS[r], self.rollouts[r]),
            Binding::Own(p) => (NAMES[name], p),
        };
        if USERS[user].is_empty() {
            // An empty key is not a user: in no percentage.
            return (false, Reason::OutOfRollout);
        }
        let seed = xxhash_rust::xxh3::xxh3_64(salt.as_bytes());
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(USERS[user].as_bytes(), seed);
        let bucket = ((h as u128 * 1_000_000) >> 64) as u32;
        if bucket < threshold {
            (true, Reason::InRollout)
        } else {
            (false, Reason::OutOfRollout)
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Replace(ConfigSpec),
    Evaluate(usize, usize, Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => config_spec().prop_map(Op::Replace),
        4 => (0usize..NAMES.len(), 0usize..USERS.len(), prop::option::of(0u8..100))
            .prop_map(|(n, u, age)| Op::Evaluate(n, u, age)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn store_matches_the_naive_model(
        initial in config_spec().prop_filter("valid", |c| c.corruption.is_none()),
        ops in prop::collection::vec(op(), 1..40),
        allow_experimental in any::<bool>(),
    ) {
        let store = FlagStore::builder()
            .allow_experimental(allow_experimental)
            .from_json(&initial.render())
            .unwrap();
        let handles: Vec<_> = NAMES.iter().map(|n| store.handle(n)).collect();
        let model = Mutex::new(initial);
        for op in ops {
            match op {
                Op::Replace(spec) => {
                    let result = store.replace_from_json(&spec.render());
                    prop_assert_eq!(result.is_ok(), spec.corruption.is_none(), "{:?}", result);
                    if result.is_ok() {
                        *model.lock().unwrap() = spec;
                    }
                }
                Op::Evaluate(n, u, age) => {
                    let expected = model.lock().unwrap().evaluate(n, u, None, allow_experimental);
                    let by_name = store.evaluate(NAMES[n], USERS[u]);
                    let by_handle = handles[n].evaluate(USERS[u]);
                    let by_view = store.view().evaluate_handle(&handles[n], USERS[u]);
                    prop_assert_eq!((by_name.enabled, by_name.reason), expected);
                    prop_assert_eq!(by_handle, by_name);
                    prop_assert_eq!(by_view, by_name);
                    // With an `age` attribute the rules decide first.
                    let expected = model.lock().unwrap().evaluate(n, u, age, allow_experimental);
                    let attrs: Vec<_> = age
                        .map(|a| AttributeKey::new("age").number(f64::from(a)))
                        .into_iter()
                        .collect();
                    let context = Context::new(USERS[u], &attrs);
                    let with_context = store.evaluate_for(NAMES[n], &context);
                    prop_assert_eq!((with_context.enabled, with_context.reason), expected);
                    prop_assert_eq!(handles[n].evaluate_for(&context), with_context);
                    prop_assert_eq!(store.for_context(context).evaluate(NAMES[n]), with_context);
                }
            }
        }
    }

    /// All flags bound to one rollout are on for the same users: all or none.
    #[test]
    fn bundles_are_coherent(
        flags in prop::collection::btree_set("[a-z][a-z0-9_]{0,30}", 2..12),
        percentage in 0u32..=1_000_000,
        users in prop::collection::vec(".{0,40}", 1..50),
    ) {
        let mut body = serde_json::Map::new();
        for f in &flags {
            body.insert(f.clone(), json!({ "rollout": "bundle" }));
        }
        let doc = json!({
            "version": 1,
            "rollouts": { "bundle": { "percentage": percent(percentage) } },
            "flags": body,
        });
        let store = FlagStore::from_json(&doc.to_string()).unwrap();
        for user in &users {
            let view = store.view();
            let on: Vec<bool> = flags.iter().map(|f| view.is_enabled(f, user)).collect();
            prop_assert!(on.iter().all(|&x| x == on[0]), "user {:?} got a mix: {:?}", user, on);
        }
    }
}
