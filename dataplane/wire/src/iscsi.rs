//! iSCSI PDU codec (RFC 7143): basic header segments, framing, text key=value pairs.
//!
//! - [`header`]: opcodes, flag bits, the generic 48-byte BHS view and the 24-bit length field.
//! - [`initiator`]: headers of the PDUs an initiator sends, parsed in place from the receive
//!   buffer.
//! - [`target`]: headers of the PDUs a target sends, with constructors.
//! - [`framer`]: turns accumulated bytes into whole PDUs, checking the negotiated limits on the
//!   data segment before anything is buffered.
//! - [`encode`]: appends a target PDU (header, data segment, padding, digests) to a send
//!   buffer.
//! - [`digest`]: CRC32C header and data digests.
//! - [`ahs`]: additional header segments (extended CDB, bidirectional read length).
//! - [`text`]: the key=value text format of Login and Text PDUs.
//! - [`lun`]: the SAM LUN field (peripheral and flat addressing).
//! - [`codes`]: login status, reject reasons, task management functions and responses.

pub mod ahs;
pub mod codes;
pub mod digest;
pub mod encode;
pub mod framer;
pub mod header;
pub mod initiator;
pub mod lun;
pub mod target;
pub mod text;

pub use digest::DigestError;
pub use encode::{push_pdu, push_pdu_digested, EncodeError};
pub use framer::{next_frame, DigestKind, Frame, FrameError, FrameLimits, FrameStatus};
pub use header::{Bhs, Opcode, Pdu, BHS_LEN_BYTES, RESERVED_TAG, U24};
