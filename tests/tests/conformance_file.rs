//! libiscsi conformance (`iscsi-test-cu`, destructive tests included) against a lunard volume on
//! a sparse file: one test per suite, each with its own daemon, zero failures required.

use lunar_tests::conformance::{run_suite, DataLoss, SUITE_TIMEOUT};
use lunar_tests::{Backing, Export};

/// Size of the backing file (and of the volume, which covers all of it).
const BACKING_LEN_BYTES: u64 = 64 << 20;

fn check(suite: &str) {
    let tag = format!("file-{}", suite.to_lowercase().replace('.', "-"));
    let export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), &tag);
    let report = run_suite(&export.url(), suite, DataLoss::Allowed, SUITE_TIMEOUT);
    if let Some(message) = report.failure_message("conformance on a sparse file") {
        panic!("{}", export.failure(&message));
    }
}

lunar_tests::required_suite_tests!();
