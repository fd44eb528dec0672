//! Fuzz target: a whole iSCSI connection state machine fed arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lunar_fuzz::entry_points::connection(data);
});
