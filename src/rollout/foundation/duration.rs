//! Durations written like `12h`, `5m`, `1h30m`, `250ms`, `2d`.

use std::fmt;
use std::time::Duration;

/// A duration string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write e.g. \"12h\", \"5m\", \"1h30m\", \"250ms\")")]
pub struct DurationError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `1d2h30m15s500ms`-style durations: one or more `<integer><unit>`
/// with units `d`, `h`, `m`, `s`, `ms`, each at most once, largest first.
///
/// ```
/// use genesis_flags::rollout::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("1h30m")?, Duration::from_secs(5400));
/// assert!(parse_duration("30").is_err());
/// # Ok::<(), genesis_flags::rollout::DurationError>(())
/// ```
///
/// # Errors
///
/// `DurationError` naming what is wrong: an empty input, an unknown unit, a
/// unit repeated or out of order, a number too large.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    if input.is_empty() {
        return Err(err("empty"));
    }
    // Units from largest to smallest, with their length in milliseconds.
    const UNITS: [(&str, u64); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1_000),
    ];
    let rank = |unit: &str| match unit {
        "d" => 0,
        "h" => 1,
        "m" => 2,
        "s" => 3,
        _ => 4,
    };
    let mut rest = input;
    let mut total: u64 = 0;
    let mut last_rank = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let (unit, millis) = UNITS
            .iter()
            .find(|(u, _)| rest.starts_with(u))
            .ok_or_else(|| err("expected a unit: d, h, m, s or ms"))?;
        rest = &rest[unit.len()..];
        let r = rank(unit);
        if last_rank.is_some_and(|l| l >= r) {
            return Err(err("units must appear once each, largest first"));
        }
        last_rank = Some(r);
        total = value
            .checked_mul(*millis)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration in hours and smaller units, without spaces:
/// `30h5m`, `144h`, `1m30s`, `0s`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    Compact(d).to_string()
}

struct Compact(Duration);

impl fmt::Display for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        let (h, rem) = (millis / 3_600_000, millis % 3_600_000);
        let (m, rem) = (rem / 60_000, rem % 60_000);
        let (s, ms) = (rem / 1000, rem % 1000);
        for (value, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
            if value > 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

/// serde with durations as strings (`"12h"`).
pub(crate) mod serde_text {
    use super::{format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_plan_notation() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(parse_duration("12h").unwrap(), h(12));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), h(48));
        assert_eq!(
            parse_duration("1m30s250ms").unwrap(),
            Duration::from_millis(90_250)
        );
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "12",
            "h",
            "1x",
            "1h1h",
            "30m1h",
            "1.5h",
            "-1h",
            "1 h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        let err = parse_duration("12").unwrap_err().to_string();
        assert!(err.contains("\"12\"") && err.contains("unit"), "{err}");
    }

    #[test]
    fn formats_in_hours_and_below() {
        assert_eq!(format_duration(Duration::from_secs(144 * 3600)), "144h");
        assert_eq!(
            format_duration(Duration::from_secs(30 * 3600 + 300)),
            "30h5m"
        );
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }

        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
