//! [`Semver`]: a semantic version (semver.org 2.0.0) parsed and ordered
//! without allocating, so a rule can compare a request's version string on
//! the hot path.
//!
//! Precedence, as the specification says: `major.minor.patch` numerically;
//! a version with a pre-release is below the same version without one;
//! pre-releases compare identifier by identifier (numeric ones numerically
//! and below alphanumeric ones, which compare in ASCII order), and a shorter
//! list of equal identifiers is lower. Build metadata (`+...`) is ignored.

use std::cmp::Ordering;

/// A parsed semantic version borrowing its pre-release from the input.
///
/// ```
/// use genesis_flags::Semver;
/// let rc = Semver::parse("2.0.0-rc.1").unwrap();
/// let release = Semver::parse("2.0.0+build.7").unwrap();
/// assert!(rc < release);
/// assert!(Semver::parse("2.0.0-rc.2").unwrap() > rc);
/// assert!(Semver::parse("2.0.0-rc.10").unwrap() > Semver::parse("2.0.0-rc.9").unwrap());
/// assert!(Semver::parse("2.0").is_none());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Semver<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    pre: &'a str,
}

impl<'a> Semver<'a> {
    /// Parses `major.minor.patch[-pre.release][+build]`; `None` when it is
    /// not a semantic version (missing parts, leading zeros, empty
    /// identifiers, other characters).
    #[must_use]
    pub fn parse(text: &'a str) -> Option<Self> {
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        if let Some(build) = build {
            if !build
                .split('.')
                .all(|id| !id.is_empty() && id.bytes().all(is_id_byte))
            {
                return None;
            }
        }
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, pre),
            None => (rest, ""),
        };
        if rest.len() != core.len() {
            // A '-' was present: the pre-release must not be empty.
            if !pre.split('.').all(valid_pre_identifier) {
                return None;
            }
        }
        let mut parts = core.split('.');
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = number(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Semver {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// The pre-release (without its `-`), empty for a release.
    #[must_use]
    pub fn pre_release(&self) -> &'a str {
        self.pre
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn valid_pre_identifier(id: &str) -> bool {
    !id.is_empty()
        && id.bytes().all(is_id_byte)
        && !(id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()))
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn compare_identifiers(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        // No leading zeros: a longer number is a larger one.
        (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Ord for Semver<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    let mut a = self.pre.split('.');
                    let mut b = other.pre.split('.');
                    loop {
                        match (a.next(), b.next()) {
                            (None, None) => return Ordering::Equal,
                            (None, Some(_)) => return Ordering::Less,
                            (Some(_), None) => return Ordering::Greater,
                            (Some(x), Some(y)) => match compare_identifiers(x, y) {
                                Ordering::Equal => {}
                                other => return other,
                            },
                        }
                    }
                }
            })
    }
}

impl PartialOrd for Semver<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Semver<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Semver<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_order() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in order.windows(2) {
            let (a, b) = (
                Semver::parse(pair[0]).unwrap(),
                Semver::parse(pair[1]).unwrap(),
            );
            assert!(a < b, "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn build_metadata_is_ignored_and_bad_versions_refused() {
        assert_eq!(
            Semver::parse("1.2.3+a").unwrap(),
            Semver::parse("1.2.3").unwrap()
        );
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "v1.2.3",
            "1.2.3+",
            "1.2.x",
            " 1.2.3",
        ] {
            assert!(Semver::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Semver::parse("1.2.3-rc.1+b").unwrap().pre_release(), "rc.1");
    }
}
