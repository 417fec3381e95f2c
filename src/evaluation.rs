//! The result of evaluating a flag for a user: a value, never an error.

use std::fmt;

/// Why a flag is on or off for a user. The first matching rule wins, in the
/// order of the variants below (which is also their `Ord` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The flag is not in the current snapshot: off.
    UnknownFlag,
    /// `enabled: false` in the config: off for everyone.
    KillSwitch,
    /// An experimental flag in a store that does not allow them: off.
    ExperimentalDisabled,
    /// The user is in the flag's `exclude` list: off.
    Excluded,
    /// The user is in the flag's `include` list: on.
    Included,
    /// The user's bucket is under the rollout's (or the flag's own) percentage: on.
    InRollout,
    /// The user's bucket is at or above the percentage: off.
    OutOfRollout,
    /// An enabled flag with no percentage: on for everyone.
    On,
}

impl Reason {
    /// A stable snake_case name, for logs and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownFlag => "unknown_flag",
            Reason::KillSwitch => "kill_switch",
            Reason::ExperimentalDisabled => "experimental_disabled",
            Reason::Excluded => "excluded",
            Reason::Included => "included",
            Reason::InRollout => "in_rollout",
            Reason::OutOfRollout => "out_of_rollout",
            Reason::On => "on",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one evaluation: whether the flag is on, why, and the user's
/// bucket when a percentage was consulted.
///
/// ```
/// use genesis_flags::{FlagStore, Reason};
/// let store = FlagStore::from_json(r#"{"version":1,"flags":{"f":{"percentage":100}}}"#)?;
/// let e = store.evaluate("f", "user-1");
/// assert!(e.enabled);
/// assert_eq!(e.reason, Reason::InRollout);
/// assert!(e.bucket.is_some());
/// # Ok::<(), genesis_flags::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Evaluation {
    /// Whether the flag is on for the user.
    pub enabled: bool,
    /// The rule that decided.
    pub reason: Reason,
    /// The user's bucket in `[0, 1_000_000)`, when a percentage decided.
    pub bucket: Option<u32>,
}

impl Evaluation {
    #[inline(always)]
    pub(crate) const fn fixed(reason: Reason) -> Self {
        let enabled = matches!(reason, Reason::Included | Reason::InRollout | Reason::On);
        Evaluation {
            enabled,
            reason,
            bucket: None,
        }
    }

    #[inline(always)]
    pub(crate) const fn bucketed(enabled: bool, bucket: u32) -> Self {
        Evaluation {
            enabled,
            reason: if enabled {
                Reason::InRollout
            } else {
                Reason::OutOfRollout
            },
            bucket: Some(bucket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_reasons_carry_their_value() {
        for (reason, on) in [
            (Reason::UnknownFlag, false),
            (Reason::KillSwitch, false),
            (Reason::ExperimentalDisabled, false),
            (Reason::Excluded, false),
            (Reason::Included, true),
            (Reason::On, true),
        ] {
            assert_eq!(Evaluation::fixed(reason).enabled, on, "{reason}");
        }
        assert_eq!(Evaluation::bucketed(false, 7).reason, Reason::OutOfRollout);
        assert_eq!(Evaluation::bucketed(true, 7).bucket, Some(7));
    }
}
