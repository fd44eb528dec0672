//! lunar-wire: pure codecs for the protocols lunar speaks. No I/O, no unsafe, no state beyond
//! one frame: `iscsi` (PDU headers, framing, text keys) and `scsi` (CDB decoding, sense data);
//! `keyhash` hashes the integer keys (task tags, LUNs) of the maps that hold decoded state.
//! Decoders check negotiated maximums before reserving memory.

#![forbid(unsafe_code)]

pub mod iscsi;
pub mod keyhash;
pub mod scsi;
