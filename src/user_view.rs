//! [`UserView`]: one request's user against one snapshot, each bucket
//! hashed once.
//!
//! The flags of a shared rollout are all salted by the rollout id, so a user
//! has one bucket per rollout, not one per flag. A request that reads the ten
//! critical flags of `phase_4_deployment` needs one hash of the user id; the
//! view remembers the buckets it has computed (by seed, in a small fixed
//! array) and answers the other nine from it. No allocation, no lock.

use std::cell::Cell;
use std::sync::Arc;

use arc_swap::Guard;

use crate::bucket::Seed;
use crate::bucket_source::BucketSource;
use crate::cohort::Cohort;
use crate::context::{Attribute, Context};
use crate::evaluation::Evaluation;
use crate::handle::FlagHandle;
use crate::rule::ValueMemo;
use crate::snapshot::Snapshot;
use crate::variation::Variation;

/// Buckets remembered per view; past this many seeds, the oldest is replaced.
const SLOTS: usize = 4;

/// A request-scoped view of one snapshot for one user (see
/// [`FlagStore::for_user`](crate::FlagStore::for_user)).
///
/// Every evaluation through it sees the same snapshot and returns what
/// [`FlagStore::evaluate`](crate::FlagStore::evaluate) would for that
/// snapshot; the user's bucket under each rollout (or own-percentage flag)
/// is hashed at most once. Use one per request and drop it after (it pins
/// its snapshot, and it is not `Sync`).
///
/// ```
/// use genesis_flags::{Cohort, FlagStore};
/// let store = FlagStore::from_json(r#"{"version":1,
///     "rollouts":{"phase_4_deployment":{"percentage":5}},
///     "flags":{"htdag_enabled":{"rollout":"phase_4_deployment"},
///              "halo_enabled":{"rollout":"phase_4_deployment"}}}"#)?;
/// let user = store.for_user("user-42");
/// let cohort = user.cohort("phase_4_deployment");       // hashes "user-42" once
/// let htdag = user.is_enabled("htdag_enabled");         // no hash
/// let halo = user.is_enabled("halo_enabled");           // no hash
/// assert_eq!(cohort, Some(if htdag { Cohort::In } else { Cohort::Out }));
/// assert_eq!(htdag, halo);
/// # Ok::<(), genesis_flags::ConfigError>(())
/// ```
pub struct UserView<'u> {
    snapshot: Guard<Arc<Snapshot>>,
    allow_experimental: bool,
    observe: bool,
    user: &'u str,
    attributes: &'u [Attribute<'u>],
    buckets: Buckets,
    /// The context's strings looked up in the snapshot's dictionaries, once.
    values: ValueMemo,
}

/// The view's cache for its own key; any other bucketing key (an attribute
/// named by `bucket_by`) is hashed.
struct Cached<'a> {
    buckets: &'a Buckets,
    user: &'a str,
    values: &'a ValueMemo,
}

/// A flag by position (a handle's) or by name.
#[derive(Clone, Copy)]
enum Target<'a> {
    At(u32),
    Named(&'a str),
}

/// The view's cache, for the fast path (whose key is the view's own).
struct Own<'a>(&'a Buckets);

impl BucketSource for Own<'_> {
    #[inline(always)]
    fn bucket(&self, seed: Seed, key: &str) -> u32 {
        self.0.get(seed, key)
    }
}

impl BucketSource for Cached<'_> {
    #[inline(always)]
    fn bucket(&self, seed: Seed, key: &str) -> u32 {
        if std::ptr::eq(key, self.user) {
            self.buckets.get(seed, key)
        } else {
            seed.bucket(key)
        }
    }

    #[inline(always)]
    fn memo(&self) -> Option<&ValueMemo> {
        Some(self.values)
    }
}

/// The buckets computed so far, by seed. `filled` counts insertions; the
/// first `min(filled, SLOTS)` slots are valid and slot `filled % SLOTS` is
/// the next to be written.
#[derive(Default)]
struct Buckets {
    seeds: [Cell<u64>; SLOTS],
    buckets: [Cell<u32>; SLOTS],
    filled: Cell<u32>,
}

impl Buckets {
    /// `seed.bucket(user)`, from memory when this seed was seen.
    #[inline(always)]
    fn get(&self, seed: Seed, user: &str) -> u32 {
        let valid = (self.filled.get() as usize).min(SLOTS);
        for (s, b) in self.seeds.iter().zip(&self.buckets).take(valid) {
            if s.get() == seed.value() {
                return b.get();
            }
        }
        self.insert(seed, user)
    }

    #[inline(never)]
    fn insert(&self, seed: Seed, user: &str) -> u32 {
        let bucket = seed.bucket(user);
        let filled = self.filled.get();
        let slot = filled as usize % SLOTS;
        if let (Some(s), Some(b)) = (self.seeds.get(slot), self.buckets.get(slot)) {
            s.set(seed.value());
            b.set(bucket);
            // After 2^32 insertions this wraps to 0 slots valid: misses, never wrong answers.
            self.filled.set(filled.wrapping_add(1));
        }
        bucket
    }
}

impl<'u> UserView<'u> {
    #[inline(always)]
    pub(crate) fn new(
        snapshot: Guard<Arc<Snapshot>>,
        allow_experimental: bool,
        observe: bool,
        context: Context<'u>,
    ) -> Self {
        UserView {
            snapshot,
            allow_experimental,
            observe,
            user: context.key(),
            attributes: context.attributes(),
            buckets: Buckets::default(),
            values: ValueMemo::default(),
        }
    }

    /// Evaluates the flag at `position` (or `name`), choosing the key-only
    /// fast path and the exposure recording once.
    #[inline(always)]
    fn run(&self, target: Target<'_>) -> Evaluation {
        let s = &*self.snapshot;
        let allow = self.allow_experimental;
        if self.attributes.is_empty() {
            let own = Own(&self.buckets);
            return match (target, self.observe) {
                (Target::At(p), false) => s.evaluate_key_at::<_, false>(p, self.user, allow, &own),
                (Target::At(p), true) => s.evaluate_key_at::<_, true>(p, self.user, allow, &own),
                (Target::Named(n), false) => {
                    s.evaluate_key_named::<_, false>(n, self.user, allow, &own)
                }
                (Target::Named(n), true) => {
                    s.evaluate_key_named::<_, true>(n, self.user, allow, &own)
                }
            };
        }
        let context = self.context();
        let cached = self.cached();
        match (target, self.observe) {
            (Target::At(p), false) => s.evaluate_at::<_, false>(p, &context, allow, &cached),
            (Target::At(p), true) => s.evaluate_at::<_, true>(p, &context, allow, &cached),
            (Target::Named(n), false) => s.evaluate_named::<_, false>(n, &context, allow, &cached),
            (Target::Named(n), true) => s.evaluate_named::<_, true>(n, &context, allow, &cached),
        }
    }

    #[inline(always)]
    fn cached(&self) -> Cached<'_> {
        Cached {
            buckets: &self.buckets,
            user: self.user,
            values: &self.values,
        }
    }

    /// The user this view evaluates for (the context's key).
    #[must_use]
    pub fn user(&self) -> &'u str {
        self.user
    }

    /// The context this view evaluates for.
    #[must_use]
    pub fn context(&self) -> Context<'u> {
        Context::new(self.user, self.attributes)
    }

    /// The served variant of `flag` (its name and value, borrowed from the
    /// view's snapshot) and the evaluation.
    #[inline]
    #[must_use]
    pub fn variation(&self, flag: &str) -> Variation<'_> {
        let e = self.evaluate(flag);
        Variation::new(e, self.snapshot.flag_at_variant(flag, &e))
    }

    /// The served variant of a pre-resolved flag.
    #[inline]
    #[must_use]
    pub fn variation_handle(&self, handle: &FlagHandle) -> Variation<'_> {
        let position = handle.position_in(&self.snapshot);
        let e = self.run(Target::At(position));
        Variation::new(e, self.snapshot.flag_by_position(position))
    }

    /// Whether `flag` is on for the user.
    #[inline(always)]
    #[must_use]
    pub fn is_enabled(&self, flag: &str) -> bool {
        self.evaluate(flag).enabled
    }

    /// Whether `flag` is on for the user, and why.
    #[inline(always)]
    #[must_use]
    pub fn evaluate(&self, flag: &str) -> Evaluation {
        self.run(Target::Named(flag))
    }

    /// Whether a pre-resolved flag is on for the user.
    #[inline(always)]
    #[must_use]
    pub fn is_enabled_handle(&self, handle: &FlagHandle) -> bool {
        self.evaluate_handle(handle).enabled
    }

    /// Evaluates a pre-resolved flag (skipping its name lookup) for the user.
    #[inline(always)]
    #[must_use]
    pub fn evaluate_handle(&self, handle: &FlagHandle) -> Evaluation {
        let position = handle.position_in(&self.snapshot);
        self.run(Target::At(position))
    }

    /// The user's cohort in the shared rollout `id` at the percentage of this
    /// view's snapshot (see [`Snapshot::cohort`]); `None` when there is no
    /// such rollout. Shares its hash with the rollout's flags.
    #[inline]
    #[must_use]
    pub fn cohort(&self, id: &str) -> Option<Cohort> {
        let (seed, percentage) = self.snapshot.rollout(id)?;
        let user = self.user;
        if user.is_empty() {
            return Some(Cohort::Out);
        }
        Some(Cohort::of(percentage, self.buckets.get(seed, user)))
    }

    /// The snapshot this view reads.
    #[must_use]
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl std::fmt::Debug for UserView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserView")
            .field("snapshot_id", &self.snapshot.id())
            .field("user", &self.user)
            .field("buckets_hashed", &self.buckets.filled.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{bucket, FlagStore};

    const CONFIG: &str = r#"{"version":1,
        "rollouts":{"r0":{"percentage":50},"r1":{"percentage":50},"r2":{"percentage":50},
                    "r3":{"percentage":50},"r4":{"percentage":50},"r5":{"percentage":50}},
        "flags":{"a0":{"rollout":"r0"},"b0":{"rollout":"r0"},"a1":{"rollout":"r1"},
                 "a2":{"rollout":"r2"},"a3":{"rollout":"r3"},"a4":{"rollout":"r4"},
                 "a5":{"rollout":"r5"},"own":{"percentage":30},
                 "listed":{"rollout":"r0","include":["u-1"],"exclude":["u-2"]}}}"#;

    #[test]
    fn one_hash_per_rollout() {
        let store = FlagStore::from_json(CONFIG).unwrap();
        let view = store.for_user("u-9");
        for _ in 0..3 {
            for f in ["a0", "b0", "listed"] {
                assert_eq!(view.evaluate(f), store.evaluate(f, "u-9"), "{f}");
            }
        }
        assert_eq!(view.buckets.filled.get(), 1);
        let _ = view.cohort("r0");
        assert_eq!(view.buckets.filled.get(), 1);
    }

    #[test]
    fn more_seeds_than_slots_stay_correct() {
        let store = FlagStore::from_json(CONFIG).unwrap();
        for user in ["u-1", "u-2", "u-3", "u-4", ""] {
            let view = store.for_user(user);
            for _ in 0..3 {
                for f in ["a0", "a1", "a2", "a3", "a4", "a5", "own", "listed", "b0"] {
                    assert_eq!(view.evaluate(f), store.evaluate(f, user), "{f} {user}");
                }
                for r in ["r0", "r1", "r2", "r3", "r4", "r5"] {
                    // An empty key is not a user: in no percentage.
                    let inside = !user.is_empty() && bucket(r, user) < 500_000;
                    assert_eq!(
                        view.cohort(r).map(|c| c.is_in()),
                        Some(inside),
                        "{r} {user}"
                    );
                }
            }
        }
    }
}
