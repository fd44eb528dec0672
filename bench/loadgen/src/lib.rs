//! lunar-load: a raw iSCSI initiator that drives a target harder than libiscsi's clients can:
//! many sessions, deep queues per session, several threads, and optional verification of every
//! read against the pattern last written.
//!
//! - [`args`]: the command line, LUN URLs and sizes.
//! - [`login`]: login negotiation on a blocking socket.
//! - [`pdu`] and [`scsi`]: the PDUs and CDBs it sends.
//! - [`session`]: one session in full feature phase (sans-IO): task slots, CmdSN window, R2T.
//! - [`setup`]: opening sessions before a run (login, unit attentions, capacity).
//! - [`workload`] and [`verify`]: what each session reads and writes, and the data check.
//! - [`engine`]: the per-thread epoll loop; [`run`]: a whole run; [`stats`]: counters, report.

#![forbid(unsafe_code)]

pub mod args;
pub mod engine;
pub mod login;
pub mod pdu;
pub mod run;
pub mod rxbuf;
pub mod scsi;
pub mod serial;
pub mod session;
pub mod setup;
pub mod stats;
pub mod verify;
pub mod workload;
