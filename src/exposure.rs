//! Exposure counts: how often each flag served each variant for each
//! reason, counted on the evaluation path without a lock and without
//! contention (per-thread shards of relaxed atomic counters in the
//! snapshot), and an optional callback for flags marked `track: true`.
//!
//! Counting is off unless a store asks for it
//! ([`FlagStoreBuilder::count_exposures`](crate::FlagStoreBuilder::count_exposures)):
//! a store that does not count pays one predictable branch per evaluation.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::evaluation::{Evaluation, Reason};
use crate::flag::Flag;
use crate::variant::VariantValue;

/// Shards per snapshot: threads spread over them, so two threads rarely
/// increment the same cache line.
const SHARDS: usize = 16;
const REASONS: usize = Reason::ALL.len();

/// One evaluation of a tracked flag, as the exposure callback sees it
/// (borrowed from the snapshot and the caller: nothing is copied).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Exposure<'a> {
    /// The flag key.
    pub flag: &'a str,
    /// The context's key (the user id).
    pub key: &'a str,
    /// The served variant's name.
    pub variant: &'a str,
    /// The served value.
    pub value: &'a VariantValue,
    /// Why.
    pub reason: Reason,
}

/// The exposure callback: called on the evaluating thread, for every
/// evaluation of a flag marked `track: true`. Keep it short and non-blocking
/// (hand the exposure to a queue).
pub type ExposureCallback = Arc<dyn Fn(&Exposure<'_>) + Send + Sync>;

/// One count: a flag (or `None` for names no snapshot knew), a variant, a
/// reason, how many evaluations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct ExposureCount {
    /// The flag key; `None` for evaluations of names not in the snapshot.
    pub flag: Option<String>,
    /// The served variant's name (empty for an unknown flag).
    pub variant: String,
    /// Why.
    pub reason: Reason,
    /// Evaluations counted.
    pub count: u64,
}

#[repr(align(64))]
struct Shard(Box<[AtomicU64]>);

/// A snapshot's exposure state, installed by the store that counts.
pub(crate) struct Exposures {
    /// Per flag position: the index of its first counter (variant 0,
    /// reason 0). Index 0.. REASONS is the unknown-flag row.
    base: Box<[u32]>,
    shards: Box<[Shard]>,
    callback: Option<ExposureCallback>,
}

impl fmt::Debug for Exposures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exposures")
            .field("counters", &self.shards.first().map_or(0, |s| s.0.len()))
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn shard_of_thread() -> usize {
    SHARD
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
                s.set(i);
            }
            i
        })
        .unwrap_or(0)
}

impl Exposures {
    /// Counters for `flags` (when `count`), and the callback.
    pub(crate) fn new(flags: &[Flag], count: bool, callback: Option<ExposureCallback>) -> Self {
        let mut base = Vec::with_capacity(flags.len());
        let mut next = REASONS;
        for flag in flags {
            base.push(u32::try_from(next).unwrap_or(u32::MAX));
            next += flag.variants().count() * REASONS;
        }
        let size = if count { next } else { 0 };
        let shards = (0..if count { SHARDS } else { 0 })
            .map(|_| Shard((0..size).map(|_| AtomicU64::new(0)).collect()))
            .collect();
        Exposures {
            base: base.into(),
            shards,
            callback,
        }
    }

    /// Counts one evaluation (and calls the callback for a tracked flag).
    #[inline(never)]
    pub(crate) fn record(&self, flags: &[Flag], position: Option<u32>, e: &Evaluation, key: &str) {
        let flag = position.and_then(|p| flags.get(p as usize));
        if !self.shards.is_empty() {
            let index = match (position, e.variant) {
                (Some(p), Some(v)) => self
                    .base
                    .get(p as usize)
                    .map(|&b| b as usize + usize::from(v) * REASONS + e.reason as usize),
                _ => Some(Reason::UnknownFlag as usize),
            };
            if let (Some(index), Some(shard)) = (index, self.shards.get(shard_of_thread())) {
                if let Some(counter) = shard.0.get(index) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let (Some(callback), Some(flag), Some(variant)) = (&self.callback, flag, e.variant) {
            if flag.is_tracked() {
                if let Some(value) = flag.variant_value(variant) {
                    callback(&Exposure {
                        flag: flag.name(),
                        key,
                        variant: flag.variant_name(variant),
                        value,
                        reason: e.reason,
                    });
                }
            }
        }
    }

    /// The non-zero counts, summed over shards.
    pub(crate) fn counts(&self, flags: &[Flag]) -> Vec<ExposureCount> {
        let total = |index: usize| -> u64 {
            self.shards
                .iter()
                .filter_map(|s| s.0.get(index))
                .map(|c| c.load(Ordering::Relaxed))
                .sum()
        };
        let mut out = Vec::new();
        if self.shards.is_empty() {
            return out;
        }
        let unknown = total(Reason::UnknownFlag as usize);
        if unknown > 0 {
            out.push(ExposureCount {
                flag: None,
                variant: String::new(),
                reason: Reason::UnknownFlag,
                count: unknown,
            });
        }
        for (flag, &base) in flags.iter().zip(self.base.iter()) {
            for (v, (variant, _)) in flag.variants().enumerate() {
                for reason in Reason::ALL {
                    let count = total(base as usize + v * REASONS + reason as usize);
                    if count > 0 {
                        out.push(ExposureCount {
                            flag: Some(flag.name().to_owned()),
                            variant: variant.to_owned(),
                            reason,
                            count,
                        });
                    }
                }
            }
        }
        out
    }
}
