//! An [OpenFeature](https://openfeature.dev) provider over a [`FlagStore`]
//! (cargo feature `openfeature`, on the `open-feature` crate 0.3).
//!
//! Flags are boolean and resolved for the evaluation context's
//! `targeting_key` (the user id), exactly as [`FlagStore::evaluate`] does:
//! same buckets, same answer. How each outcome maps:
//!
//! | genesis-flags                      | OpenFeature                                  |
//! |------------------------------------|----------------------------------------------|
//! | in or out of a rollout/percentage  | `Split`                                      |
//! | user in `include` / `exclude`      | `TargetingMatch`                             |
//! | kill switch, experimental off      | `Disabled` (value `false`)                   |
//! | on for everyone                    | `Static`                                     |
//! | unknown flag                       | error `FlagNotFound`: the caller's default   |
//! | no (or an empty) `targeting_key`   | error `TargetingKeyMissing`: the caller's default, unless the answer is the same for every user (kill switch, experimental off, on for everyone) |
//! | a non-boolean type asked           | error `TypeMismatch`                         |
//!
//! Errors are the SDK's `Err(EvaluationError)`: the client then hands the
//! application the default value it passed, which is OpenFeature's default
//! outcome. Every successful resolution carries the variant `"on"` or
//! `"off"` and flag metadata: `reason` (the genesis-flags [`Reason`] name),
//! `class`, and for a bucketed flag `rollout` (the rollout id, for a shared
//! rollout), `percentage` (a float, in percent) and `bucket` (the user's,
//! when it decided).
//!
//! ```
//! use genesis_flags::openfeature::GenesisProvider;
//! use genesis_flags::FlagStore;
//! use open_feature::{EvaluationContext, EvaluationReason};
//!
//! let store = FlagStore::from_json(r#"{"version": 1,
//!     "rollouts": {"phase_4_deployment": {"percentage": 100}},
//!     "flags": {"htdag_enabled": {"rollout": "phase_4_deployment"}}}"#)?;
//! let provider = GenesisProvider::new(store);
//! let context = EvaluationContext::default().with_targeting_key("user-42");
//! let details = provider.resolve("htdag_enabled", &context).expect("a known flag");
//! assert!(details.value);
//! assert_eq!(details.reason, Some(EvaluationReason::Split));
//! # Ok::<(), genesis_flags::ConfigError>(())
//! ```
//!
//! Register it with the SDK (`OpenFeature::singleton_mut().await.set_provider(provider)`)
//! and evaluate through a client (`client.get_bool_value("htdag_enabled", Some(&context), None)`).
//! The provider never blocks: its futures are ready at once.

use std::collections::HashMap;

use open_feature::provider::{FeatureProvider, ProviderMetadata, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult,
    FlagMetadata, StructValue,
};

use crate::evaluation::{Evaluation, Reason};
use crate::flag::{Flag, Targeting};
use crate::store::FlagStore;

/// The provider's name, as [`FeatureProvider::metadata`] gives it.
pub const PROVIDER_NAME: &str = "genesis-flags";

/// An OpenFeature provider that resolves boolean flags from a [`FlagStore`].
///
/// It shares the store's snapshot: a [`Reloader`](crate::Reloader) or a
/// `replace` on any clone of the store is seen by the next resolution.
#[derive(Debug, Clone)]
pub struct GenesisProvider {
    store: FlagStore,
    metadata: ProviderMetadata,
}

impl GenesisProvider {
    /// A provider over `store` (a clone shares its snapshot).
    #[must_use]
    pub fn new(store: FlagStore) -> Self {
        GenesisProvider {
            store,
            metadata: ProviderMetadata::new(PROVIDER_NAME),
        }
    }

    /// The store it reads.
    #[must_use]
    pub fn store(&self) -> &FlagStore {
        &self.store
    }

    /// Resolves `flag` for `context.targeting_key`, synchronously: what
    /// [`FeatureProvider::resolve_bool_value`] answers.
    pub fn resolve(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let view = self.store.view();
        let Some(compiled) = view.snapshot().flag(flag) else {
            return Err(not_found(flag));
        };
        let evaluation = match context.targeting_key.as_deref().filter(|k| !k.is_empty()) {
            Some(user) => view.evaluate(flag, user),
            None => {
                let anyone = view.evaluate(flag, "");
                if !same_for_everyone(compiled, anyone.reason) {
                    return Err(EvaluationError {
                        code: EvaluationErrorCode::TargetingKeyMissing,
                        message: Some(format!(
                            "flag `{flag}` depends on the user: the evaluation context needs a targeting_key"
                        )),
                    });
                }
                anyone
            }
        };
        let reason = match evaluation.reason {
            Reason::InRollout | Reason::OutOfRollout | Reason::Split => EvaluationReason::Split,
            Reason::Included | Reason::Excluded | Reason::RuleMatch => {
                EvaluationReason::TargetingMatch
            }
            Reason::KillSwitch | Reason::ExperimentalDisabled | Reason::PrerequisiteFailed => {
                EvaluationReason::Disabled
            }
            Reason::On => EvaluationReason::Static,
            Reason::Default => EvaluationReason::Default,
            // The flag was found in this same view; stay total regardless.
            Reason::UnknownFlag => return Err(not_found(flag)),
        };
        Ok(ResolutionDetails {
            value: evaluation.enabled,
            variant: Some(if evaluation.enabled { "on" } else { "off" }.to_owned()),
            reason: Some(reason),
            flag_metadata: Some(metadata(compiled, &evaluation)),
        })
    }
}

/// Whether `flag` answers the same for every user, given the reason it
/// gave one user: the kill switch and the experimental rule come before the
/// user lists; "on" without lists means no percentage either.
fn same_for_everyone(flag: &Flag, reason: Reason) -> bool {
    match reason {
        Reason::KillSwitch | Reason::ExperimentalDisabled => true,
        Reason::On => flag.include().next().is_none() && flag.exclude().next().is_none(),
        _ => false,
    }
}

fn metadata(flag: &Flag, evaluation: &Evaluation) -> FlagMetadata {
    // At most five entries: sized once, never rehashed.
    let mut metadata = FlagMetadata {
        values: HashMap::with_capacity(5),
    };
    metadata.add_value("reason", evaluation.reason.as_str());
    metadata.add_value("class", flag.class().as_str());
    match flag.targeting() {
        Targeting::Rollout { id, percentage } => {
            metadata.add_value("rollout", &**id);
            metadata.add_value("percentage", percentage.as_percent());
        }
        Targeting::Percentage(percentage) => {
            metadata.add_value("percentage", percentage.as_percent());
        }
        Targeting::Everyone => {}
    }
    if let Some(bucket) = evaluation.bucket {
        metadata.add_value("bucket", i64::from(bucket));
    }
    metadata
}

fn not_found(flag: &str) -> EvaluationError {
    EvaluationError {
        code: EvaluationErrorCode::FlagNotFound,
        message: Some(format!("flag `{flag}` is not in the current flag config")),
    }
}

fn type_mismatch<T>(flag: &str, asked: &str) -> EvaluationResult<T> {
    Err(EvaluationError {
        code: EvaluationErrorCode::TypeMismatch,
        message: Some(format!(
            "flag `{flag}` is boolean; genesis-flags has no {asked} flags"
        )),
    })
}

#[open_feature::async_trait]
impl FeatureProvider for GenesisProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag_key, evaluation_context)
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        type_mismatch(flag_key, "integer")
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        type_mismatch(flag_key, "float")
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        type_mismatch(flag_key, "string")
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        type_mismatch(flag_key, "struct")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use open_feature::FlagMetadataValue;

    const CONFIG: &str = r#"{"version": 1,
        "rollouts": {"r": {"percentage": 50}},
        "flags": {
            "bound": {"rollout": "r", "include": ["qa-1"], "exclude": ["vip-7"]},
            "own": {"percentage": 12.5},
            "everyone": {},
            "listed": {"include": ["qa-1"]},
            "killed": {"enabled": false, "rollout": "r"},
            "lab": {"class": "experimental"}
        }}"#;

    fn provider() -> GenesisProvider {
        GenesisProvider::new(FlagStore::from_json(CONFIG).unwrap())
    }

    fn user(key: &str) -> EvaluationContext {
        EvaluationContext::default().with_targeting_key(key)
    }

    #[test]
    fn reasons_map_rule_by_rule() {
        let p = provider();
        let reason = |flag: &str, key: &str| p.resolve(flag, &user(key)).unwrap().reason.unwrap();
        assert_eq!(reason("bound", "user-1"), EvaluationReason::Split);
        assert_eq!(reason("own", "user-1"), EvaluationReason::Split);
        assert_eq!(reason("bound", "qa-1"), EvaluationReason::TargetingMatch);
        assert_eq!(reason("bound", "vip-7"), EvaluationReason::TargetingMatch);
        assert_eq!(reason("killed", "qa-1"), EvaluationReason::Disabled);
        assert_eq!(reason("lab", "user-1"), EvaluationReason::Disabled);
        assert_eq!(reason("everyone", "user-1"), EvaluationReason::Static);
    }

    #[test]
    fn values_are_the_stores() {
        let p = provider();
        for i in 0..2000 {
            let key = format!("user-{i}");
            for flag in ["bound", "own", "everyone", "listed", "killed", "lab"] {
                let details = p.resolve(flag, &user(&key)).unwrap();
                let direct = p.store().evaluate(flag, &key);
                assert_eq!(details.value, direct.enabled, "{flag} {key}");
                let variant = if direct.enabled { "on" } else { "off" };
                assert_eq!(details.variant.as_deref(), Some(variant));
            }
        }
    }

    #[test]
    fn a_missing_targeting_key_is_an_error_only_where_the_user_matters() {
        let p = provider();
        for context in [EvaluationContext::default(), user("")] {
            for flag in ["bound", "own", "listed"] {
                let e = p.resolve(flag, &context).unwrap_err();
                assert_eq!(e.code, EvaluationErrorCode::TargetingKeyMissing, "{flag}");
            }
            assert!(p.resolve("everyone", &context).unwrap().value);
            assert!(!p.resolve("killed", &context).unwrap().value);
            assert!(!p.resolve("lab", &context).unwrap().value);
        }
    }

    #[test]
    fn metadata_names_the_rollout_its_percentage_and_the_bucket() {
        let p = provider();
        let details = p.resolve("bound", &user("user-1")).unwrap();
        let m = details.flag_metadata.unwrap().values;
        assert_eq!(m["rollout"], FlagMetadataValue::String("r".into()));
        assert_eq!(m["percentage"], FlagMetadataValue::Float(50.0));
        assert_eq!(m["class"], FlagMetadataValue::String("critical".into()));
        let bucket = crate::bucket("r", "user-1");
        assert_eq!(m["bucket"], FlagMetadataValue::Int(i64::from(bucket)));
        let m = p
            .resolve("own", &user("u"))
            .unwrap()
            .flag_metadata
            .unwrap()
            .values;
        assert_eq!(m["percentage"], FlagMetadataValue::Float(12.5));
        assert!(!m.contains_key("rollout"));
        let m = p
            .resolve("killed", &user("u"))
            .unwrap()
            .flag_metadata
            .unwrap()
            .values;
        assert_eq!(m["reason"], FlagMetadataValue::String("kill_switch".into()));
        assert!(!m.contains_key("bucket"));
        let e = p.resolve("nope", &user("u")).unwrap_err();
        assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
        assert!(e.message.unwrap().contains("`nope`"));
    }
}
