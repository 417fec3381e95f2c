//! [`Variation`]: the served variant of one evaluation, its name and value
//! borrowed from the snapshot.

use crate::evaluation::{Evaluation, Reason};
use crate::flag::Flag;
use crate::variant::VariantValue;

/// The served variant of one evaluation: its name and value borrowed from
/// the snapshot (no copy of a string or object), and the [`Evaluation`].
#[derive(Debug, Clone, Copy)]
pub struct Variation<'s> {
    evaluation: Evaluation,
    flag: Option<&'s Flag>,
}

impl<'s> Variation<'s> {
    #[inline]
    pub(crate) fn new(evaluation: Evaluation, flag: Option<&'s Flag>) -> Self {
        Variation { evaluation, flag }
    }

    /// The evaluation (reason, bucket, variant index).
    #[inline]
    #[must_use]
    pub fn evaluation(&self) -> Evaluation {
        self.evaluation
    }

    /// Why.
    #[inline]
    #[must_use]
    pub fn reason(&self) -> Reason {
        self.evaluation.reason
    }

    /// The flag, unless it is unknown.
    #[inline]
    #[must_use]
    pub fn flag(&self) -> Option<&'s Flag> {
        self.flag
    }

    /// The served variant's name; `None` for an unknown flag.
    #[inline]
    #[must_use]
    pub fn name(&self) -> Option<&'s str> {
        let flag = self.flag?;
        self.evaluation.variant.map(|v| flag.variant_name(v))
    }

    /// The served value; `None` for an unknown flag.
    #[inline]
    #[must_use]
    pub fn value(&self) -> Option<&'s VariantValue> {
        let flag = self.flag?;
        flag.variant_value(self.evaluation.variant?)
    }

    /// The served boolean, or `default` (unknown flag, or not boolean).
    #[inline]
    #[must_use]
    pub fn bool_or(&self, default: bool) -> bool {
        self.value()
            .and_then(VariantValue::as_bool)
            .unwrap_or(default)
    }

    /// The served string, or `default`.
    #[inline]
    #[must_use]
    pub fn str_or(&self, default: &'s str) -> &'s str {
        self.value()
            .and_then(VariantValue::as_str)
            .unwrap_or(default)
    }

    /// The served integer, or `default`.
    #[inline]
    #[must_use]
    pub fn i64_or(&self, default: i64) -> i64 {
        self.value()
            .and_then(VariantValue::as_i64)
            .unwrap_or(default)
    }

    /// The served number (float or integer), or `default`.
    #[inline]
    #[must_use]
    pub fn f64_or(&self, default: f64) -> f64 {
        self.value()
            .and_then(VariantValue::as_f64)
            .unwrap_or(default)
    }

    /// The served object, if the flag serves objects.
    #[inline]
    #[must_use]
    pub fn object(&self) -> Option<&'s serde_json::Map<String, serde_json::Value>> {
        self.value().and_then(VariantValue::as_object)
    }
}
