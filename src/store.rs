//! [`FlagStore`]: the current [`Snapshot`] behind an `ArcSwap`, shared by
//! every clone; readers never lock, never allocate, never see half an update.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;

use crate::bucket_source::Hashing;
use crate::cohort::Cohort;
use crate::config::ConfigError;
use crate::context::Context;
use crate::evaluation::{Evaluation, Reason};
use crate::exposure::{ExposureCallback, ExposureCount};
use crate::handle::FlagHandle;
use crate::shared::Shared;
use crate::snapshot::{RolloutStatus, Snapshot};
use crate::user_view::UserView;
use crate::variation::Variation;

/// A shared, atomically replaceable flag set.
///
/// Clones share the snapshot: a [`replace_from_json`](Self::replace_from_json)
/// through any clone is seen by all. A failed replacement changes nothing
/// (last known good).
///
/// ```
/// use genesis_flags::{FlagStore, Reason};
///
/// let store = FlagStore::from_json(r#"{
///     "version": 1,
///     "rollouts": { "phase_4_deployment": { "percentage": 100 } },
///     "flags": { "htdag_enabled": { "rollout": "phase_4_deployment" } }
/// }"#)?;
/// assert!(store.is_enabled("htdag_enabled", "user-42"));
///
/// // A bad document is refused and the good snapshot stays.
/// assert!(store.replace_from_json(r#"{"version": 2}"#).is_err());
/// assert!(store.is_enabled("htdag_enabled", "user-42"));
/// assert_eq!(store.evaluate("nope", "user-42").reason, Reason::UnknownFlag);
/// # Ok::<(), genesis_flags::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct FlagStore {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for FlagStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.shared.current.load();
        f.debug_struct("FlagStore")
            .field("snapshot_id", &snapshot.id())
            .field("flags", &snapshot.len())
            .field("allow_experimental", &self.shared.allow_experimental)
            .finish()
    }
}

/// Options for a [`FlagStore`]: `FlagStore::builder().allow_experimental(true)`.
#[derive(Clone, Default)]
#[must_use]
pub struct FlagStoreBuilder {
    allow_experimental: bool,
    count_exposures: bool,
    on_exposure: Option<ExposureCallback>,
}

impl std::fmt::Debug for FlagStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagStoreBuilder")
            .field("allow_experimental", &self.allow_experimental)
            .field("count_exposures", &self.count_exposures)
            .field("on_exposure", &self.on_exposure.is_some())
            .finish()
    }
}

impl FlagStoreBuilder {
    /// Whether experimental flags may be on (default `false`, as in
    /// production: they are off whatever the file says).
    pub fn allow_experimental(mut self, allow: bool) -> Self {
        self.allow_experimental = allow;
        self
    }

    /// Whether to count every evaluation by flag, variant and reason
    /// (default `false`; read with [`FlagStore::exposures`]). Lock-free:
    /// per-thread shards of relaxed atomic counters.
    pub fn count_exposures(mut self, count: bool) -> Self {
        self.count_exposures = count;
        self
    }

    /// A callback for every evaluation of a flag marked `track: true`,
    /// called on the evaluating thread with the exposure borrowed (see
    /// [`Exposure`](crate::Exposure)).
    pub fn on_exposure(
        mut self,
        callback: impl Fn(&crate::Exposure<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_exposure = Some(Arc::new(callback));
        self
    }

    fn shared(self, snapshot: Arc<Snapshot>, ready: bool) -> FlagStore {
        snapshot.install_exposures(self.count_exposures, self.on_exposure.clone());
        FlagStore {
            shared: Arc::new(Shared {
                current: ArcSwap::new(snapshot),
                allow_experimental: self.allow_experimental,
                observe: self.count_exposures || self.on_exposure.is_some(),
                count_exposures: self.count_exposures,
                on_exposure: self.on_exposure,
                ready: AtomicBool::new(ready),
                ready_lock: Mutex::new(()),
                ready_signal: Condvar::new(),
                retired: Mutex::new(FxHashMap::default()),
            }),
        }
    }

    /// A store over an already compiled snapshot.
    #[must_use]
    pub fn build(self, snapshot: Snapshot) -> FlagStore {
        self.shared(Arc::new(snapshot), true)
    }

    /// A store with no document yet: every flag is unknown and
    /// [`FlagStore::is_ready`] is `false` until the first
    /// [`replace`](FlagStore::replace) (a [`Reloader`](crate::Reloader)'s
    /// first load, typically).
    #[must_use]
    pub fn pending(self) -> FlagStore {
        self.shared(Arc::new(Snapshot::empty()), false)
    }

    /// A store over a JSON config.
    ///
    /// # Errors
    ///
    /// As for [`Snapshot::from_json`].
    pub fn from_json(self, text: &str) -> Result<FlagStore, ConfigError> {
        Ok(self.build(Snapshot::from_json(text)?))
    }

    /// A store over a JSON config file.
    ///
    /// # Errors
    ///
    /// As for [`Snapshot::from_file`].
    pub fn from_file(self, path: impl AsRef<Path>) -> Result<FlagStore, ConfigError> {
        Ok(self.build(Snapshot::from_file(path)?))
    }
}

impl FlagStore {
    /// Options for a new store.
    pub fn builder() -> FlagStoreBuilder {
        FlagStoreBuilder::default()
    }

    /// A production store (experimental flags off) over a JSON config.
    ///
    /// # Errors
    ///
    /// As for [`Snapshot::from_json`].
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::builder().from_json(text)
    }

    /// A production store over a JSON config file.
    ///
    /// # Errors
    ///
    /// As for [`Snapshot::from_file`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().from_file(path)
    }

    /// Whether experimental flags may be on in this store.
    #[must_use]
    pub fn allows_experimental(&self) -> bool {
        self.shared.allow_experimental
    }

    /// Whether a document was loaded: always for a store built over one,
    /// after the first [`replace`](Self::replace) for a
    /// [`pending`](FlagStoreBuilder::pending) store.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Waits until [`is_ready`](Self::is_ready), at most `timeout`; returns
    /// whether it is.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.shared.ready_lock.lock();
        while !self.is_ready() {
            if self
                .shared
                .ready_signal
                .wait_until(&mut guard, deadline)
                .timed_out()
            {
                return self.is_ready();
            }
        }
        true
    }

    /// The exposure counts so far, summed over every snapshot this store
    /// has served (empty unless built with
    /// [`count_exposures`](FlagStoreBuilder::count_exposures)), sorted.
    #[must_use]
    pub fn exposures(&self) -> Vec<ExposureCount> {
        let mut totals = self.shared.retired.lock().clone();
        for c in self.shared.current.load().exposure_counts() {
            *totals.entry((c.flag, c.variant, c.reason)).or_default() += c.count;
        }
        let mut out: Vec<ExposureCount> = totals
            .into_iter()
            .map(|((flag, variant, reason), count)| ExposureCount {
                flag,
                variant,
                reason,
                count,
            })
            .collect();
        out.sort();
        out
    }

    /// Whether `flag` is on for `user`. Lock-free, allocation-free, total.
    #[inline(always)]
    #[must_use]
    pub fn is_enabled(&self, flag: &str, user: &str) -> bool {
        self.evaluate(flag, user).enabled
    }

    /// Whether `flag` is on for `user`, or `default` when the current
    /// snapshot has no such flag.
    #[inline]
    #[must_use]
    pub fn is_enabled_or(&self, flag: &str, user: &str, default: bool) -> bool {
        let e = self.evaluate(flag, user);
        if e.reason == Reason::UnknownFlag {
            default
        } else {
            e.enabled
        }
    }

    /// Whether `flag` is on for `user`, and why.
    #[inline(always)]
    #[must_use]
    pub fn evaluate(&self, flag: &str, user: &str) -> Evaluation {
        let shared = &*self.shared;
        let snapshot = shared.current.load();
        if shared.observe {
            snapshot.evaluate_key_named::<_, true>(flag, user, shared.allow_experimental, &Hashing)
        } else {
            snapshot.evaluate_key_named::<_, false>(flag, user, shared.allow_experimental, &Hashing)
        }
    }

    /// Whether `flag` is on for `context` (its key and attributes: rules
    /// read them). Lock-free, allocation-free, total.
    #[inline(always)]
    #[must_use]
    pub fn is_enabled_for(&self, flag: &str, context: &Context<'_>) -> bool {
        self.evaluate_for(flag, context).enabled
    }

    /// Evaluates `flag` for `context`: whether it is on, why, which variant.
    #[inline(always)]
    #[must_use]
    pub fn evaluate_for(&self, flag: &str, context: &Context<'_>) -> Evaluation {
        let shared = &*self.shared;
        let snapshot = shared.current.load();
        if shared.observe {
            snapshot.evaluate_named::<_, true>(flag, context, shared.allow_experimental, &Hashing)
        } else {
            snapshot.evaluate_named::<_, false>(flag, context, shared.allow_experimental, &Hashing)
        }
    }

    /// A per-request view for `context` (see [`for_user`](Self::for_user)):
    /// rules read its attributes, typed values come from
    /// [`UserView::variation`].
    #[inline(always)]
    #[must_use]
    pub fn for_context<'u>(&self, context: Context<'u>) -> UserView<'u> {
        UserView::new(
            self.shared.current.load(),
            self.shared.allow_experimental,
            self.shared.observe,
            context,
        )
    }

    /// A handle that evaluates `flag` without looking its name up again,
    /// valid across replacements (a flag that appears later is found; one
    /// that disappears evaluates as unknown).
    #[must_use]
    pub fn handle(&self, flag: &str) -> FlagHandle {
        FlagHandle::new(Arc::clone(&self.shared), flag)
    }

    /// A consistent view of the current snapshot: every evaluation through it
    /// sees the same config, even if the store is replaced meanwhile. Use one
    /// per request; do not keep it for long (it pins the old snapshot).
    #[inline(always)]
    #[must_use]
    pub fn view(&self) -> FlagView {
        FlagView {
            snapshot: self.shared.current.load(),
            allow_experimental: self.shared.allow_experimental,
            observe: self.shared.observe,
        }
    }

    /// A view of the current snapshot for one request's `user`: it evaluates
    /// flags as [`evaluate`](Self::evaluate) does, hashing the user at most
    /// once per rollout (the ten flags of a shared rollout cost one hash),
    /// and tells the user's [`Cohort`] in a rollout. Same lifetime advice as
    /// [`view`](Self::view).
    #[inline(always)]
    #[must_use]
    pub fn for_user<'u>(&self, user: &'u str) -> UserView<'u> {
        UserView::new(
            self.shared.current.load(),
            self.shared.allow_experimental,
            self.shared.observe,
            Context::key_only(user),
        )
    }

    /// Whether `user` is in the shared rollout `id` at its current
    /// percentage (see [`Snapshot::cohort`]); `None` for an unknown rollout.
    #[inline]
    #[must_use]
    pub fn cohort(&self, id: &str, user: &str) -> Option<Cohort> {
        self.shared.current.load().cohort(id, user)
    }

    /// The current snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.current.load_full()
    }

    /// A shared rollout of the current snapshot: percentage and bound flags.
    #[must_use]
    pub fn rollout_status(&self, id: &str) -> Option<RolloutStatus> {
        self.shared.current.load().rollout_status(id)
    }

    /// Installs a compiled snapshot (or a shared one, `Arc<Snapshot>`) for
    /// every clone of this store.
    /// The first install makes a [`pending`](FlagStoreBuilder::pending)
    /// store ready.
    pub fn replace(&self, snapshot: impl Into<Arc<Snapshot>>) {
        let shared = &*self.shared;
        let snapshot = snapshot.into();
        snapshot.install_exposures(shared.count_exposures, shared.on_exposure.clone());
        let old = shared.current.swap(snapshot);
        if shared.count_exposures {
            // Counts made through a view of the old snapshot after this
            // fold are not carried over (never counted twice).
            let mut retired = shared.retired.lock();
            for c in old.exposure_counts() {
                *retired.entry((c.flag, c.variant, c.reason)).or_default() += c.count;
            }
        }
        if !shared.ready.swap(true, Ordering::AcqRel) {
            let _guard = shared.ready_lock.lock();
            shared.ready_signal.notify_all();
        }
    }

    /// Parses, validates and installs a JSON config; on error the current
    /// snapshot stays.
    ///
    /// # Errors
    ///
    /// As for [`Snapshot::from_json`]; the current snapshot stays.
    pub fn replace_from_json(&self, text: &str) -> Result<(), ConfigError> {
        self.replace(Snapshot::from_json(text)?);
        Ok(())
    }

    /// As [`replace_from_json`](Self::replace_from_json), from a file.
    ///
    /// # Errors
    ///
    /// As for [`Snapshot::from_file`]; the current snapshot stays.
    pub fn replace_from_file(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        self.replace(Snapshot::from_file(path)?);
        Ok(())
    }
}

/// A consistent, request-scoped view of one snapshot (see [`FlagStore::view`]).
///
/// ```
/// # let store = genesis_flags::FlagStore::from_json(r#"{"version":1,"flags":{"a":{},"b":{}}}"#)?;
/// let view = store.view();
/// let (a, b) = (view.is_enabled("a", "u"), view.is_enabled("b", "u"));
/// assert!(a && b);
/// # Ok::<(), genesis_flags::ConfigError>(())
/// ```
pub struct FlagView {
    snapshot: Guard<Arc<Snapshot>>,
    allow_experimental: bool,
    observe: bool,
}

impl FlagView {
    /// Whether `flag` is on for `user` in this view's snapshot.
    #[inline(always)]
    #[must_use]
    pub fn is_enabled(&self, flag: &str, user: &str) -> bool {
        self.evaluate(flag, user).enabled
    }

    /// Whether `flag` is on for `user`, and why.
    #[inline(always)]
    #[must_use]
    pub fn evaluate(&self, flag: &str, user: &str) -> Evaluation {
        let s = &self.snapshot;
        if self.observe {
            s.evaluate_key_named::<_, true>(flag, user, self.allow_experimental, &Hashing)
        } else {
            s.evaluate_key_named::<_, false>(flag, user, self.allow_experimental, &Hashing)
        }
    }

    /// Evaluates `flag` for `context` in this view's snapshot.
    #[inline(always)]
    #[must_use]
    pub fn evaluate_for(&self, flag: &str, context: &Context<'_>) -> Evaluation {
        let s = &self.snapshot;
        if self.observe {
            s.evaluate_named::<_, true>(flag, context, self.allow_experimental, &Hashing)
        } else {
            s.evaluate_named::<_, false>(flag, context, self.allow_experimental, &Hashing)
        }
    }

    /// The variant `flag` serves to `context`: its name and value borrowed
    /// from this view's snapshot.
    #[inline]
    #[must_use]
    pub fn variation(&self, flag: &str, context: &Context<'_>) -> Variation<'_> {
        let e = self.evaluate_for(flag, context);
        Variation::new(e, self.snapshot.flag_at_variant(flag, &e))
    }

    /// The variant a pre-resolved flag serves to `context`.
    #[inline]
    #[must_use]
    pub fn variation_handle(&self, handle: &FlagHandle, context: &Context<'_>) -> Variation<'_> {
        let position = handle.position_in(&self.snapshot);
        let s = &self.snapshot;
        let e = if self.observe {
            s.evaluate_at::<_, true>(position, context, self.allow_experimental, &Hashing)
        } else {
            s.evaluate_at::<_, false>(position, context, self.allow_experimental, &Hashing)
        };
        Variation::new(e, self.snapshot.flag_by_position(position))
    }

    /// Evaluates a pre-resolved handle in this view's snapshot.
    #[inline(always)]
    #[must_use]
    pub fn evaluate_handle(&self, handle: &FlagHandle, user: &str) -> Evaluation {
        handle.evaluate_in(&self.snapshot, user, self.allow_experimental, self.observe)
    }

    /// The snapshot this view reads.
    #[must_use]
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl std::fmt::Debug for FlagView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagView")
            .field("snapshot_id", &self.snapshot.id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn store_and_handle_are_send_sync_clone() {
        assert_send_sync_clone::<FlagStore>();
        assert_send_sync_clone::<FlagHandle>();
    }

    #[test]
    fn clones_share_replacements() {
        let a = FlagStore::from_json(r#"{"version":1,"flags":{"f":{"enabled":false}}}"#).unwrap();
        let b = a.clone();
        assert!(!b.is_enabled("f", "u"));
        a.replace_from_json(r#"{"version":1,"flags":{"f":{}}}"#)
            .unwrap();
        assert!(b.is_enabled("f", "u"));
    }

    #[test]
    fn a_view_keeps_its_snapshot() {
        let store = FlagStore::from_json(r#"{"version":1,"flags":{"f":{}}}"#).unwrap();
        let view = store.view();
        store.replace(Snapshot::empty());
        assert!(view.is_enabled("f", "u"));
        assert!(!store.is_enabled("f", "u"));
    }
}
