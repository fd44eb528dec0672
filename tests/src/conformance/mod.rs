//! Running libiscsi's `iscsi-test-cu` one suite at a time under a timeout, and judging the result:
//! zero failures, every test finished, skips counted apart from passes.
//!
//! - `parse`: the CUnit output, test by test.
//! - [`rig`]: the lunard every `ALL.*` suite runs against (read-only LUN, second portal) and
//!   which URLs each suite gets.
//! - [`summary`]: the per-suite table and totals of a whole run.

mod parse;
pub mod rig;
mod suite_tests;
pub mod summary;

pub use parse::{parse_test_cu_output, ParsedRun, RunSummary, TestOutcome, TestResult};

use std::process::Command;
use std::time::Duration;

use crate::process::{run_with_timeout, ToolOutput};

/// Default timeout for one suite.
pub const SUITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Suites never run: SANITIZE wipes the medium and needs `-S`.
pub const EXCLUDED_SUITES: &[&str] = &["ALL.Sanitize"];

/// The suites every lunard volume must pass with zero failures.
pub const REQUIRED_SUITES: &[&str] = &[
    "ALL.Read6",
    "ALL.Read10",
    "ALL.Read12",
    "ALL.Read16",
    "ALL.Write10",
    "ALL.Write12",
    "ALL.Write16",
    "ALL.ReadCapacity10",
    "ALL.ReadCapacity16",
    "ALL.Inquiry",
    "ALL.TestUnitReady",
    "ALL.Mandatory",
    "ALL.Verify10",
    "ALL.Verify16",
    "ALL.iSCSIResiduals",
    "ALL.iSCSIcmdsn",
];

/// Whether destructive (data-overwriting) tests may run: `-d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLoss {
    /// Pass `-d`.
    Allowed,
    /// Leave destructive tests out.
    Forbidden,
}

/// One suite's run: the tool's output and the tests parsed from it.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// The suite as passed to `--test`, e.g. `ALL.Read10`.
    pub suite: String,
    /// The URL tested.
    pub url: String,
    /// The raw run.
    pub tool: ToolOutput,
    /// The parsed tests.
    pub run: ParsedRun,
}

impl SuiteReport {
    /// How many tests have `outcome`.
    pub fn count(&self, outcome: TestOutcome) -> usize {
        self.run.count(outcome)
    }

    /// Everything wrong with this run, one entry each; empty when the suite passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tool.status.is_none() {
            problems.push(format!(
                "iscsi-test-cu did not start:\n{}",
                self.tool.output
            ));
            return problems;
        }
        if self.tool.timed_out {
            problems.push(format!(
                "timed out after {:.0}s",
                self.tool.elapsed.as_secs_f64()
            ));
        }
        for test in &self.run.tests {
            let what = match test.outcome {
                TestOutcome::Failed => "FAILED",
                TestOutcome::Unfinished => "did not finish",
                TestOutcome::Passed | TestOutcome::Skipped => continue,
            };
            problems.push(format!(
                "{}.{} {what}:\n{}",
                test.suite,
                test.name,
                test.lines.join("\n")
            ));
        }
        if self.run.tests.is_empty() {
            problems.push(
                "no test ran (unknown suite name, or the login to the target failed)".to_string(),
            );
        }
        match self.run.summary {
            None if !self.tool.timed_out => {
                problems.push("no CUnit run summary (did iscsi-test-cu crash?)".to_string())
            }
            Some(summary) if summary.failed as usize != self.count(TestOutcome::Failed) => problems
                .push(format!(
                    "CUnit summary counts {} failed tests, the per-test output {}",
                    summary.failed,
                    self.count(TestOutcome::Failed)
                )),
            _ => {}
        }
        if problems.is_empty() && !self.tool.success() {
            problems.push("iscsi-test-cu exited with an error".to_string());
        }
        problems
    }

    /// `pass / fail / skipped` in one line.
    pub fn tally(&self) -> String {
        format!(
            "{}: {} passed, {} failed, {} skipped, {} unfinished",
            self.suite,
            self.count(TestOutcome::Passed),
            self.count(TestOutcome::Failed),
            self.count(TestOutcome::Skipped),
            self.count(TestOutcome::Unfinished)
        )
    }

    /// `None` if the suite passed; otherwise the failing tests, then the whole output.
    pub fn failure_message(&self, context: &str) -> Option<String> {
        let problems = self.problems();
        if problems.is_empty() {
            return None;
        }
        Some(format!(
            "{context}: {} against {}\n{}\n\n=== problems ===\n{}\n\n=== full run ===\n{}",
            self.suite,
            self.url,
            self.tally(),
            problems.join("\n\n"),
            self.tool
        ))
    }

    /// Panics with the failing tests and the whole output unless the suite passed.
    pub fn assert_clean(&self, context: &str) {
        if let Some(message) = self.failure_message(context) {
            panic!("{message}");
        }
    }
}

/// Runs `iscsi-test-cu --test=<suite> <url>` (with `-d` if allowed) under `timeout`.
pub fn run_suite(url: &str, suite: &str, data_loss: DataLoss, timeout: Duration) -> SuiteReport {
    run_suite_on(&[url.to_string()], suite, data_loss, timeout)
}

/// Like [`run_suite`], with every URL on the command line: a second one is the second path of
/// `ALL.MultipathIO`. The report's `url` lists them all.
pub fn run_suite_on(
    urls: &[String],
    suite: &str,
    data_loss: DataLoss,
    timeout: Duration,
) -> SuiteReport {
    let mut cmd = Command::new("iscsi-test-cu");
    if data_loss == DataLoss::Allowed {
        cmd.arg("-d");
    }
    cmd.arg(format!("--test={suite}")).args(urls);
    let tool = run_with_timeout(cmd, timeout);
    let run = parse_test_cu_output(&tool.output);
    SuiteReport {
        suite: suite.to_string(),
        url: urls.join(" "),
        tool,
        run,
    }
}

/// Every suite `iscsi-test-cu -l` lists but the [`EXCLUDED_SUITES`].
pub fn suites_to_run() -> Result<Vec<String>, ToolOutput> {
    Ok(list_all_suites()?
        .into_iter()
        .filter(|suite| !EXCLUDED_SUITES.contains(&suite.as_str()))
        .collect())
}

/// The `ALL.<Suite>` names `iscsi-test-cu -l` lists, in its order.
pub fn list_all_suites() -> Result<Vec<String>, ToolOutput> {
    let mut cmd = Command::new("iscsi-test-cu");
    cmd.arg("-l");
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    if !out.success() {
        return Err(out);
    }
    Ok(parse_suite_list(&out.output))
}

/// Picks `ALL.<Suite>` lines (two components) out of `iscsi-test-cu -l` output.
pub fn parse_suite_list(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(str::trim)
        .filter(|line| {
            let mut parts = line.split('.');
            parts.next() == Some("ALL")
                && parts.next().is_some_and(|name| !name.is_empty())
                && parts.next().is_none()
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(output: &str, exit_code: i32, timed_out: bool) -> SuiteReport {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("exit {exit_code}"))
            .status()
            .expect("run sh");
        SuiteReport {
            suite: "ALL.Read10".to_string(),
            url: "iscsi://127.0.0.1:1/iqn.x/0".to_string(),
            tool: ToolOutput {
                command: "iscsi-test-cu".to_string(),
                status: Some(status),
                timed_out,
                output: output.to_string(),
                elapsed: Duration::from_secs(1),
            },
            run: parse_test_cu_output(output),
        }
    }

    const SUMMARY_OK: &str = "Run Summary:    Type  Total    Ran Passed Failed Inactive\n               tests      2      2      2      0        0\n";

    #[test]
    fn a_clean_run_has_no_problems() {
        let text = format!("Suite: Read10\n  Test: Simple ...passed\n  Test: Unmap ...    [SKIPPED] no\npassed\n{SUMMARY_OK}");
        let report = report(&text, 0, false);
        assert!(report.problems().is_empty(), "{:?}", report.problems());
        assert_eq!(report.count(TestOutcome::Skipped), 1);
        assert_eq!(report.count(TestOutcome::Passed), 1);
        report.assert_clean("clean run");
    }

    #[test]
    fn a_failure_is_named_in_the_problems() {
        let text = "Suite: Read10\n  Test: BeyondEol ...    [FAILED] bad\nFAILED\n    1. x.c:2  - CU_ASSERT\nRun Summary:    Type  Total    Ran Passed Failed Inactive\n               tests      1      1      0      1        0\n";
        let problems = report(text, 1, false).problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("Read10.BeyondEol FAILED"));
        assert!(problems[0].contains("x.c:2"));
    }

    #[test]
    fn nothing_ran_is_a_problem() {
        let problems = report("Failed to login to target\n", 1, false).problems();
        assert!(
            problems.iter().any(|p| p.contains("no test ran")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_timeout_is_a_problem_and_names_the_stuck_test() {
        let problems = report(
            "Suite: Read10\n  Test: Simple ...passed\n  Test: Async ...\n",
            -9,
            true,
        )
        .problems();
        assert!(
            problems.iter().any(|p| p.contains("timed out")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("Read10.Async did not finish")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_non_zero_exit_without_a_visible_failure_is_a_problem() {
        let text = format!(
            "Suite: Read10\n  Test: Simple ...passed\n  Test: Other ...passed\n{SUMMARY_OK}"
        );
        let problems = report(&text, 2, false).problems();
        assert!(
            problems.iter().any(|p| p.contains("exited with an error")),
            "{problems:?}"
        );
    }

    #[test]
    #[should_panic(expected = "Read10.BeyondEol FAILED")]
    fn assert_clean_panics_with_the_failing_test() {
        let text = "Suite: Read10\n  Test: BeyondEol ...FAILED\nRun Summary:    Type  Total    Ran Passed Failed Inactive\n               tests      1      1      0      1        0\n";
        report(text, 1, false).assert_clean("failing run");
    }

    #[test]
    fn lists_only_suites() {
        let listing = "ALL\nALL.Read10\nALL.Read10.Simple\nSCSI.Read10\nALL.iSCSIcmdsn\n";
        assert_eq!(
            parse_suite_list(listing),
            vec!["ALL.Read10", "ALL.iSCSIcmdsn"]
        );
    }
}
