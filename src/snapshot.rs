//! [`Snapshot`]: an immutable, compiled flag set.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::bucket::Seed;
use crate::bucket_source::{BucketSource, Hashing};
use crate::cohort::Cohort;
use crate::config::{self, Binding, ConfigError, ValidConfig};
use crate::context::Context;
use crate::evaluation::Evaluation;
use crate::exposure::{ExposureCount, Exposures};
use crate::flag::{Flag, FlagParts, HotFlag, RuleTables, Tables, Targeting};
use crate::index::NameIndex;
use crate::percentage::Percentage;

/// Snapshot ids are unique in the process and fit in 40 bits (see `handle`).
pub(crate) const SNAPSHOT_ID_BITS: u32 = 40;
static NEXT_SNAPSHOT_ID: AtomicU64 = AtomicU64::new(1);

/// A validated, compiled flag set: salts hashed, names indexed. Immutable;
/// a [`FlagStore`](crate::FlagStore) swaps whole snapshots.
///
/// ```
/// use genesis_flags::Snapshot;
/// let snapshot = Snapshot::from_json(r#"{"version":1,"flags":{"banner":{}}}"#)?;
/// assert_eq!(snapshot.len(), 1);
/// assert!(snapshot.flag("banner").is_some());
/// # Ok::<(), genesis_flags::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Snapshot {
    id: u64,
    /// Name -> the flag's fast-path data (position included).
    index: NameIndex<HotFlag>,
    /// Position -> fast-path data, for handles.
    hot: Vec<HotFlag>,
    flags: Vec<Flag>,
    rollouts: Vec<Rollout>,
    /// Segments, the values of the exact `in` conditions per attribute, and
    /// the compact programs of flags whose rules fit one.
    rules: RuleTables,
    /// Installed by a store that counts exposures or has an exposure callback.
    exposures: OnceLock<Exposures>,
}

/// A shared rollout of a snapshot: its percentage and the flags bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RolloutStatus {
    /// The rollout id.
    pub id: String,
    /// Its current percentage.
    pub percentage: Percentage,
    /// The flags bound to it, in config order.
    pub flags: Vec<String>,
}

#[derive(Debug)]
struct Rollout {
    id: Box<str>,
    percentage: Percentage,
    /// `Seed::from_salt(id)`: the seed of every flag bound to the rollout.
    seed: Seed,
    flags: Vec<u32>,
}

impl Snapshot {
    /// Parses, validates and compiles a JSON config.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] with every problem and its JSON path when the text is
    /// not JSON, too large, or not a valid config.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        config::parse(text).map(Snapshot::compile)
    }

    /// Reads a JSON config file (at most [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES)),
    /// then as [`from_json`](Self::from_json). Errors name the file.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file when it cannot be read, and as for
    /// [`from_json`](Self::from_json).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = config::read_file(path)?;
        Snapshot::from_json(&text).map_err(|e| e.in_file(path.to_path_buf()))
    }

    /// A snapshot with no flags: every evaluation is off (`UnknownFlag`).
    #[must_use]
    pub fn empty() -> Self {
        Snapshot::compile(ValidConfig {
            rollouts: Vec::new(),
            flags: Vec::new(),
            segments: Vec::new(),
        })
    }

    fn compile(mut config: ValidConfig) -> Self {
        let dictionaries = crate::rule::intern(
            config
                .flags
                .iter_mut()
                .flat_map(|f| f.targeting.rules.iter_mut())
                .flat_map(|r| r.conditions.iter_mut())
                .chain(config.segments.iter_mut().flat_map(|s| s.iter_mut())),
        );
        let mut id =
            NEXT_SNAPSHOT_ID.fetch_add(1, Ordering::Relaxed) & ((1 << SNAPSHOT_ID_BITS) - 1);
        if id == 0 {
            // After 2^40 snapshots the counter wraps; 0 means "no snapshot" to handles.
            id = NEXT_SNAPSHOT_ID.fetch_add(1, Ordering::Relaxed) & ((1 << SNAPSHOT_ID_BITS) - 1);
        }
        let mut rollouts: Vec<Rollout> = config
            .rollouts
            .into_iter()
            .map(|(id, percentage)| Rollout {
                seed: Seed::from_salt(&id),
                id,
                percentage,
                flags: Vec::new(),
            })
            .collect();
        let rollout_index: FxHashMap<&str, usize> = rollouts
            .iter()
            .enumerate()
            .map(|(i, r)| (&*r.id, i))
            .collect();
        let mut bound = Vec::new();
        let mut flags = Vec::with_capacity(config.flags.len());
        for (position, raw) in config.flags.into_iter().enumerate() {
            let targeting = match raw.binding {
                Binding::None => Targeting::Everyone,
                Binding::Own(p) => Targeting::Percentage(p),
                Binding::Rollout(id) => match rollout_index.get(&*id) {
                    Some(&r) => {
                        bound.push((r, position as u32));
                        Targeting::Rollout {
                            id,
                            percentage: rollouts[r].percentage,
                        }
                    }
                    // Validation rejects unknown rollouts; stay total regardless.
                    None => Targeting::Percentage(Percentage::ZERO),
                },
            };
            let set = |users: Vec<Box<str>>| users.into_iter().collect::<FxHashSet<_>>();
            let t = raw.targeting;
            flags.push(Flag::new(FlagParts {
                name: raw.name,
                class: raw.class,
                enabled: raw.enabled,
                targeting,
                include: set(raw.include),
                exclude: set(raw.exclude),
                description: raw.description,
                rules: t.rules,
                prerequisites: raw.prerequisites,
                bucket_by: t.bucket_by,
                seed: t.seed,
                variants: t.variants,
                default_variant: t.default_variant,
                off_variant: t.off_variant,
                track: t.track,
                program: None,
            }));
        }
        for (r, position) in bound {
            rollouts[r].flags.push(position);
        }
        let mut programs = Vec::new();
        let hot: Vec<HotFlag> = flags
            .iter()
            .enumerate()
            .map(|(i, f)| f.hot(i as u32, f.compact(&mut programs)))
            .collect();
        let index = NameIndex::new(flags.iter().zip(&hot).map(|(f, h)| (f.name(), *h)));
        Snapshot {
            id,
            index,
            hot,
            flags,
            rollouts,
            rules: RuleTables {
                segments: config.segments,
                dictionaries,
                programs,
            },
            exposures: OnceLock::new(),
        }
    }

    /// The segments, dictionaries and programs conditions read.
    #[inline(always)]
    fn tables(&self) -> Tables<'_> {
        &self.rules
    }

    /// A snapshot of flags compiled by another front-end (flagd): no
    /// rollouts, no segments.
    #[cfg(feature = "flagd")]
    pub(crate) fn from_flags(flags: Vec<Flag>) -> Self {
        let mut snapshot = Snapshot::empty();
        snapshot.hot = flags
            .iter()
            .enumerate()
            .map(|(i, f)| f.hot(i as u32, (crate::rule::compact::NONE, false)))
            .collect();
        snapshot.index =
            NameIndex::new(flags.iter().zip(&snapshot.hot).map(|(f, h)| (f.name(), *h)));
        snapshot.flags = flags;
        snapshot
    }

    /// Installs exposure counting and the callback (once per snapshot; a
    /// later call keeps the first).
    pub(crate) fn install_exposures(
        &self,
        count: bool,
        callback: Option<crate::exposure::ExposureCallback>,
    ) {
        if count || callback.is_some() {
            let _ = self
                .exposures
                .get_or_init(|| Exposures::new(&self.flags, count, callback));
        }
    }

    /// The exposure counts of this snapshot (empty unless a counting store
    /// installed it).
    pub(crate) fn exposure_counts(&self) -> Vec<ExposureCount> {
        self.exposures
            .get()
            .map(|e| e.counts(&self.flags))
            .unwrap_or_default()
    }

    /// An id unique to this snapshot within the process (it grows with each
    /// snapshot built).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of flags.
    #[must_use]
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are no flags.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// A flag by name.
    #[must_use]
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.position(name).and_then(|i| self.flags.get(i as usize))
    }

    /// All flags, in config order.
    pub fn flags(&self) -> impl ExactSizeIterator<Item = &Flag> {
        self.flags.iter()
    }

    /// A shared rollout by id.
    #[must_use]
    pub fn rollout_status(&self, id: &str) -> Option<RolloutStatus> {
        let rollout = self.rollouts.iter().find(|r| &*r.id == id)?;
        Some(self.status_of(rollout))
    }

    /// All shared rollouts, in config order.
    pub fn rollouts(&self) -> impl Iterator<Item = RolloutStatus> + '_ {
        self.rollouts.iter().map(|r| self.status_of(r))
    }

    /// The percentage a shared rollout applies, without allocating.
    #[must_use]
    pub fn rollout_percentage(&self, id: &str) -> Option<Percentage> {
        self.rollout(id).map(|(_, percentage)| percentage)
    }

    /// Whether `user` is in the shared rollout `id` at the percentage this
    /// snapshot applies: the bucket test every flag bound to the rollout
    /// makes (`bucket(id, user) < percentage`), before kill switches and
    /// user lists. `None` when the snapshot has no such rollout.
    /// Allocation-free: one hash of the user id.
    ///
    /// ```
    /// use genesis_flags::{bucket, Cohort, Snapshot};
    /// let s = Snapshot::from_json(r#"{"version":1,"rollouts":{"r":{"percentage":5}},"flags":{}}"#)?;
    /// let expected = if bucket("r", "user-42") < 50_000 { Cohort::In } else { Cohort::Out };
    /// assert_eq!(s.cohort("r", "user-42"), Some(expected));
    /// assert_eq!(s.cohort("nope", "user-42"), None);
    /// # Ok::<(), genesis_flags::ConfigError>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn cohort(&self, id: &str, user: &str) -> Option<Cohort> {
        let (seed, percentage) = self.rollout(id)?;
        // An empty key is not a user: in no percentage.
        if user.is_empty() {
            return Some(Cohort::Out);
        }
        Some(Cohort::of(percentage, seed.bucket(user)))
    }

    /// A shared rollout's seed and percentage. Snapshots hold few rollouts,
    /// so a scan beats hashing the id.
    #[inline]
    pub(crate) fn rollout(&self, id: &str) -> Option<(Seed, Percentage)> {
        self.rollouts
            .iter()
            .find(|r| &*r.id == id)
            .map(|r| (r.seed, r.percentage))
    }

    fn status_of(&self, rollout: &Rollout) -> RolloutStatus {
        RolloutStatus {
            id: rollout.id.to_string(),
            percentage: rollout.percentage,
            flags: rollout
                .flags
                .iter()
                .filter_map(|&i| self.flags.get(i as usize))
                .map(|f| f.name().to_owned())
                .collect(),
        }
    }

    #[inline(always)]
    pub(crate) fn position(&self, name: &str) -> Option<u32> {
        self.index.get(name).map(|h| h.position)
    }

    /// The flag at `position`, if any.
    #[inline]
    pub(crate) fn flag_by_position(&self, position: u32) -> Option<&Flag> {
        self.flags.get(position as usize)
    }

    /// The flag `name` when the evaluation found it.
    #[inline]
    pub(crate) fn flag_at_variant(&self, name: &str, e: &Evaluation) -> Option<&Flag> {
        e.variant?;
        self.index
            .get(name)
            .and_then(|h| self.flags.get(h.position as usize))
    }

    /// Counts an evaluation when a counting store installed exposures. The
    /// evaluation methods take `OBSERVE` as a constant: a store that does
    /// not count compiles the check away.
    #[inline(always)]
    fn exposed(&self, hot: Option<&HotFlag>, e: &Evaluation, key: &str) {
        if let Some(exposures) = self.exposures.get() {
            exposures.record(&self.flags, hot.map(|h| h.position), e, key);
        }
    }

    /// Evaluates the flag at `position` (as cached by a handle) for a key
    /// without attributes; out of range is unknown.
    #[inline(always)]
    pub(crate) fn evaluate_key_at<S: BucketSource, const OBSERVE: bool>(
        &self,
        position: u32,
        key: &str,
        allow_experimental: bool,
        buckets: &S,
    ) -> Evaluation {
        let hot = self.hot.get(position as usize);
        let e = match hot {
            Some(h) => h.evaluate_key(key, allow_experimental, &self.flags, self.tables(), buckets),
            None => Evaluation::unknown(),
        };
        if OBSERVE {
            self.exposed(hot, &e, key);
        }
        e
    }

    /// Evaluates `name` for a key without attributes.
    #[inline(always)]
    pub(crate) fn evaluate_key_named<S: BucketSource, const OBSERVE: bool>(
        &self,
        name: &str,
        key: &str,
        allow_experimental: bool,
        buckets: &S,
    ) -> Evaluation {
        let hot = self.index.get(name);
        let e = match hot {
            Some(h) => h.evaluate_key(key, allow_experimental, &self.flags, self.tables(), buckets),
            None => Evaluation::unknown(),
        };
        if OBSERVE {
            self.exposed(hot, &e, key);
        }
        e
    }

    /// Evaluates the flag at `position` for `context`.
    #[inline(always)]
    pub(crate) fn evaluate_at<S: BucketSource, const OBSERVE: bool>(
        &self,
        position: u32,
        context: &Context<'_>,
        allow_experimental: bool,
        buckets: &S,
    ) -> Evaluation {
        let hot = self.hot.get(position as usize);
        let e = match hot {
            Some(h) => h.evaluate_context(
                context,
                allow_experimental,
                &self.flags,
                self.tables(),
                buckets,
            ),
            None => Evaluation::unknown(),
        };
        if OBSERVE {
            self.exposed(hot, &e, context.key());
        }
        e
    }

    /// Evaluates `name` for `context`, buckets from `buckets`.
    #[inline(always)]
    pub(crate) fn evaluate_named<S: BucketSource, const OBSERVE: bool>(
        &self,
        name: &str,
        context: &Context<'_>,
        allow_experimental: bool,
        buckets: &S,
    ) -> Evaluation {
        let hot = self.index.get(name);
        let e = match hot {
            Some(h) => h.evaluate_context(
                context,
                allow_experimental,
                &self.flags,
                self.tables(),
                buckets,
            ),
            None => Evaluation::unknown(),
        };
        if OBSERVE {
            self.exposed(hot, &e, context.key());
        }
        e
    }

    /// Evaluates `name` for `user` as a store with the given experimental
    /// setting would.
    #[inline(always)]
    #[must_use]
    pub fn evaluate(&self, name: &str, user: &str, allow_experimental: bool) -> Evaluation {
        self.evaluate_key_named::<_, true>(name, user, allow_experimental, &Hashing)
    }

    /// Evaluates `name` for `context` (its key and attributes) as a store
    /// with the given experimental setting would.
    #[inline(always)]
    #[must_use]
    pub fn evaluate_context(
        &self,
        name: &str,
        context: &Context<'_>,
        allow_experimental: bool,
    ) -> Evaluation {
        self.evaluate_named::<_, true>(name, context, allow_experimental, &Hashing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_rollouts_and_their_flags() {
        let s = Snapshot::from_json(
            r#"{"version":1,"rollouts":{"r":{"percentage":5}},
                "flags":{"a":{"rollout":"r"},"b":{},"c":{"rollout":"r"}}}"#,
        )
        .unwrap();
        let status = s.rollout_status("r").unwrap();
        assert_eq!(status.percentage.ppm(), 50_000);
        assert_eq!(status.flags, ["a", "c"]);
        assert_eq!(s.flag("a").unwrap().percentage(), status.percentage.into());
        assert_eq!(s.flag("b").unwrap().percentage(), None);
        assert!(s.rollout_status("nope").is_none());
    }

    #[test]
    fn ids_are_unique_and_increasing() {
        let a = Snapshot::empty();
        let b = Snapshot::empty();
        assert!(b.id() > a.id());
        assert_ne!(a.id(), 0);
    }
}
