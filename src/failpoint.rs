//! Deterministic crash points for the crash tests (cargo feature
//! `failpoints`).
//!
//! With the feature on and the environment variable
//! `GENESIS_FLAGS_FAILPOINTS` set to e.g. `atomic.after_rename=3,atomic.after_write=1`,
//! the 3rd time `atomic.after_rename` is reached the process prints
//! `failpoint atomic.after_rename hit` to stderr and aborts: like a `kill -9`
//! for the files, nothing more is written. Without the feature,
//! [`failpoint`] compiles to nothing.
//!
//! An error point ([`fail_io`]) armed with `name=N!` fails with an I/O error
//! from its N-th hit on (a volume that fills up), instead of aborting.

/// The environment variable that arms crash points.
#[cfg(feature = "failpoints")]
pub(crate) const FAILPOINTS_ENV: &str = "GENESIS_FLAGS_FAILPOINTS";

/// Marks an error point named `name` (see the module docs): `Err` once
/// armed and reached often enough.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn fail_io(_name: &'static str) -> std::io::Result<()> {
    Ok(())
}

/// Marks an error point named `name` (see the module docs).
#[cfg(feature = "failpoints")]
pub(crate) fn fail_io(name: &'static str) -> std::io::Result<()> {
    if armed::count(name, true).is_some_and(|(hit, at)| hit >= at) {
        return Err(std::io::Error::other(format!(
            "failpoint {name}: injected I/O error"
        )));
    }
    Ok(())
}

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

    /// Name -> the hit that aborts (1-based); error points are armed as
    /// `name!`.
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
                let n = n.trim();
                let (n, bang) = match n.strip_suffix('!') {
                    Some(n) => (n, "!"),
                    None => (n, ""),
                };
                let n: u64 = n.parse().ok()?;
                (n > 0).then(|| (format!("{}{bang}", name.trim()), n))
            })
            .collect()
    }

    /// Counts a hit of `name` (an error point when `error`); returns the
    /// hit number and the armed one, if armed.
    pub(super) fn count(name: &'static str, error: bool) -> Option<(u64, u64)> {
        let key = if error {
            format!("{name}!")
        } else {
            name.to_owned()
        };
        let &at = armed().get(&key)?;
        static COUNTS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
        let counts = COUNTS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut counts = match counts.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let hit = counts.entry(key).or_insert(0);
        *hit += 1;
        Some((*hit, at))
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
