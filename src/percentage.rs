//! [`Percentage`]: a rollout share with 1 ppm resolution.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bucket::BUCKETS;

/// A share of the population in parts per million (`0..=1_000_000`).
///
/// Config files write percentages as numbers in `[0, 100]` with at most four
/// decimals; `12.5` is `125_000` ppm. A user is inside a percentage when their
/// [bucket](crate::bucket) is strictly below [`ppm`](Self::ppm), so `0%` holds
/// nobody and `100%` holds everybody.
///
/// ```
/// use genesis_flags::Percentage;
/// let p = Percentage::from_percent(12.5)?;
/// assert_eq!(p.ppm(), 125_000);
/// assert!(p.contains(124_999) && !p.contains(125_000));
/// assert_eq!(p.to_string(), "12.5%");
/// assert!(Percentage::from_percent(150.0).is_err());
/// # Ok::<(), genesis_flags::PercentageError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percentage(u32);

/// Why a number is not a valid [`Percentage`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PercentageError {
    /// NaN or an infinity.
    #[error("{0} is not a finite number")]
    NotFinite(f64),
    /// Below 0 or above 100.
    #[error("{0} is outside 0..=100")]
    OutOfRange(f64),
    /// More than four decimals (finer than 1 ppm).
    #[error("{0} has more than 4 decimals (the resolution is 0.0001%)")]
    TooPrecise(f64),
    /// A ppm value above 1,000,000.
    #[error("{0} ppm is above 1000000 ppm (100%)")]
    PpmOutOfRange(u32),
}

impl Percentage {
    /// Nobody.
    pub const ZERO: Percentage = Percentage(0);
    /// Everybody.
    pub const HUNDRED: Percentage = Percentage(BUCKETS);

    /// From parts per million; `None` above 1,000,000.
    #[must_use]
    pub const fn from_ppm(ppm: u32) -> Option<Self> {
        if ppm <= BUCKETS {
            Some(Percentage(ppm))
        } else {
            None
        }
    }

    /// From parts per million, with an error naming the value above 1,000,000.
    ///
    /// # Errors
    ///
    /// [`PercentageError::PpmOutOfRange`] above 1,000,000.
    pub fn try_from_ppm(ppm: u32) -> Result<Self, PercentageError> {
        Self::from_ppm(ppm).ok_or(PercentageError::PpmOutOfRange(ppm))
    }

    /// From a percentage in `[0, 100]` with at most four decimals:
    /// `ppm = round(percent * 10_000)`.
    ///
    /// # Errors
    ///
    /// [`PercentageError`] for a value that is not finite, outside `[0, 100]`,
    /// or with more than four decimals.
    pub fn from_percent(percent: f64) -> Result<Self, PercentageError> {
        if !percent.is_finite() {
            return Err(PercentageError::NotFinite(percent));
        }
        if !(0.0..=100.0).contains(&percent) {
            return Err(PercentageError::OutOfRange(percent));
        }
        let scaled = percent * 10_000.0;
        let rounded = scaled.round();
        // Decimal inputs such as 12.3456 are not exact in binary; anything
        // within a millionth of a ppm is the decimal the user wrote.
        if (scaled - rounded).abs() > 1e-6 {
            return Err(PercentageError::TooPrecise(percent));
        }
        // In range by the checks above: 0 <= rounded <= 1_000_000.
        Ok(Percentage(rounded as u32))
    }

    /// Parts per million, `0..=1_000_000`.
    #[inline(always)]
    #[must_use]
    pub const fn ppm(self) -> u32 {
        self.0
    }

    /// As a percentage, e.g. `12.5`.
    #[must_use]
    pub fn as_percent(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }

    /// Whether a bucket (`0..1_000_000`) is inside this share.
    #[inline(always)]
    #[must_use]
    pub const fn contains(self, bucket: u32) -> bool {
        bucket < self.0
    }
}

impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let frac = self.0 % 10_000;
        if frac == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{frac:04}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for Percentage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(10_000) {
            serializer.serialize_u32(self.0 / 10_000)
        } else {
            serializer.serialize_f64(self.as_percent())
        }
    }
}

impl<'de> Deserialize<'de> for Percentage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let percent = f64::deserialize(deserializer)?;
        Percentage::from_percent(percent).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_decimals_are_accepted_five_are_not() {
        assert_eq!(Percentage::from_percent(12.3456).unwrap().ppm(), 123_456);
        assert_eq!(Percentage::from_percent(0.0001).unwrap().ppm(), 1);
        assert_eq!(
            Percentage::from_percent(100.0).unwrap(),
            Percentage::HUNDRED
        );
        assert!(matches!(
            Percentage::from_percent(12.34567),
            Err(PercentageError::TooPrecise(_))
        ));
        assert!(matches!(
            Percentage::from_percent(0.00001),
            Err(PercentageError::TooPrecise(_))
        ));
    }

    #[test]
    fn range_and_finiteness_are_checked() {
        assert!(matches!(
            Percentage::from_percent(-0.5),
            Err(PercentageError::OutOfRange(_))
        ));
        assert!(matches!(
            Percentage::from_percent(100.0001),
            Err(PercentageError::OutOfRange(_))
        ));
        assert!(matches!(
            Percentage::from_percent(f64::NAN),
            Err(PercentageError::NotFinite(_))
        ));
        assert!(matches!(
            Percentage::from_percent(f64::INFINITY),
            Err(PercentageError::NotFinite(_))
        ));
        assert_eq!(Percentage::from_ppm(1_000_001), None);
    }

    #[test]
    fn every_ppm_round_trips_through_its_percent() {
        for ppm in (0..=BUCKETS).step_by(7).chain([BUCKETS]) {
            let p = Percentage::from_ppm(ppm).unwrap();
            assert_eq!(Percentage::from_percent(p.as_percent()).unwrap(), p);
        }
    }

    #[test]
    fn display_trims_trailing_zeros() {
        let show = |ppm| Percentage::from_ppm(ppm).unwrap().to_string();
        assert_eq!(show(0), "0%");
        assert_eq!(show(50_000), "5%");
        assert_eq!(show(125_000), "12.5%");
        assert_eq!(show(1), "0.0001%");
        assert_eq!(show(1_000_000), "100%");
    }

    #[test]
    fn serde_round_trip() {
        for ppm in [0, 1, 50_000, 125_000, 1_000_000] {
            let p = Percentage::from_ppm(ppm).unwrap();
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Percentage>(&text).unwrap(), p);
        }
        assert!(serde_json::from_str::<Percentage>("101").is_err());
    }
}
