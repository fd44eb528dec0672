//! The steps of a block command, by operation. Reads and writes run in chunks of at most one
//! I/O buffer (they always fit in one; a long VERIFY or WRITE SAME walks its range chunk by
//! chunk); COMPARE AND WRITE and ORWRITE read, then write under their exclusive range lock;
//! UNMAP punches each of its ranges; GET LBA STATUS asks the control thread. Missing buffers or
//! submission-queue space park the command; it is retried every loop turn, never failed
//! (backpressure, not an error).

use std::os::fd::AsRawFd;

use lunar_scsi::BlockOp;
use lunar_uring::{FileRef, UserData};

use crate::chunks::ChunkKind;
use crate::pieces::{Piece, PieceKind};
use crate::reactor::Reactor;
use crate::requests::{DeviceRange, RequestKind};
use crate::tables::MAX_TRANSFER_BYTES;

/// What the next step of a command does.
enum Step {
    Flush,
    Read { offset: u64, len: u64 },
    Write { offset: u64, len: u64 },
    Punch { offset: u64, len: u64 },
    AskControl,
    Done,
}

impl Reactor {
    fn next_step(&self, id: UserData) -> Option<Step> {
        let cmd = self.cmds.get(id)?;
        let start = cmd.io.lba * cmd.block_size;
        let rest = cmd.total_bytes - cmd.done_bytes;
        let chunk = rest.min(MAX_TRANSFER_BYTES as u64);
        let offset = start + cmd.done_bytes;
        Some(match cmd.io.op {
            BlockOp::Flush => Step::Flush,
            BlockOp::GetLbaStatus => Step::AskControl,
            BlockOp::Unmap { .. } => {
                match lunar_scsi::unmap_ranges(&cmd.data_out).nth(cmd.range_index) {
                    Some((lba, blocks)) => Step::Punch {
                        offset: lba * cmd.block_size,
                        len: blocks as u64 * cmd.block_size,
                    },
                    None => Step::Done,
                }
            }
            BlockOp::ExtendedCopy { .. } => {
                match lunar_scsi::copy_segments(&cmd.data_out).nth(cmd.range_index) {
                    None => Step::Done,
                    Some((source, destination, blocks)) => {
                        let (source, destination) =
                            (source * cmd.block_size, destination * cmd.block_size);
                        let segment = blocks as u64 * cmd.block_size;
                        let chunk = (segment - cmd.done_bytes).min(MAX_TRANSFER_BYTES as u64);
                        // Overlapping with the destination after the source: copy backwards.
                        let backwards = destination > source && destination < source + segment;
                        let within = if backwards {
                            segment - cmd.done_bytes - chunk
                        } else {
                            cmd.done_bytes
                        };
                        if cmd.write_phase {
                            Step::Write {
                                offset: destination + within,
                                len: chunk,
                            }
                        } else {
                            Step::Read {
                                offset: source + within,
                                len: chunk,
                            }
                        }
                    }
                }
            }
            BlockOp::Deallocate if rest > 0 => Step::Punch {
                offset: start,
                len: cmd.total_bytes,
            },
            _ if rest == 0 => Step::Done,
            BlockOp::Read | BlockOp::Verify | BlockOp::Compare => Step::Read { offset, len: chunk },
            BlockOp::CompareAndWrite | BlockOp::OrWrite if !cmd.write_phase => {
                Step::Read { offset, len: chunk }
            }
            _ => Step::Write { offset, len: chunk },
        })
    }

    /// Run the command's next step (taking its range lock first).
    pub(crate) fn advance(&mut self, id: UserData) {
        if !self.take_lock(id) {
            return;
        }
        match self.next_step(id) {
            None => {}
            Some(Step::Done) => self.finish_good(id),
            Some(Step::Flush) => self.start_flush(id),
            Some(Step::AskControl) => self.ask_allocation_status(id),
            Some(Step::Punch { .. }) if !self.maps_directly(id) => self.deallocate_at_control(id),
            Some(Step::Punch { offset, len }) => {
                self.start_chunk(id, offset, len, ChunkKind::Punch)
            }
            Some(Step::Read { offset, len }) => self.start_chunk(id, offset, len, ChunkKind::Read),
            Some(Step::Write { offset, len }) => {
                self.start_chunk(id, offset, len, ChunkKind::Write)
            }
        }
    }

    /// Whether the command's volume maps every byte to one device with no segment states (so
    /// the reactor can deallocate by punching holes itself).
    fn maps_directly(&self, id: UserData) -> bool {
        self.cmds
            .get(id)
            .and_then(|cmd| {
                let table = self.tables.get(cmd.generation)?;
                Some(table.snapshot.volumes.get(cmd.volume)?.map.is_direct())
            })
            .unwrap_or(true)
    }

    /// UNMAP or WRITE SAME with UNMAP on a volume with segment tables: the control thread
    /// returns whole segments to their pool and zeroes the rest, then answers the host.
    fn deallocate_at_control(&mut self, id: UserData) {
        let Some(mut cmd) = self.cmds.remove(id) else {
            return;
        };
        let ranges = match cmd.io.op {
            BlockOp::Unmap { .. } => lunar_scsi::unmap_ranges(&cmd.data_out)
                .map(|(lba, blocks)| (lba * cmd.block_size, blocks as u64 * cmd.block_size))
                .collect(),
            _ => vec![(cmd.io.lba * cmd.block_size, cmd.total_bytes)],
        };
        self.release_lock(&mut cmd);
        if let Some(buf) = cmd.buf.take() {
            self.ring.bufs_mut().free(buf);
        }
        let kind = RequestKind::Deallocate {
            volume_uid: cmd.volume_uid,
            generation: cmd.generation,
            io: cmd.io,
            ranges,
        };
        // As for GET LBA STATUS: the command stays counted and pinned until the answer.
        self.forward_to_control(cmd.conn, cmd.task, cmd.generation, kind);
        let mut steps = std::mem::take(&mut cmd.steps);
        steps.clear();
        self.step_lists.push(steps);
        if let Some(conn) = self.conns.get_mut(cmd.conn) {
            conn.iscsi.recycle(cmd.data_out);
        }
    }

    /// Fill the buffer for a write chunk from what the operation writes; a write straight from
    /// the data-out (see `Cmd::writes_from_data_out`) only checks that the chunk's bytes are
    /// there.
    pub(crate) fn prepare_write(&mut self, id: UserData, len: usize) -> bool {
        let Reactor { cmds, ring, .. } = self;
        let Some(cmd) = cmds.get_mut(id) else {
            return false;
        };
        if cmd.writes_from_data_out() {
            return cmd.data_out_chunk(len).is_some();
        }
        let Some(buf) = cmd.buf else {
            return false;
        };
        let dst = &mut ring.bufs_mut().slice_mut(buf)[..len];
        let block = cmd.block_size as usize;
        match cmd.io.op {
            BlockOp::WriteSame if !cmd.pattern_ready => {
                let Some(pattern) = cmd.data_out.get(..block) else {
                    return false;
                };
                for chunk in dst.chunks_mut(block) {
                    chunk.copy_from_slice(&pattern[..chunk.len()]);
                }
                cmd.pattern_ready = true;
            }
            BlockOp::WriteZeroes if !cmd.pattern_ready => {
                dst.fill(0);
                cmd.pattern_ready = true;
            }
            BlockOp::WriteSame | BlockOp::WriteZeroes => {}
            // Prepared by the read phase.
            BlockOp::CompareAndWrite | BlockOp::OrWrite | BlockOp::ExtendedCopy { .. } => {}
            // Writes below DIRECT_WRITE_MIN_BYTES.
            BlockOp::Write | BlockOp::WriteAtomic => {
                let Some(src) = cmd.data_out_chunk(len) else {
                    return false;
                };
                dst.copy_from_slice(src);
            }
            // No other operation writes.
            _ => return false,
        }
        true
    }

    fn start_flush(&mut self, id: UserData) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        let table = self
            .tables
            .get(cmd.generation)
            .expect("pinned table is live");
        let mut files: Vec<FileRef> = Vec::new();
        if let Some(volume) = table.snapshot.volumes.get(cmd.volume) {
            for &device in volume.map.devices() {
                if let Some(Some(file)) = table.device_files.get(device as usize) {
                    if !files.contains(file) {
                        files.push(*file);
                    }
                }
            }
        }
        if !self.ring.ensure_sq_space(files.len()) {
            self.parked.push_back(id);
            return;
        }
        if files.is_empty() {
            self.finish_good(id);
            return;
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        cmd.pending = files.len() as u32;
        for file in files {
            let piece = Piece {
                kind: PieceKind::Flush,
                file,
                device_offset_bytes: 0,
                buf_offset_bytes: 0,
                len_bytes: 0,
                mirror_leg: None,
            };
            self.submit_piece(id, None, piece);
        }
    }

    /// GET LBA STATUS: the control thread looks at the devices' allocation.
    fn ask_allocation_status(&mut self, id: UserData) {
        let Some(cmd) = self.cmds.remove(id) else {
            return;
        };
        let offset = cmd.io.lba * cmd.block_size;
        let len = cmd.total_bytes;
        let table = self
            .tables
            .get(cmd.generation)
            .expect("pinned table is live");
        let mut ranges = Vec::new();
        if let Some(volume) = table.snapshot.volumes.get(cmd.volume) {
            self.extents.clear();
            let _ = volume.map.plan(offset, len, &mut self.extents);
            for extent in &self.extents {
                if let Some(Some(device)) = table.snapshot.devices.get(extent.device as usize) {
                    ranges.push(DeviceRange {
                        fd: device.fd.as_raw_fd(),
                        device_offset_bytes: extent.device_offset_bytes,
                        len_bytes: extent.len_bytes,
                        volume_offset_bytes: offset + extent.request_offset_bytes,
                    });
                }
            }
        }
        let kind = RequestKind::AllocationStatus {
            io: cmd.io,
            block_size: cmd.block_size,
            volume_uid: cmd.volume_uid,
            ranges,
        };
        // The command stays counted on its connection and pinned to its generation until the
        // answer comes; `forward_to_control` takes over both.
        self.forward_to_control(cmd.conn, cmd.task, cmd.generation, kind);
        if let Some(conn) = self.conns.get_mut(cmd.conn) {
            conn.iscsi.recycle(cmd.data_out);
        }
    }

    pub(crate) fn fail_step(&mut self, id: UserData) {
        if let Some(cmd) = self.cmds.get_mut(id) {
            cmd.failed = true;
        }
        self.complete_step(id);
    }

    fn finish_good(&mut self, id: UserData) {
        if let Some(cmd) = self.cmds.remove(id) {
            let reply = lunar_scsi::good_reply(&cmd.io);
            self.finish(cmd, reply);
        }
    }

    /// Every piece of the current step finished.
    pub(crate) fn complete_step(&mut self, id: UserData) {
        let Some(cmd) = self.cmds.get_mut(id) else {
            return;
        };
        if let Some(leg) = cmd.failed_write_leg.take() {
            if !cmd.failed {
                return self.report_failed_write_leg(id, leg);
            }
        }
        if std::mem::take(&mut cmd.retry_chunk) && !cmd.failed {
            return self.advance(id);
        }
        if cmd.failed {
            let cmd = self.cmds.remove(id).expect("live");
            let reply = lunar_scsi::io_error_reply(&cmd.io);
            self.finish(cmd, reply);
            return;
        }
        match cmd.io.op {
            BlockOp::Flush | BlockOp::Deallocate => return self.finish_good(id),
            BlockOp::Unmap { .. } => {
                cmd.range_index += 1;
                return self.advance(id);
            }
            BlockOp::ExtendedCopy { .. } => {
                if cmd.write_phase {
                    cmd.write_phase = false;
                    cmd.done_bytes += cmd.chunk_bytes;
                    let segment = lunar_scsi::copy_segments(&cmd.data_out)
                        .nth(cmd.range_index)
                        .map(|(_, _, blocks)| blocks as u64 * cmd.block_size)
                        .unwrap_or(0);
                    if cmd.done_bytes >= segment {
                        cmd.range_index += 1;
                        cmd.done_bytes = 0;
                    }
                } else {
                    cmd.write_phase = true;
                }
                return self.advance(id);
            }
            BlockOp::Compare | BlockOp::CompareAndWrite if !cmd.write_phase => {
                if let Some(offset) = self.first_mismatch(id) {
                    let cmd = self.cmds.remove(id).expect("live");
                    let reply = lunar_scsi::miscompare_reply(&cmd.io, offset);
                    self.finish(cmd, reply);
                    return;
                }
            }
            _ => {}
        }
        let Reactor { cmds, ring, .. } = self;
        let cmd = cmds.get_mut(id).expect("live");
        let len = cmd.chunk_bytes as usize;
        match cmd.io.op {
            BlockOp::CompareAndWrite | BlockOp::OrWrite if !cmd.write_phase => {
                cmd.write_phase = true;
                let buf = cmd.buf.expect("read phase had a buffer");
                let dst = &mut ring.bufs_mut().slice_mut(buf)[..len];
                if cmd.io.op == BlockOp::CompareAndWrite {
                    dst.copy_from_slice(&cmd.data_out[len..2 * len]);
                } else {
                    for (d, s) in dst.iter_mut().zip(&cmd.data_out[..len]) {
                        *d |= s;
                    }
                }
            }
            _ => cmd.done_bytes += cmd.chunk_bytes,
        }
        self.advance(id);
    }

    /// For a compare step just read: the offset (from the start of the command's range) of the
    /// first byte that differs from the data-out, if any.
    fn first_mismatch(&self, id: UserData) -> Option<u64> {
        let cmd = self.cmds.get(id)?;
        let buf = cmd.buf?;
        let start = cmd.done_bytes as usize;
        let len = cmd.chunk_bytes as usize;
        let read = &self.ring.bufs().slice(buf)[..len];
        let Some(expected) = cmd.data_out.get(start..start + len) else {
            return Some(cmd.done_bytes);
        };
        read.iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .map(|i| (start + i) as u64)
    }
}
