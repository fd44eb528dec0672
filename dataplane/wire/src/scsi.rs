//! SCSI codec (SPC-4 / SBC-3): operation codes, status codes, sense keys and additional sense
//! codes, the CDB decoder (bytes → typed [`Cdb`], with reserved-bit, control-byte and field
//! validation), the sense-data builder (fixed format 70h, descriptor format 72h) and LUN field
//! encoding (SAM-5 single-level addressing).
//!
//! Everything here is pure: no I/O, no allocation on the decode path, no panics on any input.
//! Which commands a device server *supports*, and what it answers, is the device model's job
//! (`lunar-scsi`); this module only knows how the bytes are laid out.

pub mod cdb;
mod cdb_types;
pub mod command_table;
pub mod constants;
pub mod lun;
pub mod sense;

pub use cdb::{
    decode, Cdb, CdbError, CdbSize, CompareAndWriteCdb, PageControl, ReadWrite, VerifyCdb,
    WriteSameCdb, CDB_MAX_LEN_BYTES,
};
pub use command_table::{command_info, CommandInfo, COMMANDS, CONTROL_BYTE_USAGE};
pub use constants::{opcode, service_action, status, Asc, SenseKey};
pub use lun::{decode_lun, encode_lun};
pub use sense::{FieldPointer, Sense, SenseBuf, SenseFormat, SenseParseError, SENSE_BUF_MAX_BYTES};
