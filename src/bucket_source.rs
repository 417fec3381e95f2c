//! Where an evaluation gets its buckets: hashed each time ([`Hashing`]), or
//! from a per-request view's cache and memo.

use crate::bucket::Seed;
use crate::rule::ValueMemo;

/// Where buckets come from: hashing, or a per-request cache
/// ([`UserView`](crate::UserView)). `bucket(seed, key)` must equal
/// `seed.bucket(key)`.
pub(crate) trait BucketSource {
    fn bucket(&self, seed: Seed, key: &str) -> u32;

    /// The memo of interned attribute values, in a per-request view.
    #[inline(always)]
    fn memo(&self) -> Option<&ValueMemo> {
        None
    }
}

/// Buckets by hashing every time.
pub(crate) struct Hashing;

impl BucketSource for Hashing {
    #[inline(always)]
    fn bucket(&self, seed: Seed, key: &str) -> u32 {
        seed.bucket(key)
    }
}
