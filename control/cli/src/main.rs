//! `lunarctl`: a command-line client for lunard's JSON-RPC socket. Readable subcommands with
//! tables (or `--json`), and `call METHOD JSON` for any method. Errors are one line on stderr
//! and a non-zero exit.

mod access;
mod args;
mod commands;
mod size;
mod table;
mod tasks;
mod volumes;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use lunar_api::Client;

use crate::args::{Cli, SOCKET_ENV};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lunarctl: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let mut call = commands::call_for(&cli.command)?;
    if call.params_from_stdin {
        call.params = commands::params_from(std::io::stdin().lock())?;
    }
    let socket = cli.socket_path(std::env::var_os(SOCKET_ENV));
    let mut client = Client::connect(&socket).map_err(|e| e.to_string())?;
    let result = client
        .call(&call.method, call.params)
        .map_err(|e| e.to_string())?;
    let text = commands::show(&cli.command, &result, cli.json)?;
    let mut out = std::io::stdout().lock();
    // A closed pipe (`lunarctl ... | head`) is not an error worth reporting.
    let _ = writeln!(out, "{}", text.trim_end_matches('\n'));
    let _ = out.flush();
    if let Some(id) = tasks::followed_task(&cli.command, &result) {
        tasks::follow(&mut client, id, &mut out)?;
    }
    Ok(())
}
