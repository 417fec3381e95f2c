//! Evaluation cost against a floor measured in the same run.
//!
//! The floor is the least any lock-free flag lookup can do: `ArcSwap::load`,
//! an FxHash map lookup by `&str`, one seeded xxh3 of the user id and the
//! threshold compare. Targets: rollout flag by name <= 1.2x the floor, by
//! handle <= 0.7x, plain on/off flag by name <= 0.8x; a request's 10
//! critical flags (by handle) and its cohort through one `for_user` view
//! <= 3x: one hash for the shared rollout instead of ten. By name, the ten
//! name lookups dominate (informational). Targeting: a rule with three
//! conditions (context built per request) <= 2x, a string variant by handle
//! <= 1.2x, ten flags with rules of one request through a `for_context`
//! view by handle <= 4x.
//!
//! Each case is measured by criterion (its median is quoted in ns) while the
//! floor runs in alternating chunks beside it; the ratio quoted is the median
//! of those paired per-sample ratios (see `support::paired`).
//!
//! `cargo bench --bench evaluate`; add `-- --warm-up-time 0.2
//! --measurement-time 0.5` for a short run.

mod support;

use std::hint::black_box;

use arc_swap::ArcSwap;
use criterion::{Criterion, Throughput};
use genesis_flags::{AttributeKey, Context, FlagStore};
use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

const GROUP: &str = "evaluate";
const FLAGS_IN_CONFIG: usize = 1000;
use support::CRITICAL;
const ROLLOUT: &str = "phase_4_deployment";

/// The floor's "snapshot": name -> (seed, threshold in ppm).
struct Floor {
    map: FxHashMap<Box<str>, (u64, u32)>,
}

/// Cycles through user ids, so no single key stays hot.
struct Users {
    ids: Vec<String>,
    next: usize,
}

impl Users {
    fn new() -> Self {
        Users {
            ids: support::users(4096),
            next: 0,
        }
    }

    #[inline(always)]
    fn next(&mut self) -> &str {
        self.next = (self.next + 1) & (self.ids.len() - 1);
        &self.ids[self.next]
    }
}

struct Case {
    id: &'static str,
    label: &'static str,
    target: Option<f64>,
}

const CASES: [Case; 12] = [
    Case {
        id: "rollout_by_name",
        label: "rollout flag by name",
        target: Some(1.2),
    },
    Case {
        id: "rollout_by_handle",
        label: "rollout flag by handle",
        target: Some(0.7),
    },
    Case {
        id: "plain_by_name",
        label: "plain on/off flag by name",
        target: Some(0.8),
    },
    Case {
        id: "killed_by_name",
        label: "killed flag by name",
        target: None,
    },
    Case {
        id: "long_name_by_name",
        label: "rollout flag by a 30-byte name",
        target: None,
    },
    Case {
        id: "evaluate_with_reason",
        label: "evaluate() with reason, by name",
        target: None,
    },
    Case {
        id: "ten_critical_one_view",
        label: "10 critical flags in one view (a request)",
        target: None,
    },
    Case {
        id: "ten_critical_for_user",
        label: "10 critical flags + cohort, for_user by name (a request)",
        target: None,
    },
    Case {
        id: "ten_critical_for_user_handles",
        label: "10 critical flags + cohort, for_user by handle (a request)",
        target: Some(3.0),
    },
    Case {
        id: "rule_three_conditions",
        label: "a rule with three conditions (in, semver_ge, ends_with), by name",
        target: Some(2.0),
    },
    Case {
        id: "string_variant_by_handle",
        label: "a string variant (50/50 split) by handle",
        target: Some(1.2),
    },
    Case {
        id: "ten_targeted_for_context",
        label: "10 flags with rules, one for_context view by handle (a request)",
        target: Some(4.0),
    },
];

fn main() {
    let mut c: Criterion = support::criterion();
    let store = FlagStore::from_json(&support::evaluate_config(FLAGS_IN_CONFIG)).unwrap();
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
    {
        let attrs = [
            country.string("DE"),
            version.string("2.1.0"),
            email.string("a@example.com"),
        ];
        assert!(store.is_enabled_for("three_conditions", &Context::new("u", &attrs)));
    }
    let floor = ArcSwap::from_pointee(Floor {
        map: store
            .snapshot()
            .flags()
            .map(|f| {
                let ppm = f.percentage().map_or(1_000_000, |p| p.ppm());
                (f.name().into(), (xxh3_64(f.name().as_bytes()), ppm))
            })
            .collect(),
    });
    let handle = store.handle("htdag_enabled");
    let critical_handles: Vec<_> = CRITICAL.iter().map(|f| store.handle(f)).collect();
    // A plain enabled flag and a killed one, named as long as the floor's flag.
    assert!(store.is_enabled("maint_enabled", "u"));
    assert!(!store.is_enabled("legacy_x_flag", "u"));

    let mut floor_users = Users::new();
    let mut floor_eval = move || {
        let user = floor_users.next();
        let guard = floor.load();
        let on = match guard.map.get(black_box("htdag_enabled")) {
            Some(&(seed, ppm)) => {
                let h = xxh3_64_with_seed(user.as_bytes(), seed);
                (((u128::from(h) * 1_000_000) >> 64) as u32) < ppm
            }
            None => false,
        };
        black_box(on);
    };

    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));
    group.bench_function("floor", |b| b.iter(&mut floor_eval));

    let mut ratios: Vec<(&Case, Vec<f64>)> = Vec::new();
    for case in &CASES {
        let mut r = Vec::new();
        let mut users = Users::new();
        group.bench_function(case.id, |b| match case.id {
            "rollout_by_name" => support::paired(b, &mut r, &mut floor_eval, || {
                black_box(store.is_enabled(black_box("htdag_enabled"), users.next()));
            }),
            "rollout_by_handle" => support::paired(b, &mut r, &mut floor_eval, || {
                black_box(handle.is_enabled(users.next()));
            }),
            "plain_by_name" => support::paired(b, &mut r, &mut floor_eval, || {
                black_box(store.is_enabled(black_box("maint_enabled"), users.next()));
            }),
            "killed_by_name" => support::paired(b, &mut r, &mut floor_eval, || {
                black_box(store.is_enabled(black_box("legacy_x_flag"), users.next()));
            }),
            "long_name_by_name" => support::paired(b, &mut r, &mut floor_eval, || {
                let name = black_box("performance_monitoring_enabled");
                black_box(store.is_enabled(name, users.next()));
            }),
            "evaluate_with_reason" => support::paired(b, &mut r, &mut floor_eval, || {
                black_box(store.evaluate(black_box("htdag_enabled"), users.next()));
            }),
            "ten_critical_one_view" => support::paired(b, &mut r, &mut floor_eval, || {
                let user = users.next();
                let view = store.view();
                let mut on = 0u32;
                for name in CRITICAL {
                    on += u32::from(view.is_enabled(black_box(name), user));
                }
                black_box(on);
            }),
            "ten_critical_for_user" => support::paired(b, &mut r, &mut floor_eval, || {
                let view = store.for_user(users.next());
                let mut on = u32::from(view.cohort(black_box(ROLLOUT)).is_some_and(|c| c.is_in()));
                for name in CRITICAL {
                    on += u32::from(view.is_enabled(black_box(name)));
                }
                black_box(on);
            }),
            "ten_critical_for_user_handles" => support::paired(b, &mut r, &mut floor_eval, || {
                let view = store.for_user(users.next());
                let mut on = u32::from(view.cohort(black_box(ROLLOUT)).is_some_and(|c| c.is_in()));
                for handle in &critical_handles {
                    on += u32::from(view.is_enabled_handle(handle));
                }
                black_box(on);
            }),
            "rule_three_conditions" => support::paired(b, &mut r, &mut floor_eval, || {
                // The context is built per request, on the stack.
                let attrs = [
                    country.string("DE"),
                    version.string("2.1.0"),
                    email.string("someone@example.com"),
                ];
                let context = Context::new(users.next(), &attrs);
                black_box(store.is_enabled_for(black_box("three_conditions"), &context));
            }),
            "string_variant_by_handle" => support::paired(b, &mut r, &mut floor_eval, || {
                let context = Context::key_only(users.next());
                let view = store.view();
                black_box(view.variation_handle(&color, &context).str_or("").len());
            }),
            "ten_targeted_for_context" => support::paired(b, &mut r, &mut floor_eval, || {
                let attrs = [plan.string("pro"), country.string("DE")];
                let view = store.for_context(Context::new(users.next(), &attrs));
                let mut on = 0u32;
                for handle in &targeted {
                    on += u32::from(view.is_enabled_handle(handle));
                }
                black_box(on);
            }),
            other => unreachable!("{other}"),
        });
        ratios.push((case, r));
    }
    group.finish();
    c.final_summary();

    let mut rows = vec![(
        "floor (ArcSwap load + FxHash lookup + xxh3 + compare), ns".to_string(),
        support::median_ns(GROUP, "floor"),
        String::new(),
    )];
    for (case, _) in &ratios {
        rows.push((
            format!("{}, ns", case.label),
            support::median_ns(GROUP, case.id),
            String::new(),
        ));
    }
    for (case, r) in ratios {
        let n = r.len();
        let ratio = support::median_of(r);
        let target = match case.target {
            Some(bound) => format!(
                "target <= {bound}: {}",
                support::verdict(ratio, bound, true)
            ),
            None => String::new(),
        };
        rows.push((
            format!("ratio: {} / floor ({n} pairs)", case.id),
            ratio,
            target,
        ));
    }
    let ten = support::median_ns(GROUP, "ten_critical_one_view");
    rows.push((
        "10 critical flags per request, % of the 200 ms P95 budget".into(),
        ten.map(|ns| ns / 200e6 * 100.0),
        String::new(),
    ));
    support::report(
        "evaluate: criterion medians, and median paired ratios to the floor",
        &rows,
    );
}
