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
/// Serialised as RFC 3339 (`2025-10-23T09:00:00Z`).
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
#[error("invalid timestamp {input:?}: {reason} (expected RFC 3339, e.g. 2025-10-23T09:00:00Z)")]
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
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_rfc3339(s)
            .map(Timestamp::from_system_time)
            .map_err(|e| TimestampError {
                input: s.to_owned(),
                reason: e.to_string(),
            })
    }
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
