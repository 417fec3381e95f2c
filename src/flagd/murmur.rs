//! MurmurHash3 x86 32-bit (seed 0), fed in pieces, and the `fractional`
//! bucket of a hash.
//!
//! flagd's fractional operation hashes the UTF-8 bytes of its bucketing
//! value (by default the flag key followed by the targeting key) and maps the
//! 32-bit hash onto the sum of the weights:
//!
//! ```text
//! h      = murmur3_x86_32(bytes, seed = 0)       as an unsigned 32-bit integer
//! bucket = (h as u64 * total_weight) >> 32        an integer in [0, total_weight)
//! ```
//!
//! The bucketing value is often a concatenation (`$flagd.flagKey` and the
//! targeting key, or a `cat` of context values); the hasher takes it piece by
//! piece so that no string is built per evaluation. The result equals the
//! one-shot hash of the concatenated bytes (tested against the `murmur3`
//! crate).

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// MurmurHash3 x86 32 with seed 0, over bytes written in any number of pieces.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Murmur3 {
    h: u32,
    tail: u32,
    tail_len: u32,
    len: u32,
}

#[inline(always)]
fn mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

impl Murmur3 {
    /// Appends `bytes` to the hashed input.
    #[inline]
    pub(crate) fn write(&mut self, mut bytes: &[u8]) {
        // Lengths wrap like the reference implementation's 32-bit length.
        self.len = self.len.wrapping_add(bytes.len() as u32);
        // Complete a pending block first.
        while self.tail_len != 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            self.tail |= u32::from(b) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = rest;
            if self.tail_len == 4 {
                self.block(self.tail);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        let mut chunks = bytes.chunks_exact(4);
        for chunk in &mut chunks {
            let k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.block(k);
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.tail |= u32::from(b) << (8 * i);
            self.tail_len += 1;
        }
    }

    #[inline(always)]
    fn block(&mut self, k: u32) {
        self.h ^= mix_k(k);
        self.h = self
            .h
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    /// The hash of everything written.
    #[inline]
    pub(crate) fn finish(self) -> u32 {
        let mut h = self.h;
        if self.tail_len != 0 {
            h ^= mix_k(self.tail);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

impl std::fmt::Write for Murmur3 {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

/// The hash of `bytes` in one piece.
#[cfg(test)]
pub(crate) fn murmur3_32(bytes: &[u8]) -> u32 {
    let mut m = Murmur3::default();
    m.write(bytes);
    m.finish()
}

/// The bucket of `hash` among `total` weight units: `(hash * total) >> 32`,
/// in `[0, total)` for `total <= 2^32`.
#[inline]
pub(crate) fn bucket(hash: u32, total: u64) -> u64 {
    (u64::from(hash) * total) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Reference values of MurmurHash3_x86_32 with seed 0.
        assert_eq!(murmur3_32(b""), 0);
        assert_eq!(murmur3_32(b"hello"), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723
        );
        // The testbed's edge keys, chosen for their hashes.
        assert_eq!(murmur3_32(b"ejOoVL"), 0);
        assert_eq!(murmur3_32(b"bY9fO-"), 1);
        assert_eq!(murmur3_32(b"SI7p-"), 2_147_483_647);
        assert_eq!(murmur3_32(b"6LvT0"), 2_147_483_648);
        assert_eq!(murmur3_32(b"ceQdGm"), u32::MAX);
    }

    #[test]
    fn pieces_hash_as_the_whole() {
        let text = b"fractional-flag-shorthandjon@company.com and more bytes";
        let whole = murmur3_32(text);
        for a in 0..text.len() {
            for b in a..text.len() {
                let mut m = Murmur3::default();
                m.write(&text[..a]);
                m.write(&text[a..b]);
                m.write(&[]);
                m.write(&text[b..]);
                assert_eq!(m.finish(), whole, "split at {a}, {b}");
            }
        }
    }

    #[test]
    fn buckets_cover_the_range() {
        assert_eq!(bucket(0, 100), 0);
        assert_eq!(bucket(u32::MAX, 100), 99);
        assert_eq!(bucket(1 << 31, 100), 50);
        assert_eq!(bucket((1 << 31) - 1, 100), 49);
        assert_eq!(bucket(u32::MAX, 1), 0);
    }
}
