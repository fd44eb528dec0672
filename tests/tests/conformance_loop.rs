//! libiscsi conformance (`iscsi-test-cu`, destructive tests included) against a lunard volume on
//! a loop device: one test per suite, each with its own daemon, zero failures required.

use lunar_tests::conformance::{run_suite, DataLoss, SUITE_TIMEOUT};
use lunar_tests::{Backing, Export};

/// Size of the loop device (and of the volume, which covers all of it).
const BACKING_LEN_BYTES: u64 = 64 << 20;

fn check(suite: &str) {
    let tag = format!("loop-{}", suite.to_lowercase().replace('.', "-"));
    // Not root and LUNAR_SKIP_LOOP=1: skipped (and said so); not root otherwise: a clear failure.
    let Some(backing) = Backing::loop_device(BACKING_LEN_BYTES) else {
        return;
    };
    let export = Export::whole(backing, &tag);
    let report = run_suite(&export.url(), suite, DataLoss::Allowed, SUITE_TIMEOUT);
    if let Some(message) = report.failure_message("conformance on a loop device") {
        panic!("{}", export.failure(&message));
    }
}

lunar_tests::required_suite_tests!();
