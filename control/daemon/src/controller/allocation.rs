//! GET LBA STATUS on the control thread. For a volume of plain extents: which blocks of a
//! volume range are deallocated on their backing files, found with `lseek(SEEK_DATA /
//! SEEK_HOLE)` (a syscall the reactors do not make on their data path) and turned into runs of
//! whole volume blocks; backends that cannot tell (block devices, filesystems without hole
//! support) report everything mapped, which SBC allows. For a volume with segment tables: from
//! the segment states, a Zero segment being deallocated (a block is deallocated when every
//! mirror leg has it in a Zero segment).

use lunar_reactor::DeviceRange;
use lunar_scsi::{lba_status_reply, BlockIo, LbaExtent, ProvisioningStatus, ScsiReply};
use lunar_volume::SegmentEntry;
use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

use super::faults::{coverage, internal_failure, volume_gone};
use super::Controller;

impl Controller {
    /// The GET LBA STATUS answer for `io` on volume `volume_uid`, from its segment states.
    pub(super) fn segment_allocation_status(
        &self,
        volume_uid: u64,
        io: &BlockIo,
        block_size: u64,
    ) -> ScsiReply {
        let Some(volume) = self.volume_index(volume_uid) else {
            return volume_gone();
        };
        let Ok(map) = self.volume_map(volume) else {
            return internal_failure();
        };
        if block_size == 0 {
            return lba_status_reply(io, &[]);
        }
        let start = io.lba.saturating_mul(block_size).min(map.size_bytes);
        let len = u64::from(io.blocks)
            .saturating_mul(block_size)
            .min(map.size_bytes - start);
        let mut zero: Vec<(u64, u64)> = Vec::new();
        let mut held: Vec<(u64, u64)> = Vec::new();
        let walked = coverage(&map, start, len, &mut |piece| {
            let from = start + piece.request_offset_bytes;
            let run = (from, from + piece.len_bytes);
            if piece.entry == SegmentEntry::Zero {
                zero.push(run);
            } else {
                held.push(run);
            }
        });
        if walked.is_err() {
            return internal_failure();
        }
        let extents: Vec<LbaExtent> = subtract(merge(zero), &merge(held))
            .into_iter()
            .filter_map(|(from, to)| {
                let first = from.div_ceil(block_size);
                let end = to / block_size;
                (end > first).then_some(LbaExtent {
                    lba: first,
                    blocks: end - first,
                    status: ProvisioningStatus::Deallocated,
                })
            })
            .take(MAX_DEALLOCATED_RUNS)
            .collect();
        lba_status_reply(io, &extents)
    }
}

/// Sorted, merged `[from, to)` runs.
fn merge(mut runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    runs.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
    for (from, to) in runs {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

/// The parts of sorted, merged `runs` outside sorted, merged `minus`.
fn subtract(runs: Vec<(u64, u64)>, minus: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cut = minus.iter().peekable();
    for (mut from, to) in runs {
        while let Some(&&(cut_from, cut_to)) = cut.peek() {
            if cut_to <= from {
                cut.next();
                continue;
            }
            if cut_from >= to {
                break;
            }
            if cut_from > from {
                out.push((from, cut_from));
            }
            from = from.max(cut_to);
            if cut_to >= to {
                break;
            }
            cut.next();
        }
        if from < to {
            out.push((from, to));
        }
    }
    out
}

/// Most deallocated runs reported for one request; the initiator asks again from where the
/// answer ends, and the reply holds fewer descriptors than this anyway.
pub const MAX_DEALLOCATED_RUNS: usize = 1024;

/// The GET LBA STATUS answer for `io`, whose range is planned as `ranges`. The reactor keeps
/// the descriptors open (the command pins the table generation that holds the devices) until
/// the request is answered.
pub fn allocation_status(io: &BlockIo, block_size: u64, ranges: &[DeviceRange]) -> ScsiReply {
    lba_status_reply(io, &deallocated_extents(ranges, block_size))
}

/// The deallocated runs of `ranges` (pieces of one volume range, each on its device), in
/// volume blocks of `block_size` bytes, ascending. A block counts as deallocated only when
/// all of its bytes are in a hole.
pub fn deallocated_extents(ranges: &[DeviceRange], block_size: u64) -> Vec<LbaExtent> {
    let mut extents = Vec::new();
    if block_size == 0 {
        return extents;
    }
    let mut ordered: Vec<&DeviceRange> = ranges.iter().collect();
    ordered.sort_by_key(|r| r.volume_offset_bytes);
    for range in ordered {
        for (hole_start, hole_end) in holes(range) {
            if extents.len() >= MAX_DEALLOCATED_RUNS {
                return extents;
            }
            let to_volume = |device_offset: u64| {
                range
                    .volume_offset_bytes
                    .saturating_add(device_offset - range.device_offset_bytes)
            };
            let first = to_volume(hole_start).div_ceil(block_size);
            let end = to_volume(hole_end) / block_size;
            if end > first {
                push_merged(&mut extents, first, end - first);
            }
        }
    }
    extents
}

/// Append a deallocated run, merging it with the previous one when they touch.
fn push_merged(extents: &mut Vec<LbaExtent>, lba: u64, blocks: u64) {
    if let Some(last) = extents.last_mut() {
        if last.lba.saturating_add(last.blocks) == lba {
            last.blocks += blocks;
            return;
        }
    }
    extents.push(LbaExtent {
        lba,
        blocks,
        status: ProvisioningStatus::Deallocated,
    });
}

/// The holes of `range` on its device, as `[start, end)` device offsets inside the range.
fn holes(range: &DeviceRange) -> Vec<(u64, u64)> {
    let start = range.device_offset_bytes;
    let end = start.saturating_add(range.len_bytes);
    let mut found = Vec::new();
    let mut position = start;
    while position < end && found.len() < MAX_DEALLOCATED_RUNS {
        let Ok(offset) = i64::try_from(position) else {
            break;
        };
        let data = match lseek(range.fd, offset, Whence::SeekData) {
            Ok(data) => u64::try_from(data).unwrap_or(end),
            // No data at or after `position`: the rest is a hole.
            Err(Errno::ENXIO) => end,
            // Holes are not supported here: report the rest mapped.
            Err(_) => break,
        };
        if data > position {
            found.push((position, data.min(end)));
        }
        if data >= end {
            break;
        }
        let Ok(data_offset) = i64::try_from(data) else {
            break;
        };
        position = match lseek(range.fd, data_offset, Whence::SeekHole) {
            Ok(hole) => u64::try_from(hole).unwrap_or(end),
            Err(_) => break,
        };
        if position <= data {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;

    const BLOCK: u64 = 4096;

    /// A sparse file of `len` bytes with data written at each of `data` (offset, len).
    fn sparse_file(len: u64, data: &[(u64, u64)]) -> std::fs::File {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.set_len(len).expect("set_len");
        for &(offset, bytes) in data {
            file.seek(SeekFrom::Start(offset)).expect("seek");
            file.write_all(&vec![0xa5; bytes as usize]).expect("write");
        }
        file.sync_all().expect("sync");
        file
    }

    fn range(file: &std::fs::File, device: u64, len: u64, volume: u64) -> DeviceRange {
        DeviceRange {
            fd: file.as_raw_fd(),
            device_offset_bytes: device,
            len_bytes: len,
            volume_offset_bytes: volume,
        }
    }

    /// Whether the filesystem of the temporary directory reports holes (ext4, xfs, tmpfs,
    /// btrfs do); the tests that need holes say so and stop when it does not.
    fn holes_supported() -> bool {
        let file = sparse_file(1 << 20, &[]);
        let supported = matches!(lseek(file.as_raw_fd(), 0, Whence::SeekHole), Ok(0));
        if !supported {
            eprintln!("the temporary directory's filesystem reports no holes; skipping");
        }
        supported
    }

    fn deallocated(lba: u64, blocks: u64) -> LbaExtent {
        LbaExtent {
            lba,
            blocks,
            status: ProvisioningStatus::Deallocated,
        }
    }

    #[test]
    fn holes_become_deallocated_runs_in_volume_blocks() {
        let mib = 1 << 20;
        let file = sparse_file(4 * mib, &[(mib, BLOCK), (3 * mib, 2 * BLOCK)]);
        if !holes_supported() {
            return;
        }
        let extents = deallocated_extents(&[range(&file, 0, 4 * mib, 0)], BLOCK);
        assert_eq!(
            extents,
            vec![
                deallocated(0, 256),
                deallocated(257, 511),
                deallocated(770, 254),
            ]
        );
    }

    #[test]
    fn device_offsets_map_to_volume_offsets() {
        let mib = 1 << 20;
        let file = sparse_file(4 * mib, &[(2 * mib, mib)]);
        // Device bytes [1 MiB, 3 MiB) are volume bytes [8 MiB, 10 MiB).
        if !holes_supported() {
            return;
        }
        let extents = deallocated_extents(&[range(&file, mib, 2 * mib, 8 * mib)], 512);
        assert_eq!(extents, vec![deallocated(8 * mib / 512, mib / 512)]);
    }

    #[test]
    fn partial_blocks_stay_mapped_and_touching_ranges_merge() {
        let file = sparse_file(16 * BLOCK, &[]);
        let pieces = [
            range(&file, 0, 4 * BLOCK, 4 * BLOCK),
            range(&file, 8 * BLOCK, 2 * BLOCK + 100, 0),
        ];
        if !holes_supported() {
            return;
        }
        let extents = deallocated_extents(&pieces, BLOCK);
        // Volume [0, 2 blocks + 100 bytes) then [4 blocks, 8 blocks): the partial third
        // block is mapped, so the runs do not touch.
        assert_eq!(extents, vec![deallocated(0, 2), deallocated(4, 4)]);
        let touching = [
            range(&file, 0, 2 * BLOCK, 0),
            range(&file, 8 * BLOCK, 2 * BLOCK, 2 * BLOCK),
        ];
        assert_eq!(
            deallocated_extents(&touching, BLOCK),
            vec![deallocated(0, 4)]
        );
    }

    #[test]
    fn the_reply_lists_holes_deallocated_and_data_mapped() {
        let mib = 1 << 20;
        let file = sparse_file(16 * mib, &[(4 * mib, mib)]);
        if !holes_supported() {
            return;
        }
        let io = BlockIo {
            op: lunar_scsi::BlockOp::GetLbaStatus,
            lba: 0,
            blocks: (16 * mib / 512) as u32,
            fua: false,
            transfer_len_bytes: 4096,
        };
        let reply = allocation_status(&io, 512, &[range(&file, 0, 16 * mib, 0)]);
        assert_eq!(reply.status, lunar_wire::scsi::status::GOOD);
        // Header (8 bytes), then 16-byte descriptors: LBA (8), blocks (4), status (low 4 bits).
        let descriptors: Vec<(u64, u32, u8)> = reply
            .data_in
            .get(8..)
            .unwrap_or_default()
            .chunks_exact(16)
            .map(|d| {
                let mut lba = [0u8; 8];
                lba.copy_from_slice(&d[0..8]);
                let mut blocks = [0u8; 4];
                blocks.copy_from_slice(&d[8..12]);
                (
                    u64::from_be_bytes(lba),
                    u32::from_be_bytes(blocks),
                    d[12] & 0x0f,
                )
            })
            .collect();
        let blocks = |bytes: u64| bytes / 512;
        assert_eq!(
            descriptors,
            vec![
                (0, blocks(4 * mib) as u32, 1),
                (blocks(4 * mib), blocks(mib) as u32, 0),
                (blocks(5 * mib), blocks(11 * mib) as u32, 1),
            ]
        );
    }

    #[test]
    fn runs_merge_and_subtract() {
        assert_eq!(
            merge(vec![(5, 7), (0, 2), (1, 3), (7, 8)]),
            vec![(0, 3), (5, 8)]
        );
        assert_eq!(
            subtract(vec![(0, 10), (20, 30)], &[(2, 4), (8, 22), (29, 40)]),
            vec![(0, 2), (4, 8), (22, 29)]
        );
        assert_eq!(subtract(vec![(0, 10)], &[]), vec![(0, 10)]);
        assert_eq!(subtract(vec![(0, 10)], &[(0, 10)]), vec![]);
    }

    #[test]
    fn fully_written_files_and_bad_inputs_report_nothing() {
        let file = sparse_file(4 * BLOCK, &[(0, 4 * BLOCK)]);
        assert!(deallocated_extents(&[range(&file, 0, 4 * BLOCK, 0)], BLOCK).is_empty());
        assert!(deallocated_extents(&[range(&file, 0, 4 * BLOCK, 0)], 0).is_empty());
        let closed = DeviceRange {
            fd: -1,
            device_offset_bytes: 0,
            len_bytes: 1 << 20,
            volume_offset_bytes: 0,
        };
        assert!(deallocated_extents(&[closed], BLOCK).is_empty());
        let huge = range(&file, u64::MAX - 10, 100, 0);
        assert!(deallocated_extents(&[huge], BLOCK).is_empty());
    }
}
