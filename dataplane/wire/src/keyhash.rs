//! Hashing for the small maps of the data path whose keys are integers (initiator task tags,
//! LUN numbers, volume uids): one multiply and a rotate per word instead of SipHash, which
//! costs about a hundred instructions per lookup and several lookups per command.
//!
//! Keys may be chosen by a peer (task tags are the initiator's), so each map draws its own
//! random multiplier. Every map using it is bounded by a named limit (the session's queue
//! depth, the LUNs of a target): even keys that collided would cost a probe of that bound,
//! never unbounded work.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A `HashMap` keyed by integers with [`KeyHash`].
pub type KeyHashMap<K, V> = HashMap<K, V, KeyHash>;

/// Builds [`KeyHasher`]s with a multiplier drawn once per map.
#[derive(Debug, Clone)]
pub struct KeyHash {
    multiplier: u64,
}

impl Default for KeyHash {
    fn default() -> Self {
        // RandomState is seeded from the OS once per thread and varied per instance.
        let seed = RandomState::new().hash_one(0x006c_756e_6172_u64);
        KeyHash {
            // Odd, so the multiplication is a bijection of the key space.
            multiplier: seed | 1,
        }
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            state: 0,
            multiplier: self.multiplier,
        }
    }
}

/// The hasher [`KeyHash`] builds.
#[derive(Debug, Clone)]
pub struct KeyHasher {
    state: u64,
    multiplier: u64,
}

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word)
            .wrapping_mul(self.multiplier)
            .rotate_left(29);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // The high bits of a product are the well mixed ones; hashbrown uses the top seven
        // for its control bytes and the low ones for the bucket.
        self.state.wrapping_mul(self.multiplier) ^ (self.state >> 32)
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

    #[test]
    fn sequential_keys_spread_over_buckets() {
        // Task tags are often sequential: their hashes must differ in the low bits (bucket)
        // and in the top seven (hashbrown's control byte).
        let hash = KeyHash::default();
        let mut low = std::collections::HashSet::new();
        let mut top = std::collections::HashSet::new();
        for key in 0..128u32 {
            let h = hash.hash_one(key);
            low.insert(h & 127);
            top.insert(h >> 57);
        }
        assert!(low.len() > 64, "{} distinct low bits", low.len());
        assert!(top.len() > 64, "{} distinct top bits", top.len());
    }

    #[test]
    fn each_map_has_its_own_multiplier() {
        let a = KeyHash::default();
        let b = KeyHash::default();
        assert_ne!(a.hash_one(1u32), b.hash_one(1u32));
    }
}
