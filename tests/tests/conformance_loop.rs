//! libiscsi conformance (`iscsi-test-cu`, destructive tests included) against a lunard volume on
//! a loop device: one test per suite, each with its own daemon, zero failures required.

use lunar_tests::conformance::{run_suite, DataLoss, REQUIRED_SUITES, SUITE_TIMEOUT};
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

macro_rules! suites {
    ($($test:ident => $suite:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($suite);
            }
        )*

        #[test]
        fn every_required_suite_has_a_test() {
            assert_eq!(&[$($suite),*], REQUIRED_SUITES);
        }
    };
}

suites! {
    read6 => "ALL.Read6",
    read10 => "ALL.Read10",
    read12 => "ALL.Read12",
    read16 => "ALL.Read16",
    write10 => "ALL.Write10",
    write12 => "ALL.Write12",
    write16 => "ALL.Write16",
    read_capacity10 => "ALL.ReadCapacity10",
    read_capacity16 => "ALL.ReadCapacity16",
    inquiry => "ALL.Inquiry",
    test_unit_ready => "ALL.TestUnitReady",
    mandatory => "ALL.Mandatory",
    verify10 => "ALL.Verify10",
    verify16 => "ALL.Verify16",
    iscsi_residuals => "ALL.iSCSIResiduals",
    iscsi_cmdsn => "ALL.iSCSIcmdsn",
}
