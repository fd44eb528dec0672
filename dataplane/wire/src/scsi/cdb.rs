//! CDB decoder: bytes → [`Cdb`]. It finds the layout in the command table, checks the CDB is
//! long enough, rejects set reserved bits and control-byte bits (NACA, LINK) with the field
//! pointer of the offending bit, and extracts the typed fields. It does not judge values
//! against a logical unit (LBA range, block limits, protection): that is the device model's job.

use super::command_table::{self, CommandInfo, CONTROL_BYTE_MUST_BE_ZERO, SERVICE_ACTION_MASK};
use super::constants::{opcode, service_action};
use super::sense::Sense;

pub use super::cdb_types::{
    Cdb, CdbSize, CompareAndWriteCdb, PageControl, ReadWrite, VerifyCdb, WriteSameCdb,
};

/// Longest CDB this decoder handles.
pub const CDB_MAX_LEN_BYTES: usize = 16;

/// Why a CDB was refused. Small and `Copy`: it lives on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdbError {
    /// Fewer bytes than the opcode's CDB length.
    Truncated {
        needed_bytes: u8,
        len_bytes: u8,
    },
    UnsupportedOpcode(u8),
    UnsupportedServiceAction {
        opcode: u8,
        service_action: u8,
    },
    /// A reserved or unsupported bit is set (or a control-byte bit such as NACA).
    InvalidField {
        byte: u16,
        bit: Option<u8>,
    },
}

impl CdbError {
    /// The sense data the device server answers with.
    pub fn sense(&self) -> Sense {
        match *self {
            CdbError::Truncated { .. } => Sense::invalid_field_in_cdb(0, None),
            CdbError::UnsupportedOpcode(_) => Sense::invalid_opcode(),
            CdbError::UnsupportedServiceAction { .. } => Sense::invalid_field_in_cdb(1, Some(4)),
            CdbError::InvalidField { byte, bit } => Sense::invalid_field_in_cdb(byte, bit),
        }
    }
}

/// Most significant set bit of a non-zero byte.
fn top_bit(byte: u8) -> u8 {
    7 - byte.leading_zeros().min(7) as u8
}

/// The table entry that describes `cdb`.
pub fn lookup(cdb: &[u8]) -> Result<&'static CommandInfo, CdbError> {
    let len_bytes = cdb.len().min(usize::from(u8::MAX)) as u8;
    let op = *cdb.first().ok_or(CdbError::Truncated {
        needed_bytes: 1,
        len_bytes,
    })?;
    if command_table::has_service_actions(op) {
        let service_action = cdb.get(1).ok_or(CdbError::Truncated {
            needed_bytes: 2,
            len_bytes,
        })? & SERVICE_ACTION_MASK;
        command_table::command_info(op, Some(service_action)).ok_or(
            CdbError::UnsupportedServiceAction {
                opcode: op,
                service_action,
            },
        )
    } else {
        command_table::command_info(op, None).ok_or(CdbError::UnsupportedOpcode(op))
    }
}

/// Check reserved bits and the control byte of `cdb` against `info`, returning the CDB copied
/// into a fixed array (so field extraction cannot index out of bounds).
fn validate(info: &CommandInfo, cdb: &[u8]) -> Result<[u8; CDB_MAX_LEN_BYTES], CdbError> {
    let len = info.cdb_len();
    let bytes = cdb.get(..len).ok_or(CdbError::Truncated {
        needed_bytes: len as u8,
        len_bytes: cdb.len().min(usize::from(u8::MAX)) as u8,
    })?;
    let mut fixed = [0u8; CDB_MAX_LEN_BYTES];
    fixed[..len].copy_from_slice(bytes);
    // The bits each byte may have set: byte 0 is the opcode, byte 1 of a service-action
    // opcode holds the service action, the last byte is the control byte. One 128-bit test
    // covers the common case; the offending byte is searched only for a bad CDB.
    let mut allowed = [0u8; CDB_MAX_LEN_BYTES];
    allowed[..len].copy_from_slice(&info.usage[..len]);
    allowed[0] = u8::MAX;
    if info.service_action.is_some() {
        allowed[1] = SERVICE_ACTION_MASK;
    }
    allowed[len - 1] = !CONTROL_BYTE_MUST_BE_ZERO;
    if u128::from_ne_bytes(fixed) & !u128::from_ne_bytes(allowed) == 0 {
        return Ok(fixed);
    }
    for (index, (&byte, &allowed)) in fixed.iter().zip(&allowed).enumerate() {
        let offending = byte & !allowed;
        if offending != 0 {
            return Err(CdbError::InvalidField {
                byte: index as u16,
                bit: Some(top_bit(offending)),
            });
        }
    }
    Ok(fixed)
}

fn be16(b: &[u8; CDB_MAX_LEN_BYTES], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8; CDB_MAX_LEN_BYTES], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8; CDB_MAX_LEN_BYTES], at: usize) -> u64 {
    u64::from(be32(b, at)) << 32 | u64::from(be32(b, at + 4))
}

fn bit(byte: u8, bit: u8) -> bool {
    byte & (1 << bit) != 0
}

/// Decode the CDB at the start of `cdb` (trailing bytes, e.g. the padding of a 16-byte iSCSI
/// CDB field, are ignored).
pub fn decode(cdb: &[u8]) -> Result<Cdb, CdbError> {
    let info = lookup(cdb)?;
    let b = validate(info, cdb)?;
    let decoded = match info.opcode {
        opcode::TEST_UNIT_READY => Cdb::TestUnitReady,
        opcode::REQUEST_SENSE => Cdb::RequestSense {
            desc: bit(b[1], 0),
            alloc_len: b[4],
        },
        opcode::READ_6 | opcode::WRITE_6 => {
            let rw = ReadWrite {
                size: CdbSize::Six,
                lba: u64::from(u32::from_be_bytes([0, b[1] & 0x1f, b[2], b[3]])),
                blocks: if b[4] == 0 { 256 } else { u32::from(b[4]) },
                protect: 0,
                dpo: false,
                fua: false,
                group: 0,
            };
            if info.opcode == opcode::READ_6 {
                Cdb::Read(rw)
            } else {
                Cdb::Write(rw)
            }
        }
        opcode::INQUIRY => Cdb::Inquiry {
            evpd: bit(b[1], 0),
            page_code: b[2],
            alloc_len: be16(&b, 3),
        },
        opcode::MODE_SENSE_6 | opcode::MODE_SENSE_10 => {
            let ten = info.opcode == opcode::MODE_SENSE_10;
            Cdb::ModeSense {
                size: if ten { CdbSize::Ten } else { CdbSize::Six },
                dbd: bit(b[1], 3),
                llbaa: bit(b[1], 4),
                page_control: match b[2] >> 6 {
                    0 => PageControl::Current,
                    1 => PageControl::Changeable,
                    2 => PageControl::Default,
                    _ => PageControl::Saved,
                },
                page_code: b[2] & 0x3f,
                subpage_code: b[3],
                alloc_len: if ten { be16(&b, 7) } else { u16::from(b[4]) },
            }
        }
        opcode::START_STOP_UNIT => Cdb::StartStopUnit {
            immed: bit(b[1], 0),
            power_condition_modifier: b[3] & 0x0f,
            power_condition: b[4] >> 4,
            no_flush: bit(b[4], 2),
            loej: bit(b[4], 1),
            start: bit(b[4], 0),
        },
        opcode::PREVENT_ALLOW_MEDIUM_REMOVAL => Cdb::PreventAllowMediumRemoval {
            prevent: b[4] & 0x03,
        },
        opcode::READ_CAPACITY_10 => Cdb::ReadCapacity10 {
            lba: be32(&b, 2),
            pmi: bit(b[8], 0),
        },
        opcode::READ_10 | opcode::WRITE_10 | opcode::READ_12 | opcode::WRITE_12 => {
            let size = if info.cdb_len() == 10 {
                CdbSize::Ten
            } else {
                CdbSize::Twelve
            };
            let (blocks, group) = if size == CdbSize::Ten {
                (u32::from(be16(&b, 7)), b[6] & 0x3f)
            } else {
                (be32(&b, 6), b[10] & 0x3f)
            };
            let rw = ReadWrite {
                size,
                lba: u64::from(be32(&b, 2)),
                blocks,
                protect: b[1] >> 5,
                dpo: bit(b[1], 4),
                fua: bit(b[1], 3),
                group,
            };
            if matches!(info.opcode, opcode::READ_10 | opcode::READ_12) {
                Cdb::Read(rw)
            } else {
                Cdb::Write(rw)
            }
        }
        opcode::READ_16 | opcode::WRITE_16 => {
            let rw = ReadWrite {
                size: CdbSize::Sixteen,
                lba: be64(&b, 2),
                blocks: be32(&b, 10),
                protect: b[1] >> 5,
                dpo: bit(b[1], 4),
                fua: bit(b[1], 3),
                group: b[14] & 0x3f,
            };
            if info.opcode == opcode::READ_16 {
                Cdb::Read(rw)
            } else {
                Cdb::Write(rw)
            }
        }
        opcode::VERIFY_10
        | opcode::VERIFY_12
        | opcode::VERIFY_16
        | opcode::WRITE_AND_VERIFY_10
        | opcode::WRITE_AND_VERIFY_12
        | opcode::WRITE_AND_VERIFY_16 => {
            let (size, lba, blocks, group) = match info.cdb_len() {
                10 => (
                    CdbSize::Ten,
                    u64::from(be32(&b, 2)),
                    u32::from(be16(&b, 7)),
                    b[6],
                ),
                12 => (CdbSize::Twelve, u64::from(be32(&b, 2)), be32(&b, 6), b[10]),
                _ => (CdbSize::Sixteen, be64(&b, 2), be32(&b, 10), b[14]),
            };
            let verify = VerifyCdb {
                size,
                lba,
                blocks,
                protect: b[1] >> 5,
                dpo: bit(b[1], 4),
                bytchk: (b[1] >> 1) & 0x03,
                group: group & 0x3f,
            };
            if matches!(
                info.opcode,
                opcode::VERIFY_10 | opcode::VERIFY_12 | opcode::VERIFY_16
            ) {
                Cdb::Verify(verify)
            } else {
                Cdb::WriteAndVerify(verify)
            }
        }
        opcode::SYNCHRONIZE_CACHE_10 => Cdb::SynchronizeCache {
            size: CdbSize::Ten,
            lba: u64::from(be32(&b, 2)),
            blocks: u32::from(be16(&b, 7)),
            immed: bit(b[1], 1),
        },
        opcode::SYNCHRONIZE_CACHE_16 => Cdb::SynchronizeCache {
            size: CdbSize::Sixteen,
            lba: be64(&b, 2),
            blocks: be32(&b, 10),
            immed: bit(b[1], 1),
        },
        opcode::PRE_FETCH_10 => Cdb::PreFetch {
            size: CdbSize::Ten,
            lba: u64::from(be32(&b, 2)),
            blocks: u32::from(be16(&b, 7)),
            immed: bit(b[1], 1),
        },
        opcode::PRE_FETCH_16 => Cdb::PreFetch {
            size: CdbSize::Sixteen,
            lba: be64(&b, 2),
            blocks: be32(&b, 10),
            immed: bit(b[1], 1),
        },
        opcode::READ_DEFECT_DATA_10 => Cdb::ReadDefectData {
            size: CdbSize::Ten,
            req_plist: bit(b[2], 4),
            req_glist: bit(b[2], 3),
            format: b[2] & 0x07,
            address_descriptor_index: 0,
            alloc_len: u32::from(be16(&b, 7)),
        },
        opcode::READ_DEFECT_DATA_12 => Cdb::ReadDefectData {
            size: CdbSize::Twelve,
            req_plist: bit(b[1], 4),
            req_glist: bit(b[1], 3),
            format: b[1] & 0x07,
            address_descriptor_index: be32(&b, 2),
            alloc_len: be32(&b, 6),
        },
        opcode::SERVICE_ACTION_IN_16
            if info.service_action == Some(service_action::READ_CAPACITY_16) =>
        {
            Cdb::ReadCapacity16 {
                lba: be64(&b, 2),
                pmi: bit(b[14], 0),
                alloc_len: be32(&b, 10),
            }
        }
        opcode::REPORT_LUNS => Cdb::ReportLuns {
            select_report: b[2],
            alloc_len: be32(&b, 6),
        },
        opcode::MAINTENANCE_IN => Cdb::ReportSupportedOperationCodes {
            rctd: bit(b[2], 7),
            reporting_options: b[2] & 0x07,
            requested_opcode: b[3],
            requested_service_action: be16(&b, 4),
            alloc_len: be32(&b, 6),
        },
        _ => return decode_more(info, &b),
    };
    Ok(decoded)
}

/// The commands added for provisioning, atomic writes and reservations.
fn decode_more(info: &CommandInfo, b: &[u8; CDB_MAX_LEN_BYTES]) -> Result<Cdb, CdbError> {
    let decoded = match info.opcode {
        opcode::WRITE_SAME_10 => Cdb::WriteSame(WriteSameCdb {
            size: CdbSize::Ten,
            lba: u64::from(be32(b, 2)),
            blocks: u32::from(be16(b, 7)),
            protect: b[1] >> 5,
            unmap: bit(b[1], 3),
            ndob: false,
            group: b[6] & 0x3f,
        }),
        opcode::WRITE_SAME_16 => Cdb::WriteSame(WriteSameCdb {
            size: CdbSize::Sixteen,
            lba: be64(b, 2),
            blocks: be32(b, 10),
            protect: b[1] >> 5,
            unmap: bit(b[1], 3),
            ndob: bit(b[1], 0),
            group: b[14] & 0x3f,
        }),
        opcode::UNMAP => Cdb::Unmap {
            group: b[6] & 0x3f,
            param_len: be16(b, 7),
        },
        opcode::COMPARE_AND_WRITE => Cdb::CompareAndWrite(CompareAndWriteCdb {
            lba: be64(b, 2),
            blocks: b[13],
            protect: b[1] >> 5,
            dpo: bit(b[1], 4),
            fua: bit(b[1], 3),
            group: b[14] & 0x3f,
        }),
        opcode::ORWRITE_16 | opcode::WRITE_ATOMIC_16 => {
            let atomic = info.opcode == opcode::WRITE_ATOMIC_16;
            let rw = ReadWrite {
                size: CdbSize::Sixteen,
                lba: be64(b, 2),
                // WRITE ATOMIC (16) has a 2-byte TRANSFER LENGTH after the ATOMIC BOUNDARY.
                blocks: if atomic {
                    u32::from(be16(b, 12))
                } else {
                    be32(b, 10)
                },
                protect: b[1] >> 5,
                dpo: bit(b[1], 4),
                fua: bit(b[1], 3),
                group: b[14] & 0x3f,
            };
            if atomic {
                Cdb::WriteAtomic(rw)
            } else {
                Cdb::OrWrite(rw)
            }
        }
        opcode::PERSISTENT_RESERVE_IN => Cdb::PersistentReserveIn {
            service_action: b[1] & SERVICE_ACTION_MASK,
            alloc_len: be16(b, 7),
        },
        opcode::PERSISTENT_RESERVE_OUT => Cdb::PersistentReserveOut {
            service_action: b[1] & SERVICE_ACTION_MASK,
            scope: b[2] >> 4,
            pr_type: b[2] & 0x0f,
            param_len: be32(b, 5),
        },
        opcode::RESERVE_6 => Cdb::Reserve { size: CdbSize::Six },
        opcode::RESERVE_10 => Cdb::Reserve { size: CdbSize::Ten },
        opcode::RELEASE_6 => Cdb::Release { size: CdbSize::Six },
        opcode::RELEASE_10 => Cdb::Release { size: CdbSize::Ten },
        opcode::EXTENDED_COPY => Cdb::ExtendedCopy {
            param_len: be32(b, 10),
        },
        opcode::RECEIVE_COPY_RESULTS => Cdb::ReceiveCopyResults {
            service_action: b[1] & SERVICE_ACTION_MASK,
            list_id: b[2],
            alloc_len: be32(b, 10),
        },
        opcode::SERVICE_ACTION_IN_16 => Cdb::GetLbaStatus {
            lba: be64(b, 2),
            alloc_len: be32(b, 10),
        },
        other => return Err(CdbError::UnsupportedOpcode(other)),
    };
    Ok(decoded)
}

#[cfg(test)]
#[path = "cdb_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "cdb_more_tests.rs"]
mod more_tests;
