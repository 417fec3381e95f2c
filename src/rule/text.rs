//! Text comparisons of conditions: short byte strings compared without a
//! `memcmp` call, case-folded matching, and numbers written on the stack.

#[inline(always)]
pub(super) fn starts_with(s: &[u8], v: &[u8]) -> bool {
    s.get(..v.len()).is_some_and(|head| same(head, v))
}

#[inline(always)]
pub(super) fn ends_with(s: &[u8], v: &[u8]) -> bool {
    s.len()
        .checked_sub(v.len())
        .and_then(|from| s.get(from..))
        .is_some_and(|tail| same(tail, v))
}

/// Byte equality without a `memcmp` call for the short strings conditions
/// compare (country codes, plans, e-mail domains): two overlapping 8-byte
/// loads up to 16 bytes, the library beyond.
#[inline(always)]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let len = a.len();
    let word = |s: &[u8], at: usize| -> u64 {
        match s.get(at..at + 8) {
            Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) => {
                u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7])
            }
            _ => 0,
        }
    };
    if (8..=16).contains(&len) {
        word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8)
    } else if len < 8 {
        a.iter().zip(b).all(|(x, y)| x == y)
    } else {
        a == b
    }
}

/// `s`, lower-cased char by char, equals `folded` (already lower case).
pub(super) fn folded_eq(s: &str, folded: &str) -> bool {
    s.chars().flat_map(char::to_lowercase).eq(folded.chars())
}

pub(super) fn folded_prefix(s: &str, folded: &str) -> bool {
    let mut lower = s.chars().flat_map(char::to_lowercase);
    folded.chars().all(|c| lower.next() == Some(c))
}

pub(super) fn folded_suffix(s: &str, folded: &str) -> bool {
    let mut lower = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
    folded.chars().rev().all(|c| lower.next() == Some(c))
}

/// Lower-cases a condition's value when the snapshot is built.
pub(crate) fn fold(value: &str) -> Box<str> {
    value
        .chars()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .into()
}

/// A number written on the stack (a `Display` of an f64 fits in 64 bytes
/// unless it is extreme; longer text fails the write and the test).
pub(super) struct StackText {
    bytes: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl StackText {
    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(self.bytes.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
