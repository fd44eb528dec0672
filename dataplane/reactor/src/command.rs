//! SCSI command execution on a reactor: the device model decides; an immediate answer goes
//! straight back, a shared-state command goes to the control thread, and a block operation
//! becomes a [`Cmd`] that takes its range locks, runs its steps (see `steps`), and finishes with
//! one status for the host. Every command is pinned to one table generation for its whole life.

use std::time::Instant;

use lunar_iscsi::{CommandResult, DataOutBuf, ScsiCommand, TaskId};
use lunar_scsi::{BlockIo, BlockOp, Decision, ScsiReply};
use lunar_uring::{BufId, UserData};
use lunar_volume::{LegRef, PlanStep};

use crate::pieces::{Piece, PieceKind, PUNCH_HOLE_MODE};
use crate::reactor::Reactor;
use crate::requests::{Nexus, RequestKind};
use crate::stats::IoKind;

/// Range lock a command holds on its volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Not needed (flush, GET LBA STATUS) or not yet taken.
    None,
    Shared,
    Exclusive,
}

/// Writes from this size on go to the devices straight from the host's data-out; below it the
/// data is copied into a registered pool buffer. Pinning the pages of an unregistered buffer
/// costs the kernel more per write than copying a few KiB costs: under lunar-load 4 KiB random
/// writes (8 sessions x QD16) lunard ran about 5,400 kernel instructions per write with the
/// copy and 6,600-6,900 without it, for the same user-space count. At 128 KiB the copy was
/// two thirds of the reactor's memmove time.
pub const DIRECT_WRITE_MIN_BYTES: u64 = 16 * 1024;

/// A command with backend I/O in progress.
pub struct Cmd {
    pub(crate) conn: UserData,
    pub(crate) task: TaskId,
    pub(crate) lun: u64,
    pub(crate) generation: u64,
    pub(crate) volume: usize,
    pub(crate) volume_uid: u64,
    pub(crate) block_size: u64,
    pub(crate) io: BlockIo,
    /// The write data, in aligned storage: plain writes go to the devices straight from it
    /// (see [`Cmd::writes_from_data_out`]).
    pub(crate) data_out: DataOutBuf,
    /// The pool buffer of the current chunk: reads land in it, and writes that are not
    /// the host's data as it came (patterns, merged or copied blocks) are built in it.
    pub(crate) buf: Option<BufId>,
    /// Bytes of the range (`blocks * block_size`).
    pub(crate) total_bytes: u64,
    /// Bytes of the range done by completed chunks.
    pub(crate) done_bytes: u64,
    pub(crate) chunk_bytes: u64,
    /// Two-phase operations (COMPARE AND WRITE, ORWRITE): the write phase is running.
    pub(crate) write_phase: bool,
    /// WRITE SAME / WRITE ZEROES: the buffer already holds the pattern.
    pub(crate) pattern_ready: bool,
    /// UNMAP: index of the range being deallocated; EXTENDED COPY: of the segment being
    /// copied (with `done_bytes` the progress inside it and `write_phase` the half of a chunk).
    pub(crate) range_index: usize,
    pub(crate) pending: u32,
    pub(crate) failed: bool,
    pub(crate) lock: Lock,
    /// Byte range the lock covers.
    pub(crate) lock_range: (u64, u64),
    pub(crate) started: Instant,
    /// The current chunk's plan (see `steps`); a reused allocation.
    pub(crate) steps: Vec<PlanStep>,
    /// Index of the next step of `steps` to submit.
    pub(crate) next_step: usize,
    /// The chunk's pieces are being submitted (some wait for submission-queue space).
    pub(crate) submitting: bool,
    /// The kind of backend operation the chunk's device steps are.
    pub(crate) piece_kind: PieceKind,
    /// Mirror legs this command's reads must avoid (they failed it).
    pub(crate) excluded_legs: Vec<LegRef>,
    /// A read piece failed on a mirror leg: run the chunk again on the other legs.
    pub(crate) retry_chunk: bool,
    /// A write piece failed on this mirror leg: the control thread takes the leg out before
    /// the chunk runs again.
    pub(crate) failed_write_leg: Option<LegRef>,
}

impl Cmd {
    /// Whether the command's write pieces point into its `data_out` (it needs no pool
    /// buffer): a WRITE or WRITE ATOMIC of at least [`DIRECT_WRITE_MIN_BYTES`]. Smaller ones
    /// are copied into a registered pool buffer, which the kernel need not pin per write.
    pub(crate) fn writes_from_data_out(&self) -> bool {
        matches!(self.io.op, BlockOp::Write | BlockOp::WriteAtomic)
            && self.total_bytes >= DIRECT_WRITE_MIN_BYTES
    }

    /// The `len` bytes of `data_out` the current chunk writes (from `done_bytes` on): `None`
    /// unless all of them are there.
    pub(crate) fn data_out_chunk(&self, len: usize) -> Option<&[u8]> {
        let start = self.done_bytes as usize;
        self.data_out.get(start..start.checked_add(len)?)
    }

    /// Where a write piece's bytes start in `data_out`: `None` unless the whole piece lies in
    /// it.
    pub(crate) fn data_out_piece(&self, piece: &Piece) -> Option<*const u8> {
        let end = piece.buf_offset_bytes.checked_add(piece.len_bytes)?;
        let chunk = self.data_out_chunk(end)?;
        Some(chunk[piece.buf_offset_bytes..].as_ptr())
    }

    /// The lock this command needs on its range.
    fn lock_needed(&self) -> Lock {
        match self.io.op {
            BlockOp::Flush | BlockOp::GetLbaStatus => Lock::None,
            BlockOp::CompareAndWrite | BlockOp::OrWrite | BlockOp::WriteAtomic => Lock::Exclusive,
            _ => Lock::Shared,
        }
    }

    /// The byte range the command touches (UNMAP: the span of all its ranges).
    fn span(&self) -> (u64, u64) {
        let (mut start, mut end) = (u64::MAX, 0u64);
        let mut cover = |lba: u64, blocks: u64| {
            start = start.min(lba * self.block_size);
            end = end.max((lba + blocks) * self.block_size);
        };
        match self.io.op {
            BlockOp::Unmap { .. } => {
                for (lba, blocks) in lunar_scsi::unmap_ranges(&self.data_out) {
                    cover(lba, blocks as u64);
                }
            }
            BlockOp::ExtendedCopy { .. } => {
                for (source, destination, blocks) in lunar_scsi::copy_segments(&self.data_out) {
                    cover(source, blocks as u64);
                    cover(destination, blocks as u64);
                }
            }
            _ => return (self.io.lba * self.block_size, self.total_bytes),
        }
        if start < end {
            (start, end - start)
        } else {
            (0, 0)
        }
    }
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
        let decision = lunar_scsi::decide(
            lun.map(|l| &l.unit),
            lun_ids,
            conn.nexus_for(command.lun),
            &command.cdb,
            command.expected_len_bytes,
            &command.data_out,
        );
        let lun_info = lun.map(|l| (l.volume, l.unit.block_size as u64, l.unit.volume_uid));
        match (decision, lun_info) {
            (Decision::Reply(reply), _) => {
                self.complete_now(conn_id, command.task, generation, &reply);
                if let Some(conn) = self.conns.get_mut(conn_id) {
                    conn.iscsi.recycle(command.data_out);
                }
            }
            (Decision::Control(request), Some((_, _, volume_uid))) => {
                let conn = self.conns.get(conn_id).expect("live");
                let nexus = conn
                    .nexus_id
                    .as_ref()
                    .map(|n| Nexus {
                        initiator_port: n.initiator_port.clone(),
                        target_port: n.target_port.clone(),
                    })
                    .unwrap_or(Nexus {
                        initiator_port: String::new(),
                        target_port: String::new(),
                    });
                let kind = RequestKind::SharedStateCommand {
                    target: conn.target.clone().unwrap_or_default(),
                    lun: command.lun,
                    volume_uid,
                    nexus,
                    cdb: request.cdb.to_vec(),
                    data_out: command.data_out.to_vec(),
                };
                self.forward_to_control(conn_id, command.task, generation, kind);
                if let Some(conn) = self.conns.get_mut(conn_id) {
                    conn.iscsi.recycle(command.data_out);
                }
            }
            (Decision::Io(io), Some((volume, block_size, volume_uid))) => {
                let cmd = Cmd {
                    conn: conn_id,
                    task: command.task,
                    lun: command.lun,
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
                    write_phase: false,
                    pattern_ready: false,
                    range_index: 0,
                    pending: 0,
                    failed: false,
                    lock: Lock::None,
                    lock_range: (0, 0),
                    started: self.now(),
                    steps: self.step_lists.pop().unwrap_or_default(),
                    next_step: 0,
                    submitting: false,
                    piece_kind: PieceKind::Fallocate {
                        mode: PUNCH_HOLE_MODE,
                    },
                    excluded_legs: Vec::new(),
                    retry_chunk: false,
                    failed_write_leg: None,
                };
                match self.cmds.insert(cmd) {
                    Ok(id) => self.advance(id),
                    Err(cmd) => {
                        // The command table is sized above every session's queue depth on this
                        // reactor; reaching it means the bound was misconfigured.
                        tracing::error!(reactor = self.id, "command table full");
                        self.finish(cmd, lunar_scsi::io_error_reply(&io));
                    }
                }
            }
            (_, None) => {
                // The model asks for I/O or control only on a mapped LUN.
                let reply = lunar_scsi::io_error_reply(&BlockIo {
                    op: BlockOp::Read,
                    lba: 0,
                    blocks: 0,
                    fua: false,
                    transfer_len_bytes: 0,
                });
                self.complete_now(conn_id, command.task, generation, &reply);
            }
        }
    }

    /// Answer a command that needed no I/O.
    pub(crate) fn complete_now(
        &mut self,
        conn_id: UserData,
        task: TaskId,
        generation: u64,
        reply: &ScsiReply,
    ) {
        let now = self.now_ms();
        if let Some(conn) = self.conns.get_mut(conn_id) {
            if !conn.is_closing() {
                conn.iscsi.on_command_done(
                    task,
                    CommandResult {
                        status: reply.status,
                        sense: &reply.sense,
                        data_in: &reply.data_in,
                        scsi_transfer_len_bytes: reply.transfer_len_bytes,
                    },
                    now,
                );
            }
            conn.commands -= 1;
        }
        self.tables.unpin(generation);
        self.note_task_finished(conn_id, task);
        self.pump(conn_id);
    }

    /// Take the command's range lock if it needs one; false (parked) when it must wait.
    pub(crate) fn take_lock(&mut self, id: UserData) -> bool {
        let Some(cmd) = self.cmds.get(id) else {
            return false;
        };
        let needed = cmd.lock_needed();
        if cmd.lock != Lock::None || needed == Lock::None {
            return true;
        }
        let (offset, len) = cmd.span();
        let Some(locks) = self
            .tables
            .get(cmd.generation)
            .and_then(|t| t.locks.get(cmd.volume).cloned())
        else {
            return true;
        };
        let taken = match needed {
            Lock::Shared => locks.try_shared(offset, len),
            Lock::Exclusive => locks.try_exclusive(offset, len),
            Lock::None => true,
        };
        if taken {
            let cmd = self.cmds.get_mut(id).expect("live");
            cmd.lock = needed;
            cmd.lock_range = (offset, len);
        } else {
            self.parked.push_back(id);
        }
        taken
    }

    pub(crate) fn release_lock(&mut self, cmd: &mut Cmd) {
        let Some(locks) = self
            .tables
            .get(cmd.generation)
            .and_then(|t| t.locks.get(cmd.volume).cloned())
        else {
            return;
        };
        let (offset, len) = cmd.lock_range;
        match cmd.lock {
            Lock::Shared => locks.release_shared(offset, len),
            Lock::Exclusive => locks.release_exclusive(offset, len),
            Lock::None => {}
        }
        cmd.lock = Lock::None;
    }

    /// Report the command to its connection (if still there) and release what it held.
    pub(crate) fn finish(&mut self, mut cmd: Cmd, reply: ScsiReply) {
        self.release_lock(&mut cmd);
        let mut steps = std::mem::take(&mut cmd.steps);
        steps.clear();
        self.step_lists.push(steps);
        let now = self.now_ms();
        let latency_us = self
            .now()
            .saturating_duration_since(cmd.started)
            .as_micros() as u64;
        let kind = match cmd.io.op {
            BlockOp::Read => IoKind::Read,
            BlockOp::Write | BlockOp::WriteAtomic => IoKind::Write,
            _ => IoKind::Other,
        };
        self.stats
            .record(cmd.volume_uid, kind, cmd.total_bytes, latency_us);
        let Reactor { conns, ring, .. } = self;
        // Read data goes out straight from the buffer it was read into, which the connection
        // then keeps until those bytes are sent.
        let mut buffer_kept = false;
        if let Some(conn) = conns.get_mut(cmd.conn) {
            if let BlockOp::ExtendedCopy { .. } = cmd.io.op {
                conn.nexus_for(cmd.lun)
                    .copy_finished(&cmd.io, reply.status == 0);
            }
            if !conn.is_closing() {
                let mut result = CommandResult {
                    status: reply.status,
                    sense: &reply.sense,
                    data_in: &reply.data_in,
                    scsi_transfer_len_bytes: reply.transfer_len_bytes,
                };
                match (cmd.io.op, cmd.buf, reply.status) {
                    (BlockOp::Read, Some(buf), 0) => {
                        result.data_in = &ring.bufs().slice(buf)[..cmd.total_bytes as usize];
                        buffer_kept = conn.iscsi.on_command_done_borrowing(
                            cmd.task,
                            result,
                            buf.token(),
                            now,
                        );
                        if buffer_kept {
                            conn.out.keep_until_sent(buf);
                        }
                    }
                    _ => conn.iscsi.on_command_done(cmd.task, result, now),
                }
            }
            conn.commands -= 1;
            conn.iscsi.recycle(std::mem::take(&mut cmd.data_out));
        }
        if let Some(buf) = cmd.buf.take().filter(|_| !buffer_kept) {
            self.ring.bufs_mut().free(buf);
        }
        self.tables.unpin(cmd.generation);
        self.note_task_finished(cmd.conn, cmd.task);
        self.pump(cmd.conn);
    }
}
