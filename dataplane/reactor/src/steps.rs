//! The steps of a block command, by operation. Reads and writes run in chunks of at most one
//! I/O buffer (they always fit in one; a long VERIFY or WRITE SAME walks its range chunk by
//! chunk); COMPARE AND WRITE and ORWRITE read, then write under their exclusive range lock;
//! UNMAP punches each of its ranges; GET LBA STATUS asks the control thread. Missing buffers or
//! submission-queue space park the command; it is retried every loop turn, never failed
//! (backpressure, not an error).

use std::os::fd::{AsRawFd, RawFd};

use lunar_scsi::BlockOp;
use lunar_uring::UserData;

use crate::pieces::{Piece, PieceKind, PUNCH_HOLE_MODE};
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
            Some(Step::Punch { offset, len }) => self.start_pieces(id, offset, len, None),
            Some(Step::Read { offset, len }) => self.start_pieces(id, offset, len, Some(false)),
            Some(Step::Write { offset, len }) => self.start_pieces(id, offset, len, Some(true)),
        }
    }

    /// Fill the buffer for a write chunk from what the operation writes.
    fn prepare_write(&mut self, id: UserData, len: usize) -> bool {
        let Reactor { cmds, ring, .. } = self;
        let Some(cmd) = cmds.get_mut(id) else {
            return false;
        };
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
            _ => {
                let done = cmd.done_bytes as usize;
                let Some(src) = cmd.data_out.get(done..done + len) else {
                    return false;
                };
                dst.copy_from_slice(src);
            }
        }
        true
    }

    /// Plan `[offset, offset+len)` and issue one piece per extent. `buffered`: `Some(write)`
    /// for reads/writes through the command's buffer, `None` for hole punching.
    fn start_pieces(&mut self, id: UserData, offset: u64, len: u64, buffered: Option<bool>) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        let (generation, volume_index, fua) = (cmd.generation, cmd.volume, cmd.io.fua);
        if buffered.is_some() && cmd.buf.is_none() {
            // A copy's later chunks may be larger than its first.
            let want = match cmd.io.op {
                BlockOp::ExtendedCopy { .. } => MAX_TRANSFER_BYTES as usize,
                _ => len as usize,
            };
            match self.ring.bufs_mut().alloc(want) {
                Some(buf) => self.cmds.get_mut(id).expect("live").buf = Some(buf),
                None => {
                    self.parked.push_back(id);
                    return;
                }
            }
        }
        let Reactor {
            tables, extents, ..
        } = self;
        let table = tables.get(generation).expect("pinned table is live");
        let planned = table
            .snapshot
            .volumes
            .get(volume_index)
            .map(|v| {
                extents.clear();
                v.map.plan(offset, len, extents).is_ok()
            })
            .unwrap_or(false);
        if !planned {
            self.fail_step(id);
            return;
        }
        if !self.ring.ensure_sq_space(self.extents.len())
            || self.ops.capacity() - self.ops.len() < self.extents.len()
        {
            self.parked.push_back(id);
            return;
        }
        if buffered == Some(true) && !self.prepare_write(id, len as usize) {
            self.fail_step(id);
            return;
        }
        let kind = match buffered {
            Some(true) => PieceKind::Write { fua },
            Some(false) => PieceKind::Read,
            None => PieceKind::Fallocate {
                mode: PUNCH_HOLE_MODE,
            },
        };
        let mut pieces = std::mem::take(&mut self.pieces);
        pieces.clear();
        let table = self.tables.get(generation).expect("pinned table is live");
        let mut missing_device = false;
        for extent in self.extents.iter() {
            match table
                .snapshot
                .devices
                .get(extent.device as usize)
                .and_then(|d| d.as_ref())
            {
                Some(device) => pieces.push(Piece {
                    kind,
                    fd: device.fd.as_raw_fd(),
                    device_offset_bytes: extent.device_offset_bytes,
                    buf_offset_bytes: extent.request_offset_bytes as usize,
                    len_bytes: extent.len_bytes as usize,
                }),
                None => missing_device = true,
            }
        }
        if missing_device || pieces.is_empty() {
            self.pieces = pieces;
            self.fail_step(id);
            return;
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        cmd.chunk_bytes = len;
        cmd.pending = pieces.len() as u32;
        let buf = cmd.buf;
        for piece in pieces.drain(..) {
            self.submit_piece(id, buf, piece);
        }
        self.pieces = pieces;
    }

    fn start_flush(&mut self, id: UserData) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        let table = self
            .tables
            .get(cmd.generation)
            .expect("pinned table is live");
        let mut fds: Vec<RawFd> = Vec::new();
        if let Some(volume) = table.snapshot.volumes.get(cmd.volume) {
            for &device in volume.map.devices() {
                if let Some(Some(device)) = table.snapshot.devices.get(device as usize) {
                    let fd = device.fd.as_raw_fd();
                    if !fds.contains(&fd) {
                        fds.push(fd);
                    }
                }
            }
        }
        if !self.ring.ensure_sq_space(fds.len()) {
            self.parked.push_back(id);
            return;
        }
        if fds.is_empty() {
            self.finish_good(id);
            return;
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        cmd.pending = fds.len() as u32;
        for fd in fds {
            let piece = Piece {
                kind: PieceKind::Flush,
                fd,
                device_offset_bytes: 0,
                buf_offset_bytes: 0,
                len_bytes: 0,
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

    fn fail_step(&mut self, id: UserData) {
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
