//! What flags cost a request, against the 200 ms P95 budget.
//!
//! A Genesis request evaluates the 10 critical flags for its user. This
//! bench times 10^6 such requests one by one (each in its own `view()`, users
//! varying) and reports the latency distribution — p50, p99, p99.9, max — as a
//! share of the budget; then the same with 2 reader threads while a writer
//! replaces the config every millisecond; then throughput scaling from 1 to 2
//! threads on the same flag and on different flags. The cost of reading the
//! clock twice is measured in the same run and shown beside the figures it
//! is part of. Target: p99.9 under 1 us (0.0005% of the budget).
//!
//! `cargo bench --bench budget` (`GENESIS_BUDGET_REQUESTS=200000` for a short run).

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use genesis_flags::{FlagStore, Snapshot};
use hdrhistogram::Histogram;

const BUDGET_NS: f64 = 200e6;
use support::CRITICAL;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// One request: the 10 critical flags for `user`, in one consistent view.
#[inline(never)]
fn request(store: &FlagStore, user: &str) -> u32 {
    let view = store.view();
    CRITICAL
        .iter()
        .map(|f| u32::from(view.is_enabled(f, user)))
        .sum()
}

/// Times `n` requests one by one.
fn timed_requests(store: &FlagStore, users: &[String], n: usize, offset: usize) -> Histogram<u64> {
    let mut h = histogram();
    for i in 0..n {
        let user = &users[(i + offset) % users.len()];
        let start = Instant::now();
        black_box(request(store, black_box(user)));
        let _ = h.record(start.elapsed().as_nanos() as u64);
    }
    h
}

fn clock_overhead(n: usize) -> Histogram<u64> {
    let mut h = histogram();
    for _ in 0..n {
        let start = Instant::now();
        let _ = h.record(black_box(start).elapsed().as_nanos() as u64);
    }
    h
}

fn line(label: &str, h: &Histogram<u64>) {
    let q = |p: f64| h.value_at_quantile(p) as f64;
    println!(
        "{label:<44} p50 {:>6.0} ns  p99 {:>6.0} ns  p99.9 {:>6.0} ns  max {:>9.0} ns  (n = {})",
        q(0.5),
        q(0.99),
        q(0.999),
        h.max() as f64,
        h.len()
    );
    println!(
        "{:<44} p50 {:.1e}%  p99 {:.1e}%  p99.9 {:.1e}%  max {:.1e}% of the 200 ms budget",
        "",
        q(0.5) / BUDGET_NS * 100.0,
        q(0.99) / BUDGET_NS * 100.0,
        q(0.999) / BUDGET_NS * 100.0,
        h.max() as f64 / BUDGET_NS * 100.0
    );
}

/// Evaluations per second of `threads` threads, each on its flag, for about `millis`.
fn throughput(store: &FlagStore, users: &[String], flags: &[&'static str], millis: u64) -> f64 {
    let barrier = Barrier::new(flags.len());
    let stop = AtomicBool::new(false);
    let total: u64 = thread::scope(|s| {
        let handles: Vec<_> = flags
            .iter()
            .enumerate()
            .map(|(t, flag)| {
                let (barrier, stop) = (&barrier, &stop);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for i in 0..1024 {
                            black_box(store.is_enabled(flag, &users[(i + t * 512) % users.len()]));
                        }
                        n += 1024;
                        if t == 0 && start.elapsed() >= Duration::from_millis(millis) {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    (n, start.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (n, took) = h.join().unwrap();
                (n as f64 / took.as_secs_f64()) as u64
            })
            .sum()
    });
    total as f64
}

fn main() {
    let n: usize = std::env::var("GENESIS_BUDGET_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let text = support::config_with(1000 - 15);
    let store = FlagStore::from_json(&text).unwrap();
    let users = support::users(4096);

    // Warm up caches and the branch predictor.
    black_box(timed_requests(&store, &users, 10_000, 0));

    println!("\n== budget: the 10 critical flags of one request, 1,000-flag config ==");
    let clock = clock_overhead(n);
    line("clock overhead alone (two Instant::now)", &clock);

    let alone = timed_requests(&store, &users, n, 0);
    line("one thread", &alone);

    // 2 readers while a writer replaces the config every millisecond.
    let variants: Vec<Arc<Snapshot>> = (0..2)
        .map(|v| {
            Arc::new(
                Snapshot::from_json(
                    &text.replace("\"percentage\":5", &format!("\"percentage\":{}", 5 + v)),
                )
                .unwrap(),
            )
        })
        .collect();
    let stop = AtomicBool::new(false);
    let mut writes = 0u64;
    let contended = thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut v = 0usize;
            while !stop.load(Ordering::Relaxed) {
                store.replace(Arc::clone(&variants[v % 2]));
                v += 1;
                thread::sleep(Duration::from_millis(1));
            }
            v as u64
        });
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (store, users) = (&store, &users);
                s.spawn(move || timed_requests(store, users, n / 2, r * 2048))
            })
            .collect();
        let mut merged = histogram();
        for r in readers {
            merged.add(r.join().unwrap()).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        writes = writer.join().unwrap();
        merged
    });
    line(
        &format!("2 readers, writer every 1 ms ({writes} replaces)"),
        &contended,
    );

    let p999 = alone.value_at_quantile(0.999) as f64;
    let p999_contended = contended.value_at_quantile(0.999) as f64;
    println!(
        "target p99.9 < 1 us: one thread {:.0} ns ({}), under the writer {:.0} ns ({})",
        p999,
        if p999 < 1000.0 { "met" } else { "NOT MET" },
        p999_contended,
        if p999_contended < 1000.0 {
            "met"
        } else {
            "NOT MET"
        }
    );

    // Seven rounds of the three set-ups back to back; each round's ratios
    // compare runs a fraction of a second apart, and the median is quoted.
    println!("\n== scaling: evaluations per second (ideal 2 threads = 2.0x) ==");
    let (mut ones, mut same_ratios, mut different_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let one = throughput(&store, &users, &["htdag_enabled"], 150);
        let same = throughput(&store, &users, &["htdag_enabled", "htdag_enabled"], 150);
        let different = throughput(&store, &users, &["htdag_enabled", "halo_enabled"], 150);
        ones.push(one);
        same_ratios.push(same / one);
        different_ratios.push(different / one);
    }
    let med = |v: Vec<f64>| support::median_of(v).unwrap_or(f64::NAN);
    println!(
        "1 thread                      {:>12.0}/s (median of 7 rounds)",
        med(ones)
    );
    println!(
        "2 threads, same flag          {:>12.2}x of 1 thread (median of 7 paired rounds)",
        med(same_ratios)
    );
    println!(
        "2 threads, different flags    {:>12.2}x of 1 thread",
        med(different_ratios)
    );
}
