//! lunar-scsi: the SCSI block device model (SPC-4 / SBC-3) for one logical unit.
//!
//! Given a CDB and what the transport knows (expected transfer length, data-out bytes), it
//! either answers at once (INQUIRY, MODE SENSE, READ CAPACITY, errors with sense, ...) or turns
//! the command into a [`BlockIo`] for the volume layer. It performs no I/O and knows nothing of
//! iSCSI: the reactor passes it CDBs and passes its answers to the transport.

pub mod model;

pub use model::{
    BlockIo, BlockOp, Decision, LogicalUnit, NexusState, ScsiReply, decide, io_error_reply,
};
