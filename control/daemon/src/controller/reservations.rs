//! The logical-unit state every I_T nexus of a volume shares (persistent reservations, SPC-2
//! reservations, the removable medium, unit attentions for other nexuses), which the control
//! thread owns: applying the commands that change it, persisting its durable part with the
//! volume, and publishing every new state in the table before the host gets its answer.
//!
//! The state machine is `lunar_scsi::pr`; this module keeps one state per volume uid and
//! decides what each change costs: a durable change (`Effects::persist`) is saved with the
//! configuration, every change is published, and a change that cannot be saved or published
//! is not applied (the host gets HARDWARE ERROR / INTERNAL TARGET FAILURE).

use std::collections::HashMap;
use std::sync::Arc;

use lunar_scsi::pr::{apply_control, codec, ReservationState};
use lunar_scsi::{NexusId, ScsiReply};
use lunar_wire::scsi::{Asc, Sense, SenseKey};

use super::requests::{check_condition, parameter_list_len_bytes, SharedCommand};
use super::Controller;
use crate::config::{Config, VolumeConfig};
use crate::error::ControlError;

/// Reservation state by volume uid; a volume without an entry has the default state.
pub type Reservations = HashMap<u64, Arc<ReservationState>>;

/// Separator between the target name and the TPGT in a target port name.
const TARGET_PORT_SEPARATOR: &str = ",t,0x";

/// Lowercase hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of lowercase or uppercase hex; `None` when it is not hex.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// The durable encoding of `state`, as [`VolumeConfig::reservations`] keeps it.
pub fn encode_saved(state: &ReservationState) -> String {
    to_hex(&codec::encode(state))
}

/// The state a volume's logical unit starts from after a restart.
fn decode_saved(volume: &VolumeConfig) -> Result<ReservationState, ControlError> {
    let Some(text) = &volume.reservations else {
        return Ok(ReservationState::default());
    };
    let unreadable = |why: String| {
        ControlError::InvalidParams(format!(
            "the saved reservations of volume '{}' are not readable: {why}",
            volume.name
        ))
    };
    let bytes = from_hex(text).ok_or_else(|| unreadable("not hex".to_string()))?;
    codec::decode(&bytes).map_err(|e| unreadable(e.to_string()))
}

/// The reservation states of a restored configuration (checked with the rest of it).
pub fn restore_reservations(config: &Config) -> Result<Reservations, ControlError> {
    let mut reservations = Reservations::new();
    for volume in &config.volumes {
        if volume.reservations.is_some() {
            reservations.insert(volume.uid.0, Arc::new(decode_saved(volume)?));
        }
    }
    Ok(reservations)
}

/// The I_T nexus of a forwarded command. The relative target port identifier is the portal
/// group tag, as the reactors report it.
pub(super) fn nexus_id(nexus: &lunar_reactor::Nexus) -> NexusId {
    let relative_target_port_id = nexus
        .target_port
        .rsplit_once(TARGET_PORT_SEPARATOR)
        .and_then(|(_, tpgt)| u16::from_str_radix(tpgt, 16).ok())
        .unwrap_or(0);
    NexusId {
        initiator_port: nexus.initiator_port.clone(),
        target_port: nexus.target_port.clone(),
        relative_target_port_id,
    }
}

impl Controller {
    /// The current state of volume `uid`'s logical unit.
    pub fn reservation_state(&self, uid: u64) -> Arc<ReservationState> {
        self.reservations.get(&uid).cloned().unwrap_or_default()
    }

    /// Apply a shared-state command to its volume's state: persist and publish a change, then
    /// return the host's reply.
    pub(super) fn apply_reservation_command(
        &mut self,
        volume: usize,
        command: &SharedCommand<'_>,
    ) -> ScsiReply {
        let state = self.reservation_state(command.volume_uid);
        let nexus = nexus_id(command.nexus);
        let applied = match apply_control(&state, &nexus, command.cdb, command.data_out) {
            Ok(applied) => applied,
            Err(refusal) => return refusal,
        };
        let Some(next) = applied.state else {
            return applied.reply;
        };
        // PREEMPT AND ABORT: the new state is published first (so the preempted nexuses' new
        // commands meet it), then their tasks in flight are aborted, then the host is answered.
        // The issuing nexus's own PERSISTENT RESERVE OUT is not among them.
        let preempted: Vec<String> = applied
            .effects
            .abort_tasks_of
            .iter()
            .map(|r| r.nexus.initiator_port.clone())
            .filter(|port| !port.eq_ignore_ascii_case(&nexus.initiator_port))
            .collect();
        let changes = [(volume, next)];
        let installed = self.install_reservations(&changes, applied.effects.persist);
        if installed.is_ok() && !preempted.is_empty() {
            if let Err(error) = self.publisher.abort_tasks(command.volume_uid, &preempted) {
                tracing::error!(
                    target = command.target,
                    lun = command.lun,
                    "PREEMPT AND ABORT: aborting the preempted tasks failed: {error}"
                );
            }
        }
        match installed {
            Ok(()) => applied.reply,
            Err(error) => {
                tracing::error!(
                    target = command.target,
                    lun = command.lun,
                    "reservation change not applied: {error}"
                );
                check_condition(
                    Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE),
                    parameter_list_len_bytes(command.cdb),
                )
            }
        }
    }

    /// Make `changes` (volume index, new state) the current states: save the configuration
    /// when `persist`, publish a table carrying them. On error nothing changed.
    fn install_reservations(
        &mut self,
        changes: &[(usize, ReservationState)],
        persist: bool,
    ) -> Result<(), ControlError> {
        let mut config = self.config.clone();
        let mut reservations = self.reservations.clone();
        for (index, state) in changes {
            let volume = config.volumes.get_mut(*index).ok_or_else(|| {
                ControlError::Internal(format!("volume index {index} out of range"))
            })?;
            if persist {
                volume.reservations = Some(encode_saved(state));
            }
            reservations.insert(volume.uid.0, Arc::new(state.clone()));
        }
        let devices = self.devices.clone();
        self.install(config, devices, reservations, persist)
            .map(|_| ())
    }

    /// An I_T nexus is gone (logout, connection loss, session reinstatement): its SPC-2
    /// reservations and medium-removal preventions end on every volume. Publishes once when
    /// anything changed; registrations and persistent reservations stay.
    pub fn nexus_lost(&mut self, nexus: &NexusId) -> Result<(), ControlError> {
        let changes: Vec<(usize, ReservationState)> = self
            .config
            .volumes
            .iter()
            .enumerate()
            .filter_map(|(index, volume)| {
                self.reservation_state(volume.uid.0)
                    .on_nexus_loss(nexus)
                    .map(|next| (index, next))
            })
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        self.install_reservations(&changes, false)
    }

    /// A LOGICAL UNIT RESET (`lun: Some`), or a target reset of every logical unit of
    /// `target` (`lun: None`; `cold` for TARGET COLD RESET): SPC-2 reservations and
    /// medium-removal preventions end, and every nexus gets the reset's unit attention.
    pub fn logical_units_reset(
        &mut self,
        target: &str,
        lun: Option<u64>,
        cold: bool,
    ) -> Result<(), ControlError> {
        let Some(exported) = self.config.target(&target.to_ascii_lowercase()) else {
            return Err(ControlError::not_found("target", target));
        };
        let volumes: Vec<&str> = exported
            .luns
            .iter()
            .filter(|l| lun.is_none_or(|only| only == l.lun))
            .map(|l| l.volume.as_str())
            .collect();
        let changes: Vec<(usize, ReservationState)> = self
            .config
            .volumes
            .iter()
            .enumerate()
            .filter(|(_, volume)| volumes.contains(&volume.name.as_str()))
            .map(|(index, volume)| {
                let state = self.reservation_state(volume.uid.0);
                let next = if cold {
                    state.on_target_cold_reset()
                } else {
                    state.on_logical_unit_reset()
                };
                (index, next)
            })
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        self.install_reservations(&changes, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0x00, 0x7f, 0x80, 0xff, 0x12];
        assert_eq!(to_hex(&bytes), "007f80ff12");
        assert_eq!(from_hex("007F80ff12"), Some(bytes));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("+1"), None);
        assert_eq!(from_hex(""), Some(Vec::new()));
    }

    #[test]
    fn nexus_ids_carry_the_portal_group_tag() {
        let nexus = nexus_id(&lunar_reactor::Nexus {
            initiator_port: "iqn.2026-11.a.b:h,i,0x230000000001".into(),
            target_port: "iqn.2026-11.dev.lunar:t,t,0x0003".into(),
        });
        assert_eq!(nexus.relative_target_port_id, 3);
        let odd = nexus_id(&lunar_reactor::Nexus {
            initiator_port: "i".into(),
            target_port: "no-tag".into(),
        });
        assert_eq!(odd.relative_target_port_id, 0);
    }

    proptest! {
        #[test]
        fn hex_decoding_never_panics(text in any::<String>()) {
            if let Some(bytes) = from_hex(&text) {
                prop_assert_eq!(to_hex(&bytes), text.to_ascii_lowercase());
            }
        }
    }
}
