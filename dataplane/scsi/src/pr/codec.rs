//! The durable encoding of a [`ReservationState`]: registrations, the persistent reservation,
//! PRGENERATION and APTPL, as versioned big-endian bytes the control plane writes to its state
//! directory. Decoding checks every length and value and never panics; it yields the state a
//! restarted logical unit starts from (no SPC-2 reservation, medium loaded, empty event log).

use crate::nexus::NexusId;

use super::{PersistentReservation, PrType, Registration, ReservationState, MAX_REGISTRATIONS};

const MAGIC: &[u8; 4] = b"LUPR";
/// Version of the encoding this build writes and reads.
pub const VERSION: u8 = 1;
/// Longest port name stored (an iSCSI name is at most 223 bytes, plus the port suffix).
pub const PORT_NAME_MAX_LEN_BYTES: usize = 512;
const FLAG_APTPL: u8 = 0x01;
const FLAG_ALL_TARGET_PORTS: u8 = 0x01;
const NO_RESERVATION: u8 = 0;

/// Why bytes are not an encoded reservation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a reservation state (bad magic)")]
    BadMagic,
    #[error("reservation state version {0} is not supported (this build reads {VERSION})")]
    UnsupportedVersion(u8),
    #[error("reservation state truncated at byte {at}")]
    Truncated { at: usize },
    #[error("reservation state has {count} registrations, more than {MAX_REGISTRATIONS}")]
    TooManyRegistrations { count: usize },
    #[error("reservation state has a port name of {len_bytes} bytes or one that is not UTF-8")]
    BadPortName { len_bytes: usize },
    #[error("reservation state has a registration with key 0")]
    ZeroKey,
    #[error("reservation state has an unknown reservation type {0:#x}")]
    BadType(u8),
    #[error("reservation state has {extra_bytes} bytes after its end")]
    TrailingBytes { extra_bytes: usize },
}

/// Encode the durable part of `state`.
pub fn encode(state: &ReservationState) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + state.registrations.len() * 96);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&state.generation.to_be_bytes());
    out.push(if state.aptpl { FLAG_APTPL } else { 0 });
    let count = state.registrations.len().min(MAX_REGISTRATIONS);
    out.extend_from_slice(&(count as u16).to_be_bytes());
    for registration in state.registrations.iter().take(count) {
        out.extend_from_slice(&registration.key.to_be_bytes());
        out.push(if registration.all_target_ports {
            FLAG_ALL_TARGET_PORTS
        } else {
            0
        });
        put_nexus(&mut out, &registration.nexus);
    }
    match &state.reservation {
        None => out.push(NO_RESERVATION),
        Some(reservation) => {
            out.push(reservation.pr_type.code());
            put_nexus(&mut out, &reservation.holder);
        }
    }
    out
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    let bytes = name.as_bytes();
    let mut len = bytes.len().min(PORT_NAME_MAX_LEN_BYTES);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..len]);
}

fn put_nexus(out: &mut Vec<u8>, nexus: &NexusId) {
    out.extend_from_slice(&nexus.relative_target_port_id.to_be_bytes());
    put_name(out, &nexus.initiator_port);
    put_name(out, &nexus.target_port);
}

/// A cursor over the encoded bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DecodeError::Truncated { at: self.at })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from(self.u32()?) << 32 | u64::from(self.u32()?))
    }

    fn name(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        if len > PORT_NAME_MAX_LEN_BYTES {
            return Err(DecodeError::BadPortName { len_bytes: len });
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| DecodeError::BadPortName { len_bytes: len })
    }

    fn nexus(&mut self) -> Result<NexusId, DecodeError> {
        let relative_target_port_id = self.u16()?;
        Ok(NexusId {
            initiator_port: self.name()?,
            target_port: self.name()?,
            relative_target_port_id,
        })
    }
}

/// Decode bytes written by [`encode`] into the state of a restarted logical unit.
pub fn decode(bytes: &[u8]) -> Result<ReservationState, DecodeError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(MAGIC.len()).ok() != Some(MAGIC.as_slice()) {
        return Err(DecodeError::BadMagic);
    }
    let version = reader.u8()?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let generation = reader.u32()?;
    let aptpl = reader.u8()? & FLAG_APTPL != 0;
    let count = usize::from(reader.u16()?);
    if count > MAX_REGISTRATIONS {
        return Err(DecodeError::TooManyRegistrations { count });
    }
    let mut registrations = Vec::with_capacity(count);
    for _ in 0..count {
        let key = reader.u64()?;
        if key == 0 {
            return Err(DecodeError::ZeroKey);
        }
        let all_target_ports = reader.u8()? & FLAG_ALL_TARGET_PORTS != 0;
        registrations.push(Registration {
            nexus: reader.nexus()?,
            key,
            all_target_ports,
        });
    }
    let reservation = match reader.u8()? {
        NO_RESERVATION => None,
        code => Some(PersistentReservation {
            pr_type: PrType::from_code(code).ok_or(DecodeError::BadType(code))?,
            holder: reader.nexus()?,
        }),
    };
    let extra_bytes = bytes.len() - reader.at;
    if extra_bytes != 0 {
        return Err(DecodeError::TrailingBytes { extra_bytes });
    }
    Ok(ReservationState {
        generation,
        aptpl,
        registrations,
        reservation,
        ..ReservationState::default()
    })
}
