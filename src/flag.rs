//! [`Flag`]: one compiled flag, and [`FlagClass`].

use std::fmt;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::bucket::Seed;
use crate::evaluation::{Evaluation, Reason};
use crate::percentage::Percentage;

/// How a flag is rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagClass {
    /// Production features, rolled out together through shared rollouts (the default).
    #[default]
    Critical,
    /// Off in any store that has not opted in with
    /// [`FlagStoreBuilder::allow_experimental`](crate::FlagStoreBuilder::allow_experimental).
    Experimental,
}

impl FlagClass {
    /// `"critical"` or `"experimental"`, as written in config files.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            FlagClass::Critical => "critical",
            FlagClass::Experimental => "experimental",
        }
    }
}

impl fmt::Display for FlagClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a flag is on for, once the kill switch, class and user lists are passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Targeting {
    /// On for everyone.
    Everyone,
    /// Bound to a shared rollout: salted by the rollout id, so every flag of
    /// the rollout is on for exactly the same users.
    Rollout {
        /// The rollout id.
        id: Box<str>,
        /// The rollout's current percentage.
        percentage: Percentage,
    },
    /// The flag's own percentage, salted by the flag key.
    Percentage(Percentage),
}

/// One compiled flag of a [`Snapshot`](crate::Snapshot).
///
/// Salts are hashed when the snapshot is built, so evaluating costs one
/// seeded hash of the user id at most.
#[derive(Debug, Clone)]
pub struct Flag {
    // Hot fields first.
    enabled: bool,
    class: FlagClass,
    has_lists: bool,
    bucketed: bool,
    threshold: Percentage,
    seed: Seed,
    include: FxHashSet<Box<str>>,
    exclude: FxHashSet<Box<str>>,
    name: Box<str>,
    targeting: Targeting,
    description: Option<Box<str>>,
}

impl Flag {
    /// Compiles a validated flag. Names and ids are already checked by `config`.
    pub(crate) fn new(
        name: Box<str>,
        class: FlagClass,
        enabled: bool,
        targeting: Targeting,
        include: FxHashSet<Box<str>>,
        exclude: FxHashSet<Box<str>>,
        description: Option<Box<str>>,
    ) -> Self {
        let (bucketed, threshold, seed) = match &targeting {
            Targeting::Everyone => (false, Percentage::HUNDRED, Seed::from_salt(&name)),
            Targeting::Rollout { id, percentage } => (true, *percentage, Seed::from_salt(id)),
            Targeting::Percentage(p) => (true, *p, Seed::from_salt(&name)),
        };
        Flag {
            enabled,
            class,
            has_lists: !include.is_empty() || !exclude.is_empty(),
            bucketed,
            threshold,
            seed,
            include,
            exclude,
            name,
            targeting,
            description,
        }
    }

    /// The flag key.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Critical or experimental.
    #[must_use]
    pub fn class(&self) -> FlagClass {
        self.class
    }

    /// `false` when the kill switch is thrown (`enabled: false`).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Who the flag is on for.
    #[must_use]
    pub fn targeting(&self) -> &Targeting {
        &self.targeting
    }

    /// The rollout this flag is bound to, if any.
    #[must_use]
    pub fn rollout(&self) -> Option<&str> {
        match &self.targeting {
            Targeting::Rollout { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The percentage that decides, if any (the rollout's or the flag's own).
    #[must_use]
    pub fn percentage(&self) -> Option<Percentage> {
        self.bucketed.then_some(self.threshold)
    }

    /// Users for whom the flag is always on (unless excluded or switched off).
    pub fn include(&self) -> impl Iterator<Item = &str> {
        self.include.iter().map(|u| &**u)
    }

    /// Users for whom the flag is always off.
    pub fn exclude(&self) -> impl Iterator<Item = &str> {
        self.exclude.iter().map(|u| &**u)
    }

    /// The free-text description from the config, if any.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The compact form the evaluation fast path reads.
    pub(crate) fn hot(&self, position: u32) -> HotFlag {
        let mut bits = 0;
        if !self.enabled {
            bits |= HotFlag::KILLED;
        }
        if self.class == FlagClass::Experimental {
            bits |= HotFlag::EXPERIMENTAL;
        }
        if self.has_lists {
            bits |= HotFlag::LISTS;
        }
        if self.bucketed {
            bits |= HotFlag::BUCKETED;
        }
        HotFlag {
            seed: self.seed,
            threshold: self.threshold,
            position,
            bits,
        }
    }

    /// Evaluates this flag for `user` in the evaluation order of the crate
    /// docs (`src/lib.rs`), with the user's bucket under a seed supplied by
    /// `bucket_of` (a per-request cache may answer it without hashing
    /// again). `bucket_of(seed)` must equal `seed.bucket(user)`.
    /// Allocation-free.
    #[inline(always)]
    pub(crate) fn evaluate_with(
        &self,
        user: &str,
        allow_experimental: bool,
        bucket_of: impl FnOnce(Seed) -> u32,
    ) -> Evaluation {
        if !self.enabled {
            return Evaluation::fixed(Reason::KillSwitch);
        }
        if self.class == FlagClass::Experimental && !allow_experimental {
            return Evaluation::fixed(Reason::ExperimentalDisabled);
        }
        if self.has_lists {
            if self.exclude.contains(user) {
                return Evaluation::fixed(Reason::Excluded);
            }
            if self.include.contains(user) {
                return Evaluation::fixed(Reason::Included);
            }
        }
        if self.bucketed {
            let bucket = bucket_of(self.seed);
            Evaluation::bucketed(self.threshold.contains(bucket), bucket)
        } else {
            Evaluation::fixed(Reason::On)
        }
    }
}

/// What the evaluation fast path needs of a flag, in 24 bytes, stored inline
/// in the snapshot's name index: a flag with no kill switch, no class
/// restriction and no user lists is decided without touching [`Flag`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HotFlag {
    seed: Seed,
    threshold: Percentage,
    pub(crate) position: u32,
    bits: u8,
}

impl HotFlag {
    /// Placeholder for empty index slots; never evaluated.
    pub(crate) const ABSENT: HotFlag = HotFlag {
        seed: Seed::ZERO,
        threshold: Percentage::ZERO,
        position: u32::MAX,
        bits: 0,
    };
    const KILLED: u8 = 1;
    const EXPERIMENTAL: u8 = 1 << 1;
    const LISTS: u8 = 1 << 2;
    const BUCKETED: u8 = 1 << 3;
    const SLOW: u8 = Self::KILLED | Self::EXPERIMENTAL | Self::LISTS;

    /// Same result as [`Flag::evaluate_with`] on `flags[self.position]`,
    /// hashing the user for the bucket. The single-flag hot path: kept apart
    /// from [`evaluate_with`](Self::evaluate_with), whose bucket closure
    /// costs this path about 2% (paired benchmark).
    #[inline(always)]
    pub(crate) fn evaluate(
        self,
        user: &str,
        allow_experimental: bool,
        flags: &[Flag],
    ) -> Evaluation {
        if self.bits & Self::SLOW != 0 {
            return self.evaluate_slow_hashing(user, allow_experimental, flags);
        }
        if self.bits & Self::BUCKETED != 0 {
            let bucket = self.seed.bucket(user);
            Evaluation::bucketed(self.threshold.contains(bucket), bucket)
        } else {
            Evaluation::fixed(Reason::On)
        }
    }

    #[inline(never)]
    fn evaluate_slow_hashing(
        self,
        user: &str,
        allow_experimental: bool,
        flags: &[Flag],
    ) -> Evaluation {
        if self.bits & Self::KILLED != 0 {
            return Evaluation::fixed(Reason::KillSwitch);
        }
        if self.bits & Self::EXPERIMENTAL != 0 && !allow_experimental {
            return Evaluation::fixed(Reason::ExperimentalDisabled);
        }
        // User lists live in the full flag.
        match flags.get(self.position as usize) {
            Some(flag) => flag.evaluate_with(user, allow_experimental, |seed| seed.bucket(user)),
            None => Evaluation::fixed(Reason::UnknownFlag),
        }
    }

    /// Same result as [`Flag::evaluate_with`] on `flags[self.position]`.
    #[inline(always)]
    pub(crate) fn evaluate_with<B: FnOnce(Seed) -> u32>(
        &self,
        user: &str,
        allow_experimental: bool,
        flags: &[Flag],
        bucket_of: B,
    ) -> Evaluation {
        if self.bits & Self::SLOW != 0 {
            return self.evaluate_slow(user, allow_experimental, flags, bucket_of);
        }
        if self.bits & Self::BUCKETED != 0 {
            let bucket = bucket_of(self.seed);
            Evaluation::bucketed(self.threshold.contains(bucket), bucket)
        } else {
            Evaluation::fixed(Reason::On)
        }
    }

    #[inline(never)]
    fn evaluate_slow<B: FnOnce(Seed) -> u32>(
        &self,
        user: &str,
        allow_experimental: bool,
        flags: &[Flag],
        bucket_of: B,
    ) -> Evaluation {
        if self.bits & Self::KILLED != 0 {
            return Evaluation::fixed(Reason::KillSwitch);
        }
        if self.bits & Self::EXPERIMENTAL != 0 && !allow_experimental {
            return Evaluation::fixed(Reason::ExperimentalDisabled);
        }
        // User lists live in the full flag.
        match flags.get(self.position as usize) {
            Some(flag) => flag.evaluate_with(user, allow_experimental, bucket_of),
            None => Evaluation::fixed(Reason::UnknownFlag),
        }
    }
}
