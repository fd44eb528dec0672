//! The per-suite conformance tests shared by the sparse-file and loop-device test files.

/// Defines one `#[test]` per suite of [`REQUIRED_SUITES`](crate::conformance::REQUIRED_SUITES),
/// each calling `check(suite)` from the invoking module, and a test that the list is complete.
#[macro_export]
macro_rules! required_suite_tests {
    () => {
        $crate::required_suite_tests! {
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
    };
    ($($test:ident => $suite:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($suite);
            }
        )*

        #[test]
        fn every_required_suite_has_a_test() {
            assert_eq!(&[$($suite),*], $crate::conformance::REQUIRED_SUITES);
        }
    };
}
