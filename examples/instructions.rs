//! A driver for instruction counts: runs one case of `benches/evaluate.rs`
//! alone, `N` times, on the same configuration and contexts, so that
//! `valgrind --tool=callgrind` counts what one evaluation costs (run it at
//! N and 2N and divide the difference by N; the set-up cancels out).
//!
//! ```sh
//! cargo build --profile bench --example instructions
//! valgrind --tool=callgrind target/release/examples/instructions rule_three_conditions 20000
//! ```
//!
//! Cases: `floor`, `rollout_by_name`, `rollout_by_handle`,
//! `ten_critical_for_user_handles`, `rule_three_conditions`,
//! `string_variant_by_handle`, `ten_targeted_for_context`.

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;

use arc_swap::ArcSwap;
use genesis_flags::{AttributeKey, Context, FlagHandle, FlagStore};
use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

const ROLLOUT: &str = "phase_4_deployment";

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "floor".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);

    let store = FlagStore::from_json(&support::evaluate_config(1000)).unwrap();
    let (country, version, email, plan) = (
        AttributeKey::new("country"),
        AttributeKey::new("app_version"),
        AttributeKey::new("email"),
        AttributeKey::new("plan"),
    );
    let color = store.handle("checkout_color");
    let targeted: Vec<_> = (0..10)
        .map(|i| store.handle(&format!("targeted_{i}")))
        .collect();
    let handle = store.handle("htdag_enabled");
    let critical: Vec<_> = support::CRITICAL.iter().map(|f| store.handle(f)).collect();
    let floor: ArcSwap<FxHashMap<Box<str>, (u64, u32)>> = ArcSwap::from_pointee(
        store
            .snapshot()
            .flags()
            .map(|f| {
                let ppm = f.percentage().map_or(1_000_000, |p| p.ppm());
                (f.name().into(), (xxh3_64(f.name().as_bytes()), ppm))
            })
            .collect(),
    );
    let ids = support::users(4096);
    let mut next = 0usize;
    let mut user = || {
        next = (next + 1) & (ids.len() - 1);
        ids[next].as_str()
    };

    let mut on = 0u32;
    for _ in 0..n {
        // Each case is a function of its own (as each closure of the bench
        // is), so the cases do not change each other's inlining.
        on += match case.as_str() {
            "floor" => floor_case(&floor, user()),
            "rollout_by_name" => rollout_by_name(&store, user()),
            "rollout_by_handle" => rollout_by_handle(&handle, user()),
            "ten_critical_for_user_handles" => ten_critical(&store, user(), &critical),
            "rule_three_conditions" => rule_three(&store, [country, version, email], user()),
            "string_variant_by_handle" => string_variant(&store, &color, user()),
            "ten_targeted_for_context" => ten_targeted(&store, plan, country, user(), &targeted),
            other => panic!("unknown case {other}"),
        };
        black_box(on);
    }
    println!("{case} x {n}: {on}");
}

#[inline(never)]
fn floor_case(floor: &ArcSwap<FxHashMap<Box<str>, (u64, u32)>>, user: &str) -> u32 {
    let guard = floor.load();
    u32::from(match guard.get(black_box("htdag_enabled")) {
        Some(&(seed, ppm)) => {
            let h = xxh3_64_with_seed(user.as_bytes(), seed);
            (((u128::from(h) * 1_000_000) >> 64) as u32) < ppm
        }
        None => false,
    })
}

#[inline(never)]
fn rollout_by_name(store: &FlagStore, user: &str) -> u32 {
    u32::from(store.is_enabled(black_box("htdag_enabled"), user))
}

#[inline(never)]
fn rollout_by_handle(handle: &FlagHandle, user: &str) -> u32 {
    u32::from(handle.is_enabled(user))
}

#[inline(never)]
fn ten_critical(store: &FlagStore, user: &str, critical: &[FlagHandle]) -> u32 {
    let view = store.for_user(user);
    let mut on = u32::from(view.cohort(black_box(ROLLOUT)).is_some_and(|c| c.is_in()));
    for handle in critical {
        on += u32::from(view.is_enabled_handle(handle));
    }
    on
}

#[inline(never)]
fn rule_three(store: &FlagStore, [country, version, email]: [AttributeKey; 3], user: &str) -> u32 {
    // The context is built per request, on the stack.
    let attrs = [
        country.string("DE"),
        version.string("2.1.0"),
        email.string("someone@example.com"),
    ];
    let context = Context::new(user, &attrs);
    u32::from(store.is_enabled_for(black_box("three_conditions"), &context))
}

#[inline(never)]
fn string_variant(store: &FlagStore, color: &FlagHandle, user: &str) -> u32 {
    let context = Context::key_only(user);
    let view = store.view();
    view.variation_handle(color, &context).str_or("").len() as u32
}

#[inline(never)]
fn ten_targeted(
    store: &FlagStore,
    plan: AttributeKey,
    country: AttributeKey,
    user: &str,
    targeted: &[FlagHandle],
) -> u32 {
    let attrs = [plan.string("pro"), country.string("DE")];
    let view = store.for_context(Context::new(user, &attrs));
    let mut on = 0;
    for handle in targeted {
        on += u32::from(view.is_enabled_handle(handle));
    }
    on
}
