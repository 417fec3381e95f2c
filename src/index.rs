//! [`NameIndex`]: flag name -> fast-path data, built once per snapshot (and
//! an attribute's string -> its id, in the dictionaries of `in` values).
//!
//! An open-addressing table (linear probing, at most half full). Each slot
//! carries the name's length and its first and last eight bytes (which, for
//! names of up to 16 bytes, are the whole name), so most lookups decide on
//! one slot without reading the name arena or calling `memcmp`; longer names
//! compare their middle bytes in one contiguous arena. It is a general map
//! keyed by `&str`, tuned for the one query the evaluation path makes.

use crate::bytes::{half, word};

/// A value an index holds; `ABSENT` fills its empty slots (never returned).
pub(crate) trait Entry: Copy {
    const ABSENT: Self;
}

impl Entry for u32 {
    const ABSENT: u32 = u32::MAX;
}

/// `len` of an empty slot; real names are far shorter.
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot<V> {
    head: u64,
    tail: u64,
    len: u32,
    /// Where the name's bytes start in the arena (read for names over 16 bytes).
    start: u32,
    hot: V,
}

#[derive(Debug)]
pub(crate) struct NameIndex<V> {
    slots: Box<[Slot<V>]>,
    mask: usize,
    names: Box<[u8]>,
}

/// The name's first and last eight bytes (overlapping, or packed for shorter
/// names): together with the length they determine names of up to 16 bytes.
#[inline(always)]
fn head_tail(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    if len >= 8 {
        (word(bytes, 0), word(bytes, len - 8))
    } else if len >= 4 {
        (u64::from(half(bytes, 0)), u64::from(half(bytes, len - 4)))
    } else {
        let mut packed = 0u64;
        for &b in bytes {
            packed = packed << 8 | u64::from(b);
        }
        (packed, 0)
    }
}

/// Multiply-xorshift over the head, tail and length, and for names over 16
/// bytes every middle word; the table takes the low bits, so the result is
/// the last product's high half folded onto its low half (a product's low
/// bits depend only on its input's low bits: names that differ only in
/// their last bytes, `flag_0001` .. `flag_0999`, would otherwise share low
/// bits and probe long runs). Flag names come from the operator's config; a
/// collision only lengthens a probe, never changes an answer.
#[inline(always)]
fn hash_name(bytes: &[u8], head: u64, tail: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let len = bytes.len();
    let mut h = (head ^ (len as u64).rotate_left(56)).wrapping_mul(K);
    h = (h.rotate_left(29) ^ tail).wrapping_mul(K);
    let mut at = 8;
    while at + 8 < len {
        h = (h.rotate_left(29) ^ word(bytes, at)).wrapping_mul(K);
        at += 8;
    }
    h.swap_bytes() ^ h
}

/// Whether the middle bytes (between the head and tail words) agree; only
/// names over 16 bytes have any.
#[inline(always)]
fn same_middle(stored: &[u8], query: &[u8]) -> bool {
    let len = query.len();
    let mut at = 8;
    while at + 8 < len {
        if word(stored, at) != word(query, at) {
            return false;
        }
        at += 8;
    }
    true
}

impl<V: Entry> NameIndex<V> {
    /// Builds the index; names must be unique.
    pub(crate) fn new<'a>(entries: impl ExactSizeIterator<Item = (&'a str, V)>) -> Self {
        // At most half full, and always one empty slot to end every probe.
        let capacity = (entries.len() * 2).max(1).next_power_of_two();
        let mask = capacity - 1;
        let empty = Slot {
            head: 0,
            tail: 0,
            len: EMPTY,
            start: 0,
            hot: V::ABSENT,
        };
        let mut slots = vec![empty; capacity].into_boxed_slice();
        let mut names = Vec::new();
        for (name, hot) in entries {
            let bytes = name.as_bytes();
            let (head, tail) = head_tail(bytes);
            let mut i = hash_name(bytes, head, tail) as usize & mask;
            while slots[i].len != EMPTY {
                i = (i + 1) & mask;
            }
            // Keys come from a document of at most 16 MiB (flag names are at
            // most 128 bytes), so lengths and offsets fit in u32 (and never
            // equal EMPTY).
            slots[i] = Slot {
                head,
                tail,
                len: bytes.len() as u32,
                start: names.len() as u32,
                hot,
            };
            names.extend_from_slice(bytes);
        }
        NameIndex {
            slots,
            mask,
            names: names.into_boxed_slice(),
        }
    }

    /// The fast-path data of `name`, if present.
    #[inline(always)]
    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        let bytes = name.as_bytes();
        let len = bytes.len();
        if len >= EMPTY as usize {
            return None;
        }
        let (head, tail) = head_tail(bytes);
        let mut i = hash_name(bytes, head, tail) as usize & self.mask;
        loop {
            let slot = self.slots.get(i)?;
            if slot.len as usize == len && slot.head == head && slot.tail == tail {
                if len <= 16 {
                    return Some(&slot.hot);
                }
                let start = slot.start as usize;
                if same_middle(self.names.get(start..start + len)?, bytes) {
                    return Some(&slot.hot);
                }
            } else if slot.len == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn index_of(names: &[String]) -> NameIndex<u32> {
        NameIndex::new(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i as u32)),
        )
    }

    #[test]
    fn every_byte_of_every_length_matters() {
        for len in 1..140usize {
            let name: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let index = index_of(std::slice::from_ref(&name));
            assert_eq!(index.get(&name).copied(), Some(0), "len {len}");
            for flip in 0..len {
                let mut other = name.clone().into_bytes();
                other[flip] = b'0';
                let other = String::from_utf8(other).unwrap();
                assert!(index.get(&other).is_none(), "len {len}, byte {flip}");
            }
            assert!(index.get(&name[..len - 1]).is_none());
        }
    }

    #[test]
    fn names_sharing_head_tail_and_length_are_told_apart() {
        let names: Vec<String> = (0..200)
            .map(|i| format!("feature_{i:03}_rollout_enabled"))
            .collect();
        let index = index_of(&names);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(index.get(n).copied(), Some(i as u32));
        }
        assert!(index.get("feature_999_rollout_enabled").is_none());
    }

    #[test]
    fn empty_index_finds_nothing() {
        let index = NameIndex::<u32>::new(std::iter::empty());
        assert!(index.get("").is_none());
        assert!(index.get("x").is_none());
    }

    proptest! {
        #[test]
        fn agrees_with_a_hash_map(
            names in prop::collection::hash_set("[a-z0-9_.-]{0,40}", 0..200),
            probes in prop::collection::vec("[a-z0-9_.-]{0,40}", 0..50),
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let model: HashMap<&str, u32> =
                names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
            let index = index_of(&names);
            for n in names.iter().chain(&probes) {
                prop_assert_eq!(index.get(n).copied(), model.get(n.as_str()).copied());
            }
        }
    }
}
