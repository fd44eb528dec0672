//! Copying a range of a volume from one layout to another on the control thread: a mirror
//! leg being resynchronised from a healthy leg, a volume moving onto a new layout. Both sides
//! are planned with the data plane's own planner ([`VolumeMap::plan_io`]) and moved with
//! blocking `pread`/`pwrite` on the devices the published table holds open (O_DIRECT, so the
//! buffer is page-aligned). The caller holds the volume's range lock over the range, so no host
//! write to it is in flight while it is copied.
//!
//! A target that needs the control thread first (a thin segment to allocate) is reported as
//! [`CopyOutcome::TargetFaults`]; the caller resolves the faults, publishes, and copies the range
//! again with a map of the new table.

use std::sync::Arc;

use lunar_reactor::BackendFile;
use lunar_volume::{
    FaultReason, FirstReadable, IoOp, PlanOutcome, PlanStep, SegmentRef, VolumeMap,
};
use memmap2::MmapMut;

use crate::thin::device_io::{read_exact_at, write_all_at};

/// Largest range one [`Copier::copy`] call moves.
pub const COPY_CHUNK_BYTES: u64 = 1 << 20;

/// What a copy of one range did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// The range is on the target.
    Copied,
    /// Both sides read as zeros (never written, never allocated): nothing to move.
    BothZero,
    /// The target has segments the control thread must resolve first (thin allocation).
    TargetFaults(Vec<(SegmentRef, FaultReason)>),
}

/// Why a range could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("range {offset_bytes}+{len_bytes} is outside the {what}")]
    OutOfRange {
        what: &'static str,
        offset_bytes: u64,
        len_bytes: u64,
    },
    #[error("the source cannot be read at volume byte {offset_bytes}: {reason}")]
    Source { offset_bytes: u64, reason: String },
    #[error("the target cannot be written at volume byte {offset_bytes}: {reason}")]
    Target { offset_bytes: u64, reason: String },
    #[error("cannot allocate a copy buffer: {0}")]
    Buffer(std::io::Error),
}

/// Copies ranges from `source` to `target` (maps of the same size in volume bytes).
pub struct Copier {
    buf: MmapMut,
    /// The target's plan of the range being copied.
    steps: Vec<PlanStep>,
    /// The source's plan of it.
    source_steps: Vec<PlanStep>,
}

impl Copier {
    pub fn new() -> Result<Copier, CopyError> {
        let buf = MmapMut::map_anon(COPY_CHUNK_BYTES as usize).map_err(CopyError::Buffer)?;
        Ok(Copier {
            buf,
            steps: Vec::new(),
            source_steps: Vec::new(),
        })
    }

    /// Copy `[offset_bytes, offset_bytes + len_bytes)` (at most [`COPY_CHUNK_BYTES`]).
    /// `devices` is indexed by device id, as in a published snapshot.
    pub fn copy(
        &mut self,
        source: &VolumeMap,
        target: &VolumeMap,
        devices: &[Option<Arc<BackendFile>>],
        offset_bytes: u64,
        len_bytes: u64,
    ) -> Result<CopyOutcome, CopyError> {
        let len = len_bytes.min(COPY_CHUNK_BYTES);
        let out_of_range = |what| CopyError::OutOfRange {
            what,
            offset_bytes,
            len_bytes,
        };
        self.steps.clear();
        let planned = target
            .plan_io(
                IoOp::Write,
                offset_bytes,
                len,
                &mut FirstReadable,
                &mut self.steps,
            )
            .map_err(|_| out_of_range("target"))?;
        let target_faults: Vec<(SegmentRef, FaultReason)> = match planned {
            PlanOutcome::Ready => Vec::new(),
            PlanOutcome::Faulted => self
                .steps
                .iter()
                .filter_map(|step| match *step {
                    PlanStep::Fault { segment, reason } => Some((segment, reason)),
                    _ => None,
                })
                .collect(),
        };
        let source_zero = self.read_source(source, devices, offset_bytes, len)?;
        if !target_faults.is_empty() {
            let only_unallocated = target_faults
                .iter()
                .all(|(_, reason)| *reason == FaultReason::WriteToZero);
            if source_zero && only_unallocated {
                return Ok(CopyOutcome::BothZero);
            }
            return Ok(CopyOutcome::TargetFaults(target_faults));
        }
        // `steps` still holds the target's plan (the source was read with its own).
        for step in &self.steps {
            match *step {
                PlanStep::Device {
                    device,
                    device_offset_bytes,
                    len_bytes,
                    request_offset_bytes,
                    ..
                } => {
                    let file = device_file(devices, device).ok_or_else(|| CopyError::Target {
                        offset_bytes: offset_bytes + request_offset_bytes,
                        reason: format!("device {device} is not open"),
                    })?;
                    let start = request_offset_bytes as usize;
                    let bytes = &self.buf[start..start + len_bytes as usize];
                    write_all_at(file, bytes, device_offset_bytes).map_err(|e| {
                        CopyError::Target {
                            offset_bytes: offset_bytes + request_offset_bytes,
                            reason: e.to_string(),
                        }
                    })?;
                }
                PlanStep::Error {
                    request_offset_bytes,
                    ..
                } => {
                    return Err(CopyError::Target {
                        offset_bytes: offset_bytes + request_offset_bytes,
                        reason: "no writable place (error segment or no leg left)".to_string(),
                    })
                }
                PlanStep::Zero { .. } | PlanStep::Fault { .. } => {}
            }
        }
        Ok(CopyOutcome::Copied)
    }

    /// Read the range of `source` into the buffer; true when all of it read as Zero segments.
    fn read_source(
        &mut self,
        source: &VolumeMap,
        devices: &[Option<Arc<BackendFile>>],
        offset_bytes: u64,
        len: u64,
    ) -> Result<bool, CopyError> {
        let mut steps = Vec::new();
        let planned = source
            .plan_io(
                IoOp::Read,
                offset_bytes,
                len,
                &mut FirstReadable,
                &mut steps,
            )
            .map_err(|_| CopyError::OutOfRange {
                what: "source",
                offset_bytes,
                len_bytes: len,
            })?;
        if planned == PlanOutcome::Faulted {
            return Err(CopyError::Source {
                offset_bytes,
                reason: "the source range is being changed".to_string(),
            });
        }
        let mut all_zero = true;
        for &step in &steps {
            match step {
                PlanStep::Device {
                    device,
                    device_offset_bytes,
                    len_bytes,
                    request_offset_bytes,
                    ..
                } => {
                    all_zero = false;
                    let at = offset_bytes + request_offset_bytes;
                    let file = device_file(devices, device).ok_or_else(|| CopyError::Source {
                        offset_bytes: at,
                        reason: format!("device {device} is not open"),
                    })?;
                    let start = request_offset_bytes as usize;
                    let bytes = &mut self.buf[start..start + len_bytes as usize];
                    read_exact_at(file, bytes, device_offset_bytes).map_err(|e| {
                        CopyError::Source {
                            offset_bytes: at,
                            reason: e.to_string(),
                        }
                    })?;
                }
                PlanStep::Zero {
                    request_offset_bytes,
                    len_bytes,
                } => {
                    let start = request_offset_bytes as usize;
                    self.buf[start..start + len_bytes as usize].fill(0);
                }
                PlanStep::Error {
                    request_offset_bytes,
                    ..
                } => {
                    return Err(CopyError::Source {
                        offset_bytes: offset_bytes + request_offset_bytes,
                        reason: "no readable place (error segment or no leg left)".to_string(),
                    })
                }
                PlanStep::Fault { .. } => {}
            }
        }
        self.source_steps = steps;
        Ok(all_zero)
    }
}

fn device_file(devices: &[Option<Arc<BackendFile>>], device: u32) -> Option<&BackendFile> {
    devices.get(device as usize)?.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lunar_volume::layout::Layout;
    use lunar_volume::{Location, SegmentEntry};

    const MIB: u64 = 1 << 20;

    fn device(dir: &tempfile::TempDir, name: &str, len: u64, fill: u8) -> Arc<BackendFile> {
        let path = dir.path().join(name);
        std::fs::write(&path, vec![fill; len as usize]).expect("write device file");
        Arc::new(BackendFile::open(&path).expect("open device file"))
    }

    fn linear(device: u32, offset_bytes: u64, size_bytes: u64) -> Layout {
        Layout::Linear {
            device,
            offset_bytes,
            size_bytes,
        }
    }

    #[test]
    fn copies_a_stripe_onto_a_linear_extent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = vec![
            Some(device(&dir, "a", 2 * MIB, 0xaa)),
            Some(device(&dir, "b", 2 * MIB, 0xbb)),
            Some(device(&dir, "c", 4 * MIB, 0)),
        ];
        let source = VolumeMap::new(Layout::Stripe {
            unit_bytes: 64 * 1024,
            members: vec![linear(0, 0, 2 * MIB), linear(1, 0, 2 * MIB)],
        });
        let target = VolumeMap::new(linear(2, 0, 4 * MIB));
        let mut copier = Copier::new().expect("copier");
        for chunk in 0..4 {
            let outcome = copier
                .copy(&source, &target, &devices, chunk * MIB, MIB)
                .expect("copy");
            assert_eq!(outcome, CopyOutcome::Copied);
        }
        let copied = std::fs::read(dir.path().join("c")).expect("read target");
        for (unit, bytes) in copied.chunks(64 * 1024).enumerate() {
            let expected = if unit % 2 == 0 { 0xaa } else { 0xbb };
            assert!(bytes.iter().all(|&b| b == expected), "unit {unit}");
        }
    }

    #[test]
    fn a_thin_target_reports_its_faults_and_copies_once_allocated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = vec![
            Some(device(&dir, "src", 2 * MIB, 0x5a)),
            Some(device(&dir, "pool", 2 * MIB, 0)),
        ];
        let source = VolumeMap::new(linear(0, 0, 2 * MIB));
        let thin = Layout::thin(7, 2 * MIB, MIB);
        let mut copier = Copier::new().expect("copier");
        let outcome = copier
            .copy(&source, &VolumeMap::new(thin.clone()), &devices, MIB, MIB)
            .expect("copy");
        let CopyOutcome::TargetFaults(faults) = outcome else {
            panic!("expected faults, got {outcome:?}");
        };
        assert_eq!(faults.len(), 1);
        assert_eq!((faults[0].0.node, faults[0].0.index), (7, 1));
        let Layout::Segmented {
            id,
            size_bytes,
            segment_bytes,
            entries,
        } = thin
        else {
            unreachable!()
        };
        let location = Location {
            device: 1,
            offset_bytes: 0,
        };
        let entries = entries
            .with_entry(1, SegmentEntry::Mapped(location))
            .expect("entry");
        let allocated = VolumeMap::new(Layout::Segmented {
            id,
            size_bytes,
            segment_bytes,
            entries,
        });
        let outcome = copier
            .copy(&source, &allocated, &devices, MIB, MIB)
            .expect("copy");
        assert_eq!(outcome, CopyOutcome::Copied);
        let pool = std::fs::read(dir.path().join("pool")).expect("read pool");
        assert!(pool[..MIB as usize].iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn zero_onto_unallocated_moves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = vec![Some(device(&dir, "pool", MIB, 0))];
        let source = VolumeMap::new(Layout::thin(1, 2 * MIB, MIB));
        let target = VolumeMap::new(Layout::thin(2, 2 * MIB, MIB));
        let mut copier = Copier::new().expect("copier");
        let outcome = copier
            .copy(&source, &target, &devices, 0, MIB)
            .expect("copy");
        assert_eq!(outcome, CopyOutcome::BothZero);
    }

    #[test]
    fn an_unreadable_source_is_an_error_naming_the_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = vec![
            Some(device(&dir, "short", 4096, 1)),
            Some(device(&dir, "target", MIB, 0)),
        ];
        let source = VolumeMap::new(linear(0, 0, MIB));
        let target = VolumeMap::new(linear(1, 0, MIB));
        let mut copier = Copier::new().expect("copier");
        let error = copier
            .copy(&source, &target, &devices, 0, MIB)
            .expect_err("the source ends early");
        assert!(error.to_string().contains("cannot be read"), "{error}");
    }
}
