//! Readers on every core while a writer replaces the config thousands of
//! times: each read through a view sees one whole snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use genesis_flags::{FlagStore, Snapshot};

const BITS: usize = 16;

/// Generation `g` is written twice into one document: as the on/off pattern
/// of flags `a0..a15` and of flags `b0..b15`. A torn read would show two
/// different numbers.
fn document(generation: u32) -> String {
    let mut flags = Vec::new();
    for bit in 0..BITS {
        let on = generation >> bit & 1 == 1;
        flags.push(format!(r#""a{bit}":{{"enabled":{on}}}"#));
        flags.push(format!(r#""b{bit}":{{"enabled":{on}}}"#));
    }
    format!(r#"{{"version":1,"flags":{{{}}}}}"#, flags.join(","))
}

fn read_generation(view: &genesis_flags::FlagView, prefix: &str, user: &str) -> u32 {
    (0..BITS)
        .map(|bit| u32::from(view.is_enabled(&format!("{prefix}{bit}"), user)) << bit)
        .sum()
}

#[test]
fn every_read_sees_one_whole_snapshot() {
    const WRITES: u32 = 5_000;
    let store = FlagStore::from_json(&document(0)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);

    let handles: Vec<_> = (0..readers)
        .map(|r| {
            let store = store.clone();
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let user = format!("reader-{r}");
                let (mut last, mut reads, mut changes) = (0u32, 0u64, 0u64);
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let view = store.view();
                    let a = read_generation(&view, "a", &user);
                    let b = read_generation(&view, "b", &user);
                    assert_eq!(a, b, "torn read: a says {a}, b says {b}");
                    assert!(a >= last, "went back from generation {last} to {a}");
                    changes += u64::from(a != last);
                    last = a;
                    reads += 1;
                    if finished {
                        return (last, reads, changes);
                    }
                }
            })
        })
        .collect();

    // Compile first, swap in the loop: the writer is as fast as it can be.
    for g in 1..=WRITES {
        store.replace(Snapshot::from_json(&document(g)).unwrap());
    }
    done.store(true, Ordering::Release);

    for h in handles {
        let (last, reads, changes) = h.join().unwrap();
        assert_eq!(
            last, WRITES,
            "a reader finished before seeing the last write"
        );
        assert!(reads > 100, "only {reads} reads");
        assert!(changes > 1, "the reader saw no replacement happen");
    }
}

#[test]
fn handles_and_names_agree_under_replacement() {
    let store = FlagStore::from_json(&document(0)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let handles: Vec<_> = (0..BITS).map(|b| store.handle(&format!("a{b}"))).collect();
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) {
                let view = store.view();
                for (bit, h) in handles.iter().enumerate() {
                    assert_eq!(
                        view.evaluate_handle(h, "u"),
                        view.evaluate(&format!("a{bit}"), "u")
                    );
                }
                reads += 1;
            }
            reads
        })
    };
    for g in 1..=2_000 {
        store.replace_from_json(&document(g)).unwrap();
    }
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
}
