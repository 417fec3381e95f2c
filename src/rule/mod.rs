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

pub(crate) mod compact;
pub(crate) mod condition;
pub(crate) mod memo;
pub(crate) mod network;
pub mod semver;
pub(crate) mod text;
pub(crate) mod time;

use rustc_hash::FxHashMap;

use crate::context::AttributeKey;
use crate::index::NameIndex;
use crate::variant::Split;

pub(crate) use condition::Condition;
pub(crate) use memo::{Env, ValueMemo};

/// The deepest chain of segments within segments, or of prerequisites of
/// prerequisites, that a document may declare.
pub const MAX_DEPTH: usize = 16;

/// A segment: conditions that all hold.
pub(crate) type Segment = Box<[Condition]>;

/// The values of every exact `in` condition of a snapshot on one attribute,
/// numbered: a per-request view looks a context's string up here once and
/// answers each such condition on that attribute by comparing ids.
/// Its strings are in the same open-addressing table as flag names (most
/// lookups decide on one slot without `memcmp`).
#[derive(Debug)]
pub(crate) struct Dictionary {
    index: NameIndex<u32>,
}

impl Dictionary {
    /// The id of `value`, if some condition names it.
    #[inline]
    pub(crate) fn get(&self, value: &str) -> Option<u32> {
        self.index.get(value).copied()
    }
}

/// Builds one [`Dictionary`] per attribute that exact `in` conditions test
/// and records each condition's dictionary and value ids (when a snapshot
/// is built). Conditions in segments are included.
pub(crate) fn intern<'a>(conditions: impl Iterator<Item = &'a mut Condition>) -> Vec<Dictionary> {
    let mut by_attribute: FxHashMap<AttributeKey, u32> = FxHashMap::default();
    let mut dictionaries: Vec<FxHashMap<Box<str>, u32>> = Vec::new();
    for condition in conditions {
        let Some(values) = condition.test.in_values() else {
            continue;
        };
        let next = dictionaries.len() as u32;
        let index = *by_attribute.entry(condition.attribute).or_insert(next);
        if index == next {
            dictionaries.push(FxHashMap::default());
        }
        let Some(dictionary) = dictionaries.get_mut(index as usize) else {
            continue;
        };
        let mut ids: Vec<u32> = values
            .iter()
            .map(|v| {
                let id = dictionary.len() as u32;
                *dictionary.entry(v.clone()).or_insert(id)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if let condition::Test::In { interned, .. } = &mut condition.test {
            interned.dictionary = index;
            interned.first = ids.first().copied().unwrap_or(0);
            interned.ids = ids.into();
        }
    }
    dictionaries
        .iter()
        .map(|ids| Dictionary {
            index: NameIndex::new(ids.iter().map(|(value, &id)| (&**value, id))),
        })
        .collect()
}

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
