//! The `sem_ver` operation: `{"sem_ver": [version, op, version]}` with `op`
//! one of `=`, `!=`, `<`, `<=`, `>`, `>=`, `^` (same major) and `~` (same
//! major and minor).
//!
//! Versions are read as flagd reads them: a leading `v` or `V` is dropped, a
//! partial version is completed with zeros (`1` is `1.0.0`, `1.2` is
//! `1.2.0`), build metadata is ignored, and pre-releases order as semantic
//! versioning says (`2.0.0-alpha < 2.0.0`). Anything else (`2.0.0.0`,
//! `not-a-version`) is not a version and the operation is `null`. Parsing
//! borrows the text: no allocation.

use std::cmp::Ordering;

/// A comparison of `sem_ver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SemverOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Same major version.
    Caret,
    /// Same major and minor version.
    Tilde,
}

impl SemverOp {
    pub(crate) fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "=" => SemverOp::Eq,
            "!=" => SemverOp::Ne,
            "<" => SemverOp::Lt,
            "<=" => SemverOp::Le,
            ">" => SemverOp::Gt,
            ">=" => SemverOp::Ge,
            "^" => SemverOp::Caret,
            "~" => SemverOp::Tilde,
            _ => return None,
        })
    }

    pub(crate) fn holds(self, a: &Version<'_>, b: &Version<'_>) -> bool {
        let order = a.cmp(b);
        match self {
            SemverOp::Eq => order == Ordering::Equal,
            SemverOp::Ne => order != Ordering::Equal,
            SemverOp::Lt => order == Ordering::Less,
            SemverOp::Le => order != Ordering::Greater,
            SemverOp::Gt => order == Ordering::Greater,
            SemverOp::Ge => order != Ordering::Less,
            SemverOp::Caret => a.major == b.major,
            SemverOp::Tilde => a.major == b.major && a.minor == b.minor,
        }
    }
}

/// A version borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    /// The pre-release, without its `-`; empty for a release.
    pre: &'a str,
}

/// An owned version, parsed once from a constant of the document.
#[derive(Debug, Clone)]
pub(crate) struct OwnedVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Box<str>,
}

impl OwnedVersion {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let v = Version::parse(text)?;
        Some(OwnedVersion {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: v.pre.into(),
        })
    }

    pub(crate) fn get(&self) -> Version<'_> {
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
        }
    }
}

fn number(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    text.parse().ok()
}

fn identifiers_ok(text: &str, numeric_rule: bool) -> bool {
    text.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !(numeric_rule
                && id.len() > 1
                && id.bytes().all(|c| c.is_ascii_digit())
                && id.starts_with('0'))
    })
}

impl<'a> Version<'a> {
    /// Parses `[v]major[.minor[.patch]][-pre][+build]`.
    pub(crate) fn parse(text: &'a str) -> Option<Self> {
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        if let Some(build) = build {
            if !identifiers_ok(build, false) {
                return None;
            }
        }
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => {
                if !identifiers_ok(pre, true) {
                    return None;
                }
                (core, pre)
            }
            None => (rest, ""),
        };
        let mut parts = core.split('.');
        let major = number(parts.next()?)?;
        let minor = parts.next().map_or(Some(0), number)?;
        let patch = parts.next().map_or(Some(0), number)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(self.pre, other.pre))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Semantic versioning's pre-release precedence: a release is above its
/// pre-releases; identifiers compare numerically when both are numbers,
/// numbers sort before words, and a longer list wins a common prefix.
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let order = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version<'_> {
        Version::parse(text).unwrap()
    }

    #[test]
    fn parses_flagd_forms() {
        assert_eq!(v("v1.0.0"), v("1.0.0"));
        assert_eq!(v("V1.0.0"), v("1.0.0"));
        assert_eq!(v("1"), v("1.0.0"));
        assert_eq!(v("1.2"), v("1.2.0"));
        assert_eq!(v("1.0.0+build"), v("1.0.0"));
        for bad in [
            "2.0.0.0",
            "not-a-version",
            "",
            "1.x",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "v",
        ] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn orders_as_semver() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn operators() {
        let holds = |a: &str, op: &str, b: &str| SemverOp::parse(op).unwrap().holds(&v(a), &v(b));
        assert!(holds("3.0.1", "~", "3.0.0"));
        assert!(!holds("3.1.0", "~", "3.0.0"));
        assert!(holds("3.1.0", "^", "3.0.0"));
        assert!(!holds("4.0.0", "^", "3.0.0"));
        assert!(holds("2.0.0-alpha", "<", "2.0.0"));
        assert!(holds("1.0.0", "!=", "1.0.1"));
        assert!(holds("1.0.0", ">=", "1.0.0") && holds("1.0.0", "<=", "1.0.0"));
        assert!(SemverOp::parse("===").is_none());
    }
}
