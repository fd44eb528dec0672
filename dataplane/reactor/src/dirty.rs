//! The dirty regions of a degraded mirror volume: which regions of the volume were written
//! while a mirror leg was out. The control thread keeps the persistent copy; the published
//! table carries this immutable one. A write to a region not yet marked waits until the control
//! thread marked and persisted it (so the mark is durable before the write is issued); a leg
//! that comes back is then resynchronised over the marked regions only.

/// A bitmap of fixed-size regions of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyRegions {
    region_bytes: u64,
    regions: u64,
    bits: Box<[u64]>,
}

impl DirtyRegions {
    /// No region marked, for a volume of `size_bytes` cut in regions of `region_bytes` (> 0).
    pub fn new(region_bytes: u64, size_bytes: u64) -> DirtyRegions {
        let region_bytes = region_bytes.max(1);
        let regions = size_bytes.div_ceil(region_bytes);
        DirtyRegions {
            region_bytes,
            regions,
            bits: vec![0u64; regions.div_ceil(64) as usize].into_boxed_slice(),
        }
    }

    pub fn region_bytes(&self) -> u64 {
        self.region_bytes
    }

    /// How many regions the volume has.
    pub fn len_regions(&self) -> u64 {
        self.regions
    }

    /// The regions `[offset_bytes, offset_bytes + len_bytes)` touches (empty for no bytes).
    pub fn regions_of(&self, offset_bytes: u64, len_bytes: u64) -> std::ops::Range<u64> {
        if len_bytes == 0 {
            return 0..0;
        }
        let first = offset_bytes / self.region_bytes;
        let last = offset_bytes.saturating_add(len_bytes - 1) / self.region_bytes;
        first.min(self.regions)..(last + 1).min(self.regions)
    }

    pub fn is_marked(&self, region: u64) -> bool {
        self.bits
            .get((region / 64) as usize)
            .is_some_and(|word| word & (1 << (region % 64)) != 0)
    }

    /// Whether every region of the byte range is marked.
    pub fn covers(&self, offset_bytes: u64, len_bytes: u64) -> bool {
        self.regions_of(offset_bytes, len_bytes)
            .all(|region| self.is_marked(region))
    }

    /// Mark `region` (ignored past the end).
    pub fn mark(&mut self, region: u64) {
        if region < self.regions {
            self.bits[(region / 64) as usize] |= 1 << (region % 64);
        }
    }

    /// Mark every region of the byte range.
    pub fn mark_range(&mut self, offset_bytes: u64, len_bytes: u64) {
        for region in self.regions_of(offset_bytes, len_bytes) {
            self.mark(region);
        }
    }

    /// The marked regions, ascending.
    pub fn marked(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.regions).filter(|&region| self.is_marked(region))
    }

    pub fn count_marked(&self) -> u64 {
        self.bits
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_map_to_the_regions_they_touch() {
        let mut dirty = DirtyRegions::new(1 << 20, 10 << 20);
        assert_eq!(dirty.len_regions(), 10);
        assert_eq!(dirty.regions_of(0, 0), 0..0);
        assert_eq!(dirty.regions_of((1 << 20) - 512, 1024), 0..2);
        assert!(!dirty.covers(0, 512));
        dirty.mark_range((1 << 20) - 512, 1024);
        assert!(dirty.covers(0, 2 << 20));
        assert!(!dirty.covers(0, (2 << 20) + 1));
        assert_eq!(dirty.marked().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(dirty.count_marked(), 2);
        dirty.mark(99);
        assert_eq!(dirty.count_marked(), 2, "past the end is ignored");
    }

    #[test]
    fn a_short_last_region_counts() {
        let dirty = DirtyRegions::new(4096, 4096 * 64 + 1);
        assert_eq!(dirty.len_regions(), 65);
        assert_eq!(dirty.regions_of(4096 * 64, 1), 64..65);
    }
}
