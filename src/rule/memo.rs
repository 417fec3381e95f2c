//! [`ValueMemo`]: a per-request view's memo of interned attribute values,
//! and [`Env`], what a condition reads besides the context.

use std::cell::Cell;

use super::{Dictionary, Segment};
use crate::context::{AttributeKey, AttributeValue, Context};

/// What a condition reads besides the context: the snapshot's segments and
/// dictionaries, and (in a per-request view) the memo of interned values.
pub(crate) struct Env<'e> {
    pub(crate) segments: &'e [Segment],
    pub(crate) dictionaries: &'e [Dictionary],
    pub(crate) memo: Option<&'e ValueMemo>,
}

/// Dictionaries (attributes) whose context value a view remembers.
pub(crate) const MEMO_SLOTS: usize = 16;

/// A view's memo, per dictionary (one per attribute that exact `in`
/// conditions test): what the context holds for that attribute, looked up
/// once. Codes: 0 not looked up yet; 1 missing, or a string that no
/// condition names (every `in` on it fails); 2 not a string (conditions
/// read it directly); `id + 3` a string with that id.
#[derive(Default)]
pub(crate) struct ValueMemo {
    slots: [Cell<u32>; MEMO_SLOTS],
}

/// What a view's memo says of an attribute.
pub(crate) enum Memo {
    /// No `in` condition on the attribute holds.
    Nothing,
    /// Read the attribute directly.
    Direct,
    /// The string with this id.
    Id(u32),
}

impl ValueMemo {
    /// A code: the attribute is missing, or a string no condition names.
    pub(crate) const NOTHING: u32 = 1;
    /// A code: the attribute is not a string (conditions read it directly).
    pub(crate) const DIRECT: u32 = 2;
    /// The code of the string with id `id` (`None` when it does not fit).
    pub(crate) fn id_code(id: u32) -> Option<u32> {
        id.checked_add(3)
    }

    /// What the context holds for the attribute of dictionary `index`,
    /// looked up on first use.
    #[inline(always)]
    pub(crate) fn get(
        &self,
        index: u32,
        attribute: AttributeKey,
        context: &Context<'_>,
        dictionaries: &[Dictionary],
    ) -> Memo {
        if index as usize >= MEMO_SLOTS {
            return Memo::Direct;
        }
        match self.code(index, attribute, context, dictionaries) {
            Self::NOTHING => Memo::Nothing,
            Self::DIRECT => Memo::Direct,
            id => Memo::Id(id - 3),
        }
    }

    /// The raw code of dictionary `index` (below [`MEMO_SLOTS`], as compact
    /// programs guarantee; a larger index reads another slot's code, which
    /// only a bug could ask for), looked up on first use: one load and one
    /// compare when it is known.
    #[inline(always)]
    pub(crate) fn code(
        &self,
        index: u32,
        attribute: AttributeKey,
        context: &Context<'_>,
        dictionaries: &[Dictionary],
    ) -> u32 {
        debug_assert!((index as usize) < MEMO_SLOTS);
        let cell = &self.slots[index as usize % MEMO_SLOTS];
        let code = cell.get();
        if code != 0 {
            return code;
        }
        Self::fill(cell, index, attribute, context, dictionaries)
    }

    /// Looks the attribute up in its dictionary (once per view and dictionary).
    #[inline(never)]
    fn fill(
        cell: &Cell<u32>,
        index: u32,
        attribute: AttributeKey,
        context: &Context<'_>,
        dictionaries: &[Dictionary],
    ) -> u32 {
        let code = match (context.find(attribute), dictionaries.get(index as usize)) {
            (None, _) => Self::NOTHING,
            (Some(AttributeValue::String(s)), Some(d)) => {
                d.get(s).and_then(Self::id_code).unwrap_or(Self::NOTHING)
            }
            _ => Self::DIRECT,
        };
        cell.set(code);
        code
    }
}
