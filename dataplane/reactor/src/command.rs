//! SCSI command execution on a reactor: the device model decides, the volume planner maps the
//! range onto devices against the command's pinned table generation, the pieces run in parallel
//! on the ring, and their completions fan in to one status for the host.
//!
//! A command runs in chunks of at most one I/O buffer (reads and writes always fit in one; a long
//! VERIFY walks its range chunk by chunk). Missing buffers or submission-queue space park the
//! command; it is retried every loop turn, never failed (backpressure, not an error).

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use io_uring::{opcode, types};
use lunar_iscsi::{CommandResult, ScsiCommand, TaskId};
use lunar_scsi::{BlockIo, BlockOp, Decision, ScsiReply};
use lunar_uring::{BufId, BufPool, UserData};

use crate::reactor::{Op, Reactor};
use crate::stats::IoKind;
use crate::tables::MAX_TRANSFER_BYTES;

/// What one backend operation does.
#[derive(Debug, Clone, Copy)]
pub enum PieceKind {
    Read,
    Write { fua: bool },
    Flush,
}

/// One backend operation of a command (resubmitted for the remainder after a short transfer).
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    pub kind: PieceKind,
    pub fd: RawFd,
    pub device_offset_bytes: u64,
    /// Offset in the command's buffer.
    pub buf_offset_bytes: usize,
    pub len_bytes: usize,
}

/// A command with backend I/O in progress.
pub struct Cmd {
    conn: UserData,
    task: TaskId,
    generation: u64,
    volume: usize,
    volume_uid: u64,
    block_size: u64,
    io: BlockIo,
    data_out: Vec<u8>,
    buf: Option<BufId>,
    total_bytes: u64,
    done_bytes: u64,
    chunk_bytes: u64,
    pending: u32,
    failed: bool,
    started: Instant,
}

impl Reactor {
    /// Handle a command the iSCSI state machine delivered.
    pub(crate) fn execute(&mut self, conn_id: UserData, command: ScsiCommand) {
        let generation = self.tables.pin_current();
        let Reactor { tables, conns, .. } = self;
        let table = tables.get(generation).expect("pinned table is live");
        let Some(conn) = conns.get_mut(conn_id) else {
            tables.unpin(generation);
            return;
        };
        conn.commands += 1;
        let target = conn
            .target
            .as_deref()
            .and_then(|iqn| table.target_index(iqn))
            .map(|i| &table.targets[i]);
        let lun = target.and_then(|t| t.lun(command.lun));
        let lun_ids: &[u64] = target.map(|t| &t.lun_ids[..]).unwrap_or(&[]);
        let nexus = conn.nexus.entry(command.lun).or_default();
        let decision = lunar_scsi::decide(
            lun.map(|l| &l.unit),
            lun_ids,
            nexus,
            &command.cdb,
            command.expected_len_bytes,
            &command.data_out,
        );
        match decision {
            Decision::Reply(reply) => {
                let now = self.now_ms();
                let conn = self.conns.get_mut(conn_id).expect("live");
                conn.iscsi.on_command_done(
                    command.task,
                    CommandResult {
                        status: reply.status,
                        sense: &reply.sense,
                        data_in: &reply.data_in,
                        scsi_transfer_len_bytes: reply.transfer_len_bytes,
                    },
                    now,
                );
                conn.commands -= 1;
                conn.iscsi.recycle(command.data_out);
                self.tables.unpin(generation);
                self.pump(conn_id);
            }
            Decision::Io(io) => {
                let lun = lun.expect("the model asks for I/O only on a mapped LUN");
                let volume = lun.volume;
                let block_size = lun.unit.block_size as u64;
                let volume_uid = lun.unit.volume_uid;
                let cmd = Cmd {
                    conn: conn_id,
                    task: command.task,
                    generation,
                    volume,
                    volume_uid,
                    block_size,
                    io,
                    data_out: command.data_out,
                    buf: None,
                    total_bytes: io.blocks as u64 * block_size,
                    done_bytes: 0,
                    chunk_bytes: 0,
                    pending: 0,
                    failed: false,
                    started: Instant::now(),
                };
                match self.cmds.insert(cmd) {
                    Ok(id) => self.start_chunk(id),
                    Err(cmd) => {
                        // The command table is sized above every session's queue depth on this
                        // reactor; reaching it means the bound was misconfigured.
                        tracing::error!(reactor = self.id, "command table full");
                        self.finish(cmd, lunar_scsi::io_error_reply(&io));
                    }
                }
            }
        }
    }

    /// Start the next chunk of `id`, or park it when resources are short.
    pub(crate) fn start_chunk(&mut self, id: UserData) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        let io = cmd.io;
        let generation = cmd.generation;
        let volume_index = cmd.volume;
        if io.op == BlockOp::Flush {
            self.start_flush(id, generation, volume_index);
            return;
        }
        let chunk = (cmd.total_bytes - cmd.done_bytes).min(MAX_TRANSFER_BYTES as u64);
        let offset = io.lba * cmd.block_size + cmd.done_bytes;
        let done = cmd.done_bytes as usize;
        let buf = match cmd.buf {
            Some(b) => b,
            None => match self.ring.bufs_mut().alloc(chunk as usize) {
                Some(b) => b,
                None => {
                    self.parked.push_back(id);
                    return;
                }
            },
        };
        let Reactor {
            tables,
            cmds,
            ring,
            extents,
            ..
        } = self;
        let cmd = cmds.get_mut(id).expect("checked");
        cmd.buf = Some(buf);
        let table = tables.get(generation).expect("pinned table is live");
        let snapshot = &table.snapshot;
        let Some(volume) = snapshot.volumes.get(volume_index) else {
            cmd.failed = true;
            self.complete_chunk(id);
            return;
        };
        extents.clear();
        if volume.map.plan(offset, chunk, extents).is_err() {
            cmd.failed = true;
            self.complete_chunk(id);
            return;
        }
        if !ring.ensure_sq_space(extents.len())
            || self.ops.capacity() - self.ops.len() < extents.len()
        {
            self.parked.push_back(id);
            return;
        }
        let kind = match io.op {
            BlockOp::Write => PieceKind::Write { fua: io.fua },
            _ => PieceKind::Read,
        };
        if let PieceKind::Write { .. } = kind {
            let src = cmd.data_out.get(done..done + chunk as usize);
            match src {
                Some(src) => ring.bufs_mut().slice_mut(buf)[..chunk as usize].copy_from_slice(src),
                None => {
                    cmd.failed = true;
                    self.complete_chunk(id);
                    return;
                }
            }
        }
        cmd.chunk_bytes = chunk;
        let mut pieces = std::mem::take(&mut self.pieces);
        pieces.clear();
        let mut missing_device = false;
        for extent in extents.iter() {
            match snapshot
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
        if missing_device {
            cmd.failed = true;
            self.pieces = pieces;
            self.complete_chunk(id);
            return;
        }
        cmd.pending = pieces.len() as u32;
        for piece in pieces.drain(..) {
            self.submit_piece(id, buf, piece);
        }
        self.pieces = pieces;
    }

    fn start_flush(&mut self, id: UserData, generation: u64, volume_index: usize) {
        let table = self.tables.get(generation).expect("pinned table is live");
        let snapshot = table.snapshot.clone();
        let mut fds: Vec<RawFd> = Vec::new();
        if let Some(volume) = snapshot.volumes.get(volume_index) {
            self.extents.clear();
            let _ = volume.map.plan(0, volume.map.size_bytes, &mut self.extents);
            for extent in &self.extents {
                if let Some(Some(device)) = snapshot.devices.get(extent.device as usize) {
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
        let cmd = self.cmds.get_mut(id).expect("live");
        cmd.pending = fds.len() as u32;
        if fds.is_empty() {
            self.complete_chunk(id);
            return;
        }
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

    fn submit_piece(&mut self, id: UserData, buf: impl Into<Option<BufId>>, piece: Piece) {
        let buf = buf.into();
        let fd = types::Fd(piece.fd);
        let entry = match (piece.kind, buf) {
            (PieceKind::Flush, _) => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build(),
            (PieceKind::Read, Some(buf)) => {
                let fixed = self.ring.fixed_buffers();
                let ptr = self.ring.bufs_mut().ptr(buf, piece.buf_offset_bytes);
                let len = piece.len_bytes as u32;
                if fixed {
                    opcode::ReadFixed::new(fd, ptr, len, BufPool::registered_index(buf))
                        .offset(piece.device_offset_bytes)
                        .build()
                } else {
                    opcode::Read::new(fd, ptr, len)
                        .offset(piece.device_offset_bytes)
                        .build()
                }
            }
            (PieceKind::Write { fua }, Some(buf)) => {
                let fixed = self.ring.fixed_buffers();
                let ptr = self.ring.bufs_mut().ptr(buf, piece.buf_offset_bytes);
                let len = piece.len_bytes as u32;
                let rw_flags = if fua { libc::RWF_DSYNC } else { 0 };
                if fixed {
                    opcode::WriteFixed::new(fd, ptr, len, BufPool::registered_index(buf))
                        .offset(piece.device_offset_bytes)
                        .rw_flags(rw_flags)
                        .build()
                } else {
                    opcode::Write::new(fd, ptr, len)
                        .offset(piece.device_offset_bytes)
                        .rw_flags(rw_flags)
                        .build()
                }
            }
            (_, None) => {
                self.on_backend(id, piece, -libc::EINVAL);
                return;
            }
        };
        // SAFETY: the buffer belongs to the ring's pool and stays lent to this command until
        // its last piece completes; the device fd is kept open by the pinned table generation.
        if unsafe { self.push_op(entry, Op::Backend { cmd: id, piece }) }.is_none() {
            // Space was checked before the chunk started; treat a failure as an I/O error
            // rather than losing the piece.
            self.on_backend(id, piece, -libc::EBUSY);
        }
    }

    pub(crate) fn on_backend(&mut self, id: UserData, piece: Piece, result: i32) {
        let Some(cmd) = self.cmds.get_mut(id) else {
            return;
        };
        let buf = cmd.buf;
        if result == -libc::EAGAIN || result == -libc::EINTR {
            self.submit_piece(id, buf, piece);
            return;
        }
        if result < 0 || (result == 0 && piece.len_bytes > 0) {
            if !cmd.failed {
                tracing::warn!(
                    reactor = self.id,
                    fd = piece.fd,
                    offset = piece.device_offset_bytes,
                    len = piece.len_bytes,
                    "backend I/O failed: {}",
                    if result < 0 {
                        std::io::Error::from_raw_os_error(-result).to_string()
                    } else {
                        "unexpected end of file".to_string()
                    }
                );
            }
            cmd.failed = true;
        } else if (result as usize) < piece.len_bytes {
            let n = result as usize;
            let rest = Piece {
                device_offset_bytes: piece.device_offset_bytes + n as u64,
                buf_offset_bytes: piece.buf_offset_bytes + n,
                len_bytes: piece.len_bytes - n,
                ..piece
            };
            self.submit_piece(id, buf, rest);
            return;
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        cmd.pending -= 1;
        if cmd.pending == 0 {
            self.complete_chunk(id);
        }
    }

    /// All pieces of the current chunk are done: continue with the next chunk or finish.
    fn complete_chunk(&mut self, id: UserData) {
        let Some(cmd) = self.cmds.get_mut(id) else {
            return;
        };
        if !cmd.failed && cmd.io.op == BlockOp::Compare {
            if let Some(offset) = self.first_mismatch(id) {
                let cmd = self.cmds.remove(id).expect("live");
                let reply = lunar_scsi::miscompare_reply(&cmd.io, offset);
                self.finish(cmd, reply);
                return;
            }
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        if !cmd.failed && cmd.io.op != BlockOp::Flush {
            cmd.done_bytes += cmd.chunk_bytes;
            if cmd.done_bytes < cmd.total_bytes {
                self.start_chunk(id);
                return;
            }
        }
        let cmd = self.cmds.remove(id).expect("live");
        let reply = if cmd.failed {
            lunar_scsi::io_error_reply(&cmd.io)
        } else {
            lunar_scsi::good_reply(&cmd.io)
        };
        self.finish(cmd, reply);
    }

    /// For a compare chunk just read: the offset (from the start of the command's range) of the
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

    /// Report the command to its connection (if still there) and release what it held.
    fn finish(&mut self, mut cmd: Cmd, reply: ScsiReply) {
        let now = self.now_ms();
        let latency_us = cmd.started.elapsed().as_micros() as u64;
        let kind = match cmd.io.op {
            BlockOp::Read => IoKind::Read,
            BlockOp::Write => IoKind::Write,
            _ => IoKind::Other,
        };
        self.stats
            .record(cmd.volume_uid, kind, cmd.total_bytes, latency_us);
        let Reactor { conns, ring, .. } = self;
        if let Some(conn) = conns.get_mut(cmd.conn) {
            let data_in: &[u8] = match (cmd.io.op, cmd.buf, reply.status) {
                (BlockOp::Read, Some(buf), 0) => {
                    &ring.bufs().slice(buf)[..cmd.total_bytes as usize]
                }
                _ => &reply.data_in,
            };
            if !conn.is_closing() {
                conn.iscsi.on_command_done(
                    cmd.task,
                    CommandResult {
                        status: reply.status,
                        sense: &reply.sense,
                        data_in,
                        scsi_transfer_len_bytes: reply.transfer_len_bytes,
                    },
                    now,
                );
            }
            conn.commands -= 1;
            conn.iscsi.recycle(std::mem::take(&mut cmd.data_out));
        }
        if let Some(buf) = cmd.buf.take() {
            self.ring.bufs_mut().free(buf);
        }
        self.tables.unpin(cmd.generation);
        self.pump(cmd.conn);
    }
}
