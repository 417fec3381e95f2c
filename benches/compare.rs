//! The same workload on this crate and on two other flag engines, in one run:
//! a flag rolled out to 25% of users by user id, 1,000 flags loaded, user ids
//! varying over 4,096 (contexts prebuilt for every engine, so only
//! evaluation is measured).
//!
//! - genesis-flags, by name and by handle;
//! - `unleash-yggdrasil` (the Unleash engine): a `flexibleRollout` strategy at
//!   25% with `stickiness: userId`;
//! - `launchdarkly-server-sdk-evaluation` (the LaunchDarkly evaluator): a
//!   25/75 percentage rollout in the fallthrough;
//! - the floor: `ArcSwap::load` + FxHash lookup + seeded xxh3 + compare.
//!
//! Each engine is paired with genesis-flags by name in alternating chunks
//! (see `support::paired`); the table gives criterion's medians and the
//! median paired ratio. Targets: >= 10x faster than unleash-yggdrasil and
//! >= 15x faster than LaunchDarkly's evaluator.
//!
//! A second workload, the same flag with one rule of three conditions in
//! every engine (`country` in a list, `app_version` semver greater than
//! 1.9.9, `email` ends with `@example.com`), every user matching: ours by
//! name with the context built per evaluation on the stack; Yggdrasil's
//! constraints on a `default` strategy; LaunchDarkly's rule clauses (their
//! contexts prebuilt). Target: >= 15x faster than both.
//!
//! `cargo bench --features compare --bench compare`

mod support;

use std::collections::HashMap;
use std::hint::black_box;

use arc_swap::ArcSwap;
use genesis_flags::{AttributeKey, Context, FlagStore};
use launchdarkly_server_sdk_evaluation as ld;
use rustc_hash::FxHashMap;
use unleash_yggdrasil as ygg;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

const GROUP: &str = "compare";
const FLAGS: usize = 1000;
const USERS: usize = 4096;
const FLAG: &str = "flag_0500";
const RULE_FLAG: &str = "three_conditions";
const COUNTRIES: [&str; 4] = ["DE", "FR", "IT", "ES"];

/// The LaunchDarkly evaluator reads flags and segments through this trait.
struct LdStore {
    flags: HashMap<String, ld::Flag>,
}

impl ld::Store for LdStore {
    fn flag(&self, key: &str) -> Option<ld::Flag> {
        self.flags.get(key).cloned()
    }
    fn segment(&self, _key: &str) -> Option<ld::Segment> {
        None
    }
}

fn genesis_config() -> String {
    let mut flags = serde_json::Map::new();
    for i in 0..FLAGS {
        flags.insert(
            format!("flag_{i:04}"),
            serde_json::json!({ "rollout": "r25" }),
        );
    }
    flags.insert(
        RULE_FLAG.into(),
        serde_json::json!({"default": "off", "rules": [{"when": [
            {"attribute": "country", "op": "in", "values": COUNTRIES},
            {"attribute": "app_version", "op": "semver_gt", "value": "1.9.9"},
            {"attribute": "email", "op": "ends_with", "values": ["@example.com"]}],
            "serve": "on"}]}),
    );
    serde_json::json!({ "version": 1, "rollouts": { "r25": { "percentage": 25 } }, "flags": flags })
        .to_string()
}

fn unleash_features() -> ygg::ClientFeatures {
    let mut features: Vec<serde_json::Value> = (0..FLAGS)
        .map(|i| {
            let name = format!("flag_{i:04}");
            serde_json::json!({
                "name": name, "enabled": true, "type": "release", "project": "default",
                "strategies": [{ "name": "flexibleRollout", "parameters": {
                    "rollout": "25", "stickiness": "userId", "groupId": name } }]
            })
        })
        .collect();
    features.push(serde_json::json!({
        "name": RULE_FLAG, "enabled": true, "type": "release", "project": "default",
        "strategies": [{ "name": "default", "parameters": {}, "constraints": [
            { "contextName": "country", "operator": "IN", "values": COUNTRIES },
            { "contextName": "app_version", "operator": "SEMVER_GT", "value": "1.9.9" },
            { "contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"] }
        ] }]
    }));
    serde_json::from_value(serde_json::json!({ "version": 2, "features": features }))
        .expect("Unleash client features")
}

fn ld_store() -> LdStore {
    let mut flags: HashMap<String, ld::Flag> = (0..FLAGS)
        .map(|i| {
            let key = format!("flag_{i:04}");
            let flag: ld::Flag = serde_json::from_value(serde_json::json!({
                "key": key, "version": 1, "on": true, "targets": [], "contextTargets": [], "rules": [],
                "prerequisites": [], "salt": key, "offVariation": 1, "variations": [true, false],
                "fallthrough": { "rollout": { "variations": [
                    { "variation": 0, "weight": 25000 }, { "variation": 1, "weight": 75000 } ] } },
                "clientSide": false, "trackEvents": false, "trackEventsFallthrough": false
            }))
            .expect("LaunchDarkly flag");
            (key, flag)
        })
        .collect();
    let rule: ld::Flag = serde_json::from_value(serde_json::json!({
        "key": RULE_FLAG, "version": 1, "on": true, "targets": [], "contextTargets": [],
        "rules": [{ "id": "r1", "variation": 0, "trackEvents": false, "clauses": [
            { "attribute": "country", "op": "in", "values": COUNTRIES, "negate": false },
            { "attribute": "app_version", "op": "semVerGreaterThan", "values": ["1.9.9"], "negate": false },
            { "attribute": "email", "op": "endsWith", "values": ["@example.com"], "negate": false }
        ] }],
        "prerequisites": [], "salt": RULE_FLAG, "offVariation": 1, "variations": [true, false],
        "fallthrough": { "variation": 1 },
        "clientSide": false, "trackEvents": false, "trackEventsFallthrough": false
    }))
    .expect("LaunchDarkly flag with a rule");
    flags.insert(RULE_FLAG.into(), rule);
    LdStore { flags }
}

struct Cycle<T> {
    items: Vec<T>,
    next: usize,
}

impl<T> Cycle<T> {
    fn new(items: Vec<T>) -> Self {
        Cycle { items, next: 0 }
    }
    #[inline(always)]
    fn next(&mut self) -> &T {
        self.next = (self.next + 1) % self.items.len();
        &self.items[self.next]
    }
}

fn main() {
    let users: Vec<String> = (0..USERS).map(|i| format!("user-{i:08}")).collect();

    let store = FlagStore::from_json(&genesis_config()).unwrap();
    let handle = store.handle(FLAG);

    let engine = ygg::EngineState::default();
    engine.take_state(ygg::UpdateMessage::FullResponse(unleash_features()));
    let unleash_contexts: Vec<ygg::Context> = users
        .iter()
        .map(|u| ygg::Context {
            user_id: Some(u.clone()),
            ..Default::default()
        })
        .collect();

    // The rule workload's contexts: every user matches all three conditions.
    let attributes = |i: usize| {
        (
            COUNTRIES[i % COUNTRIES.len()],
            format!("2.{}.0", i % 7),
            format!("user-{i}@example.com"),
        )
    };
    let unleash_rule_contexts: Vec<ygg::Context> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (country, version, email) = attributes(i);
            ygg::Context {
                user_id: Some(u.clone()),
                properties: Some(
                    [
                        ("country".to_owned(), country.to_owned()),
                        ("app_version".to_owned(), version),
                        ("email".to_owned(), email),
                    ]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            }
        })
        .collect();
    let ld_rule_contexts: Vec<ld::Context> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (country, version, email) = attributes(i);
            ld::ContextBuilder::new(u.as_str())
                .set_string("country", country)
                .set_string("app_version", version)
                .set_string("email", email)
                .build()
                .unwrap()
        })
        .collect();
    let our_rule_inputs: Vec<(String, &str, String, String)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (country, version, email) = attributes(i);
            (u.clone(), country, version, email)
        })
        .collect();
    let (country, app_version, email) = (
        AttributeKey::new("country"),
        AttributeKey::new("app_version"),
        AttributeKey::new("email"),
    );

    let ld = ld_store();
    let ld_contexts: Vec<ld::Context> = users
        .iter()
        .map(|u| ld::ContextBuilder::new(u.as_str()).build().unwrap())
        .collect();

    struct Floor {
        map: FxHashMap<Box<str>, (u64, u32)>,
    }
    let floor = ArcSwap::from_pointee(Floor {
        map: (0..FLAGS)
            .map(|i| (format!("flag_{i:04}").into(), (xxh3_64(b"r25"), 250_000)))
            .collect(),
    });

    // Every engine agrees that about a quarter of users are in.
    let share = |on: usize| on as f64 / USERS as f64;
    let ours = users.iter().filter(|u| store.is_enabled(FLAG, u)).count();
    let theirs = unleash_contexts
        .iter()
        .filter(|c| engine.is_enabled(FLAG, c, &None))
        .count();
    let flag = ld.flags.get(FLAG).unwrap();
    let lds = ld_contexts
        .iter()
        .filter(|c| {
            matches!(
                ld::evaluate(&ld, flag, c, None).value,
                Some(ld::FlagValue::Bool(true))
            )
        })
        .count();
    for (name, on) in [
        ("genesis-flags", ours),
        ("unleash-yggdrasil", theirs),
        ("launchdarkly", lds),
    ] {
        assert!(
            (share(on) - 0.25).abs() < 0.03,
            "{name}: {:.3} of users in a 25% rollout",
            share(on)
        );
    }

    // The rule flag: every engine says every user is in.
    let rule_store = store.clone();
    for (i, (user, c, v, e)) in our_rule_inputs.iter().enumerate() {
        let attrs = [country.string(c), app_version.string(v), email.string(e)];
        assert!(rule_store.is_enabled_for(RULE_FLAG, &Context::new(user, &attrs)));
        assert!(engine.is_enabled(RULE_FLAG, &unleash_rule_contexts[i], &None));
        let flag = ld.flags.get(RULE_FLAG).unwrap();
        assert!(matches!(
            ld::evaluate(&ld, flag, &ld_rule_contexts[i], None).value,
            Some(ld::FlagValue::Bool(true))
        ));
    }

    let mut by_name_users = Cycle::new(users.clone());
    let mut by_name = move || {
        black_box(store.is_enabled(black_box(FLAG), by_name_users.next()));
    };

    let mut c = support::criterion();
    let mut group = c.benchmark_group(GROUP);
    let mut ratios: Vec<(&str, Vec<f64>)> = Vec::new();

    group.bench_function("genesis_by_name", |b| b.iter(&mut by_name));

    let mut r = Vec::new();
    let mut u = Cycle::new(users.clone());
    group.bench_function("genesis_by_handle", |b| {
        support::paired(b, &mut r, &mut by_name, || {
            black_box(handle.is_enabled(u.next()));
        })
    });
    ratios.push(("genesis_by_handle", r));

    let mut r = Vec::new();
    let mut u = Cycle::new(users.clone());
    group.bench_function("floor", |b| {
        support::paired(b, &mut r, &mut by_name, || {
            let user = u.next();
            let guard = floor.load();
            let on = match guard.map.get(black_box(FLAG)) {
                Some(&(seed, ppm)) => {
                    (((u128::from(xxh3_64_with_seed(user.as_bytes(), seed)) * 1_000_000) >> 64)
                        as u32)
                        < ppm
                }
                None => false,
            };
            black_box(on);
        })
    });
    ratios.push(("floor", r));

    let mut r = Vec::new();
    let mut ctx = Cycle::new(unleash_contexts);
    group.bench_function("unleash_yggdrasil", |b| {
        support::paired(b, &mut r, &mut by_name, || {
            black_box(engine.is_enabled(black_box(FLAG), ctx.next(), &None));
        })
    });
    ratios.push(("unleash_yggdrasil", r));

    let mut r = Vec::new();
    let mut ctx = Cycle::new(ld_contexts);
    group.bench_function("launchdarkly_evaluation", |b| {
        support::paired(b, &mut r, &mut by_name, || {
            // Look the flag up by key, as a client does, then evaluate.
            let flag = ld.flags.get(black_box(FLAG)).unwrap();
            black_box(ld::evaluate(&ld, flag, ctx.next(), None).value.is_some());
        })
    });
    ratios.push(("launchdarkly_evaluation", r));

    // The three-condition rule, paired with ours on the same rule.
    let mut inputs = Cycle::new(our_rule_inputs);
    let mut rule_ours = move || {
        let (user, c, v, e) = inputs.next();
        let attrs = [country.string(c), app_version.string(v), email.string(e)];
        let context = Context::new(user, &attrs);
        black_box(rule_store.is_enabled_for(black_box(RULE_FLAG), &context));
    };
    group.bench_function("genesis_rule_by_name", |b| b.iter(&mut rule_ours));

    let mut r = Vec::new();
    let mut ctx = Cycle::new(unleash_rule_contexts);
    group.bench_function("unleash_yggdrasil_rule", |b| {
        support::paired(b, &mut r, &mut rule_ours, || {
            black_box(engine.is_enabled(black_box(RULE_FLAG), ctx.next(), &None));
        })
    });
    ratios.push(("unleash_yggdrasil_rule", r));

    let mut r = Vec::new();
    let mut ctx = Cycle::new(ld_rule_contexts);
    group.bench_function("launchdarkly_evaluation_rule", |b| {
        support::paired(b, &mut r, &mut rule_ours, || {
            let flag = ld.flags.get(black_box(RULE_FLAG)).unwrap();
            black_box(ld::evaluate(&ld, flag, ctx.next(), None).value.is_some());
        })
    });
    ratios.push(("launchdarkly_evaluation_rule", r));
    group.finish();
    c.final_summary();

    let ours = support::median_ns(GROUP, "genesis_by_name");
    let mut rows = vec![
        (
            "genesis-flags by name, ns".to_owned(),
            ours,
            "1.00x (the reference)".to_owned(),
        ),
        (
            "genesis-flags, three-condition rule by name, ns".to_owned(),
            support::median_ns(GROUP, "genesis_rule_by_name"),
            "the reference of the rule rows".to_owned(),
        ),
    ];
    for (id, r) in ratios {
        let pairs = r.len();
        let ratio = support::median_of(r);
        let (label, target) = match id {
            "genesis_by_handle" => ("genesis-flags by handle", String::new()),
            "floor" => ("floor (ArcSwap + FxHash + xxh3)", String::new()),
            "unleash_yggdrasil" => (
                "unleash-yggdrasil, flexibleRollout 25%",
                format!(
                    "genesis >= 10x faster: {}",
                    support::verdict(ratio, 10.0, false)
                ),
            ),
            "unleash_yggdrasil_rule" => (
                "unleash-yggdrasil, three constraints (vs genesis's rule)",
                format!(
                    "genesis >= 15x faster: {}",
                    support::verdict(ratio, 15.0, false)
                ),
            ),
            "launchdarkly_evaluation_rule" => (
                "launchdarkly-server-sdk-evaluation, three clauses (vs genesis's rule)",
                format!(
                    "genesis >= 15x faster: {}",
                    support::verdict(ratio, 15.0, false)
                ),
            ),
            _ => (
                "launchdarkly-server-sdk-evaluation, 25/75 rollout",
                format!(
                    "genesis >= 15x faster: {}",
                    support::verdict(ratio, 15.0, false)
                ),
            ),
        };
        rows.push((
            format!("{label}, ns"),
            support::median_ns(GROUP, id),
            String::new(),
        ));
        rows.push((
            format!("  ratio to genesis by name ({pairs} pairs)"),
            ratio,
            target,
        ));
    }
    support::report(
        "compare: median ns per evaluation, 1,000 flags, 25% rollout, varying users",
        &rows,
    );
}
