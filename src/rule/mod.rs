//! Rules: ordered, first match wins. A [`Rule`] is a conjunction of
//! [`Condition`]s (an empty one matches everyone) that serves a variant or a
//! weighted split; segments are named conjunctions that conditions refer to;
//! prerequisites make a flag depend on what another flag serves.
//!
//! Everything here is compiled when a snapshot is built (regexes, case
//! folding, semantic versions, timestamps, salts, attribute keys, flag
//! positions); evaluation only reads it. Segments are acyclic and
//! prerequisites are acyclic and at most [`MAX_DEPTH`] deep (validation
//! checks both), so evaluation is bounded.

pub(crate) mod condition;
pub mod semver;
pub(crate) mod time;

use crate::variant::Split;

pub(crate) use condition::Condition;

/// The deepest chain of segments within segments, or of prerequisites of
/// prerequisites, that a document may declare.
pub const MAX_DEPTH: usize = 16;

/// A segment: conditions that all hold.
pub(crate) type Segment = Box<[Condition]>;

/// One rule of a flag.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) conditions: Box<[Condition]>,
    pub(crate) serve: Serve,
}

/// What a matching rule serves.
#[derive(Debug, Clone)]
pub(crate) enum Serve {
    /// One variant (by index in the flag's variants).
    Variant(u16),
    /// A weighted split on the bucket; a context without a bucketing key
    /// skips the rule.
    Split(Split),
}

/// A flag this flag requires.
#[derive(Debug, Clone)]
pub(crate) struct Prerequisite {
    /// The required flag's position in the snapshot.
    pub(crate) flag: u32,
    pub(crate) expect: Expect,
}

/// What the required flag must serve.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// Be on (`true`) or off (`false`) for the context.
    Enabled(bool),
    /// Serve one of these variants (indices in the required flag's variants).
    Variants(Box<[u16]>),
}
