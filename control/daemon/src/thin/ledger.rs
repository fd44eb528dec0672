//! Which slots of each pool are free, held, or being released.
//!
//! A pool's devices are cut into slots of `segment_bytes` (each device's whole slots, from
//! offset 0), numbered one after the other across the devices. Each held slot has a reference
//! count: the number of segment entries, over every volume, located at it (a snapshot and its
//! origin share slots, so two or more). Free slots are kept as ranges. A slot whose last
//! reference goes is not free at once: writes planned on an older table generation may still be
//! writing into it, so it waits in `pending` until that generation has drained.
//!
//! Nothing here is stored: [`Ledgers::derive`] rebuilds it from the volumes' tables when lunard
//! starts (then nothing is in flight, so nothing is pending), and the controller keeps it in
//! step with each change it commits.

use std::collections::{BTreeMap, HashMap, HashSet};

use lunar_volume::layout::DeviceId;
use lunar_volume::Location;

use crate::config::Config;
use crate::error::ControlError;
use crate::layout::Devices;

/// The slots of one pool device.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceSlots {
    id: DeviceId,
    /// Number of the device's first slot in the pool.
    first: u64,
    slots: u64,
}

/// The slots of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolLedger {
    segment_bytes: u64,
    devices: Vec<DeviceSlots>,
    refs: HashMap<Location, u32>,
    /// Free slot ranges: first slot -> length; disjoint and never touching.
    free: BTreeMap<u64, u64>,
    free_count: u64,
    /// Slots without references by the generation whose drain frees them (generations drain
    /// in order, so one query per generation, oldest first, is enough).
    pending: BTreeMap<u64, Vec<Location>>,
    pending_count: u64,
}

impl PoolLedger {
    /// A pool over `devices` (`(id, size_bytes)` in pool order) with every slot free.
    pub fn new(segment_bytes: u64, devices: &[(DeviceId, u64)]) -> PoolLedger {
        let mut ledger = PoolLedger {
            segment_bytes,
            devices: Vec::with_capacity(devices.len()),
            refs: HashMap::new(),
            free: BTreeMap::new(),
            free_count: 0,
            pending: BTreeMap::new(),
            pending_count: 0,
        };
        let mut first: u64 = 0;
        for &(id, size_bytes) in devices {
            let slots = size_bytes.checked_div(segment_bytes).unwrap_or(0);
            ledger.devices.push(DeviceSlots { id, first, slots });
            first = first.saturating_add(slots);
        }
        if first > 0 {
            ledger.free.insert(0, first);
            ledger.free_count = first;
        }
        ledger
    }

    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    pub fn total_slots(&self) -> u64 {
        self.devices.iter().map(|d| d.slots).sum()
    }

    pub fn free_slots(&self) -> u64 {
        self.free_count
    }

    /// Slots with at least one reference.
    pub fn held_slots(&self) -> u64 {
        self.refs.len() as u64
    }

    /// Slots waiting for a generation to drain.
    pub fn releasing_slots(&self) -> u64 {
        self.pending_count
    }

    /// References to the slot at `location` (0 for a free, pending or foreign slot).
    pub fn refs(&self, location: Location) -> u32 {
        self.refs.get(&location).copied().unwrap_or(0)
    }

    /// The pool's number of the slot at `location`, if it is one of the pool's slots.
    pub fn slot_number(&self, location: Location) -> Option<u64> {
        let device = self.devices.iter().find(|d| d.id == location.device)?;
        if !location.offset_bytes.is_multiple_of(self.segment_bytes) {
            return None;
        }
        let slot = location.offset_bytes / self.segment_bytes;
        (slot < device.slots).then(|| device.first + slot)
    }

    fn location_of(&self, number: u64) -> Option<Location> {
        let device = self
            .devices
            .iter()
            .find(|d| number >= d.first && number - d.first < d.slots)?;
        Some(Location {
            device: device.id,
            offset_bytes: (number - device.first) * self.segment_bytes,
        })
    }

    /// Take a free slot (lowest first) with one reference.
    pub fn allocate(&mut self) -> Option<Location> {
        let (&start, _) = self.free.first_key_value()?;
        let location = self.location_of(start)?;
        self.take_free(start);
        self.refs.insert(location, 1);
        Some(location)
    }

    /// Undo an [`PoolLedger::allocate`] whose change was not committed.
    pub fn unallocate(&mut self, location: Location) {
        if self.refs.remove(&location).is_some() {
            if let Some(number) = self.slot_number(location) {
                self.put_free(number);
            }
        }
    }

    /// One more reference to a slot: held already, or free (when rebuilding from the tables).
    pub fn add_ref(&mut self, location: Location) -> Result<u32, String> {
        let number = self.slot_number(location).ok_or_else(|| {
            format!(
                "device {} offset {} is not a slot of the pool",
                location.device, location.offset_bytes
            )
        })?;
        if let Some(count) = self.refs.get_mut(&location) {
            *count = count.saturating_add(1);
            return Ok(*count);
        }
        if !self.take_free(number) {
            return Err(format!(
                "slot at device {} offset {} is being released",
                location.device, location.offset_bytes
            ));
        }
        self.refs.insert(location, 1);
        Ok(1)
    }

    /// One reference less, dropped by the change published as `generation`. The last one makes
    /// the slot pending until `generation` has drained. Returns the references left.
    pub fn drop_ref(&mut self, location: Location, generation: u64) -> u32 {
        let Some(count) = self.refs.get_mut(&location) else {
            return 0;
        };
        *count = count.saturating_sub(1);
        let left = *count;
        if left == 0 {
            self.refs.remove(&location);
            self.pending.entry(generation).or_default().push(location);
            self.pending_count += 1;
        }
        left
    }

    /// Free the pending slots whose generation `is_drained` says has drained (asked once per
    /// generation, oldest first, until one has not); returns how many.
    pub fn release_drained(&mut self, is_drained: &mut dyn FnMut(u64) -> bool) -> u64 {
        let mut released = 0;
        while let Some((&generation, _)) = self.pending.first_key_value() {
            if !is_drained(generation) {
                break;
            }
            for location in self.pending.remove(&generation).unwrap_or_default() {
                if let Some(number) = self.slot_number(location) {
                    self.put_free(number);
                }
                released += 1;
            }
        }
        self.pending_count -= released;
        released
    }

    /// The newest generation a pending slot waits for.
    pub fn newest_pending_generation(&self) -> Option<u64> {
        self.pending
            .last_key_value()
            .map(|(&generation, _)| generation)
    }

    /// Remove slot `number` from the free ranges; false when it was not free.
    fn take_free(&mut self, number: u64) -> bool {
        let Some((&start, &len)) = self.free.range(..=number).next_back() else {
            return false;
        };
        if number >= start + len {
            return false;
        }
        self.free.remove(&start);
        if number > start {
            self.free.insert(start, number - start);
        }
        if number + 1 < start + len {
            self.free.insert(number + 1, start + len - number - 1);
        }
        self.free_count -= 1;
        true
    }

    /// Whether slot `number` is in a free range.
    fn is_free(&self, number: u64) -> bool {
        self.free
            .range(..=number)
            .next_back()
            .is_some_and(|(&start, &len)| number < start + len)
    }

    /// Add slot `number` to the free ranges, merging with its neighbours.
    fn put_free(&mut self, number: u64) {
        if self.is_free(number) {
            return;
        }
        let mut start = number;
        let mut len = 1;
        if let Some((&before, &before_len)) = self.free.range(..number).next_back() {
            if before + before_len == number {
                self.free.remove(&before);
                start = before;
                len += before_len;
            }
        }
        if let Some(after_len) = self.free.remove(&(number + 1)) {
            len += after_len;
        }
        self.free.insert(start, len);
        self.free_count += 1;
    }

    /// Check the ledger's own invariants (tests): free ranges disjoint, not touching, counted
    /// right, and no slot both free and held or pending.
    #[cfg(test)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut end_of_previous: Option<u64> = None;
        let mut counted = 0;
        for (&start, &len) in &self.free {
            if len == 0 {
                return Err(format!("empty free range at {start}"));
            }
            if end_of_previous.is_some_and(|end| end >= start) {
                return Err(format!(
                    "free range at {start} overlaps or touches the one before"
                ));
            }
            end_of_previous = Some(start + len);
            counted += len;
        }
        if counted != self.free_count {
            return Err(format!(
                "free count {} but ranges hold {counted}",
                self.free_count
            ));
        }
        let is_free = |location: Location| {
            self.slot_number(location)
                .is_some_and(|number| self.is_free(number))
        };
        for (&location, &count) in &self.refs {
            if count == 0 || is_free(location) {
                return Err(format!("held slot {location:?} ({count} refs) is free"));
            }
        }
        let mut pending = 0;
        for &location in self.pending.values().flatten() {
            pending += 1;
            if is_free(location) || self.refs.contains_key(&location) {
                return Err(format!("pending slot {location:?} is free or held"));
            }
        }
        if pending != self.pending_count {
            return Err(format!(
                "pending count {} but {pending} slots pending",
                self.pending_count
            ));
        }
        let total = self.free_count + self.refs.len() as u64 + pending;
        if total != self.total_slots() {
            return Err(format!(
                "free + held + pending = {total}, pool has {} slots",
                self.total_slots()
            ));
        }
        Ok(())
    }

    /// Every held slot and its references (tests).
    #[cfg(test)]
    pub fn references(&self) -> HashMap<Location, u32> {
        self.refs.clone()
    }
}

/// The ledger of every pool, by pool name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledgers {
    pools: HashMap<String, PoolLedger>,
}

impl Ledgers {
    /// Rebuild every pool's ledger from the tables of `config`'s volumes, checking that each
    /// location is a slot of its node's pool and that no slot is writable (Mapped) in one table
    /// while another table holds it too.
    pub fn derive(config: &Config, devices: &Devices) -> Result<Ledgers, ControlError> {
        let mut ledgers = Ledgers::default();
        for pool in &config.pools {
            let mut slots = Vec::with_capacity(pool.devices.len());
            for name in &pool.devices {
                let id = config
                    .device(name)
                    .ok_or_else(|| ControlError::not_found("device", name))?
                    .id;
                let file = devices.get(name).ok_or_else(|| {
                    ControlError::Internal(format!("device '{name}' is not open"))
                })?;
                slots.push((id, file.size_bytes));
            }
            ledgers.pools.insert(
                pool.name.clone(),
                PoolLedger::new(pool.segment_bytes, &slots),
            );
        }
        let mut writable: Vec<(Location, &str, u64)> = Vec::new();
        for volume in &config.volumes {
            let mut failure: Option<ControlError> = None;
            volume.layout.for_each_thin(&mut |_, pool, _, table| {
                if failure.is_some() {
                    return;
                }
                let Some(ledger) = ledgers.pools.get_mut(pool) else {
                    failure = Some(ControlError::not_found("pool", pool));
                    return;
                };
                if ledger.segment_bytes != table.segment_bytes {
                    failure = Some(ControlError::Conflict(format!(
                        "volume '{}' has {}-byte segments but pool '{pool}' has {}-byte segments",
                        volume.name, table.segment_bytes, ledger.segment_bytes
                    )));
                    return;
                }
                for (index, location, no_write) in table.located() {
                    if let Err(why) = ledger.add_ref(location) {
                        failure = Some(ControlError::Conflict(format!(
                            "segment {index} of volume '{}' is not usable in pool '{pool}': {why}",
                            volume.name
                        )));
                        return;
                    }
                    if !no_write {
                        writable.push((location, &volume.name, index));
                    }
                }
            });
            if let Some(error) = failure {
                return Err(error);
            }
        }
        let mut seen = HashSet::new();
        for (location, volume, index) in writable {
            let shared = ledgers.pools.values().any(|l| l.refs(location) > 1);
            if shared || !seen.insert(location) {
                return Err(ControlError::Conflict(format!(
                    "segment {index} of volume '{volume}' is writable but its slot (device {} offset {}) is shared",
                    location.device, location.offset_bytes
                )));
            }
        }
        Ok(ledgers)
    }

    pub fn get(&self, pool: &str) -> Option<&PoolLedger> {
        self.pools.get(pool)
    }

    pub fn get_mut(&mut self, pool: &str) -> Option<&mut PoolLedger> {
        self.pools.get_mut(pool)
    }

    pub fn insert(&mut self, pool: &str, ledger: PoolLedger) {
        self.pools.insert(pool.to_string(), ledger);
    }

    pub fn remove(&mut self, pool: &str) {
        self.pools.remove(pool);
    }

    /// Free every pending slot whose generation has drained; returns how many.
    pub fn release_drained(&mut self, is_drained: &mut dyn FnMut(u64) -> bool) -> u64 {
        self.pools
            .values_mut()
            .map(|ledger| ledger.release_drained(is_drained))
            .sum()
    }

    /// Whether any slot waits for a drain.
    pub fn any_pending(&self) -> bool {
        self.pools.values().any(|l| l.releasing_slots() > 0)
    }

    /// Every pool's references, for comparing two ledgers regardless of pending slots (tests).
    #[cfg(test)]
    pub fn references(&self) -> HashMap<String, HashMap<Location, u32>> {
        self.pools
            .iter()
            .map(|(name, ledger)| (name.clone(), ledger.references()))
            .collect()
    }

    /// Check every ledger's invariants (tests).
    #[cfg(test)]
    pub fn check_invariants(&self) -> Result<(), String> {
        for (name, ledger) in &self.pools {
            ledger
                .check_invariants()
                .map_err(|why| format!("pool '{name}': {why}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEGMENT: u64 = 4096;

    fn at(device: DeviceId, slot: u64) -> Location {
        Location {
            device,
            offset_bytes: slot * SEGMENT,
        }
    }

    #[test]
    fn slots_are_numbered_across_devices_and_allocated_lowest_first() {
        let mut ledger = PoolLedger::new(SEGMENT, &[(7, 2 * SEGMENT + 100), (3, 3 * SEGMENT)]);
        assert_eq!(ledger.total_slots(), 5);
        assert_eq!(ledger.slot_number(at(3, 0)), Some(2));
        assert_eq!(ledger.slot_number(at(7, 2)), None, "partial slot");
        assert_eq!(
            ledger.slot_number(Location {
                device: 7,
                offset_bytes: 100
            }),
            None
        );
        let taken: Vec<Location> = std::iter::from_fn(|| ledger.allocate()).collect();
        assert_eq!(
            taken,
            vec![at(7, 0), at(7, 1), at(3, 0), at(3, 1), at(3, 2)]
        );
        assert_eq!(ledger.free_slots(), 0);
        ledger.check_invariants().expect("invariants");
    }

    #[test]
    fn a_released_slot_waits_for_its_generation() {
        let mut ledger = PoolLedger::new(SEGMENT, &[(0, 4 * SEGMENT)]);
        let slot = ledger.allocate().expect("slot");
        assert_eq!(ledger.add_ref(slot), Ok(2));
        assert_eq!(ledger.drop_ref(slot, 5), 1);
        assert_eq!(ledger.drop_ref(slot, 6), 0);
        assert_eq!((ledger.free_slots(), ledger.releasing_slots()), (3, 1));
        assert!(ledger.add_ref(slot).is_err(), "a pending slot is not free");
        assert_eq!(ledger.release_drained(&mut |g| g < 6), 0);
        assert_eq!(ledger.newest_pending_generation(), Some(6));
        assert_eq!(ledger.release_drained(&mut |g| g <= 6), 1);
        assert_eq!((ledger.free_slots(), ledger.releasing_slots()), (4, 0));
        ledger.check_invariants().expect("invariants");
        assert_eq!(ledger.allocate(), Some(slot));
    }

    #[test]
    fn unallocate_returns_the_slot() {
        let mut ledger = PoolLedger::new(SEGMENT, &[(0, 3 * SEGMENT)]);
        let first = ledger.allocate().expect("first");
        let second = ledger.allocate().expect("second");
        ledger.unallocate(first);
        ledger.check_invariants().expect("invariants");
        assert_eq!(ledger.refs(second), 1);
        assert_eq!(ledger.allocate(), Some(first));
    }

    proptest! {
        /// Any sequence of allocations, extra references and releases keeps the ranges exact
        /// and never hands out a slot that is held or pending.
        #[test]
        fn operations_keep_the_ledger_consistent(ops in proptest::collection::vec((0u8..4, 0usize..64), 1..300)) {
            let mut ledger = PoolLedger::new(SEGMENT, &[(1, 20 * SEGMENT), (2, 13 * SEGMENT)]);
            let mut held: Vec<Location> = Vec::new();
            let mut generation = 1;
            for (op, pick) in ops {
                generation += 1;
                match op {
                    0 => {
                        if let Some(slot) = ledger.allocate() {
                            prop_assert!(!held.contains(&slot), "slot {:?} handed out twice", slot);
                            held.push(slot);
                        } else {
                            prop_assert_eq!(ledger.free_slots(), 0);
                        }
                    }
                    1 if !held.is_empty() => {
                        let slot = held[pick % held.len()];
                        prop_assert!(ledger.add_ref(slot).is_ok());
                        held.push(slot);
                    }
                    2 if !held.is_empty() => {
                        let slot = held.swap_remove(pick % held.len());
                        let left = ledger.drop_ref(slot, generation);
                        prop_assert_eq!(left as usize, held.iter().filter(|s| **s == slot).count());
                    }
                    _ => {
                        let drained_below = generation - (pick as u64 % 3);
                        ledger.release_drained(&mut |g| g < drained_below);
                    }
                }
                ledger.check_invariants().map_err(TestCaseError::fail)?;
                for slot in &held {
                    prop_assert_eq!(ledger.refs(*slot) as usize, held.iter().filter(|s| *s == slot).count());
                }
            }
        }
    }
}
