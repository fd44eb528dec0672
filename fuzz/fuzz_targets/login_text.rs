//! Fuzz target: the login text parser, alone and through a connection's login phase.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lunar_fuzz::entry_points::login_text(data);
});
