//! Requests the reactors hand to the control thread, answered here: commands that change
//! logical-unit state every I_T nexus shares (PERSISTENT RESERVE OUT, RESERVE, RELEASE).
//!
//! Every request gets exactly one answer, so a host command never waits forever. Reservation
//! state is kept per volume: applying a command reads the volume's state, and a change is
//! persisted and published (like any configuration change) before the answer goes out.
//! Until the device model's reservation state machine is wired in, these commands are
//! answered with CHECK CONDITION, ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE.

use lunar_reactor::{Nexus, RequestKind};
use lunar_scsi::ScsiReply;
use lunar_wire::scsi::{opcode, status, Asc, Sense, SenseFormat, SenseKey};

use super::Controller;
use crate::config::VolumeConfig;

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

/// What applying a shared-state command to a volume's state did.
#[derive(Debug)]
enum Applied {
    /// The state is as before: answer with this reply.
    Unchanged(ScsiReply),
}

/// Bytes of parameter data the CDB announces (what a reply reports as its transfer length).
fn parameter_list_len_bytes(cdb: &[u8]) -> u32 {
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
fn check_condition(sense: Sense, transfer_len_bytes: u32) -> ScsiReply {
    ScsiReply {
        status: status::CHECK_CONDITION,
        sense: sense.encode(SenseFormat::Fixed).as_bytes().to_vec(),
        data_in: Vec::new(),
        transfer_len_bytes,
    }
}

/// Apply `command` to the reservation state of `volume`.
fn apply(volume: &VolumeConfig, command: &SharedCommand<'_>) -> Applied {
    tracing::debug!(
        volume = %volume.name,
        target = command.target,
        lun = command.lun,
        initiator = %command.nexus.initiator_port,
        opcode = command.cdb.first().copied().unwrap_or(0),
        "reservation command refused: not supported"
    );
    Applied::Unchanged(check_condition(
        Sense::new(
            SenseKey::IllegalRequest,
            Asc::INVALID_COMMAND_OPERATION_CODE,
        ),
        parameter_list_len_bytes(command.cdb),
    ))
}

impl Controller {
    /// Answer every request the reactors sent since the last call; returns how many there
    /// were. The control loop calls it about every millisecond.
    pub fn serve_data_plane(&mut self) -> usize {
        let requests = self.publisher.poll();
        let count = requests.len();
        for request in requests {
            let reply = match &request.kind {
                RequestKind::SharedStateCommand {
                    target,
                    lun,
                    volume_uid,
                    nexus,
                    cdb,
                    data_out,
                } => self.shared_state_command(&SharedCommand {
                    target,
                    lun: *lun,
                    volume_uid: *volume_uid,
                    nexus,
                    cdb,
                    data_out,
                }),
            };
            self.publisher.answer(request.id, reply);
        }
        count
    }

    /// The reply to one shared-state command.
    pub fn shared_state_command(&mut self, command: &SharedCommand<'_>) -> ScsiReply {
        let Some(volume) = self
            .config
            .volumes
            .iter()
            .find(|v| v.uid.0 == command.volume_uid)
        else {
            // The volume went away while the command travelled.
            return check_condition(
                Sense::new(SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED),
                parameter_list_len_bytes(command.cdb),
            );
        };
        match apply(volume, command) {
            Applied::Unchanged(reply) => reply,
        }
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
