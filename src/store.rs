//! [`FlagStore`]: the current [`Snapshot`] behind an `ArcSwap`, shared by
//! every clone; readers never lock, never allocate, never see half an update.

use std::path::Path;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::cohort::Cohort;
use crate::config::ConfigError;
use crate::evaluation::Evaluation;
use crate::handle::FlagHandle;
use crate::snapshot::{RolloutStatus, Snapshot};
use crate::user_view::UserView;

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

pub(crate) struct Shared {
    pub(crate) current: ArcSwap<Snapshot>,
    pub(crate) allow_experimental: bool,
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
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct FlagStoreBuilder {
    allow_experimental: bool,
}

impl FlagStoreBuilder {
    /// Whether experimental flags may be on (default `false`, as in
    /// production: they are off whatever the file says).
    pub fn allow_experimental(mut self, allow: bool) -> Self {
        self.allow_experimental = allow;
        self
    }

    /// A store over an already compiled snapshot.
    #[must_use]
    pub fn build(self, snapshot: Snapshot) -> FlagStore {
        FlagStore {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(snapshot),
                allow_experimental: self.allow_experimental,
            }),
        }
    }

    /// A store over a JSON config.
    pub fn from_json(self, text: &str) -> Result<FlagStore, ConfigError> {
        Ok(self.build(Snapshot::from_json(text)?))
    }

    /// A store over a JSON config file.
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
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::builder().from_json(text)
    }

    /// A production store over a JSON config file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().from_file(path)
    }

    /// Whether experimental flags may be on in this store.
    #[must_use]
    pub fn allows_experimental(&self) -> bool {
        self.shared.allow_experimental
    }

    /// Whether `flag` is on for `user`. Lock-free, allocation-free, total.
    #[inline(always)]
    #[must_use]
    pub fn is_enabled(&self, flag: &str, user: &str) -> bool {
        self.evaluate(flag, user).enabled
    }

    /// Whether `flag` is on for `user`, and why.
    #[inline(always)]
    #[must_use]
    pub fn evaluate(&self, flag: &str, user: &str) -> Evaluation {
        self.shared
            .current
            .load()
            .evaluate(flag, user, self.shared.allow_experimental)
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
            user,
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
    pub fn replace(&self, snapshot: impl Into<Arc<Snapshot>>) {
        self.shared.current.store(snapshot.into());
    }

    /// Parses, validates and installs a JSON config; on error the current
    /// snapshot stays.
    pub fn replace_from_json(&self, text: &str) -> Result<(), ConfigError> {
        self.replace(Snapshot::from_json(text)?);
        Ok(())
    }

    /// As [`replace_from_json`](Self::replace_from_json), from a file.
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
        self.snapshot.evaluate(flag, user, self.allow_experimental)
    }

    /// Evaluates a pre-resolved handle in this view's snapshot.
    #[inline(always)]
    #[must_use]
    pub fn evaluate_handle(&self, handle: &FlagHandle, user: &str) -> Evaluation {
        handle.evaluate_in(&self.snapshot, user, self.allow_experimental)
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
