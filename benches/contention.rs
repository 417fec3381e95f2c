//! Reader throughput on 2 threads while a writer replaces a 1,000-flag config
//! every millisecond, against the same readers with no writer.
//!
//! The two conditions alternate in chunks inside every criterion sample (see
//! `support::paired` for why), so the ratio compares like with like. The
//! writer swaps in prebuilt snapshots: what is measured is what replacement
//! does to readers, not the writer's parsing. Target: >= 0.95.

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use genesis_flags::{FlagStore, Snapshot};

/// Total time the writer spent in `replace`.
static WRITE_NS: AtomicU64 = AtomicU64::new(0);
const GROUP: &str = "contention";
const READERS: usize = 2;
/// Evaluations per reader per chunk: several milliseconds, so every
/// writer-on chunk sees several replacements.
const CHUNK: u64 = 200_000;

/// Both readers evaluate `per_thread` times; returns the wall time.
fn run_readers(store: &FlagStore, per_thread: u64) -> Duration {
    let barrier = Barrier::new(READERS + 1);
    thread::scope(|s| {
        for r in 0..READERS {
            let store = store.clone();
            let barrier = &barrier;
            s.spawn(move || {
                let users = support::users(1024);
                let names = [
                    "htdag_enabled",
                    "maint_enabled",
                    "filler_flag_00001",
                    "new_checkout_x",
                ];
                barrier.wait();
                let mut on = 0u64;
                for i in 0..per_thread as usize {
                    let user = &users[(i + r * 7) & 1023];
                    on += u64::from(store.is_enabled(names[i & 3], user));
                }
                black_box(on);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins the readers before returning.
        start
    })
    .elapsed()
}

fn main() {
    let mut c = support::criterion().sample_size(30);
    let text = support::config_with(1000 - 15);
    let store = FlagStore::from_json(&text).unwrap();
    let variants: Vec<Arc<Snapshot>> = (0..2)
        .map(|v| {
            let t = text.replace("\"percentage\":5", &format!("\"percentage\":{}", 5 + v));
            Arc::new(Snapshot::from_json(&t).unwrap())
        })
        .collect();

    let writing = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, writing, stop, writes) =
            (store.clone(), writing.clone(), stop.clone(), writes.clone());
        thread::spawn(move || {
            let mut v = 0;
            while !stop.load(Ordering::Relaxed) {
                if writing.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    store.replace(Arc::clone(&variants[v & 1]));
                    WRITE_NS.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    writes.fetch_add(1, Ordering::Relaxed);
                    v += 1;
                }
                thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let mut ratios = Vec::new();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(criterion::Throughput::Elements(READERS as u64));
    group.bench_function("two_readers_no_writer", |b| {
        b.iter_custom(|iters| run_readers(&store, iters))
    });
    group.bench_function("two_readers_writer_every_ms", |b| {
        b.iter_custom(|iters| {
            let (mut quiet, mut busy) = (Duration::ZERO, Duration::ZERO);
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                quiet += run_readers(&store, n);
                writing.store(true, Ordering::Relaxed);
                busy += run_readers(&store, n);
                writing.store(false, Ordering::Relaxed);
                left -= n;
            }
            if iters >= CHUNK {
                // Throughput with the writer / throughput without it.
                ratios.push(quiet.as_secs_f64() / busy.as_secs_f64());
            }
            busy
        })
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    c.final_summary();

    let writes = writes.load(Ordering::Relaxed);
    let pairs = ratios.len();
    let ratio = support::median_of(ratios);
    let per_eval = |id| support::median_ns(GROUP, id);
    support::report(
        "contention: 2 readers, 1,000-flag config",
        &[
            (
                "no writer: ns per evaluation per thread".into(),
                per_eval("two_readers_no_writer"),
                String::new(),
            ),
            (
                "writer every 1 ms: ns per evaluation per thread".into(),
                per_eval("two_readers_writer_every_ms"),
                String::new(),
            ),
            (
                "replacements made during the run".into(),
                Some(writes as f64),
                String::new(),
            ),
            (
                "writer: mean time of one replace, us".into(),
                (writes > 0).then(|| WRITE_NS.load(Ordering::Relaxed) as f64 / writes as f64 / 1e3),
                String::new(),
            ),
            (
                format!("ratio: throughput with / without writer ({pairs} pairs)"),
                ratio,
                format!("target >= 0.95: {}", support::verdict(ratio, 0.95, false)),
            ),
        ],
    );
}
