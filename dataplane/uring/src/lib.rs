//! lunar-uring: a small, safe shell over io_uring for the reactors.
//!
//! It owns the ring itself ([`Ring`]: push with backpressure, submit, wait with a timeout, reap),
//! the table of operations in flight ([`OpSlab`]: generational, never-zero `user_data`), the
//! registered, aligned I/O buffers ([`BufPool`]: fixed count, named bounds, no allocation after
//! start), the registered-file table ([`FileRef`], [`with_file!`]: sockets and devices named by
//! slot), and the provided buffers of socket receives ([`RecvBuffers`]). It knows no
//! protocol. The unsafe parts of io_uring (buffers that must outlive the operations using them)
//! are fenced here and in the reactor, each with its `// SAFETY:` reason.

pub mod buffers;
pub mod files;
pub mod recv_buffers;
pub mod ring;
pub mod slab;

pub use buffers::{BufClass, BufId, BufPool};
pub use files::FileRef;
/// For [`with_file!`] in crates that name io_uring's types differently.
#[doc(hidden)]
pub use io_uring::types as io_uring_types;
pub use recv_buffers::{RecvBuffers, RECV_BUFFER_GROUP};
pub use ring::{Completion, Ring, SqFull};
pub use slab::{OpSlab, UserData};
