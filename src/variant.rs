//! Typed variants: what a flag serves ([`VariantValue`]), the table of a
//! flag's variants, and weighted [`Split`]s over the bucket.
//!
//! A split lays its variants on the bucket line in declaration order, each
//! over its weight in ppm (cumulative thresholds): a user's variant is the
//! first whose cumulative end is above their bucket. A user changes variant
//! only when a boundary crosses their bucket, so moving weight between two
//! neighbouring variants moves users only between those two: with two
//! variants (an A/B test) growing one only takes users from the other, and a
//! ramp through more variants stays monotone when it moves weight between
//! neighbours (declare them in ramp order). No assignment can be monotone
//! for every change of three or more weights (the targeting docs give the
//! three-variant counter-example), so the split promises this one.

use std::fmt;

use crate::bucket::{Seed, BUCKETS};
use crate::context::AttributeKey;

/// The value a flag serves for one of its variants.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VariantValue {
    /// A boolean.
    Bool(bool),
    /// A string.
    String(Box<str>),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A JSON object.
    Object(serde_json::Map<String, serde_json::Value>),
}

impl VariantValue {
    /// The value's type.
    #[must_use]
    pub fn kind(&self) -> VariantType {
        match self {
            VariantValue::Bool(_) => VariantType::Bool,
            VariantValue::String(_) => VariantType::String,
            VariantValue::Integer(_) => VariantType::Integer,
            VariantValue::Float(_) => VariantType::Float,
            VariantValue::Object(_) => VariantType::Object,
        }
    }

    /// The boolean, for a boolean value.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            VariantValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The string, for a string value (borrowed: no copy).
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            VariantValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, for an integer value.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            VariantValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The number, for a float or an integer value.
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            VariantValue::Float(f) => Some(*f),
            VariantValue::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The object, for an object value (borrowed: no copy).
    #[must_use]
    pub fn as_object(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        match self {
            VariantValue::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// The type of a flag's variants: one per flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VariantType {
    /// `true` / `false` (every flag without `variants` is boolean).
    Bool,
    /// Strings.
    String,
    /// Integers (JSON numbers without a fraction or exponent).
    Integer,
    /// Floats (any variant written with a fraction or exponent makes the flag float).
    Float,
    /// JSON objects.
    Object,
}

impl VariantType {
    /// `"boolean"`, `"string"`, `"integer"`, `"float"` or `"object"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            VariantType::Bool => "boolean",
            VariantType::String => "string",
            VariantType::Integer => "integer",
            VariantType::Float => "float",
            VariantType::Object => "object",
        }
    }
}

impl fmt::Display for VariantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flag's variants, in declaration order, all of one type.
#[derive(Debug, Clone)]
pub(crate) struct Variants {
    names: Box<[Box<str>]>,
    values: Box<[VariantValue]>,
    kind: VariantType,
}

/// Index of `off` in the implicit variants of a flag without `variants`.
pub(crate) const IMPLICIT_OFF: u16 = 0;
/// Index of `on` in the implicit variants of a flag without `variants`.
pub(crate) const IMPLICIT_ON: u16 = 1;

impl Variants {
    /// The variants of a flag that declares none: `off` (false) and `on` (true).
    pub(crate) fn implicit() -> Self {
        Variants {
            names: Box::new(["off".into(), "on".into()]),
            values: Box::new([VariantValue::Bool(false), VariantValue::Bool(true)]),
            kind: VariantType::Bool,
        }
    }

    /// Declared variants; validation checked one type and unique names.
    pub(crate) fn new(entries: Vec<(Box<str>, VariantValue)>, kind: VariantType) -> Self {
        let (names, values): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
        Variants {
            names: names.into(),
            values: values.into(),
            kind,
        }
    }

    pub(crate) fn kind(&self) -> VariantType {
        self.kind
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn name(&self, index: u16) -> &str {
        self.names.get(usize::from(index)).map_or("", |n| n)
    }

    pub(crate) fn value(&self, index: u16) -> Option<&VariantValue> {
        self.values.get(usize::from(index))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &VariantValue)> {
        self.names.iter().map(|n| &**n).zip(self.values.iter())
    }
}

/// A weighted split of the bucket between variants.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    /// `(cumulative end in ppm, variant)`, in declaration order; the last end
    /// is `BUCKETS` (validation checks that the weights sum to 100%).
    ends: Box<[(u32, u16)]>,
    pub(crate) seed: Seed,
    pub(crate) bucket_by: Option<AttributeKey>,
}

impl Split {
    /// A split over `(variant, weight in ppm)` in declaration order.
    pub(crate) fn new(weights: &[(u16, u32)], seed: Seed, bucket_by: Option<AttributeKey>) -> Self {
        let mut end = 0u32;
        let ends = weights
            .iter()
            .map(|&(variant, ppm)| {
                end = end.saturating_add(ppm).min(BUCKETS);
                (end, variant)
            })
            .collect();
        Split {
            ends,
            seed,
            bucket_by,
        }
    }

    /// `(cumulative end in ppm, variant)`, in declaration order.
    pub(crate) fn ends(&self) -> &[(u32, u16)] {
        &self.ends
    }

    /// The variant of `bucket`: the first whose cumulative end is above it.
    #[inline]
    pub(crate) fn pick(&self, bucket: u32) -> u16 {
        for &(end, variant) in self.ends.iter() {
            if bucket < end {
                return variant;
            }
        }
        // Unreachable for a validated split (the last end is BUCKETS).
        self.ends.last().map_or(0, |&(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_thresholds_in_declaration_order() {
        let split = Split::new(&[(2, 250_000), (0, 0), (1, 750_000)], Seed::ZERO, None);
        assert_eq!(split.pick(0), 2);
        assert_eq!(split.pick(249_999), 2);
        assert_eq!(split.pick(250_000), 1);
        assert_eq!(split.pick(999_999), 1);
    }

    #[test]
    fn moving_weight_between_neighbours_moves_users_only_between_them() {
        let before = Split::new(
            &[(0, 300_000), (1, 300_000), (2, 400_000)],
            Seed::ZERO,
            None,
        );
        let after = Split::new(
            &[(0, 300_000), (1, 450_000), (2, 250_000)],
            Seed::ZERO,
            None,
        );
        for bucket in (0..BUCKETS).step_by(997) {
            let (a, b) = (before.pick(bucket), after.pick(bucket));
            assert!(a == b || (a == 2 && b == 1), "{bucket}: {a} -> {b}");
        }
    }
}
