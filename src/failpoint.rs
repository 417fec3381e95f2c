//! Deterministic crash points for the crash tests (cargo feature
//! `failpoints`).
//!
//! With the feature on and the environment variable
//! `GENESIS_FLAGS_FAILPOINTS` set to e.g. `atomic.after_rename=3,atomic.after_write=1`,
//! the 3rd time `atomic.after_rename` is reached the process prints
//! `failpoint atomic.after_rename hit` to stderr and aborts: like a `kill -9`
//! for the files, nothing more is written. Without the feature,
//! [`failpoint`] compiles to nothing.

/// The environment variable that arms crash points.
#[cfg(feature = "failpoints")]
pub(crate) const FAILPOINTS_ENV: &str = "GENESIS_FLAGS_FAILPOINTS";

/// Marks a crash point named `name` (see the module docs).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_name: &'static str) {}

/// Marks a crash point named `name` (see the module docs).
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint(name: &'static str) {
    armed::reach(name);
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};

    use super::FAILPOINTS_ENV;

    /// Name -> the hit that aborts (1-based).
    fn armed() -> &'static HashMap<String, u64> {
        static ARMED: OnceLock<HashMap<String, u64>> = OnceLock::new();
        ARMED.get_or_init(|| {
            std::env::var(FAILPOINTS_ENV)
                .map(|spec| parse(&spec))
                .unwrap_or_default()
        })
    }

    /// `a=3,b=1` -> {a: 3, b: 1}; malformed entries are ignored.
    pub(super) fn parse(spec: &str) -> HashMap<String, u64> {
        spec.split(',')
            .filter_map(|entry| {
                let (name, n) = entry.split_once('=')?;
                let n: u64 = n.trim().parse().ok()?;
                (n > 0).then(|| (name.trim().to_owned(), n))
            })
            .collect()
    }

    pub(super) fn reach(name: &'static str) {
        let Some(&at) = armed().get(name) else {
            return;
        };
        static HITS: OnceLock<Mutex<HashMap<&'static str, u64>>> = OnceLock::new();
        let hits = HITS.get_or_init(|| Mutex::new(HashMap::new()));
        let count = {
            let mut hits = match hits.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let count = hits.entry(name).or_insert(0);
            *count += 1;
            *count
        };
        if count == at {
            // Straight to fd 2: the test harness's capture would lose it.
            let _ = writeln!(std::io::stderr(), "failpoint {name} hit");
            std::process::abort();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::parse;

        #[test]
        fn specs_parse_and_bad_entries_are_ignored() {
            let armed = parse("atomic.after_rename=3, journal.x=1,bad,zero=0,neg=-1,");
            assert_eq!(armed.len(), 2);
            assert_eq!(armed["atomic.after_rename"], 3);
            assert_eq!(armed["journal.x"], 1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unarmed_point_does_nothing() {
        // Not set in unit tests: reaching any point returns.
        for _ in 0..3 {
            super::failpoint("tests.never_armed");
        }
    }
}
