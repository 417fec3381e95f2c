//! Lock-free feature flags with deterministic bucketing.
//!
//! A [`FlagStore`] holds a compiled [`Snapshot`] of a JSON flag config behind
//! an `ArcSwap`: evaluating a flag for a user is one atomic load, one map
//! lookup and at most one seeded xxh3 hash of the user id, with no lock and
//! no allocation. Replacing the config swaps the whole snapshot atomically,
//! and a bad config never replaces a good one.
//!
//! ```
//! use genesis_flags::{FlagStore, Reason};
//!
//! let store = FlagStore::from_json(r#"{
//!     "version": 1,
//!     "rollouts": { "phase_4_deployment": { "percentage": 5 } },
//!     "flags": {
//!         "htdag_enabled": { "class": "critical", "rollout": "phase_4_deployment" },
//!         "halo_enabled":  { "class": "critical", "rollout": "phase_4_deployment" },
//!         "aatc_system_enabled": { "class": "experimental" }
//!     }
//! }"#)?;
//!
//! // Flags bound to one rollout are on for exactly the same users.
//! let user = "user-42";
//! assert_eq!(store.is_enabled("htdag_enabled", user), store.is_enabled("halo_enabled", user));
//!
//! // Experimental flags are off in a production store, whatever the file says.
//! assert_eq!(store.evaluate("aatc_system_enabled", user).reason, Reason::ExperimentalDisabled);
//!
//! // The bucket is the cross-language contract: in iff bucket < percentage in ppm.
//! let in_rollout = genesis_flags::bucket("phase_4_deployment", user) < 50_000;
//! assert_eq!(store.is_enabled("htdag_enabled", user), in_rollout);
//! # Ok::<(), genesis_flags::ConfigError>(())
//! ```
//!
//! Evaluation order (first match wins): unknown flag → off; kill switch
//! (`enabled: false`) → the `off` variant; experimental in a store that does
//! not allow them → `off`; a prerequisite not met → `off`; user in
//! `exclude` → `off`; user in `include` → the `default` variant; the first
//! rule whose conditions hold → its variant or split; rollout or own
//! percentage → `default` iff the bucket is under it, else `off`; otherwise
//! `default`. A flag without `variants` is boolean (`on`/`off`), so
//! documents without rules mean what they always did.
//!
//! Rules read a [`Context`]: the user's key and typed attributes, built on
//! the stack over [`AttributeKey`]s resolved once (like a [`FlagHandle`]):
//!
//! ```
//! use genesis_flags::{AttributeKey, Context, FlagStore};
//! let store = FlagStore::from_json(r#"{"version": 1, "flags": {"beta_ui": {
//!     "default": "off",
//!     "rules": [{"when": [{"attribute": "app_version", "op": "semver_ge", "value": "2.0.0"}],
//!                "serve": "on"}]}}}"#)?;
//! let version = AttributeKey::new("app_version");
//! let attributes = [version.string("2.1.0-rc.1")];
//! assert!(store.is_enabled_for("beta_ui", &Context::new("user-42", &attributes)));
//! assert!(!store.is_enabled("beta_ui", "user-42"));       // no attributes: default
//! # Ok::<(), genesis_flags::ConfigError>(())
//! ```
//!
//! A request that reads several flags takes one [`FlagStore::for_user`]
//! view: the flags of a shared rollout share one hash of the user, and the
//! view tells the user's [`Cohort`] in a rollout (the label services put on
//! their request metrics, so a rollout is judged on the users it flags).
//!
//! See [`config`] for the file format (docs/targeting.md in the repository
//! for every operator), [`bucket()`] for the bucketing contract,
//! [`Reloader`] to follow a config file on disk or a URL, and `rollout`
//! (feature `rollout`) for staged percentage rollouts judged on health
//! metrics.
//!
//! Cargo features: `rollout` (staged rollouts, the controller engine; off by
//! default, so a service that only evaluates flags compiles none of it),
//! `http` (the HTTP flags source, `Reloader::http`),
//! `openfeature` (an OpenFeature provider, `openfeature::GenesisProvider`),
//! `flagd` (flagd flag definitions, `Snapshot::from_flagd_json`),
//! `prometheus` (the Prometheus health gate), `compare` (benchmarks against
//! other flag engines) and `failpoints` (crash points for the crash tests,
//! armed by the `GENESIS_FLAGS_FAILPOINTS` environment variable; never enable
//! it in production builds).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::missing_errors_doc)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod bucket;
mod bucket_source;
mod bytes;
mod cohort;
pub mod config;
mod context;
mod evaluation;
mod exposure;
#[cfg(feature = "rollout")]
mod failpoint;
mod file_error;
mod flag;
#[cfg(feature = "flagd")]
#[cfg_attr(docsrs, doc(cfg(feature = "flagd")))]
pub mod flagd;
mod handle;
mod index;
#[cfg(feature = "openfeature")]
pub mod openfeature;
mod percentage;
mod reload;
#[cfg(feature = "rollout")]
#[cfg_attr(docsrs, doc(cfg(feature = "rollout")))]
// The engine lock needs `File::try_lock` (1.89); the evaluator needs 1.87.
#[clippy::msrv = "1.89"]
pub mod rollout;
mod rule;
mod shared;
mod snapshot;
mod store;
mod user_view;
mod variant;
mod variation;

pub use bucket::{bucket, Seed, BUCKETS};
pub use cohort::Cohort;
pub use config::{ConfigError, JsonError, Problem, ProblemKind, MAX_CONFIG_BYTES};
pub use context::{Attribute, AttributeKey, AttributeValue, Context, KEY_ATTRIBUTE};
pub use evaluation::{Evaluation, Reason};
pub use exposure::{Exposure, ExposureCallback, ExposureCount};
pub use file_error::FileError;
pub use flag::{Flag, FlagClass, Targeting};
pub use handle::FlagHandle;
pub use percentage::{Percentage, PercentageError};
#[cfg(feature = "http")]
pub use reload::HttpReloaderBuilder;
pub use reload::{ReloadError, ReloadStats, Reloader, ReloaderBuilder};
pub use rule::semver::Semver;
pub use rule::MAX_DEPTH;
pub use snapshot::{RolloutStatus, Snapshot};
pub use store::{FlagStore, FlagStoreBuilder, FlagView};
pub use user_view::UserView;
pub use variant::{VariantType, VariantValue};
pub use variation::Variation;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
