//! lunar-iscsi: the sans-IO iSCSI target state machine (RFC 7143, ERL 0).
//!
//! It owns everything between received bytes and SCSI commands: PDU framing (through
//! `lunar_wire::iscsi`), login and operational-parameter negotiation, discovery (SendTargets),
//! the full-feature phase (SCSI Command, immediate/unsolicited data, R2T/Data-Out, Data-In,
//! SCSI Response with sense and residuals, NOP-Out/NOP-In, Logout, Reject), CmdSN windowing and
//! the keep-alive timer. It performs no I/O and reads no clock: the reactor feeds it bytes,
//! command completions and the current time, and drains the bytes it wants sent.
//!
//! The reactor-facing contract is the [`Connection`] type and the [`Action`]s it emits.

pub mod connection;

pub use connection::{
    Action, CloseReason, CommandResult, ConnConfig, Connection, ScsiCommand, SessionKind,
    TargetCatalog, TaskId,
};
