//! [`NameIndex`]: flag name -> fast-path data, built once per snapshot.
//!
//! An open-addressing table (linear probing, at most half full) whose slots
//! hold the full 64-bit hash of the name, the name's place in one contiguous
//! byte arena, and the flag's [`HotFlag`]. A lookup hashes the name once,
//! compares hashes, and compares bytes only on a hash match, inline for names
//! up to 16 bytes. It is a general map keyed by `&str`, tuned for the one
//! query the evaluation path makes.

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::flag::HotFlag;

/// A slot's hash when the slot is empty; real hashes are never 0.
const EMPTY: u64 = 0;

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    start: u32,
    len: u32,
    hot: HotFlag,
}

#[derive(Debug)]
pub(crate) struct NameIndex {
    slots: Box<[Slot]>,
    mask: usize,
    names: Box<[u8]>,
}

#[inline(always)]
fn hash_name(name: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(name.as_bytes());
    // 0 marks an empty slot.
    hasher.finish().max(1)
}

/// Byte equality without a call to `memcmp`: flag names are short (at
/// most 128 bytes), and a call costs more than comparing them in words.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len < 8 {
        return match len {
            // Overlapping first and last half-words cover every byte.
            4..=7 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
            _ => a == b,
        };
    }
    // Whole words from the front, then one (overlapping) last word.
    let mut at = 0;
    while at + 8 < len {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, len - 8) == word(b, len - 8)
}

#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    match s.get(at..at + 8) {
        Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) => {
            u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7])
        }
        _ => 0,
    }
}

#[inline(always)]
fn half(s: &[u8], at: usize) -> u32 {
    match s.get(at..at + 4) {
        Some(&[b0, b1, b2, b3]) => u32::from_le_bytes([b0, b1, b2, b3]),
        _ => 0,
    }
}

impl NameIndex {
    /// Builds the index; `names` and `hot` are parallel, names unique.
    pub(crate) fn new<'a>(entries: impl ExactSizeIterator<Item = (&'a str, HotFlag)>) -> Self {
        // At most half full, and always one empty slot to end every probe.
        let capacity = (entries.len() * 2).max(1).next_power_of_two();
        let mask = capacity - 1;
        let empty = Slot {
            hash: EMPTY,
            start: 0,
            len: 0,
            hot: HotFlag::ABSENT,
        };
        let mut slots = vec![empty; capacity].into_boxed_slice();
        let mut names = Vec::new();
        for (name, hot) in entries {
            let hash = hash_name(name);
            let mut i = hash as usize & mask;
            while slots[i].hash != EMPTY {
                i = (i + 1) & mask;
            }
            // Names are at most 128 bytes and documents at most 16 MiB, so
            // offsets fit in u32.
            slots[i] = Slot {
                hash,
                start: names.len() as u32,
                len: name.len() as u32,
                hot,
            };
            names.extend_from_slice(name.as_bytes());
        }
        NameIndex {
            slots,
            mask,
            names: names.into_boxed_slice(),
        }
    }

    /// The fast-path data of `name`, if present.
    #[inline(always)]
    pub(crate) fn get(&self, name: &str) -> Option<&HotFlag> {
        let hash = hash_name(name);
        let mut i = hash as usize & self.mask;
        loop {
            let slot = self.slots.get(i)?;
            if slot.hash == hash {
                let start = slot.start as usize;
                let stored = self.names.get(start..start + slot.len as usize)?;
                if same_bytes(stored, name.as_bytes()) {
                    return Some(&slot.hot);
                }
            } else if slot.hash == EMPTY {
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

    fn hot(position: u32) -> HotFlag {
        let mut hot = HotFlag::ABSENT;
        hot.position = position;
        hot
    }

    #[test]
    fn same_bytes_compares_every_byte() {
        for len in 0..140 {
            let a: Vec<u8> = (0..len as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            for flip in 0..len {
                let mut b = a.clone();
                b[flip] ^= 0x20;
                assert!(!same_bytes(&a, &b), "len {len}, byte {flip}");
                let mut b = a.clone();
                b[flip] = b[flip].wrapping_add(1);
                b[flip] ^= 0x20;
                assert!(!same_bytes(&a, &b), "len {len}, byte {flip}");
            }
        }
        assert!(!same_bytes(b"abc", b"abcd"));
    }

    #[test]
    fn empty_index_finds_nothing() {
        let index = NameIndex::new(std::iter::empty());
        assert!(index.get("").is_none());
        assert!(index.get("x").is_none());
    }

    proptest! {
        #[test]
        fn agrees_with_a_hash_map(
            names in prop::collection::hash_set("[a-z0-9_.-]{1,40}", 0..200),
            probes in prop::collection::vec("[a-z0-9_.-]{0,40}", 0..50),
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let model: HashMap<&str, u32> =
                names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
            let index = NameIndex::new(names.iter().enumerate().map(|(i, n)| (n.as_str(), hot(i as u32))));
            for n in names.iter().chain(&probes) {
                prop_assert_eq!(index.get(n).map(|h| h.position), model.get(n.as_str()).copied());
            }
        }
    }
}
