//! The evaluation path allocates nothing: a counting global allocator, in a
//! test binary of its own (`harness = false`, so no test-runner threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use genesis_flags::FlagStore;

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
        "no_alloc: {} evaluations, 0 allocations",
        users.len() * (flags.len() * 7 + 12)
    );
}
