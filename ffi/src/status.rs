//! Status codes returned by every exported function, and the guard that keeps panics from
//! crossing the C boundary.

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Success.
pub const LUNAR_OK: c_int = 0;
/// A required pointer was NULL, a string was not UTF-8, or `params_json` was not JSON.
pub const LUNAR_ERR_INVALID_ARGUMENT: c_int = -1;
/// The daemon's socket could not be reached.
pub const LUNAR_ERR_CONNECT: c_int = -2;
/// Reading from or writing to the daemon failed after connecting.
pub const LUNAR_ERR_IO: c_int = -3;
/// The daemon's answer was not a JSON-RPC 2.0 response to our request.
pub const LUNAR_ERR_PROTOCOL: c_int = -4;
/// The daemon answered with a JSON-RPC error.
pub const LUNAR_ERR_RPC: c_int = -5;
/// The layout JSON is malformed or does not describe a usable volume.
pub const LUNAR_ERR_LAYOUT: c_int = -6;
/// The range is not inside the volume.
pub const LUNAR_ERR_OUT_OF_RANGE: c_int = -7;
/// More extents than the caller's array holds; `*count` says how many are needed.
pub const LUNAR_ERR_BUFFER_TOO_SMALL: c_int = -8;
/// A defect inside the library (a caught panic). Nothing was written.
pub const LUNAR_ERR_INTERNAL: c_int = -9;

/// Run `body`, turning a panic into `on_panic` so that it never unwinds into C.
pub(crate) fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_returns_the_body_value_or_the_panic_value() {
        assert_eq!(guard(LUNAR_ERR_INTERNAL, || LUNAR_OK), LUNAR_OK);
        let caught = guard(LUNAR_ERR_INTERNAL, || -> c_int { panic!("defect") });
        assert_eq!(caught, LUNAR_ERR_INTERNAL);
    }
}
