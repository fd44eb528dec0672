//! Hashing for the small maps of the data path whose keys are integers (initiator task tags,
//! LUN numbers, volume uids): one folded multiply per word instead of SipHash, which costs
//! about a hundred instructions per lookup and several lookups per command.
//!
//! A folded multiply takes the full 128-bit product of the word and an odd constant and
//! xors its two halves, so every bit of the word reaches both the low bits (hashbrown's
//! bucket) and the top seven (its control byte). A plain 64-bit multiply leaves the high bits
//! of small keys to a few bits of the multiplier; with some multipliers 128 sequential task
//! tags fell into a handful of buckets.
//!
//! Keys may be chosen by a peer (task tags are the initiator's), so each map draws its own
//! random seed, folded into the first word. Every map using it is bounded by a named limit
//! (the session's queue depth, the LUNs of a target): even keys that collided would cost a
//! probe of that bound, never unbounded work.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A `HashMap` keyed by integers with [`KeyHash`].
pub type KeyHashMap<K, V> = HashMap<K, V, KeyHash>;

/// The odd constant every word is multiplied by: 2^64 divided by the golden ratio.
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds [`KeyHasher`]s with a seed drawn once per map.
#[derive(Debug, Clone)]
pub struct KeyHash {
    seed: u64,
}

impl KeyHash {
    /// A builder with a chosen seed, for tests that need the same hashes every run.
    pub fn with_seed(seed: u64) -> Self {
        KeyHash { seed }
    }
}

impl Default for KeyHash {
    fn default() -> Self {
        // RandomState is seeded from the OS once per thread and varied per instance.
        KeyHash::with_seed(RandomState::new().hash_one(0x006c_756e_6172_u64))
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { state: self.seed }
    }
}

/// The hasher [`KeyHash`] builds.
#[derive(Debug, Clone)]
pub struct KeyHasher {
    state: u64,
}

/// The two halves of the 128-bit product of `a` and `b`, xored.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, SPREAD);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_find_what_they_hold() {
        let mut map: KeyHashMap<u32, u32> = KeyHashMap::default();
        for key in (0..10_000u32).map(|k| k.wrapping_mul(2_654_435_761)) {
            map.insert(key, key ^ 1);
        }
        assert_eq!(map.len(), 10_000);
        for key in (0..10_000u32).map(|k| k.wrapping_mul(2_654_435_761)) {
            assert_eq!(map.get(&key), Some(&(key ^ 1)));
        }
        assert_eq!(map.get(&3), None);
    }

    /// Seeds spread over the whole 64-bit range, the same every run (splitmix64).
    fn fixed_seeds(count: usize) -> impl Iterator<Item = u64> {
        let mut x = 0x006c_756e_6172_u64;
        std::iter::repeat_with(move || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .take(count)
    }

    #[test]
    fn sequential_keys_spread_over_buckets_for_every_seed() {
        // Task tags are often sequential: their hashes must differ in the low bits (bucket)
        // and in the top seven (hashbrown's control byte), whatever seed a map drew. A
        // random function puts 128 keys in about 81 of 128 slots.
        let (mut fewest_low, mut fewest_top) = (usize::MAX, usize::MAX);
        for seed in fixed_seeds(2_000) {
            let hash = KeyHash::with_seed(seed);
            let mut low = std::collections::HashSet::new();
            let mut top = std::collections::HashSet::new();
            for key in 0..128u32 {
                let h = hash.hash_one(key);
                low.insert(h & 127);
                top.insert(h >> 57);
            }
            fewest_low = fewest_low.min(low.len());
            fewest_top = fewest_top.min(top.len());
        }
        assert!(fewest_low >= 56, "{fewest_low} distinct low bits");
        assert!(fewest_top >= 56, "{fewest_top} distinct top bits");
    }

    #[test]
    fn seeds_change_the_hashes() {
        let a = KeyHash::with_seed(1);
        let b = KeyHash::with_seed(2);
        assert_ne!(a.hash_one(7u32), b.hash_one(7u32));
    }

    #[test]
    fn each_map_draws_its_own_seed() {
        let a = KeyHash::default();
        let b = KeyHash::default();
        assert_ne!(a.hash_one(1u32), b.hash_one(1u32));
    }
}
