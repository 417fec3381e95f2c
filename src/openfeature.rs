//! An [OpenFeature](https://openfeature.dev) provider over a [`FlagStore`]
//! (cargo feature `openfeature`, on the `open-feature` crate 0.3).
//!
//! All five types resolve: a flag serves booleans, strings, integers,
//! floats or objects (its `variants`; a flag without them is boolean), and
//! asking for another type is `TypeMismatch` (a float asked of an integer
//! flag is converted). Flags are resolved for the evaluation context's
//! `targeting_key` and its custom fields, mapped to attributes by name
//! (string, integer and float as numbers, boolean, date-time as a
//! timestamp; structures are not read), exactly as
//! [`FlagStore::evaluate_for`] does: same buckets, same answer. How each
//! outcome maps:
//!
//! | genesis-flags                                   | OpenFeature                                 |
//! |-------------------------------------------------|---------------------------------------------|
//! | in or out of a rollout/percentage, a rule split | `Split`                                     |
//! | user in `include` / `exclude`, a rule matched   | `TargetingMatch`                            |
//! | no rule matched: the default variant            | `Default`                                   |
//! | kill switch, experimental off, prerequisite     | `Disabled` (the `off` variant's value)      |
//! | on for everyone (no rules, no percentage)       | `Static`                                    |
//! | unknown flag (any type)                         | error `FlagNotFound`                        |
//! | a type the flag does not serve                  | error `TypeMismatch`                        |
//! | a pending store before its first document       | error `ProviderNotReady`                    |
//! | no (or an empty) `targeting_key` where the answer depends on it (user lists, a percentage or split by the key) | error `TargetingKeyMissing` |
//!
//! Errors are the SDK's `Err(EvaluationError)`: the client then hands the
//! application the default value it passed, which is OpenFeature's default
//! outcome. Every successful resolution carries the served variant's name
//! and flag metadata: `reason` (the genesis-flags [`Reason`] name),
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
//!     "flags": {"htdag_enabled": {"rollout": "phase_4_deployment"},
//!               "theme": {"variants": {"light": "white", "dark": "black"}, "default": "light", "off": "light",
//!                         "rules": [{"when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
//!                                    "serve": "dark"}]}}}"#)?;
//! let provider = GenesisProvider::new(store);
//! let context = EvaluationContext::default()
//!     .with_targeting_key("user-42")
//!     .with_custom_field("plan", "pro");
//! let details = provider.resolve("htdag_enabled", &context).expect("a known flag");
//! assert!(details.value);
//! assert_eq!(details.reason, Some(EvaluationReason::Split));
//! let theme = provider.resolve_string("theme", &context).expect("a string flag");
//! assert_eq!((theme.value.as_str(), theme.variant.as_deref()), ("black", Some("dark")));
//! assert_eq!(theme.reason, Some(EvaluationReason::TargetingMatch));
//! # Ok::<(), genesis_flags::ConfigError>(())
//! ```
//!
//! Register it with the SDK (`OpenFeature::singleton_mut().await.set_provider(provider)`)
//! and evaluate through a client (`client.get_bool_value("htdag_enabled", Some(&context), None)`).
//! The provider never blocks: its futures are ready at once.

use std::collections::HashMap;
use std::time::SystemTime;

use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue, Value,
};

use crate::context::{Attribute, AttributeKey, Context};
use crate::evaluation::{Evaluation, Reason};
use crate::flag::{Flag, Targeting};
use crate::store::FlagStore;
use crate::variant::{VariantType, VariantValue};

/// The provider's name, as [`FeatureProvider::metadata`] gives it.
pub const PROVIDER_NAME: &str = "genesis-flags";

/// An OpenFeature provider that resolves flags of every type from a
/// [`FlagStore`].
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

    /// Resolves a boolean flag, synchronously: what
    /// [`FeatureProvider::resolve_bool_value`] answers.
    ///
    /// # Errors
    ///
    /// `FLAG_NOT_FOUND` for an unknown flag, `TYPE_MISMATCH` for a flag whose
    /// variants are not booleans, `PROVIDER_NOT_READY` before the store's first
    /// load, `TARGETING_KEY_MISSING` when the answer depends on a key the context
    /// lacks.
    pub fn resolve(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve_as(flag, context, VariantType::Bool, VariantValue::as_bool)
    }

    /// Resolves a string flag.
    ///
    /// # Errors
    ///
    /// As for [`resolve`](Self::resolve), for string variants.
    pub fn resolve_string(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve_as(flag, context, VariantType::String, |v| {
            v.as_str().map(str::to_owned)
        })
    }

    /// Resolves an integer flag.
    ///
    /// # Errors
    ///
    /// As for [`resolve`](Self::resolve), for integer variants.
    pub fn resolve_int(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve_as(flag, context, VariantType::Integer, VariantValue::as_i64)
    }

    /// Resolves a float flag (an integer flag's value converts).
    ///
    /// # Errors
    ///
    /// As for [`resolve`](Self::resolve), for float (or integer) variants.
    pub fn resolve_float(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve_as(flag, context, VariantType::Float, VariantValue::as_f64)
    }

    /// Resolves an object flag.
    ///
    /// # Errors
    ///
    /// As for [`resolve`](Self::resolve), for object variants.
    pub fn resolve_struct(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve_as(flag, context, VariantType::Object, |v| {
            v.as_object().map(to_struct)
        })
    }

    fn resolve_as<T>(
        &self,
        flag: &str,
        context: &EvaluationContext,
        asked: VariantType,
        convert: impl Fn(&VariantValue) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        if !self.store.is_ready() {
            return Err(EvaluationError {
                code: EvaluationErrorCode::ProviderNotReady,
                message: Some("no flag document has been loaded yet".to_owned()),
            });
        }
        let view = self.store.view();
        let Some(compiled) = view.snapshot().flag(flag) else {
            return Err(not_found(flag));
        };
        let served = compiled.variant_type();
        let compatible =
            served == asked || (asked == VariantType::Float && served == VariantType::Integer);
        if !compatible {
            return Err(EvaluationError {
                code: EvaluationErrorCode::TypeMismatch,
                message: Some(format!(
                    "flag `{flag}` serves {served} values, not {}",
                    asked.as_str()
                )),
            });
        }
        let attributes = attributes(context);
        let key = context.targeting_key.as_deref().unwrap_or_default();
        let variation = view.variation(flag, &Context::new(key, &attributes));
        let evaluation = variation.evaluation();
        if key.is_empty() && needs_key(compiled, &evaluation) {
            return Err(EvaluationError {
                code: EvaluationErrorCode::TargetingKeyMissing,
                message: Some(format!(
                    "flag `{flag}` depends on the user: the evaluation context needs a targeting_key"
                )),
            });
        }
        if evaluation.variant.is_none() || evaluation.reason == Reason::Error {
            return program_outcome(flag, compiled, &evaluation, &convert);
        }
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
            // Handled above.
            Reason::Error => return program_outcome(flag, compiled, &evaluation, &convert),
        };
        let Some(value) = variation.value().and_then(&convert) else {
            return Err(not_found(flag));
        };
        Ok(ResolutionDetails {
            value,
            variant: variation.name().map(str::to_owned),
            reason: Some(reason),
            flag_metadata: Some(metadata(compiled, &evaluation)),
        })
    }
}

/// The context's custom fields as attributes. A structure's fields are
/// flattened to dotted names (`user.name`), as flagd's `var` reads them;
/// arrays are skipped.
fn attributes(context: &EvaluationContext) -> Vec<Attribute<'_>> {
    let mut out = Vec::with_capacity(context.custom_fields.len());
    for (name, value) in &context.custom_fields {
        let key = AttributeKey::new(name);
        out.push(match value {
            EvaluationContextFieldValue::Bool(b) => key.boolean(*b),
            EvaluationContextFieldValue::Int(i) => key.number(*i as f64),
            EvaluationContextFieldValue::Float(f) => key.number(*f),
            EvaluationContextFieldValue::String(s) => key.string(s),
            EvaluationContextFieldValue::DateTime(t) => key.timestamp(SystemTime::from(*t)),
            EvaluationContextFieldValue::Struct(s) => {
                if let Some(fields) = s.downcast_ref::<StructValue>() {
                    flatten(name, fields, &mut out, 0);
                }
                continue;
            }
        });
    }
    out
}

/// Adds the fields of a structure as `prefix.field` attributes (nested
/// structures up to a bounded depth).
fn flatten<'a>(prefix: &str, fields: &'a StructValue, out: &mut Vec<Attribute<'a>>, depth: usize) {
    if depth >= crate::rule::MAX_DEPTH {
        return;
    }
    for (name, value) in &fields.fields {
        let path = format!("{prefix}.{name}");
        let key = AttributeKey::new(&path);
        match value {
            Value::Bool(b) => out.push(key.boolean(*b)),
            Value::Int(i) => out.push(key.number(*i as f64)),
            Value::Float(f) => out.push(key.number(*f)),
            Value::String(s) => out.push(key.string(s)),
            Value::Struct(inner) => flatten(&path, inner, out, depth + 1),
            Value::Array(_) => {}
        }
    }
}

/// What a front-end program's evaluation that served no variant means
/// (flagd): a disabled flag serves its default variant with `Disabled`
/// when it has one; otherwise, and for a run-time fault or a flag without a
/// default variant, the SDK hands the caller its default value.
fn program_outcome<T>(
    flag: &str,
    compiled: &Flag,
    evaluation: &Evaluation,
    convert: &impl Fn(&VariantValue) -> Option<T>,
) -> EvaluationResult<ResolutionDetails<T>> {
    let general = |message: String| EvaluationError {
        code: EvaluationErrorCode::General(message.clone()),
        message: Some(message),
    };
    match evaluation.reason {
        Reason::KillSwitch => {
            let default = compiled.program().and_then(|p| p.default_variant());
            match default.and_then(|v| compiled.variant_value(v).and_then(convert).map(|x| (v, x)))
            {
                Some((variant, value)) => Ok(ResolutionDetails {
                    value,
                    variant: Some(compiled.variant_name(variant).to_owned()),
                    reason: Some(EvaluationReason::Disabled),
                    flag_metadata: Some(metadata(compiled, evaluation)),
                }),
                None => Err(general(format!("flag `{flag}` is disabled"))),
            }
        }
        Reason::Default => Err(general(format!(
            "flag `{flag}` has no default variant: the caller's default applies"
        ))),
        _ => Err(general(format!(
            "the targeting of flag `{flag}` named no variant of the flag"
        ))),
    }
}

/// Whether an evaluation made without a targeting key reached a step that
/// reads the key: the user lists, or a percentage or split bucketed by it.
/// The kill switch, the experimental rule and prerequisites come first.
fn needs_key(flag: &Flag, evaluation: &Evaluation) -> bool {
    if matches!(
        evaluation.reason,
        Reason::KillSwitch | Reason::ExperimentalDisabled | Reason::PrerequisiteFailed
    ) {
        return false;
    }
    let lists = flag.include().next().is_some() || flag.exclude().next().is_some();
    let percentage_by_key = evaluation.reason == Reason::OutOfRollout
        && evaluation.bucket.is_none()
        && flag.buckets_by_key();
    lists || percentage_by_key || (flag.splits_by_key() && evaluation.reason != Reason::RuleMatch)
}

fn to_struct(map: &serde_json::Map<String, serde_json::Value>) -> StructValue {
    StructValue {
        fields: map
            .iter()
            .filter_map(|(k, v)| to_value(v).map(|v| (k.clone(), v)))
            .collect(),
    }
}

/// JSON to an OpenFeature value; `null` has no counterpart and is left out.
fn to_value(value: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::Array(items.iter().filter_map(to_value).collect()),
        J::Object(map) => Value::Struct(to_struct(map)),
    })
}

fn metadata(flag: &Flag, evaluation: &Evaluation) -> FlagMetadata {
    // A front-end's flag carries the metadata of its document, as is.
    if let Some(document) = flag.program().and_then(|p| p.metadata()) {
        let mut metadata = FlagMetadata {
            values: HashMap::with_capacity(document.len()),
        };
        for (key, value) in document {
            match value {
                serde_json::Value::Bool(b) => metadata.add_value(key, *b),
                serde_json::Value::String(s) => metadata.add_value(key, s.as_str()),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => metadata.add_value(key, i),
                    None => metadata.add_value(key, n.as_f64().unwrap_or(f64::NAN)),
                },
                _ => {}
            }
        }
        return metadata;
    }
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

#[open_feature::async_trait]
impl FeatureProvider for GenesisProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    fn status(&self) -> ProviderStatus {
        if self.store.is_ready() {
            ProviderStatus::Ready
        } else {
            ProviderStatus::NotReady
        }
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
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve_int(flag_key, evaluation_context)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve_float(flag_key, evaluation_context)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve_string(flag_key, evaluation_context)
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve_struct(flag_key, evaluation_context)
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
