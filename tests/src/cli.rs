//! Running `lunarctl` against a daemon's socket, under a timeout.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::paths::lunarctl_bin;
use crate::process::{run_with_timeout, ToolOutput};

/// How long one lunarctl invocation may take.
pub const LUNARCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// `lunarctl --socket <socket> <args...>`.
pub fn lunarctl(socket: &Path, args: &[&str]) -> ToolOutput {
    let mut cmd = Command::new(lunarctl_bin());
    cmd.arg("--socket").arg(socket).args(args);
    run_with_timeout(cmd, LUNARCTL_TIMEOUT)
}

/// `lunarctl --socket <socket> call <method> <params>`.
pub fn lunarctl_call(socket: &Path, method: &str, params: &str) -> ToolOutput {
    lunarctl(socket, &["call", method, params])
}

/// The non-empty lines of a command's output.
pub fn non_empty_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_non_empty_lines() {
        assert_eq!(non_empty_lines("error: nope\n"), vec!["error: nope"]);
        assert_eq!(non_empty_lines("\n a \n\n b\n").len(), 2);
        assert!(non_empty_lines("").is_empty());
    }
}
