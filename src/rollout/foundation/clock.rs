//! Time for the rollout: [`Timestamp`], and the [`Clock`] that tells it.
//!
//! The policy never reads a clock; callers pass `now`. A controller uses
//! [`SystemClock`]; tests and simulations use [`ManualClock`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in whole milliseconds since the Unix epoch (UTC), from 1970
/// to the end of year 9999 (later instants clamp to [`Timestamp::MAX`]).
/// Serialised as RFC 3339 in UTC (`2025-10-23T09:00:00Z`); parsing also
/// takes a numeric offset (`2025-10-23T11:00:00+02:00`), normalised to UTC.
///
/// ```
/// use genesis_flags::rollout::Timestamp;
/// use std::time::Duration;
/// let t: Timestamp = "2025-10-23T09:00:00Z".parse()?;
/// assert_eq!((t + Duration::from_secs(3600)).to_string(), "2025-10-23T10:00:00Z");
/// # Ok::<(), genesis_flags::rollout::TimestampError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

/// A string that is not an RFC 3339 instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: {reason} (expected RFC 3339, e.g. 2025-10-23T09:00:00Z or 2025-10-23T11:00:00+02:00)")]
pub struct TimestampError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The last instant RFC 3339 can write: 9999-12-31T23:59:59.999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// From milliseconds since the Unix epoch (clamped to [`MAX`](Self::MAX)).
    #[must_use]
    pub const fn from_unix_millis(millis: u64) -> Self {
        if millis > Self::MAX.0 {
            Self::MAX
        } else {
            Timestamp(millis)
        }
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    #[must_use]
    pub const fn unix_seconds(self) -> u64 {
        self.0 / 1000
    }

    /// From a `SystemTime` (instants before 1970 clamp to the epoch).
    #[must_use]
    pub fn from_system_time(t: SystemTime) -> Self {
        let millis = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Timestamp::from_unix_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// As a `SystemTime`.
    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`MAX`](Self::MAX).
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Timestamp::from_unix_millis(self.0.saturating_add(millis))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_system_time();
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", humantime::format_rfc3339_seconds(t))
        } else {
            write!(f, "{}", humantime::format_rfc3339_millis(t))
        }
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    /// Parses RFC 3339: `2025-10-23T09:00:00Z`, with optional fractional
    /// seconds (kept to the millisecond), a lowercase `t`/`z`, or a numeric
    /// offset `±HH:MM` (`2025-10-23T11:00:00+02:00` is `09:00:00Z`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| TimestampError {
            input: s.to_owned(),
            reason,
        };
        let (local, offset_minutes) = split_offset(s).map_err(|r| err(r.to_owned()))?;
        // humantime takes the uppercase `T` and `Z` only.
        let mut text = String::with_capacity(local.len() + 1);
        for (i, c) in local.char_indices() {
            text.push(if i == 10 && c == 't' { 'T' } else { c });
        }
        text.push('Z');
        let local = humantime::parse_rfc3339(&text).map_err(|e| err(e.to_string()))?;
        let local_millis = local
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i128::try_from(d.as_millis()).ok())
            .ok_or_else(|| err("before 1970".to_owned()))?;
        let utc = local_millis - i128::from(offset_minutes) * 60_000;
        if utc < 0 {
            return Err(err(
                "before 1970-01-01T00:00:00Z once the offset is applied".to_owned(),
            ));
        }
        match u64::try_from(utc) {
            Ok(millis) if millis <= Timestamp::MAX.0 => Ok(Timestamp(millis)),
            _ => Err(err(
                "after 9999-12-31T23:59:59.999Z once the offset is applied".to_owned(),
            )),
        }
    }
}

/// Splits an RFC 3339 text into its local date-time and its offset from UTC
/// in minutes: `Z`/`z` is 0, `+02:00` is 120, `-23:59` is -1439.
fn split_offset(s: &str) -> Result<(&str, i32), &'static str> {
    let bytes = s.as_bytes();
    if let Some(local) = s.strip_suffix(['Z', 'z']) {
        return Ok((local, 0));
    }
    let n = bytes.len();
    let tail = match n.checked_sub(6).and_then(|start| bytes.get(start..)) {
        Some(tail @ [b'+' | b'-', h1, h2, b':', m1, m2])
            if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) =>
        {
            tail
        }
        _ => return Err("no time zone: end with Z or a numeric offset like +02:00"),
    };
    let digit = |i: usize| tail.get(i).map_or(0, |b| i32::from(b - b'0'));
    let (hours, minutes) = (digit(1) * 10 + digit(2), digit(4) * 10 + digit(5));
    if hours > 23 || minutes > 59 {
        return Err("offset out of range: at most ±23:59");
    }
    let sign = if tail.first() == Some(&b'-') { -1 } else { 1 };
    // The tail is ASCII, so n - 6 is a char boundary.
    let local = s.get(..n - 6).ok_or("no time zone")?;
    Ok((local, sign * (hours * 60 + minutes)))
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where the rollout's "now" comes from.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Lets `d` pass: sleeps on a real clock, moves a manual one forward.
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }
}

/// A clock that moves only when told; clones share the time.
///
/// ```
/// use genesis_flags::rollout::{Clock, ManualClock, Timestamp};
/// use std::time::Duration;
/// let clock = ManualClock::new(Timestamp::from_unix_millis(0));
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now().unix_seconds(), 60);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `start`.
    #[must_use]
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start.0)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(millis))
            });
    }

    /// Sets the clock (it may go backwards; the policy tolerates that).
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `d` at once.
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        for s in [
            "2025-10-23T09:00:00Z",
            "1970-01-01T00:00:00Z",
            "2025-10-23T09:00:00.250Z",
        ] {
            let t: Timestamp = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        let err = "yesterday".parse::<Timestamp>().unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
    }

    #[test]
    fn numeric_offsets_are_normalised_to_utc() {
        for (given, utc) in [
            ("2025-10-23T09:00:00+02:00", "2025-10-23T07:00:00Z"),
            ("2025-10-23T09:00:00-05:30", "2025-10-23T14:30:00Z"),
            ("2025-10-23T09:00:00+00:00", "2025-10-23T09:00:00Z"),
            ("2025-10-23T09:00:00-00:00", "2025-10-23T09:00:00Z"),
            ("2025-10-23t09:00:00z", "2025-10-23T09:00:00Z"),
            ("2025-10-23t09:00:00.250+01:00", "2025-10-23T08:00:00.250Z"),
            ("2025-01-01T00:30:00+01:00", "2024-12-31T23:30:00Z"),
            ("1970-01-01T01:00:00+01:00", "1970-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59-00:00", "9999-12-31T23:59:59Z"),
        ] {
            let t: Timestamp = given.parse().unwrap();
            assert_eq!(t.to_string(), utc, "{given}");
        }
    }

    #[test]
    fn bad_offsets_say_what_is_wrong() {
        for (given, says) in [
            ("2025-10-23T09:00:00", "no time zone"),
            ("2025-10-23T09:00:00+2:00", "no time zone"),
            ("2025-10-23T09:00:00+0200", "no time zone"),
            ("2025-10-23T09:00:00+24:00", "at most ±23:59"),
            ("2025-10-23T09:00:00+01:60", "at most ±23:59"),
            ("1970-01-01T00:30:00+01:00", "before 1970"),
            ("9999-12-31T23:30:00-01:00", "after 9999"),
            ("ü", "no time zone"),
            ("üüü+01:00", ""),
        ] {
            let err = given.parse::<Timestamp>().unwrap_err().to_string();
            assert!(err.contains(says), "{given}: {err}");
            assert!(err.contains(&format!("{given:?}")), "{err}");
            assert!(err.contains("e.g. 2025-10-23T09:00:00Z"), "{err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_offset_names_the_same_instant(
            millis in 86_400_000u64..Timestamp::MAX.0 - 86_400_000,
            offset in -1439i64..=1439,
        ) {
            let t = Timestamp::from_unix_millis(millis);
            let shifted = i64::try_from(millis).unwrap() + offset * 60_000;
            let local = humantime::format_rfc3339_millis(
                UNIX_EPOCH + Duration::from_millis(u64::try_from(shifted).unwrap()),
            )
            .to_string();
            let sign = if offset < 0 { '-' } else { '+' };
            let text = format!(
                "{}{sign}{:02}:{:02}",
                local.trim_end_matches('Z'),
                offset.abs() / 60,
                offset.abs() % 60
            );
            proptest::prop_assert_eq!(text.parse::<Timestamp>(), Ok(t), "{}", text);
            proptest::prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }
    }

    #[test]
    fn manual_clocks_share_time() {
        let a = ManualClock::new(Timestamp::from_unix_millis(1_000));
        let b = a.clone();
        a.advance(Duration::from_millis(500));
        assert_eq!(b.now().unix_millis(), 1_500);
        b.set(Timestamp::EPOCH);
        assert_eq!(a.now(), Timestamp::EPOCH);
    }

    #[test]
    fn far_future_instants_clamp_and_still_print() {
        let t = Timestamp::from_unix_millis(u64::MAX);
        assert_eq!(t, Timestamp::MAX);
        assert_eq!(t.to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!((t + Duration::MAX).to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
    }

    #[test]
    fn since_saturates() {
        let t = Timestamp::from_unix_millis(10);
        assert_eq!(Timestamp::EPOCH.since(t), Duration::ZERO);
        assert_eq!(t.since(Timestamp::EPOCH), Duration::from_millis(10));
    }
}
