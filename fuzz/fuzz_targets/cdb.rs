//! Fuzz target: the SCSI CDB decoder, and the sense data its refusals produce.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lunar_fuzz::entry_points::cdb(data);
});
