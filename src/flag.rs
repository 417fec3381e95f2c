//! [`Flag`]: one compiled flag, and [`FlagClass`].

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::bucket::Seed;
use crate::bucket_source::BucketSource;
use crate::context::{AttributeKey, Context};
use crate::evaluation::{Evaluation, Reason};
use crate::percentage::Percentage;
use crate::rule::compact::{self, Op};
use crate::rule::{Dictionary, Env, Expect, Prerequisite, Rule, Segment, Serve, MAX_DEPTH};
use crate::variant::{VariantType, VariantValue, Variants, IMPLICIT_OFF, IMPLICIT_ON};

/// How a flag is rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagClass {
    /// Production features, rolled out together through shared rollouts (the default).
    #[default]
    Critical,
    /// Off in any store that has not opted in with
    /// [`FlagStoreBuilder::allow_experimental`](crate::FlagStoreBuilder::allow_experimental).
    Experimental,
}

impl FlagClass {
    /// `"critical"` or `"experimental"`, as written in config files.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            FlagClass::Critical => "critical",
            FlagClass::Experimental => "experimental",
        }
    }
}

impl fmt::Display for FlagClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a flag is on for, once the kill switch, class and user lists are passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Targeting {
    /// On for everyone.
    Everyone,
    /// Bound to a shared rollout: salted by the rollout id, so every flag of
    /// the rollout is on for exactly the same users.
    Rollout {
        /// The rollout id.
        id: Box<str>,
        /// The rollout's current percentage.
        percentage: Percentage,
    },
    /// The flag's own percentage, salted by the flag key.
    Percentage(Percentage),
}

/// One compiled flag of a [`Snapshot`](crate::Snapshot).
///
/// Salts are hashed, rules compiled and names resolved when the snapshot is
/// built, so evaluating costs one seeded hash of the bucketing key at most
/// (plus one per split rule or prerequisite that decides).
///
/// The fields evaluation reads come first and share one cache line (the
/// layout is fixed with `repr(C)` and the struct aligned to a line), so a
/// flag with rules costs one line of its own before its rules.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Flag {
    // The first cache line: what evaluation reads.
    /// Bit `i` set: variant `i` counts as on (see [`Flag::serve`]), for the
    /// first 64 variants; later ones are read from `variants`.
    on_mask: u64,
    seed: Seed,
    rules: Box<[Rule]>,
    bucket_by: Option<AttributeKey>,
    threshold: Percentage,
    default_variant: u16,
    off_variant: u16,
    /// No kill switch, experimental class, prerequisites or user lists:
    /// evaluation starts at the rules.
    direct: bool,
    enabled: bool,
    class: FlagClass,
    has_lists: bool,
    bucketed: bool,
    track: bool,
    // The rest.
    include: FxHashSet<Box<str>>,
    exclude: FxHashSet<Box<str>>,
    prerequisites: Box<[Prerequisite]>,
    variants: Variants,
    name: Box<str>,
    targeting: Targeting,
    description: Option<Box<str>>,
    program: Option<Arc<dyn Program>>,
}

/// A flag whose answer a front-end other than the native format computes
/// (a flagd flag and its compiled targeting): when a flag has one, it
/// decides every evaluation in place of the steps of `evaluate_in`.
pub(crate) trait Program: fmt::Debug + Send + Sync {
    /// The evaluation for `context`. Total and allocation-free where the
    /// program allows it.
    fn evaluate(&self, context: &Context<'_>) -> Evaluation;
    /// The variant served when the program chooses none, if any.
    #[cfg_attr(not(feature = "openfeature"), allow(dead_code))]
    fn default_variant(&self) -> Option<u16>;
    /// Metadata the document attaches to the flag.
    fn metadata(&self) -> Option<&serde_json::Map<String, serde_json::Value>>;
    /// The evaluation for every context, when it does not depend on the
    /// context (a flagd flag without targeting, or disabled): the index
    /// then serves it without reaching the program.
    fn constant(&self) -> Option<Evaluation> {
        None
    }
}

/// Everything a flag is compiled from (names and ids already validated).
#[derive(Debug)]
pub(crate) struct FlagParts {
    pub(crate) name: Box<str>,
    pub(crate) class: FlagClass,
    pub(crate) enabled: bool,
    pub(crate) targeting: Targeting,
    pub(crate) include: FxHashSet<Box<str>>,
    pub(crate) exclude: FxHashSet<Box<str>>,
    pub(crate) description: Option<Box<str>>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) prerequisites: Vec<Prerequisite>,
    pub(crate) bucket_by: Option<AttributeKey>,
    /// The salt's suffix (`seed`), for a flag's own percentage.
    pub(crate) seed: Option<Box<str>>,
    pub(crate) variants: Variants,
    pub(crate) default_variant: u16,
    pub(crate) off_variant: u16,
    pub(crate) track: bool,
    /// Set by a front-end that compiles its own targeting (flagd).
    pub(crate) program: Option<Arc<dyn Program>>,
}

/// The salt of a flag's own percentage and of its splits: the flag key, or
/// `key/seed` when the flag (or rule) carries a seed.
pub(crate) fn salt(name: &str, seed: Option<&str>) -> Seed {
    match seed {
        None => Seed::from_salt(name),
        Some(seed) => Seed::from_salt(&format!("{name}/{seed}")),
    }
}

/// What conditions read of the snapshot: its segments, the dictionaries of
/// its `in` values and the compact programs. Passed by one reference, so
/// the paths that do not read it carry one word.
#[derive(Debug, Default)]
pub(crate) struct RuleTables {
    pub(crate) segments: Vec<Segment>,
    pub(crate) dictionaries: Vec<Dictionary>,
    /// The compact programs of flags that have one.
    pub(crate) programs: Vec<Op>,
}

/// The snapshot's [`RuleTables`], borrowed.
pub(crate) type Tables<'s> = &'s RuleTables;

/// What evaluation reads of the snapshot besides the flag itself.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'s> {
    pub(crate) flags: &'s [Flag],
    pub(crate) tables: Tables<'s>,
    pub(crate) allow_experimental: bool,
}

impl Flag {
    /// Compiles a validated flag.
    pub(crate) fn new(parts: FlagParts) -> Self {
        let own_seed = salt(&parts.name, parts.seed.as_deref());
        let (bucketed, threshold, seed) = match &parts.targeting {
            Targeting::Everyone => (false, Percentage::HUNDRED, own_seed),
            Targeting::Rollout { id, percentage } => (true, *percentage, Seed::from_salt(id)),
            Targeting::Percentage(p) => (true, *p, own_seed),
        };
        let variants_on = (0..parts.variants.len().min(64) as u16)
            .filter(|&i| match parts.variants.value(i) {
                Some(VariantValue::Bool(b)) => *b,
                _ => i != parts.off_variant,
            })
            .fold(0u64, |mask, i| mask | 1 << i);
        Flag {
            on_mask: variants_on,
            direct: parts.enabled
                && parts.program.is_none()
                && parts.class == FlagClass::Critical
                && parts.prerequisites.is_empty()
                && parts.include.is_empty()
                && parts.exclude.is_empty(),
            enabled: parts.enabled,
            class: parts.class,
            has_lists: !parts.include.is_empty() || !parts.exclude.is_empty(),
            bucketed,
            threshold,
            seed,
            include: parts.include,
            exclude: parts.exclude,
            rules: parts.rules.into(),
            prerequisites: parts.prerequisites.into(),
            bucket_by: parts.bucket_by,
            default_variant: parts.default_variant,
            off_variant: parts.off_variant,
            track: parts.track,
            variants: parts.variants,
            name: parts.name,
            targeting: parts.targeting,
            description: parts.description,
            program: parts.program,
        }
    }

    /// The front-end program that decides this flag, if any.
    pub(crate) fn program(&self) -> Option<&dyn Program> {
        self.program.as_deref()
    }

    /// The metadata a flagd document attaches to the flag (its own merged
    /// over the flag set's); `None` for a flag of the native format.
    #[must_use]
    pub fn metadata(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.program().and_then(|p| p.metadata())
    }

    /// The flag key.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Critical or experimental.
    #[must_use]
    pub fn class(&self) -> FlagClass {
        self.class
    }

    /// `false` when the kill switch is thrown (`enabled: false`).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Who the flag is on for.
    #[must_use]
    pub fn targeting(&self) -> &Targeting {
        &self.targeting
    }

    /// The rollout this flag is bound to, if any.
    #[must_use]
    pub fn rollout(&self) -> Option<&str> {
        match &self.targeting {
            Targeting::Rollout { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The percentage that decides, if any (the rollout's or the flag's own).
    #[must_use]
    pub fn percentage(&self) -> Option<Percentage> {
        self.bucketed.then_some(self.threshold)
    }

    /// Users for whom the flag is always on (unless excluded or switched off).
    pub fn include(&self) -> impl Iterator<Item = &str> {
        self.include.iter().map(|u| &**u)
    }

    /// Users for whom the flag is always off.
    pub fn exclude(&self) -> impl Iterator<Item = &str> {
        self.exclude.iter().map(|u| &**u)
    }

    /// The free-text description from the config, if any.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The type of the flag's variants (boolean for a flag without `variants`).
    #[must_use]
    pub fn variant_type(&self) -> VariantType {
        self.variants.kind()
    }

    /// The flag's variants, in declaration order (`off` and `on` for a flag
    /// without `variants`).
    pub fn variants(&self) -> impl Iterator<Item = (&str, &VariantValue)> {
        self.variants.iter()
    }

    /// The name of variant `index` (as in [`Evaluation::variant`]); `""` out of range.
    #[must_use]
    pub fn variant_name(&self, index: u16) -> &str {
        self.variants.name(index)
    }

    /// The value of variant `index` (as in [`Evaluation::variant`]).
    #[inline]
    #[must_use]
    pub fn variant_value(&self, index: u16) -> Option<&VariantValue> {
        self.variants.value(index)
    }

    /// The variant served when no rule matches.
    #[must_use]
    pub fn default_variant(&self) -> &str {
        self.variants.name(self.default_variant)
    }

    /// The variant served when the flag is off for a user (kill switch,
    /// excluded, out of its percentage, a prerequisite not met).
    #[must_use]
    pub fn off_variant(&self) -> &str {
        self.variants.name(self.off_variant)
    }

    /// Whether the flag has rules.
    #[must_use]
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Whether the answer can depend on the context (its key or attributes):
    /// user lists, rules, prerequisites or a percentage.
    #[must_use]
    pub fn depends_on_context(&self) -> bool {
        self.has_lists
            || self.bucketed
            || !self.rules.is_empty()
            || !self.prerequisites.is_empty()
            || self.program.is_some()
    }

    /// Whether a percentage of this flag buckets by the context's key (not
    /// by an attribute).
    #[must_use]
    pub fn buckets_by_key(&self) -> bool {
        self.bucketed && self.bucket_by.is_none()
    }

    /// Whether a rule's split buckets by the context's key.
    #[must_use]
    pub fn splits_by_key(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(&r.serve, Serve::Split(s) if s.bucket_by.is_none()))
    }

    /// Whether the flag's exposures go to the store's exposure callback (`track: true`).
    #[must_use]
    pub fn is_tracked(&self) -> bool {
        self.track
    }

    /// Whether the plain fast path can decide this flag: no rules, no
    /// prerequisites, no other bucketing key, the implicit boolean variants
    /// served as today.
    fn is_plain(&self) -> bool {
        self.rules.is_empty()
            && self.program.is_none()
            && self.prerequisites.is_empty()
            && self.bucket_by.is_none()
            && self.variants.kind() == VariantType::Bool
            && self.variants.len() == 2
            && self.default_variant == IMPLICIT_ON
            && self.off_variant == IMPLICIT_OFF
            && self.variants.value(IMPLICIT_ON) == Some(&VariantValue::Bool(true))
    }

    /// Appends this flag's compact program to `ops` when its rules fit one
    /// (see [`compact`]): a flag without the steps before the rules, not
    /// bucketed by an attribute, whose rules all serve a variant on
    /// conjunctions of compact conditions. Its start (or `compact::NONE`),
    /// and whether it reads a view's memo (it has an interned `in` test).
    pub(crate) fn compact(&self, ops: &mut Vec<Op>) -> (u32, bool) {
        let start = self.compact_into(ops);
        let memo = ops
            .get(start as usize..)
            .is_some_and(|program| program.iter().any(Op::reads_memo));
        (start, memo)
    }

    fn compact_into(&self, ops: &mut Vec<Op>) -> u32 {
        if !self.direct || self.bucket_by.is_some() || self.rules.is_empty() {
            return compact::NONE;
        }
        let mut program = Vec::new();
        for rule in self.rules.iter() {
            let mut tests = Vec::new();
            for condition in rule.conditions.iter() {
                if !compact::condition(condition, &mut tests) {
                    return compact::NONE;
                }
            }
            if let (
                Serve::Variant(variant),
                &[Op::In {
                    attribute,
                    dictionary,
                    negate,
                    codes,
                }],
            ) = (&rule.serve, &*tests)
            {
                program.push(Op::When {
                    attribute,
                    dictionary,
                    negate,
                    codes,
                    variant: *variant,
                    enabled: self.is_on(*variant),
                });
                continue;
            }
            let Ok(length) = u16::try_from(tests.len()) else {
                return compact::NONE;
            };
            let (variant, arms) = match &rule.serve {
                Serve::Variant(variant) => (*variant, 0),
                Serve::Split(split) if split.bucket_by.is_none() => {
                    match u16::try_from(split.ends().len()) {
                        Ok(arms) if arms > 0 => (0, arms),
                        _ => return compact::NONE,
                    }
                }
                Serve::Split(_) => return compact::NONE,
            };
            program.push(Op::Rule {
                tests: length,
                arms,
                variant,
                enabled: self.is_on(variant),
            });
            program.extend(tests);
            if let Serve::Split(split) = &rule.serve {
                program.push(Op::Seed(split.seed));
                program.extend(split.ends().iter().map(|&(end, variant)| Op::Arm {
                    end,
                    variant,
                    enabled: self.is_on(variant),
                }));
            }
        }
        program.push(Op::End {
            default: self.default_variant,
            default_enabled: self.is_on(self.default_variant),
            off: self.off_variant,
            off_enabled: self.is_on(self.off_variant),
        });
        let Ok(start) = u32::try_from(ops.len()) else {
            return compact::NONE;
        };
        ops.extend(program);
        start
    }

    /// The compact form the evaluation fast path reads.
    pub(crate) fn hot(&self, position: u32, (program, memo): (u32, bool)) -> HotFlag {
        let mut bits = 0;
        let mut constant = HotFlag::NO_VARIANT;
        // A program whose answer is one constant `On` (a variant) or
        // `KillSwitch` (none), which is what the two encodable bits say.
        if let Some(e) = self.program.as_ref().and_then(|p| p.constant()) {
            let encodable = e.bucket.is_none()
                && match (e.reason, e.variant) {
                    (Reason::On, Some(v)) => v != HotFlag::NO_VARIANT,
                    (Reason::KillSwitch, None) => true,
                    _ => false,
                };
            if encodable {
                bits |= HotFlag::CONSTANT;
                if e.enabled {
                    bits |= HotFlag::CONSTANT_ON;
                }
                constant = e.variant.unwrap_or(HotFlag::NO_VARIANT);
            }
        }
        if !self.enabled {
            bits |= HotFlag::KILLED;
        }
        if self.class == FlagClass::Experimental {
            bits |= HotFlag::EXPERIMENTAL;
        }
        if self.has_lists {
            bits |= HotFlag::LISTS;
        }
        if self.bucketed {
            bits |= HotFlag::BUCKETED;
        }
        if !self.is_plain() {
            bits |= HotFlag::TARGETED;
        }
        if memo {
            bits |= HotFlag::MEMO;
        }
        HotFlag {
            seed: self.seed,
            threshold: self.threshold,
            position,
            program,
            bits,
            constant,
        }
    }

    /// Whether serving `variant` is "on": for a boolean flag, when it
    /// serves `true`; for any other flag, when it serves something other
    /// than its `off` variant.
    #[inline(always)]
    fn is_on(&self, variant: u16) -> bool {
        if variant < 64 {
            self.on_mask & (1 << variant) != 0
        } else {
            match self.variants.value(variant) {
                Some(VariantValue::Bool(b)) => *b,
                _ => variant != self.off_variant,
            }
        }
    }

    /// Serves `variant` for `reason`.
    #[inline]
    fn serve(&self, variant: u16, reason: Reason, bucket: Option<u32>) -> Evaluation {
        let enabled = self.is_on(variant);
        Evaluation {
            enabled,
            reason,
            bucket,
            variant: Some(variant),
        }
    }

    #[inline]
    fn off(&self, reason: Reason, bucket: Option<u32>) -> Evaluation {
        self.serve(self.off_variant, reason, bucket)
    }

    /// Evaluates this flag for `context` in the evaluation order of the
    /// crate docs (`src/lib.rs`). Allocation-free; `depth` counts the
    /// prerequisites being evaluated above this one.
    pub(crate) fn evaluate_in<S: BucketSource>(
        &self,
        context: &Context<'_>,
        scope: &Scope<'_>,
        buckets: &S,
        depth: usize,
    ) -> Evaluation {
        // Steps 0 to 5 only for a flag that has any of them.
        if !self.direct {
            // 0. A front-end's program (flagd) decides alone.
            if let Some(program) = &self.program {
                return program.evaluate(context);
            }
            if let Some(decided) = self.gates(context, scope, buckets, depth) {
                return decided;
            }
        }
        // 6. Rules, first match wins.
        let env = Env {
            segments: &scope.tables.segments,
            dictionaries: &scope.tables.dictionaries,
            memo: buckets.memo(),
        };
        for rule in self.rules.iter() {
            if !rule.conditions.iter().all(|c| c.holds(context, &env)) {
                continue;
            }
            match &rule.serve {
                Serve::Variant(variant) => return self.serve(*variant, Reason::RuleMatch, None),
                Serve::Split(split) => {
                    // A context without the split's key is not a user: next rule.
                    if let Some(key) = context.bucket_key(split.bucket_by) {
                        let bucket = buckets.bucket(split.seed, key);
                        return self.serve(split.pick(bucket), Reason::Split, Some(bucket));
                    }
                }
            }
        }
        // 7. The rollout's or the flag's own percentage.
        if self.bucketed {
            let Some(key) = context.bucket_key(self.bucket_by) else {
                return self.off(Reason::OutOfRollout, None);
            };
            let bucket = buckets.bucket(self.seed, key);
            return if self.threshold.contains(bucket) {
                self.serve(self.default_variant, Reason::InRollout, Some(bucket))
            } else {
                self.off(Reason::OutOfRollout, Some(bucket))
            };
        }
        // 8. The default variant.
        let reason = if self.rules.is_empty() {
            Reason::On
        } else {
            Reason::Default
        };
        self.serve(self.default_variant, reason, None)
    }

    /// Steps 1 to 5: the kill switch, the class, prerequisites and user
    /// lists; `None` when none of them decides.
    #[inline(never)]
    fn gates<S: BucketSource>(
        &self,
        context: &Context<'_>,
        scope: &Scope<'_>,
        buckets: &S,
        depth: usize,
    ) -> Option<Evaluation> {
        // 1. Kill switch.
        if !self.enabled {
            return Some(self.off(Reason::KillSwitch, None));
        }
        // 2. Experimental in a store that does not allow them.
        if self.class == FlagClass::Experimental && !scope.allow_experimental {
            return Some(self.off(Reason::ExperimentalDisabled, None));
        }
        // 3. Prerequisites.
        for prerequisite in self.prerequisites.iter() {
            if !self.prerequisite_met(prerequisite, context, scope, buckets, depth) {
                return Some(self.off(Reason::PrerequisiteFailed, None));
            }
        }
        // 4. and 5. The user lists (by the context's key).
        if self.has_lists {
            let key = context.key();
            if self.exclude.contains(key) {
                return Some(self.off(Reason::Excluded, None));
            }
            if self.include.contains(key) {
                return Some(self.serve(self.default_variant, Reason::Included, None));
            }
        }
        None
    }

    fn prerequisite_met<S: BucketSource>(
        &self,
        prerequisite: &Prerequisite,
        context: &Context<'_>,
        scope: &Scope<'_>,
        buckets: &S,
        depth: usize,
    ) -> bool {
        // Validation bounds the depth; stay total regardless.
        if depth >= MAX_DEPTH {
            return false;
        }
        let Some(required) = scope.flags.get(prerequisite.flag as usize) else {
            return false;
        };
        let e = required.evaluate_in(context, scope, buckets, depth + 1);
        match &prerequisite.expect {
            Expect::Enabled(on) => e.enabled == *on,
            Expect::Variants(variants) => e.variant.is_some_and(|v| variants.contains(&v)),
        }
    }
}

/// What the evaluation fast path needs of a flag, in 24 bytes, stored inline
/// in the snapshot's name index: a flag with no kill switch, no class
/// restriction, no user lists and no targeting (rules, variants,
/// prerequisites, another bucketing key) is decided without touching
/// [`Flag`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HotFlag {
    seed: Seed,
    threshold: Percentage,
    pub(crate) position: u32,
    /// The flag's compact program, or `compact::NONE`.
    program: u32,
    bits: u8,
    /// With [`CONSTANT`](Self::CONSTANT): the variant always served, or
    /// [`NO_VARIANT`](Self::NO_VARIANT) (in the struct's padding).
    constant: u16,
}

impl crate::index::Entry for HotFlag {
    const ABSENT: HotFlag = HotFlag::ABSENT;
}

impl HotFlag {
    /// Placeholder for empty index slots; never evaluated.
    pub(crate) const ABSENT: HotFlag = HotFlag {
        seed: Seed::ZERO,
        threshold: Percentage::ZERO,
        position: u32::MAX,
        program: compact::NONE,
        bits: 0,
        constant: HotFlag::NO_VARIANT,
    };
    const NO_VARIANT: u16 = u16::MAX;
    const KILLED: u8 = 1;
    const EXPERIMENTAL: u8 = 1 << 1;
    const LISTS: u8 = 1 << 2;
    const BUCKETED: u8 = 1 << 3;
    const TARGETED: u8 = 1 << 4;
    /// The compact program reads a per-request view's memo.
    const MEMO: u8 = 1 << 5;
    /// A front-end program with one answer for every context (with
    /// `TARGETED`, so only the slow branch looks): `constant` with `On`, or
    /// no variant with `KillSwitch`.
    const CONSTANT: u8 = 1 << 6;
    /// The constant answer is on.
    const CONSTANT_ON: u8 = 1 << 7;
    const SLOW: u8 = Self::KILLED | Self::EXPERIMENTAL | Self::LISTS | Self::TARGETED;

    /// The answer of a [`CONSTANT`](Self::CONSTANT) flag.
    #[inline(always)]
    fn constant(self) -> Evaluation {
        let served = self.constant != Self::NO_VARIANT;
        Evaluation {
            enabled: self.bits & Self::CONSTANT_ON != 0,
            reason: if served {
                Reason::On
            } else {
                Reason::KillSwitch
            },
            bucket: None,
            variant: served.then_some(self.constant),
        }
    }

    /// Same result as [`Flag::evaluate_in`] on `flags[self.position]` for a
    /// context with `key` and no attributes: the hot path of
    /// `is_enabled(name, user)`. Only the slow branch builds a context and a
    /// scope, so the fast one keeps its arguments in registers.
    #[inline(always)]
    pub(crate) fn evaluate_key<S: BucketSource>(
        &self,
        key: &str,
        allow_experimental: bool,
        flags: &[Flag],
        tables: Tables<'_>,
        buckets: &S,
    ) -> Evaluation {
        if self.bits & Self::SLOW != 0 {
            if self.bits & Self::CONSTANT != 0 {
                return self.constant();
            }
            return self.evaluate_key_slow(key, allow_experimental, flags, tables, buckets);
        }
        self.plain(key, buckets)
    }

    /// As [`evaluate_key`](Self::evaluate_key), for a context with attributes.
    #[inline(always)]
    pub(crate) fn evaluate_context<S: BucketSource>(
        &self,
        context: &Context<'_>,
        allow_experimental: bool,
        flags: &[Flag],
        tables: Tables<'_>,
        buckets: &S,
    ) -> Evaluation {
        if self.bits & Self::SLOW != 0 {
            if self.bits & Self::CONSTANT != 0 {
                return self.constant();
            }
            // A compact program runs from a per-request view's memo (or
            // without one, until a condition needs it).
            let memo = buckets.memo();
            if self.program != compact::NONE && (memo.is_some() || self.bits & Self::MEMO == 0) {
                let tail = compact::Tail {
                    bucketed: self.bits & Self::BUCKETED != 0,
                    seed: self.seed,
                    threshold: self.threshold,
                };
                let run = compact::run(
                    &tables.programs,
                    self.program,
                    tail,
                    context,
                    &tables.dictionaries,
                    memo,
                    buckets,
                );
                if let Some(e) = run {
                    return e;
                }
            }
            return self.evaluate_context_slow(context, allow_experimental, flags, tables, buckets);
        }
        self.plain(context.key(), buckets)
    }

    /// A flag without kill switch, class, lists or targeting.
    #[inline(always)]
    fn plain<S: BucketSource>(&self, key: &str, buckets: &S) -> Evaluation {
        if self.bits & Self::BUCKETED != 0 {
            // An empty key is not a user: in no percentage.
            if key.is_empty() {
                return Evaluation::fixed(Reason::OutOfRollout);
            }
            let bucket = buckets.bucket(self.seed, key);
            Evaluation::bucketed(self.threshold.contains(bucket), bucket)
        } else {
            Evaluation::fixed(Reason::On)
        }
    }

    #[inline(never)]
    fn evaluate_key_slow<S: BucketSource>(
        &self,
        key: &str,
        allow_experimental: bool,
        flags: &[Flag],
        tables: Tables<'_>,
        buckets: &S,
    ) -> Evaluation {
        if self.bits & Self::KILLED != 0 && self.bits & Self::TARGETED == 0 {
            return Evaluation::fixed(Reason::KillSwitch);
        }
        let context = Context::key_only(key);
        self.evaluate_full(&context, allow_experimental, flags, tables, buckets)
    }

    #[inline(never)]
    fn evaluate_context_slow<S: BucketSource>(
        &self,
        context: &Context<'_>,
        allow_experimental: bool,
        flags: &[Flag],
        tables: Tables<'_>,
        buckets: &S,
    ) -> Evaluation {
        if self.bits & Self::KILLED != 0 && self.bits & Self::TARGETED == 0 {
            return Evaluation::fixed(Reason::KillSwitch);
        }
        self.evaluate_full(context, allow_experimental, flags, tables, buckets)
    }

    #[inline(always)]
    fn evaluate_full<S: BucketSource>(
        &self,
        context: &Context<'_>,
        allow_experimental: bool,
        flags: &[Flag],
        tables: Tables<'_>,
        buckets: &S,
    ) -> Evaluation {
        let scope = Scope {
            flags,
            tables,
            allow_experimental,
        };
        match flags.get(self.position as usize) {
            Some(flag) => flag.evaluate_in(context, &scope, buckets, 0),
            None => Evaluation::unknown(),
        }
    }
}

// The constant answer lives in what was padding: the index stays as dense.
const _: () = assert!(std::mem::size_of::<HotFlag>() <= 24);

// The fields evaluation reads stay within the first cache line.
const _: () = assert!(std::mem::offset_of!(Flag, track) < 64);
