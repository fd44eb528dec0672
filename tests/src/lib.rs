//! lunar-tests: the system test harness. It runs the real `lunard` and `lunarctl` binaries and
//! real clients (libiscsi's tools, and a small iSCSI initiator of its own for data tests)
//! against volumes on sparse files and loop devices.
//!
//! - [`paths`]: where the built binaries are (`LUNARD_BIN` / `LUNARCTL_BIN` override).
//! - [`daemon`]: start lunard, wait for its ready line, stop it or `kill -9` it; its stderr ends
//!   every failure message.
//! - [`rpc`]: JSON-RPC 2.0 over the unix socket.
//! - [`cli`]: lunarctl runs.
//! - [`backing`]: sparse files and loop devices (root, or `LUNAR_SKIP_LOOP=1`).
//! - [`fixture`]: one volume exported as LUN 0 of one target.
//! - [`process`]: external commands under a timeout.
//! - [`libiscsi`]: `iscsi-ls`, `iscsi-inq`, `iscsi-readcapacity16`.
//! - [`conformance`]: `iscsi-test-cu` per suite, parsed per test (skips counted apart).
//! - [`initiator`]: a minimal iSCSI initiator for writing and reading known data, and for
//!   sending PDUs one by one (broken and hostile initiators).
//! - [`churn`]: a client writing and checking a whole LUN in the background while the volume
//!   changes underneath, keeping what it wrote block by block and every command's latency.
//! - [`good_client`]: a well-behaved initiator verifying its data in the background.
//! - [`hostile`]: the frame of the hostile-client tests (memory budget, drop log lines).
//! - [`procfs`]: a process's memory and descriptors; the open-files limit.
//! - [`entry_points`]: the decoders' fuzz entry points, shared with `fuzz/` (cargo-fuzz).

pub mod backing;
pub mod churn;
pub mod cli;
pub mod conformance;
pub mod daemon;
pub mod entry_points;
pub mod fixture;
pub mod good_client;
pub mod hostile;
pub mod initiator;
pub mod libiscsi;
pub mod paths;
pub mod process;
pub mod procfs;
pub mod rpc;

pub use backing::Backing;
pub use daemon::Lunard;
pub use fixture::{Export, VolumeSpec};
