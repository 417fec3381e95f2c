//! [`Condition`]: one compiled `attribute op values` test, and how each
//! operator reads each attribute type. Every test is total and
//! allocation-free; a missing attribute, or one of a type the operator
//! cannot read, fails the test (and `negate` then makes it pass).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::SystemTime;

use rustc_hash::FxHashSet;

use super::memo::{Env, Memo};
use super::network::Network;
pub(crate) use super::semver::OwnedSemver;
use super::semver::Semver;
use super::text::{
    ends_with, folded_eq, folded_prefix, folded_suffix, same, starts_with, StackText,
};
use crate::bytes::{half, word};
use crate::context::{AttributeKey, AttributeValue, Context};

/// A numeric or semver comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    pub(crate) fn holds(self, ordering: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match (self, ordering) {
            (_, None) => false,
            (Compare::Eq, Some(o)) => o == Equal,
            (Compare::Ne, Some(o)) => o != Equal,
            (Compare::Lt, Some(o)) => o == Less,
            (Compare::Le, Some(o)) => o != Greater,
            (Compare::Gt, Some(o)) => o == Greater,
            (Compare::Ge, Some(o)) => o != Less,
        }
    }
}

/// Where in a string a text operator looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Equals,
    StartsWith,
    EndsWith,
    Contains,
}

/// What a condition tests.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// Equals any of the values, exactly; hashed for long lists.
    In {
        /// The values (and a hash set of them for long lists).
        list: Box<InList>,
        /// For a short list, its values of up to 16 bytes, packed.
        packed: Box<[Packed]>,
        interned: Interned,
    },
    /// A text operator over any of the values; `folded` values are lower
    /// case and compared case-insensitively.
    Text {
        op: TextOp,
        values: Box<[Box<str>]>,
        folded: bool,
        /// The values packed, when none is folded or longer than 16 bytes.
        packed: Box<[Packed]>,
    },
    Matches(regex::Regex),
    /// The attribute, an IP address, is in one of these networks.
    Cidr(Box<[Network]>),
    Number(Compare, f64),
    Semver(Compare, OwnedSemver),
    Before(SystemTime),
    After(SystemTime),
    Exists,
    /// Every condition of a segment (by index in the snapshot).
    Segment(u32),
}

/// One compiled condition of a rule or segment.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) attribute: AttributeKey,
    pub(crate) negate: bool,
    pub(crate) test: Test,
}

/// Long `in` lists are hashed; short ones compared in order.
const HASH_FROM: usize = 8;

/// The values of an exact `in` condition.
#[derive(Debug, Clone)]
pub(crate) struct InList {
    values: Box<[Box<str>]>,
    set: Option<FxHashSet<Box<str>>>,
}

impl InList {
    #[inline(never)]
    fn contains(&self, s: &str) -> bool {
        match &self.set {
            Some(set) => set.contains(s),
            None => self.values.iter().any(|v| same(v.as_bytes(), s.as_bytes())),
        }
    }
}

/// A string of up to 16 bytes as its length and its first and last eight
/// (or four) bytes, which together determine it: compared in three word
/// compares, without reading the bytes of a condition's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed {
    head: u64,
    tail: u64,
    len: u64,
}

impl Packed {
    /// `None` for a string over 16 bytes.
    #[inline(always)]
    fn of(b: &[u8]) -> Option<Packed> {
        let len = b.len();
        let (head, tail) = if len > 16 {
            return None;
        } else if len >= 8 {
            (word(b, 0), word(b, len - 8))
        } else if len >= 4 {
            (u64::from(half(b, 0)), u64::from(half(b, len - 4)))
        } else {
            let mut packed = 0u64;
            for &byte in b {
                packed = packed << 8 | u64::from(byte);
            }
            (packed, 0)
        };
        Some(Packed {
            head,
            tail,
            len: len as u64,
        })
    }

    /// Every value packed, or `None` when one is over 16 bytes.
    fn all(values: &[Box<str>]) -> Option<Box<[Packed]>> {
        values.iter().map(|v| Packed::of(v.as_bytes())).collect()
    }
}

/// Whether `s` holds `test` (`equals`, which is also an exact `in`,
/// `starts_with` or `ends_with`) with one of `values`, packed strings;
/// `false` for `contains` (never packed) and for a value that is `None`.
#[inline(always)]
pub(crate) fn packed_holds(
    test: TextOp,
    s: &[u8],
    mut values: impl Iterator<Item = Option<Packed>>,
) -> bool {
    match test {
        TextOp::EndsWith => values.any(|v| {
            v.is_some_and(|v| {
                s.len()
                    .checked_sub(v.len as usize)
                    .and_then(|from| s.get(from..))
                    .and_then(Packed::of)
                    .is_some_and(|tail| tail == v)
            })
        }),
        TextOp::StartsWith => values.any(|v| {
            v.is_some_and(|v| {
                s.get(..v.len as usize)
                    .and_then(Packed::of)
                    .is_some_and(|head| head == v)
            })
        }),
        TextOp::Equals => Packed::of(s).is_some_and(|p| values.any(|v| v == Some(p))),
        TextOp::Contains => false,
    }
}

/// A condition as a compact program may read it (see [`Condition::form`]).
pub(crate) enum Form<'a> {
    /// An exact `in`: its dictionary and ids (see [`Interned`]), and its
    /// values packed when the list is short and every value packs.
    In {
        dictionary: u32,
        ids: &'a [u32],
        packed: Option<&'a [Packed]>,
    },
    /// `equals`, `starts_with` or `ends_with`, case-sensitive, every value packed.
    Text { op: TextOp, packed: &'a [Packed] },
    /// A semver comparison.
    Semver(Compare, &'a OwnedSemver),
}

/// Where an exact `in` condition's values sit in the snapshot's dictionary
/// of its attribute (see [`Dictionary`](super::Dictionary)): a view looks a
/// context's string up once per attribute and then tests ids, so the ten
/// `in` conditions a request's flags make on one attribute cost one lookup.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interned {
    /// The dictionary's index in the snapshot; `u32::MAX` before the
    /// snapshot interned it (a condition built alone compares strings).
    pub(crate) dictionary: u32,
    /// The first id (the only one, often), read without following `ids`.
    pub(crate) first: u32,
    /// The values' ids in that dictionary, sorted.
    pub(crate) ids: Box<[u32]>,
}

impl Interned {
    const NONE: u32 = u32::MAX;

    #[inline(always)]
    fn contains(&self, id: u32) -> bool {
        if self.ids.len() == 1 {
            return self.first == id;
        }
        match &*self.ids {
            ids if ids.len() <= 8 => ids.contains(&id),
            ids => ids.binary_search(&id).is_ok(),
        }
    }
}

impl Test {
    pub(crate) fn exact(values: Vec<Box<str>>) -> Test {
        let long = values.len() >= HASH_FROM;
        let set = long.then(|| values.iter().cloned().collect());
        let packed = if long {
            Box::default()
        } else {
            values
                .iter()
                .filter_map(|v| Packed::of(v.as_bytes()))
                .collect()
        };
        Test::In {
            list: Box::new(InList {
                values: values.into(),
                set,
            }),
            packed,
            interned: Interned {
                dictionary: Interned::NONE,
                first: 0,
                ids: Box::default(),
            },
        }
    }

    /// A text operator (`values` already folded when `folded`).
    pub(crate) fn text(op: TextOp, values: Box<[Box<str>]>, folded: bool) -> Test {
        let packed = if folded { None } else { Packed::all(&values) };
        Test::Text {
            op,
            values,
            folded,
            packed: packed.unwrap_or_default(),
        }
    }

    /// The values of an exact `in` test (for interning).
    pub(crate) fn in_values(&self) -> Option<&[Box<str>]> {
        match self {
            Test::In { list, .. } => Some(&list.values),
            _ => None,
        }
    }
}

impl Condition {
    /// What a compact program (see [`compact`](super::compact)) can make
    /// of this condition: `None` for the key, and for operators and values
    /// it does not encode.
    pub(crate) fn form(&self) -> Option<Form<'_>> {
        if self.attribute == AttributeKey::KEY {
            return None;
        }
        match &self.test {
            Test::In {
                list,
                packed,
                interned,
            } => Some(Form::In {
                dictionary: interned.dictionary,
                ids: &interned.ids,
                // A short list whose values are all packed.
                packed: (list.set.is_none() && packed.len() == list.values.len())
                    .then_some(&**packed),
            }),
            Test::Text {
                op,
                values,
                folded: false,
                packed,
            } if *op != TextOp::Contains && packed.len() == values.len() => {
                Some(Form::Text { op: *op, packed })
            }
            Test::Semver(compare, expected) => Some(Form::Semver(*compare, expected)),
            _ => None,
        }
    }

    /// Whether the condition holds for `context`; the segments of `env` are
    /// acyclic and of bounded depth (checked by validation).
    #[inline(always)]
    pub(crate) fn holds(&self, context: &Context<'_>, env: &Env<'_>) -> bool {
        if self.attribute == AttributeKey::KEY {
            return self.holds_slow(context, env);
        }
        let result = match &self.test {
            Test::In {
                list,
                packed,
                interned,
            } => {
                let memo = match env.memo {
                    Some(memo) => memo.get(
                        interned.dictionary,
                        self.attribute,
                        context,
                        env.dictionaries,
                    ),
                    None => Memo::Direct,
                };
                match memo {
                    Memo::Nothing => false,
                    Memo::Id(id) => interned.contains(id),
                    Memo::Direct => match context.find(self.attribute) {
                        Some(AttributeValue::String(s)) => {
                            match Packed::of(s.as_bytes()).filter(|_| !packed.is_empty()) {
                                Some(p) => packed.contains(&p),
                                None => list.contains(s),
                            }
                        }
                        Some(value) => self.test.matches(value),
                        None => false,
                    },
                }
            }
            Test::Text {
                op,
                folded: false,
                packed,
                ..
            } => match context.find(self.attribute) {
                Some(AttributeValue::String(s)) if !packed.is_empty() => {
                    let s = s.as_bytes();
                    match op {
                        TextOp::Contains => self.test.matches_bytes(s),
                        op => packed_holds(*op, s, packed.iter().map(|&p| Some(p))),
                    }
                }
                Some(AttributeValue::String(s)) => self.test.matches_str(s),
                Some(value) => self.test.matches(value),
                None => false,
            },
            Test::Semver(op, expected) => match context.find(self.attribute) {
                Some(AttributeValue::String(s)) => {
                    op.holds(super::semver::compare_text(s, expected))
                }
                Some(value) => self.test.matches(value),
                None => false,
            },
            _ => return self.holds_slow(context, env),
        };
        result != self.negate
    }

    /// Segments, `exists`, the context's key, and the operators off the
    /// fast path above.
    #[inline(never)]
    fn holds_slow(&self, context: &Context<'_>, env: &Env<'_>) -> bool {
        let result = match &self.test {
            Test::Segment(index) => env
                .segments
                .get(*index as usize)
                .is_some_and(|conditions| conditions.iter().all(|c| c.holds(context, env))),
            Test::Exists => context.get(self.attribute).is_some(),
            test if self.attribute == AttributeKey::KEY => context
                .get(AttributeKey::KEY)
                .is_some_and(|value| test.matches(&value)),
            test => context
                .find(self.attribute)
                .is_some_and(|value| test.matches(value)),
        };
        result != self.negate
    }
}

impl Test {
    #[inline(never)]
    fn matches(&self, value: &AttributeValue<'_>) -> bool {
        match self {
            Test::In { .. } | Test::Text { .. } | Test::Matches(_) => self.matches_text(value),
            Test::Number(op, expected) => {
                let actual = match *value {
                    AttributeValue::Number(n) => n,
                    AttributeValue::String(s) => match s.trim().parse::<f64>() {
                        Ok(n) => n,
                        Err(_) => return false,
                    },
                    _ => return false,
                };
                op.holds(actual.partial_cmp(expected))
            }
            Test::Semver(op, expected) => {
                let actual = match *value {
                    AttributeValue::Semver(v) => Some(v),
                    AttributeValue::String(s) => Semver::parse(s),
                    _ => None,
                };
                actual.is_some_and(|a| op.holds(Some(a.cmp(&expected.get()))))
            }
            Test::Before(limit) => timestamp(*value).is_some_and(|t| t < *limit),
            Test::After(limit) => timestamp(*value).is_some_and(|t| t > *limit),
            Test::Cidr(networks) => match *value {
                AttributeValue::String(s) => s
                    .trim()
                    .parse::<IpAddr>()
                    .is_ok_and(|a| networks.iter().any(|n| n.contains(a))),
                AttributeValue::List(items) => items.iter().any(|s| {
                    s.trim()
                        .parse::<IpAddr>()
                        .is_ok_and(|a| networks.iter().any(|n| n.contains(a)))
                }),
                _ => false,
            },
            Test::Exists | Test::Segment(_) => false,
        }
    }

    fn matches_text(&self, value: &AttributeValue<'_>) -> bool {
        match *value {
            AttributeValue::String(s) => self.matches_str(s),
            AttributeValue::List(items) => items.iter().any(|s| self.matches_str(s)),
            AttributeValue::Bool(b) => self.matches_str(if b { "true" } else { "false" }),
            AttributeValue::Number(n) => {
                let mut buffer = StackText::default();
                if write!(buffer, "{n}").is_err() {
                    return false;
                }
                self.matches_str(buffer.as_str())
            }
            AttributeValue::Semver(_) | AttributeValue::Timestamp(_) => false,
        }
    }

    /// [`matches_str`](Self::matches_str) on the bytes of a `&str`.
    #[inline(never)]
    fn matches_bytes(&self, s: &[u8]) -> bool {
        std::str::from_utf8(s).is_ok_and(|s| self.matches_str(s))
    }

    #[inline(never)]
    fn matches_str(&self, s: &str) -> bool {
        match self {
            Test::In { list, .. } => list.contains(s),
            Test::Text {
                op,
                values,
                folded: false,
                ..
            } => values.iter().any(|v| {
                let (s, v) = (s.as_bytes(), v.as_bytes());
                match op {
                    TextOp::Equals => same(s, v),
                    TextOp::StartsWith => starts_with(s, v),
                    TextOp::EndsWith => ends_with(s, v),
                    TextOp::Contains => {
                        s.windows(v.len().max(1)).any(|w| same(w, v)) || v.is_empty()
                    }
                }
            }),
            Test::Text {
                op,
                values,
                folded: true,
                ..
            } => values.iter().any(|v| match op {
                TextOp::Equals => folded_eq(s, v),
                TextOp::StartsWith => folded_prefix(s, v),
                TextOp::EndsWith => folded_suffix(s, v),
                TextOp::Contains => s
                    .char_indices()
                    .any(|(i, _)| s.get(i..).is_some_and(|rest| folded_prefix(rest, v))),
            }),
            Test::Matches(regex) => regex.is_match(s),
            _ => false,
        }
    }
}

fn timestamp(value: AttributeValue<'_>) -> Option<SystemTime> {
    match value {
        AttributeValue::Timestamp(t) => Some(t),
        AttributeValue::String(s) => super::time::parse_rfc3339(s.trim()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::text::fold;

    const ENV: Env<'static> = Env {
        segments: &[],
        dictionaries: &[],
        memo: None,
    };

    fn cond(test: Test) -> Condition {
        Condition {
            attribute: AttributeKey::new("cond_test_a"),
            negate: false,
            test,
        }
    }

    fn holds(c: &Condition, value: AttributeValue<'_>) -> bool {
        let attrs = [crate::context::Attribute::new(c.attribute, value)];
        c.holds(&Context::new("u", &attrs), &ENV)
    }

    #[test]
    fn text_operators_fold_unicode_case() {
        let values = || Box::from([fold("Straße")]);
        let ci = |op| cond(Test::text(op, values(), true));
        assert!(holds(&ci(TextOp::Equals), AttributeValue::String("STRAßE")));
        assert!(holds(
            &ci(TextOp::StartsWith),
            AttributeValue::String("STRAßENBAHN")
        ));
        assert!(holds(
            &ci(TextOp::EndsWith),
            AttributeValue::String("Hauptstraße")
        ));
        assert!(holds(
            &ci(TextOp::Contains),
            AttributeValue::String("xxSTRAßEyy")
        ));
        assert!(!holds(
            &ci(TextOp::Contains),
            AttributeValue::String("strasse")
        ));
    }

    #[test]
    fn numbers_semvers_and_times_convert_from_strings() {
        let gt = cond(Test::Number(Compare::Gt, 5.0));
        assert!(holds(&gt, AttributeValue::Number(5.5)));
        assert!(holds(&gt, AttributeValue::String("6")));
        assert!(!holds(&gt, AttributeValue::String("six")));
        assert!(!holds(&gt, AttributeValue::Bool(true)));
        let lt = cond(Test::Semver(
            Compare::Lt,
            OwnedSemver::new("2.0.0").unwrap(),
        ));
        assert!(holds(&lt, AttributeValue::String("2.0.0-rc.1")));
        assert!(!holds(&lt, AttributeValue::String("2.0.0")));
        assert!(!holds(&lt, AttributeValue::String("2.0")));
        let limit = super::super::time::parse_rfc3339("2025-01-01T00:00:00Z").unwrap();
        let before = cond(Test::Before(limit));
        assert!(holds(
            &before,
            AttributeValue::String("2024-12-31T23:59:59Z")
        ));
        assert!(!holds(&before, AttributeValue::Timestamp(limit)));
    }

    #[test]
    fn byte_comparisons_agree_with_the_library() {
        let words = [
            "",
            "a",
            "de",
            "DE",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "@example.com",
            "someone@example.com",
            "a-very-long-value-over-sixteen-bytes",
            "ü",
            "üb",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "\0a",
            "a\0",
        ];
        for a in words {
            for b in words {
                assert_eq!(same(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
                let exact = cond(Test::exact(vec![b.into(), "zz".into()]));
                assert_eq!(
                    holds(&exact, AttributeValue::String(a)),
                    a == b || a == "zz",
                    "in {a:?} {b:?}"
                );
                for (op, expected) in [
                    (TextOp::StartsWith, a.starts_with(b)),
                    (TextOp::EndsWith, a.ends_with(b)),
                    (TextOp::Contains, a.contains(b)),
                ] {
                    let test = Test::text(op, Box::from([Box::from(b)]), false);
                    assert_eq!(test.matches_str(a), expected, "{op:?} {a:?} {b:?}");
                    // The inline path of `holds` (packed values) agrees.
                    let c = cond(test);
                    assert_eq!(
                        holds(&c, AttributeValue::String(a)),
                        expected,
                        "{op:?} {a:?} {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn cidr_blocks_hold_their_addresses() {
        let nets = |values: &[&str]| -> Box<[Network]> {
            values.iter().map(|v| Network::parse(v).unwrap()).collect()
        };
        let c = cond(Test::Cidr(nets(&[
            "10.0.0.0/8",
            "192.168.1.7",
            "2001:db8::/32",
            "0.0.0.0/0",
        ])));
        for (address, inside) in [
            ("10.200.3.4", true),
            ("11.0.0.1", true), // 0.0.0.0/0
            ("2001:db8:1::9", true),
            ("2001:db9::1", false),
            ("::ffff:10.0.0.1", false),
            ("not an address", false),
            ("", false),
        ] {
            assert_eq!(
                holds(&c, AttributeValue::String(address)),
                inside,
                "{address}"
            );
        }
        let exact = cond(Test::Cidr(nets(&["192.168.1.7", "::1"])));
        assert!(holds(&exact, AttributeValue::String(" 192.168.1.7 ")));
        assert!(!holds(&exact, AttributeValue::String("192.168.1.8")));
        assert!(holds(&exact, AttributeValue::String("::1")));
        assert!(!holds(&exact, AttributeValue::Number(1.0)));
        assert!(holds(&exact, AttributeValue::List(&["x", "::1"])));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0",
            "bad::cidr",
            "127.invalid",
        ] {
            assert_eq!(Network::parse(bad), None, "{bad}");
        }
        assert!(Network::parse("0.0.0.0/0").is_some() && Network::parse("::/0").is_some());
    }

    #[test]
    fn missing_attributes_fail_and_negation_flips() {
        let mut c = cond(Test::exact(vec!["x".into()]));
        assert!(!c.holds(&Context::key_only("u"), &ENV));
        c.negate = true;
        assert!(c.holds(&Context::key_only("u"), &ENV));
        assert!(!holds(&c, AttributeValue::List(&["y", "x"])));
        let n = cond(Test::exact(vec!["3".into(), "true".into()]));
        assert!(holds(&n, AttributeValue::Number(3.0)));
        assert!(holds(&n, AttributeValue::Bool(true)));
    }
}
