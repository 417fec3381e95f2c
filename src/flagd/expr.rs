//! The compiled form of a targeting rule: a tree of operations whose
//! constants are parsed and whose variables are resolved to slots when the
//! document is loaded.

use crate::context::AttributeKey;

use super::semver::{OwnedVersion, SemverOp};

/// No variant: a constant string that names none of the flag's variants.
pub(crate) const NO_VARIANT: u16 = u16::MAX;

/// A constant of the document.
#[derive(Debug, Clone)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    /// A string and, when it names one of the flag's variants, its index
    /// (else [`NO_VARIANT`]): a rule that returns it serves that variant
    /// without comparing strings.
    Str(Box<str>, u16),
    Array(Box<[Lit]>),
}

/// Where a `var` reads from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    /// `targetingKey`: the context's key.
    TargetingKey,
    /// `$flagd.timestamp`: the time of the evaluation, in whole seconds
    /// since the Unix epoch.
    Timestamp,
    /// An attribute of the context (a dotted path is one flattened name).
    Attribute(AttributeKey),
}

/// A `var`: its slot and the default for a missing value.
#[derive(Debug, Clone)]
pub(crate) struct Var {
    pub(crate) slot: Slot,
    pub(crate) default: Option<Box<Node>>,
}

/// `<`, `<=`, `>`, `>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Lt,
    Le,
    Gt,
    Ge,
}

/// `+`, `-`, `*`, `/`, `%`, `min`, `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Min,
    Max,
}

/// A `fractional` weight.
#[derive(Debug, Clone)]
pub(crate) enum Weight {
    Const(u64),
    Expr(Node),
}

/// A compiled `fractional`.
#[derive(Debug, Clone)]
pub(crate) struct Fractional {
    /// The bucketing expression; `None` buckets by the flag key followed by
    /// the targeting key.
    pub(crate) by: Option<Node>,
    /// The flag key (the default bucketing value's prefix).
    pub(crate) flag_key: Box<str>,
    /// The buckets: what each serves and its weight.
    pub(crate) buckets: Box<[(Node, Weight)]>,
    /// The sum of the weights when they are all constants.
    pub(crate) total: Option<u64>,
}

/// A compiled `sem_ver`.
#[derive(Debug, Clone)]
pub(crate) struct SemVer {
    pub(crate) left: Node,
    pub(crate) op: SemverOp,
    pub(crate) right: Node,
    /// The right-hand side when it is a constant version.
    pub(crate) right_const: Option<OwnedVersion>,
}

/// A missing-value check's key: its name (what `missing` returns) and slot.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) name: Box<str>,
    pub(crate) slot: Slot,
}

/// One node of a compiled rule.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Lit(Lit),
    Var(Var),
    /// An array literal with expressions in it.
    Array(Box<[Node]>),
    If(Box<[Node]>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Truthy(Box<Node>),
    /// `==` (loose) or `!=` when `negate`.
    LooseEq(Box<[Node; 2]>, bool),
    /// `===` or `!==` when `negate`.
    StrictEq(Box<[Node; 2]>, bool),
    /// Two or (for `<` and `<=`) three operands.
    Compare(Order, Box<[Node]>),
    In(Box<[Node; 2]>),
    Cat(Box<[Node]>),
    Substr(Box<[Node]>),
    Merge(Box<[Node]>),
    Missing(Box<[Key]>),
    MissingSome(usize, Box<[Key]>),
    Arith(Arith, Box<[Node]>),
    StartsWith(Box<[Node; 2]>),
    EndsWith(Box<[Node; 2]>),
    SemVer(Box<SemVer>),
    Fractional(Box<Fractional>),
}
