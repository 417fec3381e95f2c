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
//! `cargo bench --features compare --bench compare`

mod support;

use std::collections::HashMap;
use std::hint::black_box;

use arc_swap::ArcSwap;
use genesis_flags::FlagStore;
use launchdarkly_server_sdk_evaluation as ld;
use rustc_hash::FxHashMap;
use unleash_yggdrasil as ygg;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

const GROUP: &str = "compare";
const FLAGS: usize = 1000;
const USERS: usize = 4096;
const FLAG: &str = "flag_0500";

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
    serde_json::json!({ "version": 1, "rollouts": { "r25": { "percentage": 25 } }, "flags": flags })
        .to_string()
}

fn unleash_features() -> ygg::ClientFeatures {
    let features: Vec<serde_json::Value> = (0..FLAGS)
        .map(|i| {
            let name = format!("flag_{i:04}");
            serde_json::json!({
                "name": name, "enabled": true, "type": "release", "project": "default",
                "strategies": [{ "name": "flexibleRollout", "parameters": {
                    "rollout": "25", "stickiness": "userId", "groupId": name } }]
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "version": 2, "features": features }))
        .expect("Unleash client features")
}

fn ld_store() -> LdStore {
    let flags = (0..FLAGS)
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
    group.finish();
    c.final_summary();

    let ours = support::median_ns(GROUP, "genesis_by_name");
    let mut rows = vec![(
        "genesis-flags by name, ns".to_owned(),
        ours,
        "1.00x (the reference)".to_owned(),
    )];
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
