//! Compact rule programs: a flag whose rules are all conjunctions of exact
//! `in` conditions on attributes, each serving one variant, compiled to a
//! few words in one array of the snapshot. A per-request view runs it from
//! its memo of interned attribute values without reading the flag, its
//! rules or its conditions: the flags of a request then cost about what
//! flags without rules do.

use super::condition::{packed_holds, Compare, Condition, Form, Packed, TextOp};
use super::memo::{ValueMemo, MEMO_SLOTS};
use super::semver::compare_plain;
use super::Dictionary;
use crate::bucket::Seed;
use crate::bucket_source::BucketSource;
use crate::context::{AttributeKey, AttributeValue, Context};
use crate::evaluation::{Evaluation, Reason};
use crate::percentage::Percentage;

/// One word of a program.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    /// A rule: its conditions (`tests` words) follow; it serves `variant`,
    /// or (`arms` not 0) a split by the context's key whose `Seed` and
    /// `arms` follow the conditions.
    Rule {
        tests: u16,
        arms: u16,
        variant: u16,
        enabled: bool,
    },
    /// `attribute` (a string) holds `test` with one of the `values` packed
    /// strings that follow (`Op::Value`): an `in` list or a text operator
    /// whose values are all of up to 16 bytes, read without the memo.
    Packed {
        attribute: AttributeKey,
        test: TextOp,
        negate: bool,
        values: u16,
    },
    /// A value of `Op::Packed`.
    Value(Packed),
    /// `attribute` (a plain `major.minor.patch` string) compares with the
    /// version `core` (with a pre-release when `pre`) as `compare` asks;
    /// any other version text is left to the full evaluation.
    Semver {
        attribute: AttributeKey,
        compare: Compare,
        negate: bool,
        pre: bool,
        core: [u32; 3],
    },
    /// A rule of one `In` test (as [`Op::In`]) that serves `variant`: the
    /// common targeting rule in one word.
    When {
        attribute: AttributeKey,
        dictionary: u32,
        negate: bool,
        codes: [u32; 2],
        variant: u16,
        enabled: bool,
    },
    /// A split's seed.
    Seed(Seed),
    /// A split's arm: the variant of buckets under `end`.
    Arm {
        end: u32,
        variant: u16,
        enabled: bool,
    },
    /// `attribute in values`: the memo codes (see [`ValueMemo`]) of the
    /// values' ids in `dictionary`, one or two (one value is written twice),
    /// so a test is one load and two compares.
    In {
        attribute: AttributeKey,
        dictionary: u32,
        negate: bool,
        codes: [u32; 2],
    },
    /// No rule matched: the default variant (for a bucketed flag, to the
    /// keys under its percentage) or the off variant.
    End {
        default: u16,
        default_enabled: bool,
        off: u16,
        off_enabled: bool,
    },
}

/// Appends `condition` to a program and says whether it could: an exact
/// `in` with one or two interned values whose dictionary a view remembers
/// as one `Op::In`; otherwise an exact `in` (short list), `equals`,
/// `starts_with` or `ends_with` whose values are all packed as
/// `Op::Packed` and its values; a semver comparison whose version numbers
/// fit 32 bits as `Op::Semver`.
pub(crate) fn condition(condition: &Condition, ops: &mut Vec<Op>) -> bool {
    let Some(form) = condition.form() else {
        return false;
    };
    let (attribute, negate) = (condition.attribute, condition.negate);
    let (test, packed) = match form {
        Form::In {
            dictionary,
            ids,
            packed,
        } => {
            let codes = match *ids {
                [a] => ValueMemo::id_code(a).map(|a| [a, a]),
                [a, b] => ValueMemo::id_code(a)
                    .zip(ValueMemo::id_code(b))
                    .map(|(a, b)| [a, b]),
                _ => None,
            };
            match (codes, packed) {
                (Some(codes), _) if (dictionary as usize) < MEMO_SLOTS => {
                    ops.push(Op::In {
                        attribute,
                        dictionary,
                        negate,
                        codes,
                    });
                    return true;
                }
                (_, Some(packed)) => (TextOp::Equals, packed),
                (_, None) => return false,
            }
        }
        Form::Text { op, packed } => (op, packed),
        Form::Semver(compare, expected) => {
            let (major, minor, patch) = expected.core();
            let (Ok(major), Ok(minor), Ok(patch)) = (
                u32::try_from(major),
                u32::try_from(minor),
                u32::try_from(patch),
            ) else {
                return false;
            };
            ops.push(Op::Semver {
                attribute,
                compare,
                negate,
                pre: expected.has_pre(),
                core: [major, minor, patch],
            });
            return true;
        }
    };
    let Ok(values) = u16::try_from(packed.len()) else {
        return false;
    };
    ops.push(Op::Packed {
        attribute,
        test,
        negate,
        values,
    });
    ops.extend(packed.iter().map(|&p| Op::Value(p)));
    true
}

/// A program's position in the snapshot's array (`NONE`: the flag has none).
pub(crate) const NONE: u32 = u32::MAX;

/// What a program's tail reads of the flag's fast-path data.
#[derive(Clone, Copy)]
pub(crate) struct Tail {
    pub(crate) bucketed: bool,
    pub(crate) seed: Seed,
    pub(crate) threshold: Percentage,
}

/// Runs the program at `start` for `context`: the same answer as the
/// flag's full evaluation, or `None` when an attribute is not a string, or
/// a condition needs the memo and there is none (the caller evaluates the
/// flag in full).
#[inline(always)]
pub(crate) fn run<S: BucketSource>(
    ops: &[Op],
    start: u32,
    tail: Tail,
    context: &Context<'_>,
    dictionaries: &[Dictionary],
    memo: Option<&ValueMemo>,
    buckets: &S,
) -> Option<Evaluation> {
    let mut rest = ops.get(start as usize..)?;
    loop {
        let (op, after) = rest.split_first()?;
        match *op {
            Op::When {
                attribute,
                dictionary,
                negate,
                codes,
                variant,
                enabled,
            } => {
                rest = after;
                let code = memo?.code(dictionary, attribute, context, dictionaries);
                if code == ValueMemo::DIRECT {
                    return None;
                }
                if (code == codes[0] || code == codes[1]) != negate {
                    return Some(Evaluation {
                        enabled,
                        reason: Reason::RuleMatch,
                        bucket: None,
                        variant: Some(variant),
                    });
                }
            }
            Op::Rule {
                tests,
                arms,
                variant,
                enabled,
            } => {
                let (tests, after) = after.split_at_checked(usize::from(tests))?;
                let split_len = if arms == 0 { 0 } else { 1 + usize::from(arms) };
                let (split, after) = after.split_at_checked(split_len)?;
                rest = after;
                if !all_hold(tests, context, dictionaries, memo)? {
                    continue;
                }
                if arms == 0 {
                    return Some(Evaluation {
                        enabled,
                        reason: Reason::RuleMatch,
                        bucket: None,
                        variant: Some(variant),
                    });
                }
                // A context without a key is not a user: the next rule.
                let key = context.key();
                if key.is_empty() {
                    continue;
                }
                let (&Op::Seed(seed), arms) = split.split_first()? else {
                    return None;
                };
                let bucket = buckets.bucket(seed, key);
                let mut served = None;
                for op in arms {
                    let Op::Arm {
                        end,
                        variant,
                        enabled,
                    } = *op
                    else {
                        return None;
                    };
                    // The first arm whose end is above the bucket; the last
                    // one otherwise (unreachable for a validated split).
                    served = Some((variant, enabled));
                    if bucket < end {
                        break;
                    }
                }
                let (variant, enabled) = served?;
                return Some(Evaluation {
                    enabled,
                    reason: Reason::Split,
                    bucket: Some(bucket),
                    variant: Some(variant),
                });
            }
            Op::End {
                default,
                default_enabled,
                off,
                off_enabled,
            } => {
                let served = |variant, enabled, reason, bucket| Evaluation {
                    enabled,
                    reason,
                    bucket,
                    variant: Some(variant),
                };
                if !tail.bucketed {
                    return Some(served(default, default_enabled, Reason::Default, None));
                }
                let key = context.key();
                if key.is_empty() {
                    return Some(served(off, off_enabled, Reason::OutOfRollout, None));
                }
                let bucket = buckets.bucket(tail.seed, key);
                return Some(if tail.threshold.contains(bucket) {
                    served(default, default_enabled, Reason::InRollout, Some(bucket))
                } else {
                    served(off, off_enabled, Reason::OutOfRollout, Some(bucket))
                });
            }
            Op::In { .. }
            | Op::Packed { .. }
            | Op::Value(_)
            | Op::Semver { .. }
            | Op::Seed(_)
            | Op::Arm { .. } => return None,
        }
    }
}

/// Whether every test of a rule holds; `None` when one needs the memo and
/// there is none, or reads an attribute it leaves to the full evaluation
/// (not a string, or a version that is not plain).
#[inline(always)]
fn all_hold(
    mut tests: &[Op],
    context: &Context<'_>,
    dictionaries: &[Dictionary],
    memo: Option<&ValueMemo>,
) -> Option<bool> {
    while let Some((op, rest)) = tests.split_first() {
        tests = rest;
        let holds = match *op {
            Op::In {
                attribute,
                dictionary,
                negate,
                codes,
            } => {
                let code = memo?.code(dictionary, attribute, context, dictionaries);
                if code == ValueMemo::DIRECT {
                    return None;
                }
                (code == codes[0] || code == codes[1]) != negate
            }
            Op::Packed {
                attribute,
                test,
                negate,
                values,
            } => {
                let (values, rest) = tests.split_at_checked(usize::from(values))?;
                tests = rest;
                let found = match context.find(attribute) {
                    None => false,
                    Some(AttributeValue::String(s)) => {
                        packed_holds(test, s.as_bytes(), values.iter().map(Op::packed))
                    }
                    Some(_) => return None,
                };
                found != negate
            }
            Op::Semver {
                attribute,
                compare,
                negate,
                pre,
                core: [major, minor, patch],
            } => {
                let found = match context.find(attribute) {
                    None => false,
                    Some(AttributeValue::String(s)) => {
                        let core = (major.into(), minor.into(), patch.into());
                        compare.holds(Some(compare_plain(s, core, pre)?))
                    }
                    Some(_) => return None,
                };
                found != negate
            }
            _ => return None,
        };
        if !holds {
            return Some(false);
        }
    }
    Some(true)
}

impl Op {
    /// Whether this word reads a view's memo (a program without such words
    /// runs without a view).
    pub(crate) fn reads_memo(&self) -> bool {
        matches!(self, Op::In { .. } | Op::When { .. })
    }

    /// The packed string of an `Op::Value` (a value that is not one never
    /// matches; a compiled program has none).
    #[inline(always)]
    fn packed(&self) -> Option<Packed> {
        match *self {
            Op::Value(p) => Some(p),
            _ => None,
        }
    }
}
