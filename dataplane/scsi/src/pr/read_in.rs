//! PERSISTENT RESERVE IN (SPC-4 6.16): READ KEYS, READ RESERVATION, REPORT CAPABILITIES and
//! READ FULL STATUS, built from a [`ReservationState`].

use lunar_wire::scsi::{decode, service_action as sa, Cdb, Sense};

use crate::nexus::NexusId;

use super::{Refusal, ReservationState};

/// REPORT CAPABILITIES: LENGTH.
const CAPABILITIES_LEN_BYTES: u16 = 8;
/// CRH: RESERVE/RELEASE follow the compatible reservation handling of SPC-4 5.13.3.
const CAP_CRH: u8 = 0x10;
/// ATP_C: ALL_TG_PT is supported.
const CAP_ATP_C: u8 = 0x04;
/// PTPL_C: persist through power loss is supported (registrations are always kept).
const CAP_PTPL_C: u8 = 0x01;
/// TMV: the type mask is valid.
const CAP_TMV: u8 = 0x80;
/// PTPL_A: persist through power loss is activated.
const CAP_PTPL_A: u8 = 0x01;
/// PERSISTENT RESERVATION TYPE MASK: every type (WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX;
/// EX_AC_AR).
const TYPE_MASK: [u8; 2] = [0xea, 0x01];
/// READ FULL STATUS descriptor flags.
const FULL_STATUS_ALL_TG_PT: u8 = 0x02;
const FULL_STATUS_R_HOLDER: u8 = 0x01;
/// Length of a READ RESERVATION reservation descriptor.
const RESERVATION_DESCRIPTOR_LEN_BYTES: u32 = 16;

/// The parameter data of a PERSISTENT RESERVE IN `cdb` from `nexus`, before truncation to the
/// allocation length.
pub fn read_in(state: &ReservationState, nexus: &NexusId, cdb: &[u8]) -> Result<Vec<u8>, Refusal> {
    let _ = nexus;
    let service_action = match decode(cdb) {
        Ok(Cdb::PersistentReserveIn { service_action, .. }) => service_action,
        Ok(_) => return Err(Refusal::Check(Sense::invalid_opcode())),
        Err(error) => return Err(Refusal::Check(error.sense())),
    };
    let data = match service_action {
        sa::PR_IN_READ_KEYS => read_keys(state),
        sa::PR_IN_READ_RESERVATION => read_reservation(state),
        sa::PR_IN_REPORT_CAPABILITIES => report_capabilities(state),
        sa::PR_IN_READ_FULL_STATUS => read_full_status(state),
        _ => return Err(Refusal::Check(Sense::invalid_field_in_cdb(1, Some(4)))),
    };
    Ok(data)
}

fn header(state: &ReservationState, additional_len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(8 + additional_len);
    data.extend_from_slice(&state.generation.to_be_bytes());
    data.extend_from_slice(
        &u32::try_from(additional_len)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    data
}

fn read_keys(state: &ReservationState) -> Vec<u8> {
    let mut data = header(state, state.registrations.len() * 8);
    for registration in &state.registrations {
        data.extend_from_slice(&registration.key.to_be_bytes());
    }
    data
}

fn read_reservation(state: &ReservationState) -> Vec<u8> {
    let Some(reservation) = &state.reservation else {
        return header(state, 0);
    };
    let mut data = header(state, RESERVATION_DESCRIPTOR_LEN_BYTES as usize);
    data.extend_from_slice(&state.reservation_key().to_be_bytes());
    data.extend_from_slice(&[0; 4]); // obsolete
    data.push(0);
    data.push(reservation.pr_type.code()); // SCOPE 0h (logical unit) | TYPE
    data.extend_from_slice(&[0; 2]); // obsolete
    data
}

fn report_capabilities(state: &ReservationState) -> Vec<u8> {
    let mut data = Vec::with_capacity(usize::from(CAPABILITIES_LEN_BYTES));
    data.extend_from_slice(&CAPABILITIES_LEN_BYTES.to_be_bytes());
    data.push(CAP_CRH | CAP_ATP_C | CAP_PTPL_C);
    // ALLOW COMMANDS 000b: no information about commands allowed under write exclusive.
    data.push(CAP_TMV | if state.aptpl { CAP_PTPL_A } else { 0 });
    data.extend_from_slice(&TYPE_MASK);
    data.extend_from_slice(&[0; 2]);
    data
}

fn read_full_status(state: &ReservationState) -> Vec<u8> {
    let mut descriptors = Vec::with_capacity(state.registrations.len() * 64);
    for registration in &state.registrations {
        let holder = state.is_holder(&registration.nexus);
        let transport_id = registration.nexus.transport_id();
        descriptors.extend_from_slice(&registration.key.to_be_bytes());
        descriptors.extend_from_slice(&[0; 4]);
        let mut flags = 0;
        if registration.all_target_ports {
            flags |= FULL_STATUS_ALL_TG_PT;
        }
        if holder {
            flags |= FULL_STATUS_R_HOLDER;
        }
        descriptors.push(flags);
        let scope_type = match (&state.reservation, holder) {
            (Some(reservation), true) => reservation.pr_type.code(),
            _ => 0,
        };
        descriptors.push(scope_type);
        descriptors.extend_from_slice(&[0; 4]);
        descriptors.extend_from_slice(&registration.nexus.relative_target_port_id.to_be_bytes());
        descriptors.extend_from_slice(&(transport_id.len() as u32).to_be_bytes());
        descriptors.extend_from_slice(&transport_id);
    }
    let mut data = header(state, descriptors.len());
    data.extend_from_slice(&descriptors);
    data
}
