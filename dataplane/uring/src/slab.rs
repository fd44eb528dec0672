//! Generational slab of operations in flight. The `user_data` of every submitted entry is a
//! [`UserData`]: slab index and generation packed in 64 bits, never zero, so a completion for a
//! slot that was reused is recognised and dropped rather than misapplied.

/// Packed `(generation << 32) | (index + 1)`; zero is never produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserData(pub u64);

impl UserData {
    fn new(index: usize, generation: u32) -> Self {
        UserData(((generation as u64) << 32) | (index as u64 + 1))
    }
    fn index(self) -> Option<usize> {
        let low = (self.0 & 0xffff_ffff) as usize;
        low.checked_sub(1)
    }
    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A fixed-capacity slab: `insert` fails (handing the value back) when full, which callers treat
/// as backpressure.
pub struct OpSlab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> OpSlab<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        let slots = (0..capacity)
            .map(|_| Slot {
                generation: 1,
                value: None,
            })
            .collect();
        OpSlab {
            slots,
            free: (0..capacity).rev().collect(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Store `value`; returns its id, or the value back when the slab is full.
    pub fn insert(&mut self, value: T) -> Result<UserData, T> {
        let Some(index) = self.free.pop() else {
            return Err(value);
        };
        let slot = &mut self.slots[index];
        debug_assert!(slot.value.is_none());
        slot.value = Some(value);
        self.len += 1;
        Ok(UserData::new(index, slot.generation))
    }

    /// Take the value stored under `id`, if `id` is current.
    pub fn remove(&mut self, id: UserData) -> Option<T> {
        let index = id.index()?;
        let slot = self.slots.get_mut(index)?;
        if slot.generation != id.generation() {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.free.push(index);
        self.len -= 1;
        Some(value)
    }

    pub fn get_mut(&mut self, id: UserData) -> Option<&mut T> {
        let index = id.index()?;
        let slot = self.slots.get_mut(index)?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.value.as_mut()
    }

    pub fn get(&self, id: UserData) -> Option<&T> {
        let index = id.index()?;
        let slot = self.slots.get(index)?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.value.as_ref()
    }

    /// Ids of every stored value (for shutdown and sweeps; allocates).
    pub fn ids(&self) -> Vec<UserData> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| UserData::new(i, s.generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_zero_and_stale_ids_miss() {
        let mut slab = OpSlab::with_capacity(2);
        let a = slab.insert("a").unwrap();
        assert_ne!(a.0, 0);
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b").unwrap();
        assert_ne!(a, b, "reused slot must carry a new generation");
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
    }

    #[test]
    fn full_slab_hands_the_value_back() {
        let mut slab = OpSlab::with_capacity(1);
        slab.insert(1).unwrap();
        assert_eq!(slab.insert(2), Err(2));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.remove(UserData(0)), None);
    }
}
