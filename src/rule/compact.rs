//! Compact rule programs: a flag whose rules are all conjunctions of exact
//! `in` conditions on attributes, each serving one variant, compiled to a
//! few words in one array of the snapshot. A per-request view runs it from
//! its memo of interned attribute values without reading the flag, its
//! rules or its conditions: the flags of a request then cost about what
//! flags without rules do.

use super::condition::ValueMemo;
use super::Dictionary;
use crate::bucket::Seed;
use crate::bucket_source::BucketSource;
use crate::context::{AttributeKey, Context};
use crate::evaluation::{Evaluation, Reason};
use crate::percentage::Percentage;

/// One word of a program.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    /// A rule: its `conditions` follow; it serves `variant`, or (`arms`
    /// not 0) a split by the context's key whose `Seed` and `arms` follow
    /// the conditions.
    Rule {
        conditions: u16,
        arms: u16,
        variant: u16,
        enabled: bool,
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
                conditions,
                arms,
                variant,
                enabled,
            } => {
                let (tests, after) = after.split_at_checked(usize::from(conditions))?;
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
            Op::In { .. } | Op::Seed(_) | Op::Arm { .. } => return None,
        }
    }
}

/// Whether every test of a rule holds; `None` when one needs the memo and
/// there is none, or its attribute is not a string.
#[inline(always)]
fn all_hold(
    tests: &[Op],
    context: &Context<'_>,
    dictionaries: &[Dictionary],
    memo: Option<&ValueMemo>,
) -> Option<bool> {
    for op in tests {
        let Op::In {
            attribute,
            dictionary,
            negate,
            codes,
        } = *op
        else {
            return None;
        };
        let code = memo?.code(dictionary, attribute, context, dictionaries);
        if code == ValueMemo::DIRECT {
            return None;
        }
        if (code == codes[0] || code == codes[1]) == negate {
            return Some(false);
        }
    }
    Some(true)
}
