//! `lunard`: parses the command line, blocks the termination signals before any thread
//! starts, sets up logging to stderr, and runs the daemon. Fatal errors are one line on stderr
//! and a non-zero exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use lunar_daemon::args::Args;
use lunar_daemon::daemon;
use lunar_daemon::signals::Signals;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = Args::parse();
    let signals = match Signals::block() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("lunard: cannot block termination signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filter = match EnvFilter::try_new(&args.log_level) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("lunard: invalid --log-level '{}': {e}", args.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("lunard: internal error: {info}");
        }));
    }
    raise_open_files_limit();
    match daemon::run(&args, signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lunard: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every connection and backing file is a descriptor, and each reactor serves up to 1,024
/// connections: raise the soft RLIMIT_NOFILE to the hard limit (the usual soft default of 1,024
/// would cap lunard below that). A failure only means running with the lower limit.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!("cannot raise the open files limit from {soft} to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open files limit: {e}"),
    }
}
