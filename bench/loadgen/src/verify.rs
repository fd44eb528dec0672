//! Data verification: every write stores a pattern derived from (seed, unit, version), and a
//! read of a unit whose last write succeeded must return exactly that pattern. A unit is never
//! read and written at the same time (claims are exclusive), so the expected version is known.

use crate::workload::mix64;

/// The result of checking one finished I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nothing to compare: a write, a failed read, or a unit not written in this run.
    Unchecked,
    Verified,
    Mismatch {
        unit: u64,
        version: u32,
        offset_bytes: usize,
    },
}

/// Per-unit versions and claims of one session's region.
pub struct VerifyMap {
    seed: u64,
    versions: Vec<u32>,
    /// The unit holds the pattern of its current version (its last write succeeded).
    known: Vec<bool>,
    claimed: Vec<bool>,
}

impl VerifyMap {
    pub fn new(units: u64, seed: u64) -> VerifyMap {
        let units = usize::try_from(units).unwrap_or(usize::MAX);
        VerifyMap {
            seed,
            versions: vec![0; units],
            known: vec![false; units],
            claimed: vec![false; units],
        }
    }

    /// Claims `wanted`, or the next unclaimed unit after it; a write moves the unit to its next
    /// version. `None` when every unit is claimed.
    pub fn claim(&mut self, wanted: u64, write: bool) -> Option<u64> {
        let units = self.claimed.len();
        if units == 0 {
            return None;
        }
        let start = usize::try_from(wanted).unwrap_or(0) % units;
        let unit = (0..units)
            .map(|i| (start + i) % units)
            .find(|&u| !self.claimed[u])?;
        self.claimed[unit] = true;
        if write {
            self.versions[unit] = self.versions[unit].wrapping_add(1);
        }
        Some(unit as u64)
    }

    /// Writes the pattern of `unit`'s current version into `buffer`.
    pub fn fill(&self, unit: u64, buffer: &mut [u8]) {
        let base = self.base(unit);
        for (i, chunk) in buffer.chunks_mut(8).enumerate() {
            let word = mix64(base.wrapping_add(i as u64)).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// Releases a claim. A write records whether the unit now holds its pattern; a good read's
    /// `data` is compared with the pattern when the unit's content is known.
    pub fn release(&mut self, unit: u64, write: bool, good: bool, data: Option<&[u8]>) -> Check {
        let Some(index) = usize::try_from(unit)
            .ok()
            .filter(|&u| u < self.claimed.len())
        else {
            return Check::Unchecked;
        };
        self.claimed[index] = false;
        if write {
            self.known[index] = good;
            return Check::Unchecked;
        }
        let Some(data) = data else {
            return Check::Unchecked;
        };
        if !self.known[index] {
            return Check::Unchecked;
        }
        let base = self.base(unit);
        for (i, chunk) in data.chunks(8).enumerate() {
            let word = mix64(base.wrapping_add(i as u64)).to_le_bytes();
            if chunk != &word[..chunk.len()] {
                let within = chunk
                    .iter()
                    .zip(word.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                return Check::Mismatch {
                    unit,
                    version: self.versions[index],
                    offset_bytes: i * 8 + within,
                };
            }
        }
        Check::Verified
    }

    fn base(&self, unit: u64) -> u64 {
        let version = usize::try_from(unit)
            .ok()
            .and_then(|u| self.versions.get(u))
            .copied()
            .unwrap_or(0);
        mix64(
            self.seed
                ^ unit.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ u64::from(version).rotate_left(40),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(map: &mut VerifyMap, unit: u64) -> Vec<u8> {
        assert_eq!(map.claim(unit, true), Some(unit));
        let mut data = vec![0u8; 4096];
        map.fill(unit, &mut data);
        assert_eq!(map.release(unit, true, true, None), Check::Unchecked);
        data
    }

    #[test]
    fn a_read_returns_the_last_written_pattern() {
        let mut map = VerifyMap::new(4, 42);
        let data = written(&mut map, 2);
        assert_eq!(map.claim(2, false), Some(2));
        assert_eq!(map.release(2, false, true, Some(&data)), Check::Verified);
    }

    #[test]
    fn stale_or_corrupt_data_is_a_mismatch_with_its_offset() {
        let mut map = VerifyMap::new(4, 42);
        let first = written(&mut map, 1);
        let second = written(&mut map, 1);
        assert_ne!(first, second, "each version has its own pattern");
        map.claim(1, false);
        assert!(matches!(
            map.release(1, false, true, Some(&first)),
            Check::Mismatch {
                unit: 1,
                version: 2,
                offset_bytes: 0..=7
            }
        ));
        let mut corrupt = second.clone();
        corrupt[1000] ^= 1;
        map.claim(1, false);
        assert_eq!(
            map.release(1, false, true, Some(&corrupt)),
            Check::Mismatch {
                unit: 1,
                version: 2,
                offset_bytes: 1000
            }
        );
    }

    #[test]
    fn patterns_differ_between_units() {
        let mut map = VerifyMap::new(4, 42);
        assert_ne!(written(&mut map, 0), written(&mut map, 3));
    }

    #[test]
    fn unknown_units_are_not_checked() {
        let mut map = VerifyMap::new(4, 1);
        map.claim(0, false);
        assert_eq!(
            map.release(0, false, true, Some(&[0u8; 64])),
            Check::Unchecked
        );
        // A failed write makes the content unknown again.
        written(&mut map, 0);
        map.claim(0, true);
        map.release(0, true, false, None);
        map.claim(0, false);
        assert_eq!(
            map.release(0, false, true, Some(&[0u8; 64])),
            Check::Unchecked
        );
    }

    #[test]
    fn claims_are_exclusive() {
        let mut map = VerifyMap::new(3, 1);
        assert_eq!(map.claim(1, false), Some(1));
        assert_eq!(map.claim(1, true), Some(2));
        assert_eq!(map.claim(1, false), Some(0));
        assert_eq!(map.claim(0, false), None);
        map.release(2, true, true, None);
        assert_eq!(map.claim(0, false), Some(2));
        assert_eq!(VerifyMap::new(0, 1).claim(0, false), None);
        assert_eq!(map.release(99, false, true, None), Check::Unchecked);
    }
}
