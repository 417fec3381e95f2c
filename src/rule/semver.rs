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
    /// identifiers, other characters). One pass over the bytes.
    #[must_use]
    pub fn parse(text: &'a str) -> Option<Self> {
        let b = text.as_bytes();
        let mut i = 0;
        let major = number(b, &mut i)?;
        expect(b, &mut i, b'.')?;
        let minor = number(b, &mut i)?;
        expect(b, &mut i, b'.')?;
        let patch = number(b, &mut i)?;
        let mut pre = "";
        if b.get(i) == Some(&b'-') {
            let start = i + 1;
            let end = b[start..]
                .iter()
                .position(|&c| c == b'+')
                .map_or(b.len(), |p| start + p);
            let bytes = b.get(start..end)?;
            if !identifiers(bytes, true) {
                return None;
            }
            pre = text.get(start..end)?;
            i = end;
        }
        if b.get(i) == Some(&b'+') {
            if !identifiers(b.get(i + 1..)?, false) {
                return None;
            }
            i = b.len();
        }
        (i == b.len()).then_some(Semver {
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

/// A semantic version owned by a compiled condition (parsed once).
#[derive(Debug, Clone)]
pub(crate) struct OwnedSemver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Box<str>,
}

impl OwnedSemver {
    pub(crate) fn new(text: &str) -> Option<Self> {
        let v = Semver::parse(text)?;
        Some(OwnedSemver {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: v.pre.into(),
        })
    }

    /// `(major, minor, patch)`.
    pub(crate) fn core(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }

    /// Whether it has a pre-release.
    pub(crate) fn has_pre(&self) -> bool {
        !self.pre.is_empty()
    }

    pub(crate) fn get(&self) -> Semver<'_> {
        Semver {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
        }
    }
}

/// How the version written in `text` compares with `expected`; `None` when
/// `text` is not a semantic version. A plain `major.minor.patch` (the usual
/// request) is read in one pass without the general parser.
#[inline(always)]
pub(crate) fn compare_text(text: &str, expected: &OwnedSemver) -> Option<Ordering> {
    // A release is above any pre-release of the same core.
    match compare_plain(text, expected.core(), !expected.pre.is_empty()) {
        Some(ordering) => Some(ordering),
        None => Semver::parse(text).map(|v| v.cmp(&expected.get())),
    }
}

/// As [`compare_text`] for an expected version given by its core and
/// whether it has a pre-release, when `text` is a plain `major.minor.patch`;
/// `None` for any other text (the caller then asks [`compare_text`]).
#[inline(always)]
pub(crate) fn compare_plain(text: &str, core: (u64, u64, u64), pre: bool) -> Option<Ordering> {
    plain(text.as_bytes()).map(|actual| {
        actual.cmp(&core).then(if pre {
            Ordering::Greater
        } else {
            Ordering::Equal
        })
    })
}

/// `major.minor.patch` of decimal numbers without leading zeros and
/// nothing else; `None` for anything else (which the full parser decides).
/// Three numbers read in turn, each ended by the dot the next needs.
#[inline(always)]
fn plain(b: &[u8]) -> Option<(u64, u64, u64)> {
    let (major, rest) = plain_number(b)?;
    let (minor, rest) = plain_number(rest.strip_prefix(b".")?)?;
    let (patch, rest) = plain_number(rest.strip_prefix(b".")?)?;
    rest.is_empty().then_some((major, minor, patch))
}

/// A decimal number at the start of `b` and what follows it; `0` alone
/// (a leading zero stops the number, so a digit after it fails the dot or
/// end the caller expects); `None` for no digit or over 18 digits (which
/// could overflow: the full parser decides those).
#[inline(always)]
fn plain_number(b: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, mut rest) = b.split_first()?;
    let mut n = u64::from(first.wrapping_sub(b'0'));
    if n > 9 {
        return None;
    }
    if n == 0 {
        return Some((0, rest));
    }
    let mut digits = 1;
    while let Some((&c, tail)) = rest.split_first() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if digits == 18 {
            return None;
        }
        n = n * 10 + u64::from(d);
        digits += 1;
        rest = tail;
    }
    Some((n, rest))
}

fn expect(b: &[u8], i: &mut usize, byte: u8) -> Option<()> {
    if b.get(*i) == Some(&byte) {
        *i += 1;
        Some(())
    } else {
        None
    }
}

/// A numeric part without leading zeros, advancing `i` past it.
fn number(b: &[u8], i: &mut usize) -> Option<u64> {
    let start = *i;
    let mut n: u64 = 0;
    while let Some(&d) = b.get(*i) {
        if !d.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        *i += 1;
    }
    let len = *i - start;
    if len == 0 || (len > 1 && b[start] == b'0') {
        return None;
    }
    Some(n)
}

/// Dot-separated identifiers of `[0-9A-Za-z-]`, none empty; numeric
/// pre-release identifiers have no leading zero.
fn identifiers(bytes: &[u8], pre_release: bool) -> bool {
    bytes.split(|&c| c == b'.').all(|id| {
        !id.is_empty()
            && id.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && !(pre_release && id.len() > 1 && id[0] == b'0' && id.iter().all(u8::is_ascii_digit))
    })
}

fn compare_identifiers(a: &[u8], b: &[u8]) -> Ordering {
    let numeric = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
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
                    let mut a = self.pre.as_bytes().split(|&c| c == b'.');
                    let mut b = other.pre.as_bytes().split(|&c| c == b'.');
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

    #[test]
    fn the_plain_reader_agrees_with_the_parser() {
        let texts = [
            "",
            "1",
            "1.2",
            "1.2.3",
            "0.0.0",
            "10.20.30",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3.4",
            "1..3",
            ".1.2",
            "1.2.",
            "1.2.3-rc.1",
            "1.2.3+b",
            "v1.2.3",
            "1.2.x",
            " 1.2.3",
            "2.0.0",
            "1.9.9",
            "99999999999999999999.0.0",
            "0.10.0",
            "123456789012345678.0.0",
            "1234567890123456789.0.0",
            "1.0.123456789012345678",
            "1.0.0.",
            "1.0.0a",
        ];
        for expected in ["1.2.3", "2.0.0-rc.1", "0.10.0", "1.9.9"] {
            let owned = OwnedSemver::new(expected).unwrap();
            for text in texts {
                let full = Semver::parse(text).map(|v| v.cmp(&owned.get()));
                assert_eq!(compare_text(text, &owned), full, "{text:?} vs {expected}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_versions_compare_as_parsed(a in 0u64..30, b in 0u64..30, c in 0u64..300,
                                            text in "[0-9.]{0,9}") {
            let owned = OwnedSemver::new("3.10.100").unwrap();
            for t in [format!("{a}.{b}.{c}"), text] {
                let full = Semver::parse(&t).map(|v| v.cmp(&owned.get()));
                proptest::prop_assert_eq!(compare_text(&t, &owned), full);
            }
        }
    }
}
