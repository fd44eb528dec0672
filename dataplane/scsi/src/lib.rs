//! lunar-scsi: the SCSI block device model (SPC-4 / SBC-3) for one logical unit.
//!
//! Given a CDB and what the transport knows (expected transfer length, data-out bytes), it
//! either answers at once (INQUIRY, MODE SENSE, READ CAPACITY, errors with sense, ...), turns
//! the command into a [`BlockIo`] for the volume layer, or — for commands that change state
//! every I_T nexus shares (reservations, a removable medium) — into a [`ControlRequest`] the
//! control thread applies with [`pr::apply_control`]. It performs no I/O and knows nothing of
//! iSCSI: the reactor passes it CDBs and passes its answers to the transport.
//!
//! Modules: [`model`] (the contract: types, [`decide`], reply helpers), `dispatch` (the order
//! in which a command is judged), `block` (READ/WRITE/VERIFY/SYNCHRONIZE CACHE),
//! `provisioning` (WRITE SAME, UNMAP, GET LBA STATUS), `compare` (COMPARE AND WRITE,
//! ORWRITE, WRITE ATOMIC), `copy` (EXTENDED COPY, RECEIVE COPY RESULTS), `inquiry` (standard
//! data and VPD pages), `mode` (MODE SENSE), `service` (REQUEST SENSE, READ CAPACITY, REPORT
//! LUNS, ...), `opcodes` (REPORT SUPPORTED OPERATION CODES), [`pr`] (reservations, the
//! removable medium and other state all nexuses share: the state machine the control thread
//! applies), [`nexus`] (I_T nexus identity) and [`unit_attention`].

mod block;
mod compare;
mod copy;
mod dispatch;
mod inquiry;
mod mode;
pub mod model;
pub mod nexus;
mod opcodes;
pub mod pr;
mod provisioning;
mod reply;
mod service;
pub mod unit_attention;

#[cfg(test)]
mod test_support;

pub use inquiry::{NAA_COMPANY_ID, PRODUCT_ID, VENDOR_ID};
pub use model::{
    copy_segments, decide, good_reply, io_error_reply, lba_status_reply, miscompare_reply,
    unmap_ranges, BlockIo, BlockOp, ControlKind, ControlRequest, Decision, LbaExtent, LogicalUnit,
    NexusState, ProvisioningStatus, ScsiReply,
};
pub use nexus::NexusId;
pub use pr::ReservationState;
pub use unit_attention::UnitAttention;
