//! `lunar-load`: parses the command line, runs the load, prints the report. Exit status 0 for a
//! clean run, 1 when any command failed or any read did not match, 2 for a run that could not
//! start.

use std::process::ExitCode;

use clap::Parser;
use lunar_load::args::Args;
use lunar_load::run::run;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("lunar-load: cannot encode the report: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                println!("{}", report.text());
            }
            if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lunar-load: {e}");
            ExitCode::from(2)
        }
    }
}
