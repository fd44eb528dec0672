//! lunar-iscsi: the sans-IO iSCSI target state machine (RFC 7143, ERL 0).
//!
//! It owns everything between received bytes and SCSI commands: PDU framing (through
//! `lunar_wire::iscsi`), login and operational-parameter negotiation, discovery (SendTargets),
//! the full-feature phase (SCSI Command, immediate/unsolicited data, R2T/Data-Out, Data-In,
//! SCSI Response with sense and residuals, NOP-Out/NOP-In, Logout, Reject), CmdSN windowing and
//! the keep-alive timer. It performs no I/O and reads no clock: the reactor feeds it bytes,
//! command completions and the current time, and drains the bytes it wants sent.
//!
//! The reactor-facing contract is the [`Connection`] type, the [`Action`]s it emits and the
//! [`TargetCatalog`] it consults.
//!
//! Modules: [`connection`] (contract), `catalog` (targets, CHAP credentials, access lists),
//! `cdb_bytes` (a command's CDB without a heap allocation), `data_out_buf` (write data in
//! aligned storage a device write can use as it is),
//! `intake` (framing, digests, ExpStatSN), `data_stream` (write data
//! taken as it arrives), `login` (login phase), `security` (AuthMethod),
//! `chap` and `md5` (CHAP), `entropy` (challenge randomness), `negotiate` (operational keys),
//! `params` (negotiated values), `ffp` (full feature phase dispatch, NOP, logout, reject),
//! `command` (SCSI commands, data-out, R2T), `completion` (Data-In, SCSI Response,
//! residuals), `text_exchange` and `discovery` (Text requests, SendTargets), `tmf` (task
//! management and resets), `seq` (StatSN and the CmdSN window), `tasks` (task table, buffers,
//! budgets), `keepalive` (timers), `sendq` (outgoing bytes).

pub mod connection;

mod catalog;
mod cdb_bytes;
mod chap;
mod command;
mod completion;
mod data_out_buf;
mod data_stream;
mod discovery;
mod entropy;
mod ffp;
mod intake;
mod keepalive;
mod login;
mod md5;
mod negotiate;
mod params;
mod security;
mod sendq;
mod seq;
mod tasks;
mod text_exchange;
mod tmf;

#[cfg(test)]
mod tests;

pub use catalog::{
    MAX_CHAP_SECRET_LEN_BYTES, MAX_CHAP_USERNAME_LEN_BYTES, MIN_CHAP_SECRET_LEN_BYTES,
};
pub use cdb_bytes::{CdbBytes, CDB_INLINE_LEN_BYTES};
pub use connection::{
    Action, BorrowedData, ChapConfig, ChapConfigError, CloseReason, CommandResult, ConnConfig,
    Connection, ResetFunction, ResetId, ResetOutcome, ResetScope, ScsiCommand, SessionIdentity,
    SessionKind, TargetCatalog, TaskId,
};
pub use data_out_buf::{DataOutBuf, DATA_OUT_ALIGN_BYTES};
pub use tasks::{MAX_COMMAND_DATA_OUT_BYTES, MAX_SOLICITED_DATA_OUT_BYTES};
