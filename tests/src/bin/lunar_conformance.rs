//! `lunar-conformance`: runs every `iscsi-test-cu` ALL.* suite (but Sanitize) one at a time under
//! a timeout, against a URL or against a `lunard --demo` it starts itself, and prints a per-suite
//! table of passed / failed / skipped tests with totals. Exits non-zero if any suite had a problem.
//!
//! Usage: `lunar-conformance [--timeout SECS] [--dataloss] [--suite ALL.Name]... [--verbose] [URL]`
//! Without a URL, destructive tests (`-d`) run against the demo volume; with a URL they run only
//! with `--dataloss`.

use std::process::ExitCode;
use std::time::Duration;

use lunar_tests::conformance::{
    list_all_suites, run_suite, DataLoss, SuiteReport, TestOutcome, SUITE_TIMEOUT,
};
use lunar_tests::daemon::{DaemonOptions, Lunard};
use lunar_tests::fixture::state_dir;

/// The demo target `lunard --demo` exports.
const DEMO_IQN: &str = "iqn.2026-11.dev.lunar:demo";
/// Suites never run: SANITIZE wipes the medium and needs `-S`.
const EXCLUDED_SUITES: &[&str] = &["ALL.Sanitize"];

struct Options {
    url: Option<String>,
    timeout: Duration,
    data_loss: bool,
    suites: Vec<String>,
    verbose: bool,
}

fn usage() -> String {
    "usage: lunar-conformance [--timeout SECS] [--dataloss] [--suite ALL.Name]... [--verbose] [URL]"
        .to_string()
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        url: None,
        timeout: SUITE_TIMEOUT,
        data_loss: false,
        suites: Vec::new(),
        verbose: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--timeout" => {
                let secs = args.next().ok_or_else(usage)?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("--timeout: not a number: {secs}"))?;
                options.timeout = Duration::from_secs(secs);
            }
            "--dataloss" | "-d" => options.data_loss = true,
            "--suite" => options.suites.push(args.next().ok_or_else(usage)?),
            "--verbose" | "-v" => options.verbose = true,
            "--help" | "-h" => return Err(usage()),
            url if url.starts_with("iscsi://") && options.url.is_none() => {
                options.url = Some(url.to_string())
            }
            other => return Err(format!("unexpected argument {other:?}\n{}", usage())),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let suites = if options.suites.is_empty() {
        match list_all_suites() {
            Ok(all) => all
                .into_iter()
                .filter(|suite| !EXCLUDED_SUITES.contains(&suite.as_str()))
                .collect(),
            Err(out) => {
                eprintln!(
                    "cannot list the suites of iscsi-test-cu (is libiscsi-bin installed?)\n{out}"
                );
                return ExitCode::from(2);
            }
        }
    } else {
        options.suites.clone()
    };

    // Keep the demo daemon and its state directory alive for the whole run.
    let state = state_dir();
    let (url, data_loss, mut daemon) = match &options.url {
        Some(url) => (
            url.clone(),
            if options.data_loss {
                DataLoss::Allowed
            } else {
                DataLoss::Forbidden
            },
            None,
        ),
        None => {
            let demo = DaemonOptions {
                demo: true,
                ..DaemonOptions::default()
            };
            let daemon = match Lunard::try_start(state.path(), &demo) {
                Ok(daemon) => daemon,
                Err(message) => {
                    eprintln!("{message}");
                    return ExitCode::from(2);
                }
            };
            (daemon.url(DEMO_IQN, 0), DataLoss::Allowed, Some(daemon))
        }
    };
    println!(
        "iscsi-test-cu against {url} ({}), {:.0}s per suite",
        if data_loss == DataLoss::Allowed {
            "destructive tests included"
        } else {
            "no destructive tests"
        },
        options.timeout.as_secs_f64()
    );
    println!(
        "{:<32} {:>6} {:>6} {:>6} {:>10} {:>8}",
        "suite", "pass", "fail", "skip", "unfinished", "time"
    );

    let mut reports = Vec::new();
    for suite in &suites {
        let report = run_suite(&url, suite, data_loss, options.timeout);
        let problems = report.problems();
        println!(
            "{:<32} {:>6} {:>6} {:>6} {:>10} {:>7.1}s{}",
            suite,
            report.count(TestOutcome::Passed),
            report.count(TestOutcome::Failed),
            report.count(TestOutcome::Skipped),
            report.count(TestOutcome::Unfinished),
            report.tool.elapsed.as_secs_f64(),
            if problems.is_empty() {
                ""
            } else {
                "  <-- PROBLEM"
            }
        );
        reports.push(report);
    }
    if let Some(daemon) = daemon.as_mut() {
        daemon.stop();
    }
    print_details(&reports, options.verbose);
    let total = |outcome| {
        reports
            .iter()
            .map(|r: &SuiteReport| r.count(outcome))
            .sum::<usize>()
    };
    let bad_suites = reports.iter().filter(|r| !r.problems().is_empty()).count();
    println!(
        "totals: {} passed, {} failed, {} skipped, {} unfinished; {} of {} suites with problems",
        total(TestOutcome::Passed),
        total(TestOutcome::Failed),
        total(TestOutcome::Skipped),
        total(TestOutcome::Unfinished),
        bad_suites,
        reports.len()
    );
    if bad_suites == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_details(reports: &[SuiteReport], verbose: bool) {
    for report in reports {
        let problems = report.problems();
        if problems.is_empty() {
            continue;
        }
        println!("\n== {} ==", report.suite);
        for problem in &problems {
            println!("{problem}");
        }
        if verbose {
            println!("{}", report.tool);
        }
    }
}
