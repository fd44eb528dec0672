//! Thin provisioning on the control path: how a thin node's segment table is kept in the state
//! file ([`table`]: only the segments with pool space, as runs), which pool slots are free,
//! held (with reference counts: snapshots and clones share slots) or waiting for in-flight
//! writes to drain before they are free again ([`ledger`]), and the device I/O the control
//! thread does for allocation, copy-on-write and deallocation ([`device_io`]).

pub mod device_io;
pub mod ledger;
pub mod table;

pub use ledger::{Ledgers, PoolLedger};
pub use table::ThinTable;
