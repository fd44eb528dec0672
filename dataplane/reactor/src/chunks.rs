//! One chunk of a block command against the command's table generation: the volume map plans
//! it ([`lunar_volume::VolumeMap::plan_io`]) into device steps (submitted in parallel, as far
//! as the submission queue allows, the rest when it has room), zero fills (reads of Zero
//! segments, no I/O), errors, or faults. A fault parks the command and asks the control thread
//! (thin allocation, copy-on-write, a segment being changed); its answer re-pins the command to
//! the newest generation and plans the chunk again. A read that failed on a mirror leg runs
//! again on the other legs; a write that failed on one waits until the control thread took the
//! leg out, then runs again on the legs left. While a mirror leg is out, a write to a region
//! not yet marked dirty waits until the control thread marked it durably.
//!
//! DESIGN.md's single-pass invariant holds per chunk: a chunk's I/O is always planned on one
//! generation. A command moved to a newer generation after a mapping fault issued no I/O for
//! the chunk that faulted (a plan with a fault has only faults); after a leg failure the chunk
//! is run again whole on the new generation. The chunks it had completed stay done; only a command longer than one chunk (WRITE SAME, VERIFY, EXTENDED COPY over a long
//! range) can see two generations, each chunk wholly on one.

use lunar_scsi::{BlockOp, ScsiReply};
use lunar_uring::UserData;
use lunar_volume::{IoOp, LegRef, PlanOutcome, PlanStep};

use crate::pieces::{Piece, PieceKind, PUNCH_HOLE_MODE};
use crate::reactor::Reactor;
use crate::requests::RequestKind;
use crate::tables::MAX_TRANSFER_BYTES;

/// How a chunk moves its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    Read,
    Write,
    /// Deallocate (punch holes) on a volume the reactor maps directly.
    Punch,
}

/// Most re-plans of one chunk after Error steps on mirror legs (each adds a leg to avoid).
const READ_REPLANS_MAX: usize = 64;

impl Reactor {
    /// Plan `[offset, offset+len)` of the command's volume and start its steps.
    pub(crate) fn start_chunk(&mut self, id: UserData, offset: u64, len: u64, kind: ChunkKind) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        if cmd.submitting {
            return self.submit_steps(id);
        }
        let fua = cmd.io.fua;
        let from_data_out = kind == ChunkKind::Write && cmd.writes_from_data_out();
        if kind != ChunkKind::Punch && !from_data_out && cmd.buf.is_none() {
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
        if kind != ChunkKind::Read && !self.writes_logged(id, offset, len) {
            return self.ask_control_to_log_writes(id, offset, len);
        }
        let op = match kind {
            ChunkKind::Read => IoOp::Read,
            ChunkKind::Write | ChunkKind::Punch => IoOp::Write,
        };
        let outcome = match self.plan_chunk(id, op, offset, len) {
            Some(outcome) => outcome,
            None => return self.fail_step(id),
        };
        match outcome {
            PlanOutcome::Faulted => return self.ask_control_to_resolve(id, kind, offset, len),
            PlanOutcome::Ready => {}
        }
        if kind == ChunkKind::Write && !self.prepare_write(id, len as usize) {
            return self.fail_step(id);
        }
        if kind == ChunkKind::Read {
            self.fill_zero_steps(id);
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        cmd.chunk_bytes = len;
        cmd.pending = 0;
        cmd.next_step = 0;
        cmd.submitting = true;
        cmd.piece_kind = match kind {
            ChunkKind::Read => PieceKind::Read,
            ChunkKind::Write => PieceKind::Write { fua },
            ChunkKind::Punch => PieceKind::Fallocate {
                mode: PUNCH_HOLE_MODE,
            },
        };
        self.submit_steps(id);
    }

    /// Plan the chunk into the command's `steps`. Error steps of a read on a mirror leg are
    /// planned again without that leg; an Error step left fails the chunk (`None`), as does a
    /// range outside the volume.
    fn plan_chunk(&mut self, id: UserData, op: IoOp, offset: u64, len: u64) -> Option<PlanOutcome> {
        for _ in 0..READ_REPLANS_MAX {
            let Reactor {
                cmds,
                tables,
                balancers,
                ..
            } = self;
            let cmd = cmds.get_mut(id)?;
            let volume = tables
                .get(cmd.generation)
                .expect("pinned table is live")
                .snapshot
                .volumes
                .get(cmd.volume)?;
            let balancer = balancers.entry(cmd.volume_uid).or_default();
            cmd.steps.clear();
            let planned = if op == IoOp::Read && !cmd.excluded_legs.is_empty() {
                volume.map.plan_read_retry(
                    offset,
                    len,
                    &cmd.excluded_legs,
                    balancer,
                    &mut cmd.steps,
                )
            } else {
                volume
                    .map
                    .plan_io(op, offset, len, balancer, &mut cmd.steps)
            };
            let outcome = planned.ok()?;
            if outcome == PlanOutcome::Faulted {
                return Some(outcome);
            }
            let error = cmd.steps.iter().find_map(|step| match *step {
                PlanStep::Error { mirror_leg, .. } => Some(mirror_leg),
                _ => None,
            });
            match error {
                None => return Some(outcome),
                Some(Some(leg)) if op == IoOp::Read && !cmd.excluded_legs.contains(&leg) => {
                    cmd.excluded_legs.push(leg);
                }
                Some(_) => return None,
            }
        }
        None
    }

    /// Zero the buffer ranges of a read's Zero steps (segments never written).
    fn fill_zero_steps(&mut self, id: UserData) {
        let Reactor { cmds, ring, .. } = self;
        let Some(cmd) = cmds.get(id) else {
            return;
        };
        let Some(buf) = cmd.buf else {
            return;
        };
        let bytes = ring.bufs_mut().slice_mut(buf);
        for step in &cmd.steps {
            if let PlanStep::Zero {
                request_offset_bytes,
                len_bytes,
            } = *step
            {
                let start = request_offset_bytes as usize;
                if let Some(range) = bytes.get_mut(start..start + len_bytes as usize) {
                    range.fill(0);
                }
            }
        }
    }

    /// Submit the chunk's device steps from `next_step` on while the submission queue and the
    /// op table have room; park the command for the rest. Completes the chunk when nothing is
    /// left in flight.
    pub(crate) fn submit_steps(&mut self, id: UserData) {
        loop {
            let Some(cmd) = self.cmds.get(id) else {
                return;
            };
            let Some(&step) = cmd.steps.get(cmd.next_step) else {
                break;
            };
            let PlanStep::Device {
                device,
                device_offset_bytes,
                len_bytes,
                request_offset_bytes,
                mirror_leg,
            } = step
            else {
                self.cmds.get_mut(id).expect("live").next_step += 1;
                continue;
            };
            if !self.ring.ensure_sq_space(1) || self.ops.len() >= self.ops.capacity() {
                self.parked.push_back(id);
                return;
            }
            let file = self.tables.device_file(cmd.generation, device as usize);
            let (kind, buf, volume_uid) = (cmd.piece_kind, cmd.buf, cmd.volume_uid);
            let cmd = self.cmds.get_mut(id).expect("live");
            cmd.next_step += 1;
            let Some(file) = file else {
                cmd.failed = true;
                continue;
            };
            cmd.pending += 1;
            if let (PieceKind::Read, Some(leg)) = (kind, mirror_leg) {
                self.balancers
                    .entry(volume_uid)
                    .or_default()
                    .read_issued(leg);
            }
            let piece = Piece {
                kind,
                file,
                device_offset_bytes,
                buf_offset_bytes: request_offset_bytes as usize,
                len_bytes: len_bytes as usize,
                mirror_leg,
            };
            self.submit_piece(id, buf, piece);
        }
        let Some(cmd) = self.cmds.get_mut(id) else {
            return;
        };
        cmd.submitting = false;
        if cmd.pending == 0 {
            self.complete_step(id);
        }
    }

    /// The plan hit segments the control thread must resolve first: send them and wait.
    fn ask_control_to_resolve(&mut self, id: UserData, kind: ChunkKind, offset: u64, len: u64) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        let faults = cmd
            .steps
            .iter()
            .filter_map(|step| match *step {
                PlanStep::Fault { segment, reason } => Some((segment, reason)),
                _ => None,
            })
            .collect();
        let request = RequestKind::Fault {
            volume_uid: cmd.volume_uid,
            generation: cmd.generation,
            faults,
            write_bytes: (kind != ChunkKind::Read).then_some((offset, len)),
        };
        self.wait_for_control(id, request);
    }

    /// Whether the volume needs no write log, or logs every region of the range already.
    fn writes_logged(&self, id: UserData, offset: u64, len: u64) -> bool {
        let Some(cmd) = self.cmds.get(id) else {
            return true;
        };
        self.tables
            .get(cmd.generation)
            .and_then(|table| table.snapshot.volumes.get(cmd.volume))
            .and_then(|volume| volume.dirty_regions.as_ref())
            .is_none_or(|dirty| dirty.covers(offset, len))
    }

    /// A write to regions of a degraded mirror not yet marked dirty: the control thread marks
    /// them durably first.
    fn ask_control_to_log_writes(&mut self, id: UserData, offset: u64, len: u64) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        let request = RequestKind::LogWrites {
            volume_uid: cmd.volume_uid,
            generation: cmd.generation,
            offset_bytes: offset,
            len_bytes: len,
        };
        self.wait_for_control(id, request);
    }

    /// A write piece failed on mirror leg `leg`: the control thread takes the leg out, then
    /// the chunk runs again.
    pub(crate) fn report_failed_write_leg(&mut self, id: UserData, leg: LegRef) {
        let Some(cmd) = self.cmds.get(id) else {
            return;
        };
        let request = RequestKind::LegFailed {
            volume_uid: cmd.volume_uid,
            generation: cmd.generation,
            leg,
            write: true,
        };
        self.wait_for_control(id, request);
    }

    /// A read failed on mirror leg `leg`: tell the control thread (which takes it out) without
    /// waiting; this command's read runs again on the other legs.
    pub(crate) fn report_failed_read_leg(&mut self, id: UserData, leg: LegRef) {
        let Some(cmd) = self.cmds.get_mut(id) else {
            return;
        };
        if !cmd.excluded_legs.contains(&leg) {
            cmd.excluded_legs.push(leg);
            let request = RequestKind::LegFailed {
                volume_uid: cmd.volume_uid,
                generation: cmd.generation,
                leg,
                write: false,
            };
            self.notify_control(request);
        }
        if let Some(cmd) = self.cmds.get_mut(id) {
            cmd.retry_chunk = true;
        }
    }

    /// Park the command until the control thread answers `request`.
    fn wait_for_control(&mut self, id: UserData, request: RequestKind) {
        let seq = self.ask_control(request);
        self.requests.park_command(seq, id);
    }

    /// The control thread answered a parked command: GOOD means plan the chunk again on the
    /// newest table; anything else is the host's answer.
    pub(crate) fn resume_after_control(&mut self, id: UserData, reply: ScsiReply) {
        if reply.status != lunar_wire::scsi::status::GOOD {
            if let Some(cmd) = self.cmds.remove(id) {
                self.finish(cmd, reply);
            }
            return;
        }
        if !self.repin(id) {
            return self.fail_step(id);
        }
        self.advance(id);
    }

    /// Move the command to the newest generation (its volume may sit at another index there).
    /// False when the volume is gone.
    fn repin(&mut self, id: UserData) -> bool {
        let Some(cmd) = self.cmds.get(id) else {
            return false;
        };
        let (old, uid) = (cmd.generation, cmd.volume_uid);
        let new = self.tables.pin_current();
        let index = self
            .tables
            .get(new)
            .expect("current table")
            .snapshot
            .volumes
            .iter()
            .position(|v| v.uid == uid);
        match index {
            Some(index) => {
                let cmd = self.cmds.get_mut(id).expect("live");
                cmd.generation = new;
                cmd.volume = index;
                self.tables.unpin(old);
                true
            }
            None => {
                self.tables.unpin(new);
                false
            }
        }
    }
}
