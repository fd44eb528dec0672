//! liblunar: lunar's C library (header `include/lunar.h`).
//!
//! Two services, each behind a small C ABI:
//! - [`rpc`]: a control client that sends one JSON-RPC 2.0 request to `lunard` over its unix
//!   socket and hands back the result or the error as JSON/text;
//! - [`map`]: host-side map resolution: given a volume layout in the JSON schema of the RPC's
//!   `layout` field, turn a virtual byte range into physical extents — the virtualization
//!   layer that can run on the host.
//!
//! Every exported function returns a status code ([`status`]); none lets a panic cross the
//! boundary. Strings handed to C are freed with [`strings::lunar_string_free`]. `unsafe` lives
//! only in the exported functions, where C pointers are read and written.

pub mod layout_json;
pub mod map;
pub mod rpc;
pub mod status;
pub mod strings;

pub use layout_json::{parse_layout, ParsedLayout};
pub use map::LunarMap;
pub use status::*;
