//! Little-endian reads of a byte string that never panic: what the name
//! index and the packed condition values compare.

/// The 8 bytes of `s` at `at`, little-endian (0 past the end).
#[inline(always)]
pub(crate) fn word(s: &[u8], at: usize) -> u64 {
    match s.get(at..at + 8) {
        Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) => {
            u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7])
        }
        _ => 0,
    }
}

/// The 4 bytes of `s` at `at`, little-endian (0 past the end).
#[inline(always)]
pub(crate) fn half(s: &[u8], at: usize) -> u32 {
    match s.get(at..at + 4) {
        Some(&[b0, b1, b2, b3]) => u32::from_le_bytes([b0, b1, b2, b3]),
        _ => 0,
    }
}
