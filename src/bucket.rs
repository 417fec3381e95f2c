//! Deterministic bucketing: the contract shared with every other language.
//!
//! ```text
//! seed   = xxh3_64(salt_bytes, seed = 0)
//! h      = xxh3_64(user_key_bytes, seed = seed)
//! bucket = (h as u128 * 1_000_000) >> 64        // an integer in [0, 1_000_000)
//! in     = bucket < round(percentage * 10_000)
//! ```
//!
//! Everything here is pure, allocation-free and total: no `Result`, no panics.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Number of buckets: one per part per million of the population.
pub const BUCKETS: u32 = 1_000_000;

/// A pre-hashed salt: `xxh3_64(salt, seed = 0)`.
///
/// Computing it once per rollout (or per flag) when a snapshot is built keeps
/// the evaluation path to a single hash of the user id.
///
/// ```
/// use genesis_flags::{bucket, Seed};
/// let seed = Seed::from_salt("phase_4_deployment");
/// assert_eq!(seed.bucket("user-42"), bucket("phase_4_deployment", "user-42"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seed(u64);

impl Seed {
    pub(crate) const ZERO: Seed = Seed(0);

    /// Hashes a salt (a rollout id, or a flag key) into the seed for its buckets.
    #[inline(always)]
    #[must_use]
    pub fn from_salt(salt: &str) -> Self {
        Seed(xxh3_64(salt.as_bytes()))
    }

    /// The raw 64-bit seed, for interoperability checks.
    #[inline(always)]
    #[must_use]
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The bucket of `user` under this seed, in `[0, 1_000_000)`.
    #[inline(always)]
    #[must_use]
    pub fn bucket(self, user: &str) -> u32 {
        scale(xxh3_64_with_seed(user.as_bytes(), self.0))
    }
}

/// Maps a 64-bit hash onto `[0, 1_000_000)` without modulo bias
/// (Lemire's multiply-shift reduction).
#[inline(always)]
fn scale(hash: u64) -> u32 {
    // (2^64 - 1) * 10^6 >> 64 < 10^6, so the result always fits a u32.
    ((u128::from(hash) * u128::from(BUCKETS)) >> 64) as u32
}

/// The bucket of `user` for `salt`, in `[0, 1_000_000)`: `xxh3_64` of the
/// user id, seeded with `xxh3_64` of the salt, scaled to a million buckets
/// (`(h as u128 * 1_000_000) >> 64`). This is the contract other languages
/// implement.
///
/// A user is in a rollout at percentage `p` iff
/// `bucket(salt, user) < Percentage::from_percent(p).ppm()`.
///
/// ```
/// let b = genesis_flags::bucket("phase_4_deployment", "user-42");
/// assert!(b < 1_000_000);
/// assert_eq!(b, genesis_flags::bucket("phase_4_deployment", "user-42"));
/// ```
#[inline(always)]
#[must_use]
pub fn bucket(salt: &str, user: &str) -> u32 {
    Seed::from_salt(salt).bucket(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_maps_extremes_into_range() {
        assert_eq!(scale(0), 0);
        assert_eq!(scale(u64::MAX), BUCKETS - 1);
        assert_eq!(scale(1 << 63), BUCKETS / 2);
    }

    #[test]
    fn seed_zero_hash_is_the_unseeded_hash() {
        // The contract relies on xxh3_64(x) == xxh3_64_with_seed(x, 0).
        for s in ["", "a", "phase_4_deployment", "ünïcødé"] {
            assert_eq!(xxh3_64(s.as_bytes()), xxh3_64_with_seed(s.as_bytes(), 0));
        }
    }

    #[test]
    fn bucket_equals_seeded_bucket() {
        let seed = Seed::from_salt("salt");
        assert_eq!(seed.bucket("u"), bucket("salt", "u"));
        assert_ne!(Seed::from_salt("a"), Seed::from_salt("b"));
    }
}
