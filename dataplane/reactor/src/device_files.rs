//! The backing devices a reactor has registered in its ring's file table (see
//! `lunar_uring::files`), so that reads and writes name a slot instead of a descriptor.
//!
//! A device is registered when the first live generation that uses it is installed and leaves
//! the table when the last such generation is retired, before that generation goes back to the
//! control thread: a removed device is never kept open by a slot. Devices are told apart by
//! their `Arc<BackendFile>`, which this registry holds while the device has a slot, so the same
//! descriptor number reopened for another device can never be mistaken for the old one.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use lunar_uring::{FileRef, Ring};

use crate::backend::BackendFile;
use crate::snapshot::Snapshot;

struct Registered {
    device: Arc<BackendFile>,
    file: FileRef,
    /// Live generations that use the device.
    generations: u32,
}

/// The registered devices of one reactor.
#[derive(Default)]
pub struct DeviceFiles {
    registered: Vec<Registered>,
}

impl DeviceFiles {
    /// A generation is being installed: register the devices it uses that have no slot yet.
    /// Returns how each device (indexed like `snapshot.devices`) is named by operations.
    pub fn acquire(&mut self, ring: &mut Ring, snapshot: &Snapshot) -> Vec<Option<FileRef>> {
        snapshot
            .devices
            .iter()
            .map(|device| {
                let device = device.as_ref()?;
                if let Some(known) = self.find(device) {
                    known.generations += 1;
                    return Some(known.file);
                }
                let file = ring.register_file(device.fd.as_raw_fd());
                self.registered.push(Registered {
                    device: Arc::clone(device),
                    file,
                    generations: 1,
                });
                Some(file)
            })
            .collect()
    }

    /// A generation was retired: the devices no live generation uses any more leave the table.
    pub fn release(&mut self, ring: &mut Ring, snapshot: &Snapshot) {
        for device in snapshot.devices.iter().flatten() {
            let Some(known) = self.find(device) else {
                continue;
            };
            known.generations -= 1;
            if known.generations == 0 {
                let file = known.file;
                self.registered.retain(|r| !Arc::ptr_eq(&r.device, device));
                ring.unregister_file(file);
            }
        }
    }

    /// Devices holding a slot (or a descriptor reference) now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.registered.len()
    }

    fn find(&mut self, device: &Arc<BackendFile>) -> Option<&mut Registered> {
        self.registered
            .iter_mut()
            .find(|r| Arc::ptr_eq(&r.device, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunar_uring::BufPool;

    fn device(dir: &std::path::Path, name: &str) -> Arc<BackendFile> {
        let path = dir.join(name);
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        Arc::new(BackendFile::open(&path).unwrap())
    }

    fn snapshot(generation: u64, devices: &[&Arc<BackendFile>]) -> Snapshot {
        Snapshot {
            generation,
            devices: devices.iter().map(|d| Some(Arc::clone(d))).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_device_keeps_its_slot_while_a_live_generation_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (device(dir.path(), "a"), device(dir.path(), "b"));
        let mut ring = Ring::new(8, BufPool::new(1, 4096, 1, 4096).unwrap()).unwrap();
        let free = ring.free_file_slots();
        let mut files = DeviceFiles::default();

        let first = snapshot(1, &[&a]);
        let one = files.acquire(&mut ring, &first);
        assert!(matches!(one[0], Some(FileRef::Fixed(_))));
        // The next generation adds b and keeps a in the same slot.
        let second = snapshot(2, &[&a, &b]);
        let two = files.acquire(&mut ring, &second);
        assert_eq!(two[0], one[0]);
        assert!(matches!(two[1], Some(FileRef::Fixed(_))) && two[1] != two[0]);
        assert_eq!(ring.free_file_slots(), free - 2);

        // Retiring the first generation frees nothing: the second still uses both.
        files.release(&mut ring, &first);
        assert_eq!((files.len(), ring.free_file_slots()), (2, free - 2));
        // A third generation without a: once the second retires, a leaves the table and
        // the registry lets go of it.
        let third = snapshot(3, &[&b]);
        assert_eq!(files.acquire(&mut ring, &third)[0], two[1]);
        files.release(&mut ring, &second);
        assert_eq!((files.len(), ring.free_file_slots()), (1, free - 1));
        assert_eq!(
            Arc::strong_count(&a),
            3,
            "held by the test and the two dropped-later snapshots"
        );
        drop((first, second));
        assert_eq!(Arc::strong_count(&a), 1);
    }
}
