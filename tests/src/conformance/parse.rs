//! Parser for `iscsi-test-cu` (CUnit) console output, test by test.
//!
//! CUnit prints `Suite: <name>`, then for each test `  Test: <name> ...` followed by whatever the
//! test logs and a verdict, `passed` or `FAILED` (on the same line when nothing was logged), then
//! a `Run Summary` table. A test that decides to skip itself logs `[SKIPPED] <why>` and is counted
//! by CUnit as passed: here it is counted as [`TestOutcome::Skipped`]. A test with no verdict
//! (the tool died or was killed mid-test) is [`TestOutcome::Unfinished`].

/// The verdict of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestOutcome {
    /// Passed.
    Passed,
    /// Failed (CUnit `FAILED`).
    Failed,
    /// Passed according to CUnit, but the test logged `[SKIPPED]`.
    Skipped,
    /// No verdict was printed.
    Unfinished,
}

/// One test and everything printed while it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The CUnit suite, e.g. `Read10`.
    pub suite: String,
    /// The test, e.g. `BeyondEol`.
    pub name: String,
    /// Its verdict.
    pub outcome: TestOutcome,
    /// Its lines of output, from `Test:` to the next test (assertion details included).
    pub lines: Vec<String>,
}

/// The `tests` row of CUnit's run summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Tests registered.
    pub total: u32,
    /// Tests run.
    pub ran: u32,
    /// Tests passed (skips included).
    pub passed: u32,
    /// Tests failed.
    pub failed: u32,
    /// Tests inactive.
    pub inactive: u32,
}

/// Everything parsed from one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedRun {
    /// The tests in the order they ran.
    pub tests: Vec<TestResult>,
    /// The summary row, if the run got that far.
    pub summary: Option<RunSummary>,
}

impl ParsedRun {
    /// How many tests have `outcome`.
    pub fn count(&self, outcome: TestOutcome) -> usize {
        self.tests
            .iter()
            .filter(|test| test.outcome == outcome)
            .count()
    }
}

const VERDICT_PASSED: &str = "passed";
const VERDICT_FAILED: &str = "FAILED";
const SKIP_MARK: &str = "[SKIPPED]";

struct Open {
    result: TestResult,
    skipped: bool,
    has_verdict: bool,
}

impl Open {
    /// Takes the verdict if `text` starts with one (`passed` or `FAILED` as the first word; log
    /// lines printed after the verdict can follow it on the same line).
    fn set_verdict(&mut self, text: &str) -> bool {
        let outcome = match text.split_whitespace().next().unwrap_or("") {
            VERDICT_PASSED if self.skipped => TestOutcome::Skipped,
            VERDICT_PASSED => TestOutcome::Passed,
            VERDICT_FAILED => TestOutcome::Failed,
            _ => return false,
        };
        self.result.outcome = outcome;
        self.has_verdict = true;
        true
    }
}

/// Parses `iscsi-test-cu` output. Never panics; unknown lines are attached to the current test.
pub fn parse_test_cu_output(text: &str) -> ParsedRun {
    let mut run = ParsedRun::default();
    let mut suite = String::new();
    let mut open: Option<Open> = None;
    let mut in_summary = false;

    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = line.strip_prefix("Suite: ") {
            close(&mut run, &mut open);
            suite = name.trim().to_string();
            in_summary = false;
            continue;
        }
        if line.starts_with("Run Summary:") {
            close(&mut run, &mut open);
            in_summary = true;
            continue;
        }
        if in_summary {
            if let Some(summary) = parse_summary_row(trimmed) {
                run.summary = Some(summary);
            }
            continue;
        }
        if line.starts_with(' ') {
            if let Some(rest) = trimmed.strip_prefix("Test: ") {
                close(&mut run, &mut open);
                let (name, tail) = rest.split_once(" ...").unwrap_or((rest, ""));
                let mut test = Open {
                    result: TestResult {
                        suite: suite.clone(),
                        name: name.trim().to_string(),
                        outcome: TestOutcome::Unfinished,
                        lines: vec![line.to_string()],
                    },
                    skipped: false,
                    has_verdict: false,
                };
                if !test.set_verdict(tail) {
                    test.skipped = tail.contains(SKIP_MARK);
                }
                open = Some(test);
                continue;
            }
        }
        if let Some(test) = open.as_mut() {
            test.result.lines.push(line.to_string());
            if !test.has_verdict && !test.set_verdict(trimmed) && trimmed.contains(SKIP_MARK) {
                test.skipped = true;
            }
        }
    }
    close(&mut run, &mut open);
    run
}

fn close(run: &mut ParsedRun, open: &mut Option<Open>) {
    if let Some(test) = open.take() {
        run.tests.push(test.result);
    }
}

/// `tests  <total> <ran> <passed> <failed> <inactive>`.
fn parse_summary_row(trimmed: &str) -> Option<RunSummary> {
    let mut fields = trimmed.split_whitespace();
    if fields.next()? != "tests" {
        return None;
    }
    let mut number = || fields.next()?.parse::<u32>().ok();
    Some(RunSummary {
        total: number()?,
        ran: number()?,
        passed: number()?,
        failed: number()?,
        inactive: number()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIXED: &str = r#"


     CUnit - A unit testing framework for C - Version 2.1-3
     http://cunit.sourceforge.net/


Suite: GetLBAStatus
  Test: Simple ...passed
  Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but should have failed with ILLEGAL_REQUEST(0x05)/LBA_OUT_OF_RANGE(0x2100)
FAILED
    1. test_get_lba_status_beyond_eol.c:38  - CU_ASSERT_EQUAL(_r,0)
  Test: UnmapSingle ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
passed
  Test: Twice ...    [SKIPPED] COMPAREANDWRITE is not implemented.
    [SKIPPED] COMPAREANDWRITE is not implemented.
passed
  Test: Logged ...
    Send READ10 LBA:0 blocks:1
passed
  Test: LateLog ...passed    [FAILED] PRIN command: failed with sense. SENSE KEY:UNIT_ATTENTION(6)

Run Summary:    Type  Total    Ran Passed Failed Inactive
              suites      1      1    n/a      0        0
               tests      6      6      5      1        0
             asserts    516    516    515      1      n/a

Elapsed time =    0.018 seconds
Tests completed with return value: 0
"#;

    fn outcome_of(run: &ParsedRun, name: &str) -> TestOutcome {
        run.tests
            .iter()
            .find(|test| test.name == name)
            .map(|test| test.outcome)
            .unwrap_or_else(|| panic!("test {name} not parsed: {run:?}"))
    }

    #[test]
    fn classifies_each_test() {
        let run = parse_test_cu_output(MIXED);
        assert_eq!(run.tests.len(), 6);
        assert_eq!(outcome_of(&run, "Simple"), TestOutcome::Passed);
        assert_eq!(outcome_of(&run, "BeyondEol"), TestOutcome::Failed);
        assert_eq!(outcome_of(&run, "UnmapSingle"), TestOutcome::Skipped);
        assert_eq!(outcome_of(&run, "Twice"), TestOutcome::Skipped);
        assert_eq!(outcome_of(&run, "Logged"), TestOutcome::Passed);
        // CUnit's verdict comes first; what the test logged after it does not change it.
        assert_eq!(outcome_of(&run, "LateLog"), TestOutcome::Passed);
        assert!(run.tests.iter().all(|test| test.suite == "GetLBAStatus"));
        assert_eq!(
            run.summary,
            Some(RunSummary {
                total: 6,
                ran: 6,
                passed: 5,
                failed: 1,
                inactive: 0
            })
        );
    }

    #[test]
    fn keeps_assertion_details_with_the_failed_test() {
        let run = parse_test_cu_output(MIXED);
        let failed = run
            .tests
            .iter()
            .find(|t| t.name == "BeyondEol")
            .expect("BeyondEol parsed");
        assert!(failed
            .lines
            .iter()
            .any(|l| l.contains("test_get_lba_status_beyond_eol.c:38")));
        assert!(failed.lines.iter().any(|l| l.contains("LBA_OUT_OF_RANGE")));
    }

    #[test]
    fn a_test_cut_short_is_unfinished() {
        let run = parse_test_cu_output(
            "Suite: Read10\n  Test: Simple ...passed\n  Test: BeyondEol ...\n",
        );
        assert_eq!(outcome_of(&run, "Simple"), TestOutcome::Passed);
        assert_eq!(outcome_of(&run, "BeyondEol"), TestOutcome::Unfinished);
        assert_eq!(run.summary, None);
    }

    #[test]
    fn output_without_tests_parses_to_nothing() {
        let run = parse_test_cu_output(
            "iscsi_connect failed. Connection refused\nFailed to login to target\n",
        );
        assert!(run.tests.is_empty());
        assert_eq!(run.summary, None);
    }

    fn render(suite: &str, tests: &[(String, TestOutcome)]) -> String {
        let mut text = format!("Suite: {suite}\n");
        for (name, outcome) in tests {
            match outcome {
                TestOutcome::Passed => text.push_str(&format!("  Test: {name} ...passed\n")),
                TestOutcome::Failed => text.push_str(&format!(
                    "  Test: {name} ...    [FAILED] it broke\nFAILED\n    1. t.c:1  - CU_ASSERT(0)\n"
                )),
                TestOutcome::Skipped => {
                    text.push_str(&format!("  Test: {name} ...    [SKIPPED] not supported\npassed\n"))
                }
                TestOutcome::Unfinished => text.push_str(&format!("  Test: {name} ...\n    log line\n")),
            }
        }
        text
    }

    fn outcome() -> impl Strategy<Value = TestOutcome> {
        prop_oneof![
            Just(TestOutcome::Passed),
            Just(TestOutcome::Failed),
            Just(TestOutcome::Skipped),
            Just(TestOutcome::Unfinished),
        ]
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "(.{0,60}\n){0,20}") {
            let _ = parse_test_cu_output(&text);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_test_cu_output(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn recovers_every_rendered_outcome(
            tests in proptest::collection::vec(("[A-Za-z][A-Za-z0-9_-]{0,20}", outcome()), 0..12)
        ) {
            let run = parse_test_cu_output(&render("Write10", &tests));
            let parsed: Vec<(String, TestOutcome)> =
                run.tests.iter().map(|t| (t.name.clone(), t.outcome)).collect();
            prop_assert_eq!(parsed, tests);
        }
    }
}
