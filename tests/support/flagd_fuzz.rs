//! The invariant of the `flagd` fuzz target (`fuzz/fuzz_targets/flagd.rs`),
//! shared with `tests/flagd.rs`, which replays the committed corpus.

use genesis_flags::{AttributeKey, Context, FlagStore, Snapshot};

/// Reads arbitrary bytes as a flagd document. Never panics; a document that
/// loads evaluates every flag to one of its variants (or none), the same
/// way twice; a refused one says where.
pub fn check_flagd(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let snapshot = match Snapshot::from_flagd_json(text) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            for p in e.problems() {
                assert!(!p.path.is_empty(), "a problem without a path: {e}");
            }
            return;
        }
    };
    let names: Vec<String> = snapshot.flags().map(|f| f.name().to_owned()).collect();
    let store = FlagStore::builder().build(snapshot);
    let keys = [
        "email",
        "user.name",
        "version",
        "age",
        "tier",
        "color",
        "id",
    ];
    let values = ["", "a@example.com", "1.2.3", "v2", "premium", "3"];
    let clock = text.contains("$flagd.timestamp");
    for (i, key) in ["", "user-42", "jon@company.com"].into_iter().enumerate() {
        let attributes: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(j, k)| {
                let k = AttributeKey::new(k);
                match (i + j) % 3 {
                    0 => k.string(values[(i + j) % values.len()]),
                    1 => k.number((i * 7 + j) as f64 - 3.5),
                    _ => k.boolean(j % 2 == 0),
                }
            })
            .collect();
        let context = Context::new(key, &attributes);
        let view = store.view();
        for name in &names {
            let first = view.variation(name, &context);
            if let (Some(flag), Some(variant)) = (first.flag(), first.evaluation().variant) {
                assert!(
                    flag.variant_value(variant).is_some(),
                    "{name}: no variant {variant}"
                );
            }
            if !clock {
                let again = view.variation(name, &context).evaluation();
                assert_eq!(first.evaluation(), again, "{name}: not deterministic");
            }
        }
    }
}
