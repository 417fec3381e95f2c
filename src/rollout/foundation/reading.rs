//! One signal as a source reported it: a value, nothing, or a failure.

use serde::{Deserialize, Serialize};

/// One signal of an observation: a value, nothing (no data), or a failure of
/// the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading<T> {
    /// The source answered with a value.
    Value(T),
    /// The source answered with nothing (empty result, no traffic).
    Missing,
    /// The source failed (unreachable, error response, wrong shape); why.
    Failed(String),
}

impl<T> Reading<T> {
    /// The value, if there is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Reading::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the source answered with nothing.
    pub fn is_missing(&self) -> bool {
        matches!(self, Reading::Missing)
    }
}
