//! The whole libiscsi conformance run in the normal suite: every `iscsi-test-cu` ALL.* suite
//! but Sanitize, destructive tests included, against one lunard (see
//! `lunar_tests::conformance::rig`: `ALL.ReadOnly` on a read-only LUN, `ALL.MultipathIO` over
//! a second portal when lunard has `portal_add`). It prints the per-suite table past the
//! output capture and requires
//!
//! - zero failures, every test finished, no suite timed out;
//! - at least a floor of real passes (tests that passed without logging `[SKIPPED]`):
//!   [`REAL_PASSES_FLOOR`] (the count lunar reached; raise it as features land), or
//!   `LUNAR_CONFORMANCE_MIN_PASSES` when set (issue 4's goal: 200).

use std::io::Write;

use lunar_tests::conformance::rig::{ConformanceRig, MULTIPATH_SUITE, READ_ONLY_SUITE};
use lunar_tests::conformance::summary::{problem_details, table, Totals};
use lunar_tests::conformance::{
    run_suite_on, suites_to_run, DataLoss, EXCLUDED_SUITES, REQUIRED_SUITES, SUITE_TIMEOUT,
};

/// Real passes lunar has reached: a regression below it fails the test. Raise it when a
/// feature turns skips into passes (the test prints the count to use).
const REAL_PASSES_FLOOR: usize = 200;
/// Overrides the floor (e.g. `LUNAR_CONFORMANCE_MIN_PASSES=200`, the goal of issue 4).
const MIN_PASSES_ENV: &str = "LUNAR_CONFORMANCE_MIN_PASSES";
/// Fewer suites listed than this means the listing broke (libiscsi 1.19 lists 51).
const SUITES_LISTED_MIN: usize = 40;

fn min_passes() -> usize {
    match std::env::var(MIN_PASSES_ENV) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{MIN_PASSES_ENV}={value:?} is not a number of tests")),
        Err(_) => REAL_PASSES_FLOOR,
    }
}

/// Straight to stderr, past the test harness's output capture, so the table is always seen.
fn show(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[test]
fn every_suite_but_sanitize_passes() {
    let minimum = min_passes();
    let suites = suites_to_run().unwrap_or_else(|out| {
        panic!("cannot list the suites of iscsi-test-cu (is libiscsi-bin installed?)\n{out}")
    });
    assert!(
        suites.len() >= SUITES_LISTED_MIN
            && REQUIRED_SUITES
                .iter()
                .all(|s| suites.iter().any(|t| t == s))
            && [READ_ONLY_SUITE, MULTIPATH_SUITE]
                .iter()
                .all(|s| suites.iter().any(|t| t == s))
            && !suites.iter().any(|s| EXCLUDED_SUITES.contains(&s.as_str())),
        "unexpected suite list from iscsi-test-cu -l: {suites:?}"
    );

    let rig = ConformanceRig::start().unwrap_or_else(|message| panic!("{message}"));
    let reports: Vec<_> = suites
        .iter()
        .map(|suite| {
            run_suite_on(
                &rig.targets.urls_for(suite),
                suite,
                DataLoss::Allowed,
                SUITE_TIMEOUT,
            )
        })
        .collect();
    let totals = Totals::of(&reports);
    let mut notes = rig.targets.notes().join("\n");
    if let Some(why) = &rig.multipath_note {
        notes.push_str(&format!(" ({why})"));
    }
    show(&format!(
        "\n== libiscsi conformance against lunar ==\n{notes}\n{}real passes: {} (floor {minimum}), skipped: {}\n",
        table(&reports),
        totals.passed,
        totals.skipped
    ));

    let details = problem_details(&reports, true);
    assert!(
        details.is_empty(),
        "{}",
        rig.daemon.failure(&format!(
            "{} of {} suites had problems:\n{details}",
            totals.suites_with_problems, totals.suites
        ))
    );
    assert!(
        totals.passed >= minimum,
        "{} real passes, fewer than the {minimum} required ({MIN_PASSES_ENV} or \
         REAL_PASSES_FLOOR); {} tests skipped themselves",
        totals.passed,
        totals.skipped
    );
    if minimum < totals.passed {
        show(&format!(
            "note: {} real passes now; raise REAL_PASSES_FLOOR in {} to {} to keep them\n",
            totals.passed,
            file!(),
            totals.passed
        ));
    }
}
