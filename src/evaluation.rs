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
    /// A prerequisite flag does not serve what this flag requires: off.
    PrerequisiteFailed,
    /// The user is in the flag's `exclude` list: off.
    Excluded,
    /// The user is in the flag's `include` list: on (the default variant).
    Included,
    /// A rule matched and served its variant.
    RuleMatch,
    /// A rule matched and its weighted split chose the variant by the bucket.
    Split,
    /// The user's bucket is under the rollout's (or the flag's own) percentage: on.
    InRollout,
    /// The user's bucket is at or above the percentage, or the context has
    /// no bucketing key (an empty key is not a user): off.
    OutOfRollout,
    /// The flag has rules and none matched, and no percentage applies: its
    /// default variant.
    Default,
    /// An enabled flag without rules or percentage: its default variant (on,
    /// for a flag without `variants`) for everyone.
    On,
    /// A flagd targeting rule named no variant of the flag (a run-time
    /// fault): no variant is served, the caller's default applies.
    Error,
}

impl Reason {
    /// A stable snake_case name, for logs and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownFlag => "unknown_flag",
            Reason::KillSwitch => "kill_switch",
            Reason::ExperimentalDisabled => "experimental_disabled",
            Reason::PrerequisiteFailed => "prerequisite_failed",
            Reason::Excluded => "excluded",
            Reason::Included => "included",
            Reason::RuleMatch => "rule_match",
            Reason::Split => "split",
            Reason::InRollout => "in_rollout",
            Reason::OutOfRollout => "out_of_rollout",
            Reason::Default => "default",
            Reason::On => "on",
            Reason::Error => "error",
        }
    }

    /// Every reason, in evaluation order.
    pub const ALL: [Reason; 13] = [
        Reason::UnknownFlag,
        Reason::KillSwitch,
        Reason::ExperimentalDisabled,
        Reason::PrerequisiteFailed,
        Reason::Excluded,
        Reason::Included,
        Reason::RuleMatch,
        Reason::Split,
        Reason::InRollout,
        Reason::OutOfRollout,
        Reason::Default,
        Reason::On,
        Reason::Error,
    ];

    /// Whether the flag is "on" for the context by this reason (the served
    /// variant is the on path's: included, a rule, a split, in its
    /// percentage, its default), as opposed to off (unknown, kill switch,
    /// experimental, prerequisite, excluded, out of its percentage).
    /// [`Evaluation::enabled`] is about the served variant instead.
    #[must_use]
    pub const fn is_on_path(self) -> bool {
        matches!(
            self,
            Reason::Included
                | Reason::RuleMatch
                | Reason::Split
                | Reason::InRollout
                | Reason::Default
                | Reason::On
        )
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
    /// Whether the flag is on for the user: for a boolean flag, the served
    /// value; for a flag of another type, whether it served something other
    /// than its `off` variant.
    pub enabled: bool,
    /// The rule that decided.
    pub reason: Reason,
    /// The user's bucket in `[0, 1_000_000)`, when a percentage or a split decided.
    pub bucket: Option<u32>,
    /// The served variant, by index in the flag's variants (see
    /// [`Flag::variant_name`](crate::Flag::variant_name)); for a flag without
    /// `variants`, 0 is `off` and 1 is `on`. `None` for an unknown flag.
    pub variant: Option<u16>,
}

impl Evaluation {
    /// A flag without targeting (its implicit variants `off`, `on`).
    #[inline(always)]
    pub(crate) const fn fixed(reason: Reason) -> Self {
        let enabled = reason.is_on_path();
        Evaluation {
            enabled,
            reason,
            bucket: None,
            variant: Some(enabled as u16),
        }
    }

    /// An unknown flag.
    #[inline(always)]
    pub(crate) const fn unknown() -> Self {
        Evaluation {
            enabled: false,
            reason: Reason::UnknownFlag,
            bucket: None,
            variant: None,
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
            variant: Some(enabled as u16),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_reasons_carry_their_value() {
        assert!(!Evaluation::unknown().enabled);
        assert_eq!(Evaluation::unknown().variant, None);
        for (reason, on) in [
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
