//! Fuzz target: the iSCSI PDU framer on a byte stream, with typed header views and AHS parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lunar_fuzz::entry_points::framer(data);
});
