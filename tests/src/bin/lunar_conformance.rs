//! `lunar-conformance`: runs every `iscsi-test-cu` ALL.* suite (but Sanitize) one at a time under
//! a timeout and prints a per-suite table of passed / failed / skipped tests with totals. Exits
//! non-zero if any suite had a problem.
//!
//! Without a URL it starts its own lunard (see `lunar_tests::conformance::rig`): a writable
//! 1 GiB volume for every suite, destructive tests included, a read-only LUN for
//! `ALL.ReadOnly`, and a second portal for `ALL.MultipathIO` when lunard has `portal_add`.
//! With a URL, destructive tests run only with `--dataloss`, and `--readonly-url` /
//! `--multipath-url` name the read-only LUN and the second path.
//!
//! Usage: `lunar-conformance [--timeout SECS] [--dataloss] [--suite ALL.Name]... [--verbose]
//! [--readonly-url URL] [--multipath-url URL] [URL]`

use std::process::ExitCode;
use std::time::Duration;

use lunar_tests::conformance::rig::{ConformanceRig, Targets};
use lunar_tests::conformance::summary::{
    problem_details, table_header, table_row, totals_line, Totals,
};
use lunar_tests::conformance::{run_suite_on, suites_to_run, DataLoss, SUITE_TIMEOUT};

struct Options {
    url: Option<String>,
    read_only_url: Option<String>,
    multipath_url: Option<String>,
    timeout: Duration,
    data_loss: bool,
    suites: Vec<String>,
    verbose: bool,
}

fn usage() -> String {
    "usage: lunar-conformance [--timeout SECS] [--dataloss] [--suite ALL.Name]... [--verbose] \
     [--readonly-url URL] [--multipath-url URL] [URL]"
        .to_string()
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        url: None,
        read_only_url: None,
        multipath_url: None,
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
            "--readonly-url" => options.read_only_url = Some(args.next().ok_or_else(usage)?),
            "--multipath-url" => options.multipath_url = Some(args.next().ok_or_else(usage)?),
            "--verbose" | "-v" => options.verbose = true,
            "--help" | "-h" => return Err(usage()),
            url if url.starts_with("iscsi://") && options.url.is_none() => {
                options.url = Some(url.to_string())
            }
            other => return Err(format!("unexpected argument {other:?}\n{}", usage())),
        }
    }
    if options.url.is_none() && (options.read_only_url.is_some() || options.multipath_url.is_some())
    {
        return Err(format!(
            "--readonly-url and --multipath-url go with a URL\n{}",
            usage()
        ));
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
        match suites_to_run() {
            Ok(all) => all,
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

    // Keep our own lunard (if any) alive for the whole run.
    let (targets, data_loss, mut rig) = match &options.url {
        Some(url) => (
            Targets {
                url: url.clone(),
                read_only_url: options.read_only_url.clone(),
                multipath_url: options.multipath_url.clone(),
                removable_url: None,
            },
            if options.data_loss {
                DataLoss::Allowed
            } else {
                DataLoss::Forbidden
            },
            None,
        ),
        None => match ConformanceRig::start() {
            Ok(rig) => (rig.targets.clone(), DataLoss::Allowed, Some(rig)),
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
        },
    };
    println!(
        "iscsi-test-cu against {} ({}), {:.0}s per suite",
        targets.url,
        if data_loss == DataLoss::Allowed {
            "destructive tests included"
        } else {
            "no destructive tests"
        },
        options.timeout.as_secs_f64()
    );
    for note in targets.notes() {
        println!("  {note}");
    }
    if let Some(why) = rig.as_ref().and_then(|rig| rig.multipath_note.as_ref()) {
        println!("  ({why})");
    }
    println!("{}", table_header());

    let mut reports = Vec::new();
    for suite in &suites {
        let report = run_suite_on(&targets.urls_for(suite), suite, data_loss, options.timeout);
        println!("{}", table_row(&report));
        reports.push(report);
    }
    if let Some(rig) = rig.as_mut() {
        rig.daemon.stop();
    }
    print!("{}", problem_details(&reports, options.verbose));
    let totals = Totals::of(&reports);
    println!("{}", totals_line(&totals));
    if totals.suites_with_problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
