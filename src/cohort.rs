//! [`Cohort`]: whether a request's user is in a rollout, as metrics label it.

use std::fmt;

use crate::percentage::Percentage;

/// Whether a user is inside a shared rollout at the percentage a snapshot
/// applies: the bucket test of evaluation (`bucket(rollout, user) <
/// percentage`), regardless of kill switches and user lists.
///
/// Services label their request metrics with it (`cohort="in"` or
/// `cohort="out"`), so a rollout can be judged on the users it flags rather
/// than on a global rate that dilutes them.
///
/// ```
/// use genesis_flags::{Cohort, Percentage};
/// let five = Percentage::from_percent(5.0)?;
/// assert_eq!(Cohort::of(five, 49_999), Cohort::In);
/// assert_eq!(Cohort::of(five, 50_000).as_str(), "out");
/// # Ok::<(), genesis_flags::PercentageError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cohort {
    /// The user's bucket is under the percentage: the rollout's flags apply.
    In,
    /// The user's bucket is at or above the percentage.
    Out,
}

impl Cohort {
    /// The cohort of a user with `bucket` in a rollout at `percentage`.
    #[inline(always)]
    #[must_use]
    pub const fn of(percentage: Percentage, bucket: u32) -> Self {
        if percentage.contains(bucket) {
            Cohort::In
        } else {
            Cohort::Out
        }
    }

    /// `true` for [`Cohort::In`].
    #[inline(always)]
    #[must_use]
    pub const fn is_in(self) -> bool {
        matches!(self, Cohort::In)
    }

    /// `"in"` or `"out"`: the value of the `cohort` metrics label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Cohort::In => "in",
            Cohort::Out => "out",
        }
    }
}

impl fmt::Display for Cohort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edges_of_the_percentage() {
        assert_eq!(Cohort::of(Percentage::ZERO, 0), Cohort::Out);
        assert_eq!(Cohort::of(Percentage::HUNDRED, 999_999), Cohort::In);
        let p = Percentage::from_ppm(10).unwrap();
        assert!(Cohort::of(p, 9).is_in());
        assert!(!Cohort::of(p, 10).is_in());
        assert_eq!(Cohort::In.to_string(), "in");
    }
}
