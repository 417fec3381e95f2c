//! [`FlagHandle`]: a flag resolved once, evaluated without hashing its name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::bucket_source::Hashing;
use crate::context::Context;
use crate::evaluation::Evaluation;
use crate::shared::Shared;
use crate::snapshot::{Snapshot, SNAPSHOT_ID_BITS};

const POSITION_BITS: u32 = 64 - SNAPSHOT_ID_BITS;
const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;
/// Position meaning "not in that snapshot".
const ABSENT: u32 = POSITION_MASK as u32;
/// No snapshot has id 0, so a zeroed cache never matches.
const EMPTY_CACHE: u64 = 0;

/// A pre-resolved flag of a [`FlagStore`](crate::FlagStore).
///
/// The handle remembers where its flag sits in the snapshot it last saw (one
/// atomic word: snapshot id and position). While the snapshot is unchanged an
/// evaluation skips the name lookup; after a replacement the first evaluation
/// looks the name up once and remembers the new position. A flag that is not
/// in the current snapshot evaluates as
/// [`Reason::UnknownFlag`](crate::Reason::UnknownFlag).
///
/// ```
/// use genesis_flags::FlagStore;
/// let store = FlagStore::from_json(r#"{"version":1,"flags":{"htdag_enabled":{}}}"#)?;
/// let htdag = store.handle("htdag_enabled");
/// assert!(htdag.is_enabled("user-42"));
/// store.replace_from_json(r#"{"version":1,"flags":{"htdag_enabled":{"enabled":false}}}"#)?;
/// assert!(!htdag.is_enabled("user-42"));
/// # Ok::<(), genesis_flags::ConfigError>(())
/// ```
pub struct FlagHandle {
    shared: Arc<Shared>,
    cache: AtomicU64,
    name: Box<str>,
}

impl FlagHandle {
    pub(crate) fn new(shared: Arc<Shared>, name: &str) -> Self {
        let handle = FlagHandle {
            shared,
            cache: AtomicU64::new(EMPTY_CACHE),
            name: name.into(),
        };
        handle.locate(&handle.shared.current.load());
        handle
    }

    /// The flag's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the flag is on for `user`.
    #[inline(always)]
    #[must_use]
    pub fn is_enabled(&self, user: &str) -> bool {
        self.evaluate(user).enabled
    }

    /// Whether the flag is on for `user`, and why.
    #[inline(always)]
    #[must_use]
    pub fn evaluate(&self, user: &str) -> Evaluation {
        let shared = &*self.shared;
        let snapshot = shared.current.load();
        self.evaluate_in(&snapshot, user, shared.allow_experimental, shared.observe)
    }

    /// Whether the flag is on for `context` (key and attributes), and why.
    #[inline(always)]
    #[must_use]
    pub fn evaluate_for(&self, context: &Context<'_>) -> Evaluation {
        let shared = &*self.shared;
        let snapshot = shared.current.load();
        let position = self.position_in(&snapshot);
        if shared.observe {
            snapshot.evaluate_at::<_, true>(position, context, shared.allow_experimental, &Hashing)
        } else {
            snapshot.evaluate_at::<_, false>(position, context, shared.allow_experimental, &Hashing)
        }
    }

    #[inline(always)]
    pub(crate) fn evaluate_in(
        &self,
        snapshot: &Snapshot,
        user: &str,
        allow_experimental: bool,
        observe: bool,
    ) -> Evaluation {
        // An absent flag's position is out of range: `evaluate_key_at` says unknown.
        let position = self.position_in(snapshot);
        if observe {
            snapshot.evaluate_key_at::<_, true>(position, user, allow_experimental, &Hashing)
        } else {
            snapshot.evaluate_key_at::<_, false>(position, user, allow_experimental, &Hashing)
        }
    }

    /// The flag's position in `snapshot` (`ABSENT` when it is not there),
    /// from the cache when the cache is for this snapshot.
    #[inline(always)]
    pub(crate) fn position_in(&self, snapshot: &Snapshot) -> u32 {
        let cached = self.cache.load(Ordering::Relaxed);
        if cached >> POSITION_BITS == snapshot.id() {
            // POSITION_BITS < 32, so the masked value fits.
            return (cached & POSITION_MASK) as u32;
        }
        self.locate(snapshot)
    }

    /// Looks the name up in `snapshot` and caches the answer.
    #[cold]
    #[inline(never)]
    fn locate(&self, snapshot: &Snapshot) -> u32 {
        let position = snapshot.position(&self.name).unwrap_or(ABSENT);
        // A snapshot holds fewer than ABSENT flags (the 16 MiB document limit
        // allows about 2.4 million), so every position fits the field; were
        // one not to, it would stay uncached and be looked up each time.
        if position <= ABSENT {
            let word = (snapshot.id() << POSITION_BITS) | u64::from(position);
            self.cache.store(word, Ordering::Relaxed);
        }
        position
    }
}

impl Clone for FlagHandle {
    fn clone(&self) -> Self {
        FlagHandle {
            shared: Arc::clone(&self.shared),
            cache: AtomicU64::new(self.cache.load(Ordering::Relaxed)),
            name: self.name.clone(),
        }
    }
}

impl std::fmt::Debug for FlagHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagHandle")
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{FlagStore, Reason, Snapshot};

    #[test]
    fn follows_the_flag_across_replacements() {
        let store = FlagStore::from_json(r#"{"version":1,"flags":{"a":{},"b":{"enabled":false}}}"#)
            .unwrap();
        let b = store.handle("b");
        assert_eq!(b.evaluate("u").reason, Reason::KillSwitch);
        // b moves to another position, then disappears, then comes back.
        store
            .replace_from_json(r#"{"version":1,"flags":{"b":{},"z":{}}}"#)
            .unwrap();
        assert_eq!(b.evaluate("u").reason, Reason::On);
        store.replace(Snapshot::empty());
        assert_eq!(b.evaluate("u").reason, Reason::UnknownFlag);
        store
            .replace_from_json(r#"{"version":1,"flags":{"x":{},"b":{"enabled":false}}}"#)
            .unwrap();
        assert_eq!(b.evaluate("u").reason, Reason::KillSwitch);
    }

    #[test]
    fn a_handle_for_an_unknown_flag_is_off() {
        let store = FlagStore::from_json(r#"{"version":1,"flags":{}}"#).unwrap();
        assert_eq!(
            store.handle("ghost").evaluate("u").reason,
            Reason::UnknownFlag
        );
    }
}
