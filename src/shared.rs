//! What a [`FlagStore`](crate::FlagStore) and its handles share: the current
//! snapshot, the store's options, readiness and retired exposure counts.

use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;

use crate::evaluation::Reason;
use crate::exposure::ExposureCallback;
use crate::snapshot::Snapshot;

/// The state behind every clone of a store and its handles.
pub(crate) struct Shared {
    pub(crate) current: ArcSwap<Snapshot>,
    pub(crate) allow_experimental: bool,
    /// `count_exposures` or an exposure callback: evaluations are recorded.
    pub(crate) observe: bool,
    pub(crate) count_exposures: bool,
    pub(crate) on_exposure: Option<ExposureCallback>,
    /// Whether a document was installed (a pending store starts without one).
    pub(crate) ready: AtomicBool,
    pub(crate) ready_lock: Mutex<()>,
    pub(crate) ready_signal: Condvar,
    /// Counts of replaced snapshots, so totals survive reloads.
    pub(crate) retired: Mutex<FxHashMap<ExposureKey, u64>>,
}

/// A count's flag (`None`: unknown), variant and reason.
pub(crate) type ExposureKey = (Option<String>, String, Reason);
