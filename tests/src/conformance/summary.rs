//! The report of a whole conformance run: one table row per suite (passed, failed, skipped,
//! unfinished, time), the totals, and the problems of the suites that had any.

use std::fmt::Write as _;

use super::{SuiteReport, TestOutcome};

/// Tests counted over a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Passed without skipping themselves: the real passes.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Passed according to CUnit but logged `[SKIPPED]`.
    pub skipped: usize,
    /// Never reached a verdict.
    pub unfinished: usize,
    /// Suites whose run had a problem (a failure, a timeout, no test run...).
    pub suites_with_problems: usize,
    /// Suites run.
    pub suites: usize,
}

impl Totals {
    /// The totals of `reports`.
    pub fn of(reports: &[SuiteReport]) -> Totals {
        let sum = |outcome| reports.iter().map(|r| r.count(outcome)).sum();
        Totals {
            passed: sum(TestOutcome::Passed),
            failed: sum(TestOutcome::Failed),
            skipped: sum(TestOutcome::Skipped),
            unfinished: sum(TestOutcome::Unfinished),
            suites_with_problems: reports.iter().filter(|r| !r.problems().is_empty()).count(),
            suites: reports.len(),
        }
    }

    /// Tests run.
    pub fn tests(&self) -> usize {
        self.passed + self.failed + self.skipped + self.unfinished
    }
}

/// The table header.
pub fn table_header() -> String {
    format!(
        "{:<32} {:>6} {:>6} {:>6} {:>10} {:>8}",
        "suite", "pass", "fail", "skip", "unfinished", "time"
    )
}

/// One table row.
pub fn table_row(report: &SuiteReport) -> String {
    format!(
        "{:<32} {:>6} {:>6} {:>6} {:>10} {:>7.1}s{}",
        report.suite,
        report.count(TestOutcome::Passed),
        report.count(TestOutcome::Failed),
        report.count(TestOutcome::Skipped),
        report.count(TestOutcome::Unfinished),
        report.tool.elapsed.as_secs_f64(),
        if report.problems().is_empty() {
            ""
        } else {
            "  <-- PROBLEM"
        }
    )
}

/// The totals line.
pub fn totals_line(totals: &Totals) -> String {
    format!(
        "totals: {} passed, {} failed, {} skipped, {} unfinished ({} tests); {} of {} suites \
         with problems",
        totals.passed,
        totals.failed,
        totals.skipped,
        totals.unfinished,
        totals.tests(),
        totals.suites_with_problems,
        totals.suites
    )
}

/// Header, rows and totals.
pub fn table(reports: &[SuiteReport]) -> String {
    let mut out = table_header();
    out.push('\n');
    for report in reports {
        out.push_str(&table_row(report));
        out.push('\n');
    }
    out.push_str(&totals_line(&Totals::of(reports)));
    out.push('\n');
    out
}

/// The problems of every suite that had any, under a `== suite ==` heading each; with
/// `verbose`, the suite's whole output too. Empty when every suite passed.
pub fn problem_details(reports: &[SuiteReport], verbose: bool) -> String {
    let mut out = String::new();
    for report in reports {
        let problems = report.problems();
        if problems.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n== {} ({}) ==", report.suite, report.url);
        for problem in &problems {
            let _ = writeln!(out, "{problem}");
        }
        if verbose {
            let _ = writeln!(out, "{}", report.tool);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::parse_test_cu_output;
    use crate::process::ToolOutput;
    use std::time::Duration;

    fn report(suite: &str, output: &str) -> SuiteReport {
        let status = std::process::Command::new("true")
            .status()
            .expect("run true");
        SuiteReport {
            suite: suite.to_string(),
            url: "iscsi://127.0.0.1:1/iqn.x/0".to_string(),
            tool: ToolOutput {
                command: "iscsi-test-cu".to_string(),
                status: Some(status),
                timed_out: false,
                output: output.to_string(),
                elapsed: Duration::from_millis(1500),
            },
            run: parse_test_cu_output(output),
        }
    }

    const SUMMARY: &str = "Run Summary:    Type  Total    Ran Passed Failed Inactive\n               tests      3      3      2      1        0\n";

    #[test]
    fn totals_and_table_count_skips_apart() {
        let clean = report(
            "ALL.Read10",
            &format!(
                "Suite: Read10\n  Test: A ...passed\n  Test: B ...    [SKIPPED] no\npassed\n{}",
                SUMMARY.replace("      2      1", "      2      0")
            ),
        );
        let failing = report(
            "ALL.Write10",
            &format!("Suite: Write10\n  Test: C ...passed\n  Test: D ...FAILED\n  Test: E ...passed\n{SUMMARY}"),
        );
        let reports = vec![clean, failing];
        let totals = Totals::of(&reports);
        assert_eq!(
            totals,
            Totals {
                passed: 3,
                failed: 1,
                skipped: 1,
                unfinished: 0,
                suites_with_problems: 1,
                suites: 2
            }
        );
        assert_eq!(totals.tests(), 5);
        let table = table(&reports);
        assert!(table.contains("ALL.Read10"));
        let write_row = table
            .lines()
            .find(|l| l.starts_with("ALL.Write10"))
            .expect("row");
        assert!(write_row.ends_with("<-- PROBLEM"), "{write_row}");
        assert!(table.contains("totals: 3 passed, 1 failed, 1 skipped, 0 unfinished (5 tests)"));
        let details = problem_details(&reports, false);
        assert!(details.contains("== ALL.Write10"));
        assert!(details.contains("Write10.D FAILED"));
        assert!(!details.contains("== ALL.Read10"));
    }
}
