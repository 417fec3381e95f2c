//! The evaluation path allocates nothing: a counting global allocator, in a
//! test binary of its own (`harness = false`, so no test-runner threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use genesis_flags::{AttributeKey, Context, FlagStore, Semver};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn main() {
    let store = FlagStore::from_json(
        r#"{"version":1,"rollouts":{"phase_4_deployment":{"percentage":25},
            "r1":{"percentage":50},"r2":{"percentage":50},"r3":{"percentage":50},"r4":{"percentage":50}},
            "flags":{
              "htdag_enabled": {"rollout":"phase_4_deployment"},
              "new_checkout":  {"percentage":12.5,"include":["qa-1"],"exclude":["vip-7"]},
              "banner":        {},
              "killed":        {"enabled":false},
              "aatc":          {"class":"experimental"}
            }}"#,
    )
    .expect("valid config");
    let flags = [
        "htdag_enabled",
        "new_checkout",
        "banner",
        "killed",
        "aatc",
        "unknown",
    ];
    let handles: Vec<_> = flags.iter().map(|f| store.handle(f)).collect();
    let users: Vec<String> = (0..1000)
        .map(|i| format!("user-{i}"))
        .chain(["qa-1".into(), "vip-7".into(), String::new(), "ünï-☃".into()])
        .collect();

    // Warm-up: arc-swap registers this thread's debt list on first use.
    let _ = store.evaluate("banner", "warm-up");

    let mut on = 0u64;
    let n = allocations_in(|| {
        for user in &users {
            for (flag, handle) in flags.iter().zip(&handles) {
                on += u64::from(store.is_enabled(flag, user));
                on += u64::from(black_box(store.evaluate(flag, user)).enabled);
                on += u64::from(handle.is_enabled(user));
                let view = store.view();
                on += u64::from(view.evaluate_handle(handle, user).enabled);
                on += u64::from(view.is_enabled(flag, user));
            }
            // The per-request view: buckets cached in a fixed array, and the cohort.
            let per_user = store.for_user(user);
            for (flag, handle) in flags.iter().zip(&handles) {
                on += u64::from(per_user.is_enabled(flag));
                on += u64::from(per_user.evaluate_handle(handle).enabled);
            }
            for rollout in ["phase_4_deployment", "r1", "r2", "r3", "r4", "nope"] {
                on += u64::from(per_user.cohort(rollout).is_some_and(|c| c.is_in()));
                on += u64::from(store.cohort(rollout, user).is_some_and(|c| c.is_in()));
            }
        }
    });
    assert!(on > 0, "nothing was on: the workload did not run");
    assert_eq!(n, 0, "the evaluation path allocated {n} times");

    let targeted = targeted_workload();
    #[cfg(feature = "flagd")]
    let targeted = targeted + flagd_workload();

    // The counter is live: a replacement (off the hot path) does allocate.
    let replace = allocations_in(|| {
        store
            .replace_from_json(r#"{"version":1,"flags":{"banner":{}}}"#)
            .expect("valid config");
    });
    assert!(replace > 0, "the counting allocator saw nothing");

    // After a replacement, a handle re-resolves once, without allocating.
    let after = allocations_in(|| {
        for handle in &handles {
            black_box(handle.evaluate("user-1"));
        }
    });
    assert_eq!(after, 0, "re-resolving handles allocated {after} times");
    println!(
        "no_alloc: {} evaluations, 0 allocations (+ {} targeted)",
        users.len() * (flags.len() * 7 + 12),
        // Counted twice: the warm-up pass and the counted one.
        targeted / 2
    );
}

/// Rules, segments, typed variants (a string and an object), splits,
/// prerequisites, bucket_by, exposure counting: none of it allocates per
/// evaluation. Returns the number of evaluations made.
fn targeted_workload() -> usize {
    let store = FlagStore::builder()
        .count_exposures(true)
        .on_exposure(|e| {
            black_box(e.value);
        })
        .from_json(
            r#"{"version":1,
            "segments":{"eu":{"when":[{"attribute":"country","op":"in","values":["de","fr"],"case_insensitive":true}]}},
            "flags":{
              "three_conditions":{"default":"off","rules":[{"when":[
                  {"attribute":"country","op":"in","values":["DE","FR","IT"]},
                  {"attribute":"app_version","op":"semver_ge","value":"2.0.0-rc.1"},
                  {"attribute":"email","op":"ends_with","values":["@example.com"],"case_insensitive":true}],
                "serve":"on"}]},
              "color":{"variants":{"red":"red: a long string value, not inlined anywhere","green":"green"},
                       "default":"red","off":"red","track":true,
                       "prerequisites":[{"flag":"three_conditions","enabled":true}],
                       "rules":[{"when":[{"segment":"eu"},{"attribute":"id","op":"matches","value":"^user-[0-9]+$"},
                                         {"attribute":"age","op":"ge","value":18},
                                         {"attribute":"at","op":"before","value":"2100-01-01T00:00:00Z"}],
                                 "split":{"red":50,"green":50}}]},
              "layout":{"variants":{"compact":{"rows":10,"columns":["a","b"]},"wide":{"rows":40}},
                        "default":"wide","off":"compact","bucket_by":"tenant","percentage":50,
                        "rules":[{"when":[{"attribute":"plan","op":"in","values":["pro"]}],"serve":"compact"}]},
              "compact_rules":{"percentage":30,"rules":[
                  {"when":[{"attribute":"plan","op":"in","values":["pro","team"]},
                           {"attribute":"country","op":"in","values":["DE"],"negate":true}],"serve":"off"},
                  {"when":[{"attribute":"country","op":"in","values":["DE"]}],"serve":"on"}]}
            }}"#,
        )
        .expect("valid config");
    let (country, version, email, id, age, at, plan, tenant) = (
        AttributeKey::new("country"),
        AttributeKey::new("app_version"),
        AttributeKey::new("email"),
        AttributeKey::new("id"),
        AttributeKey::new("age"),
        AttributeKey::new("at"),
        AttributeKey::new("plan"),
        AttributeKey::new("tenant"),
    );
    let color = store.handle("color");
    let users: Vec<String> = (0..500).map(|i| format!("user-{i}")).collect();
    let version_text = "2.0.0-rc.2+build.5";
    let parsed = Semver::parse("2.1.0").expect("a version");
    let mut served = 0usize;
    let mut evaluations = 0usize;
    let mut run = || {
        for (i, user) in users.iter().enumerate() {
            let attrs = [
                country.string(if i % 2 == 0 { "DE" } else { "us" }),
                if i % 3 == 0 {
                    version.string(version_text)
                } else {
                    version.semver(parsed)
                },
                email.string("Someone@Example.COM"),
                id.string(user),
                age.number(f64::from(i as u32 % 90)),
                at.string("2030-05-06T07:08:09Z"),
                plan.string(if i % 5 == 0 { "pro" } else { "free" }),
                tenant.list(&["t-1", "t-2"]),
            ];
            let context = Context::new(user, &attrs);
            served += usize::from(store.is_enabled_for("three_conditions", &context));
            let view = store.view();
            served += view.variation("color", &context).str_or("").len();
            served += view.variation_handle(&color, &context).str_or("").len();
            served += view
                .variation("layout", &context)
                .object()
                .map_or(0, |o| o.len());
            let per_request = store.for_context(context);
            served += usize::from(per_request.is_enabled("three_conditions"));
            served += per_request.variation("color").str_or("").len();
            served += per_request.variation_handle(&color).str_or("").len();
            served += usize::from(color.evaluate_for(&context).enabled);
            // A flag a view runs as a compact program from its memo.
            served += usize::from(per_request.is_enabled("compact_rules"));
            evaluations += 9;
        }
    };
    // Warm-up: the regex's per-thread cache is built on its first match.
    run();
    let n = allocations_in(run);
    assert!(served > 0, "nothing was served: the workload did not run");
    assert_eq!(n, 0, "targeted evaluation allocated {n} times");
    assert!(!store.exposures().is_empty(), "exposures were counted");
    evaluations
}

/// flagd documents: a static flag, an `if` over three conditions,
/// `fractional` (by the default bucketing value and by a `cat`), `sem_ver`,
/// `starts_with`, a `$ref`, the between form, `in` over a list, `var` with
/// a default, `substr`, arithmetic, `$flagd.flagKey`: none of it allocates
/// per evaluation. Returns the number of evaluations made.
#[cfg(feature = "flagd")]
fn flagd_workload() -> usize {
    let store = FlagStore::builder().build(
        genesis_flags::Snapshot::from_flagd_json(
            r#"{"flags": {
              "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
              "disabled": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
              "if3": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                "targeting": {"if": [{"and": [{"in": [{"var": "country"}, ["DE", "FR", "IT"]]},
                  {">=": [{"var": "age"}, 18]}, {"ends_with": [{"var": "email"}, "@example.com"]}]}, "on", "off"]}},
              "split": {"state": "ENABLED", "variants": {"a": "A", "b": "B", "c": "C"}, "defaultVariant": "a",
                "targeting": {"fractional": [["a", 25], ["b", 25], ["c", 50]]}},
              "split_cat": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a",
                "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}, 7]}, ["a", 1], ["b", 1]]}},
              "version": {"state": "ENABLED", "variants": {"new": {"rows": 2}, "old": {"rows": 1}}, "defaultVariant": "old",
                "targeting": {"if": [{"sem_ver": [{"var": "version"}, "^", "2.0.0"]}, "new",
                  {"sem_ver": [{"var": "version"}, ">=", {"var": ["floor", "v1.2"]}]}, "old", null]}},
              "mixed": {"state": "ENABLED", "variants": {"x": 1, "y": 2}, "defaultVariant": "x",
                "targeting": {"if": [{"or": [{"$ref": "staff"}, {"<": [10, {"*": [{"var": "age"}, 2]}, 100]},
                  {"==": [{"substr": [{"var": "email"}, -12]}, "@example.com"]},
                  {"!": [{"starts_with": [{"var": "$flagd.flagKey"}, "m"]}]}]}, "y", "x"]}}
            },
            "$evaluators": {"staff": {"in": ["@corp", {"var": "email"}]}}}"#,
        )
        .expect("valid flagd document"),
    );
    let (country, age, email, version) = (
        AttributeKey::new("country"),
        AttributeKey::new("age"),
        AttributeKey::new("email"),
        AttributeKey::new("version"),
    );
    let flags = [
        "static",
        "disabled",
        "if3",
        "split",
        "split_cat",
        "version",
        "mixed",
        "nope",
    ];
    let users: Vec<String> = (0..500).map(|i| format!("user-{i}")).collect();
    let emails: Vec<String> = (0..500).map(|i| format!("user-{i}@example.com")).collect();
    let mut served = 0usize;
    let mut evaluations = 0usize;
    let mut run = || {
        for (i, user) in users.iter().enumerate() {
            let attrs = [
                country.string(["DE", "US", "FR"][i % 3]),
                age.number((i % 90) as f64),
                email.string(&emails[i]),
                version.string(["2.1.0", "v1.9", "3", "bad"][i % 4]),
            ];
            let context = Context::new(if i % 7 == 0 { "" } else { user }, &attrs);
            let view = store.view();
            for flag in flags {
                let v = view.variation(flag, &context);
                served += usize::from(v.bool_or(false))
                    + v.str_or("").len()
                    + v.name().map_or(0, str::len);
                evaluations += 1;
            }
        }
    };
    run();
    let n = allocations_in(run);
    assert!(
        served > 0,
        "nothing was served: the flagd workload did not run"
    );
    assert_eq!(n, 0, "flagd evaluation allocated {n} times");
    evaluations
}
