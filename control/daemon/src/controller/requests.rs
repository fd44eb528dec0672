//! Requests the reactors hand to the control thread, answered here: commands that change
//! logical-unit state every I_T nexus shares (PERSISTENT RESERVE OUT, RESERVE, RELEASE, and
//! on removable units PREVENT ALLOW MEDIUM REMOVAL and load/eject), lost nexuses and resets,
//! all applied to that state in `reservations`; GET LBA STATUS lookups (`allocation`); mapping
//! faults of segment tables (`faults`: thin allocation, copy-on-write) and deallocations
//! (`deallocate`).
//!
//! Every request that expects an answer gets exactly one, so a host command or a task
//! management function never waits forever; a lost nexus expects none. A request that cannot
//! be served yet (its volume is being snapshotted, its pool waits for released slots) is kept
//! and served again when what it waits for has happened; it never blocks the control loop.

use lunar_reactor::{Nexus, ReactorRequest, RequestKind};
use lunar_scsi::ScsiReply;
use lunar_wire::scsi::{opcode, status, Asc, Sense, SenseFormat, SenseKey};

use super::allocation::allocation_status;
use super::reservations::nexus_id;
use super::Controller;

/// What serving a request came to.
#[derive(Debug)]
pub(super) enum Served {
    /// Answer the reactor with this reply.
    Answer(ScsiReply),
    /// The request expects no answer.
    Nothing,
    /// Keep the request and serve it again once this holds.
    Wait(Wait),
}

/// What a kept request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// No command uses a generation older than this one.
    Drained(u64),
    /// The snapshot being taken has completed (or was abandoned).
    FenceLifted,
    /// The segments it met Invalid have changed.
    SegmentsValid,
}

/// A request kept for later.
#[derive(Debug)]
pub(super) struct Deferred {
    pub request: ReactorRequest,
    pub wait: Wait,
}

/// GOOD status, no data.
pub(super) fn good() -> ScsiReply {
    ScsiReply {
        status: status::GOOD,
        sense: Vec::new(),
        data_in: Vec::new(),
        transfer_len_bytes: 0,
    }
}

/// RESERVE (10) and RELEASE (10): not in the wire crate's opcode list.
const RESERVE_10: u8 = 0x56;
const RELEASE_10: u8 = 0x57;

/// A shared-state command, as a reactor forwarded it.
#[derive(Debug)]
pub struct SharedCommand<'a> {
    pub target: &'a str,
    pub lun: u64,
    pub volume_uid: u64,
    pub nexus: &'a Nexus,
    pub cdb: &'a [u8],
    pub data_out: &'a [u8],
}

/// Bytes of parameter data the CDB announces (what a reply reports as its transfer length).
pub(super) fn parameter_list_len_bytes(cdb: &[u8]) -> u32 {
    let be = |range: std::ops::Range<usize>| {
        cdb.get(range)
            .map(|bytes| bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
            .unwrap_or(0)
    };
    match cdb.first().copied() {
        Some(opcode::PERSISTENT_RESERVE_OUT) => be(5..9),
        Some(RESERVE_10 | RELEASE_10) => be(7..9),
        _ => 0,
    }
}

/// CHECK CONDITION with fixed-format `sense`.
pub(super) fn check_condition(sense: Sense, transfer_len_bytes: u32) -> ScsiReply {
    ScsiReply {
        status: status::CHECK_CONDITION,
        sense: sense.encode(SenseFormat::Fixed).as_bytes().to_vec(),
        data_in: Vec::new(),
        transfer_len_bytes,
    }
}

impl Controller {
    /// Answer every request the reactors sent since the last call (events that expect no
    /// answer are applied only); returns how many there were. The control loop calls it when
    /// a reactor rings, and while [`Controller::waits_without_doorbell`] says so, about every
    /// millisecond.
    pub fn serve_data_plane(&mut self) -> usize {
        self.release_drained_slots();
        for request in self.take_ready_deferred() {
            self.serve_one(request);
        }
        let requests = self.publisher.poll();
        let count = requests.len();
        // Writes to degraded volumes marking their regions: one save for all of them.
        let (logs, others): (Vec<_>, Vec<_>) = requests
            .into_iter()
            .partition(|r| matches!(r.kind, RequestKind::LogWrites { .. }));
        if !logs.is_empty() {
            let writes: Vec<(u64, u64, u64)> = logs
                .iter()
                .filter_map(|r| match r.kind {
                    RequestKind::LogWrites {
                        volume_uid,
                        offset_bytes,
                        len_bytes,
                        ..
                    } => Some((volume_uid, offset_bytes, len_bytes)),
                    _ => None,
                })
                .collect();
            let reply = self.log_writes(&writes);
            for request in logs {
                self.publisher.answer(request.id, reply.clone());
            }
        }
        for request in others {
            self.serve_one(request);
        }
        count
    }

    fn serve_one(&mut self, request: ReactorRequest) {
        match self.serve_request(&request.kind) {
            Served::Answer(reply) => self.publisher.answer(request.id, reply),
            Served::Nothing => {}
            Served::Wait(wait) => self.deferred.push(Deferred { request, wait }),
        }
    }

    /// Whether the control thread waits for something no reactor rings for: a copying task
    /// held back by a range lock, a request deferred behind a fence, slots waiting for a
    /// drain, or messages waiting for room in a reactor's mailbox. The control loop then
    /// looks again soon rather than sleeping until a call or a ring.
    pub fn waits_without_doorbell(&self) -> bool {
        !self.deferred.is_empty()
            || self.ledgers.any_pending()
            || self.publisher.has_undelivered()
            || self.has_running_task()
    }

    /// The kept requests whose wait is over, in the order they came.
    fn take_ready_deferred(&mut self) -> Vec<ReactorRequest> {
        if self.deferred.is_empty() {
            return Vec::new();
        }
        let mut ready = Vec::new();
        for deferred in std::mem::take(&mut self.deferred) {
            let over = match deferred.wait {
                Wait::Drained(generation) => self.publisher.is_drained(generation),
                Wait::FenceLifted => self.fence.is_none(),
                Wait::SegmentsValid => true,
            };
            if over {
                ready.push(deferred.request);
            } else {
                self.deferred.push(deferred);
            }
        }
        ready
    }

    /// Carry out one request.
    fn serve_request(&mut self, kind: &RequestKind) -> Served {
        match kind {
            RequestKind::SharedStateCommand {
                target,
                lun,
                volume_uid,
                nexus,
                cdb,
                data_out,
            } => Served::Answer(self.shared_state_command(&SharedCommand {
                target,
                lun: *lun,
                volume_uid: *volume_uid,
                nexus,
                cdb,
                data_out,
            })),
            RequestKind::AllocationStatus {
                io,
                block_size,
                volume_uid,
                ranges,
            } => Served::Answer(if ranges.is_empty() {
                self.segment_allocation_status(*volume_uid, io, *block_size)
            } else {
                allocation_status(io, *block_size, ranges)
            }),
            RequestKind::Fault {
                volume_uid,
                generation,
                faults,
                write_bytes,
            } => self.serve_fault(*volume_uid, *generation, faults, *write_bytes),
            RequestKind::Deallocate {
                volume_uid,
                generation,
                ranges,
                ..
            } => self.serve_deallocate(*volume_uid, *generation, ranges),
            RequestKind::LegFailed {
                volume_uid,
                generation,
                leg,
                write,
            } => Served::Answer(self.leg_failed(*volume_uid, *generation, *leg, *write)),
            RequestKind::LogWrites {
                volume_uid,
                offset_bytes,
                len_bytes,
                ..
            } => Served::Answer(self.log_writes(&[(*volume_uid, *offset_bytes, *len_bytes)])),
            RequestKind::NexusLost { nexus, .. } => {
                if let Err(e) = self.nexus_lost(&nexus_id(nexus)) {
                    tracing::warn!("ending the reservations of a lost nexus failed: {e}");
                }
                Served::Nothing
            }
            RequestKind::Reset { target, lun, cold } => {
                if let Err(e) = self.logical_units_reset(target, *lun, *cold) {
                    tracing::warn!("resetting the logical units of {target} failed: {e}");
                }
                // The reactor holds the task management response until this answer.
                Served::Answer(good())
            }
        }
    }

    /// The reply to one shared-state command.
    pub fn shared_state_command(&mut self, command: &SharedCommand<'_>) -> ScsiReply {
        let Some(volume) = self
            .config
            .volumes
            .iter()
            .position(|v| v.uid.0 == command.volume_uid)
        else {
            // The volume went away while the command travelled.
            return check_condition(
                Sense::new(SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED),
                parameter_list_len_bytes(command.cdb),
            );
        };
        self.apply_reservation_command(volume, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_list_lengths_come_from_the_cdb() {
        let prout = [0x5f, 0x00, 0x00, 0, 0, 0x00, 0x00, 0x01, 0x18, 0x00];
        assert_eq!(parameter_list_len_bytes(&prout), 0x118);
        let reserve10 = [0x56, 0, 0, 0, 0, 0, 0, 0x00, 0x08, 0];
        assert_eq!(parameter_list_len_bytes(&reserve10), 8);
        assert_eq!(parameter_list_len_bytes(&[0x16, 0, 0, 0, 0, 0]), 0);
        assert_eq!(parameter_list_len_bytes(&[0x5f, 0, 0]), 0, "short CDB");
        assert_eq!(parameter_list_len_bytes(&[]), 0);
    }
}
