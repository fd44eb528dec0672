//! Command line of `lunard`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use lunar_reactor::PollMode;

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lunar";
/// Name of the RPC socket in the state directory.
pub const SOCKET_NAME: &str = "lunard.sock";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PollModeArg {
    /// Spin forever on dedicated cores.
    Busy,
    /// Spin briefly, then sleep until work arrives.
    Adaptive,
}

impl PollModeArg {
    pub fn mode(self) -> PollMode {
        match self {
            PollModeArg::Busy => PollMode::Busy,
            PollModeArg::Adaptive => PollMode::Adaptive,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PollModeArg::Busy => "busy",
            PollModeArg::Adaptive => "adaptive",
        }
    }
}

/// lunard: userspace iSCSI target serving virtual volumes built from block devices and files.
#[derive(Debug, Clone, Parser)]
#[command(name = "lunard", version)]
pub struct Args {
    /// Number of reactors, pinned to CPUs 0..N-1 [default: number of CPUs minus one, at least 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub cores: Option<u16>,

    /// How reactors wait for work.
    #[arg(long, value_enum, default_value = "adaptive")]
    pub poll_mode: PollModeArg,

    /// iSCSI portal address.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:3260")]
    pub listen: SocketAddr,

    /// Directory holding the persistent configuration.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,

    /// JSON-RPC socket [default: <state-dir>/lunard.sock]
    #[arg(long, value_name = "PATH")]
    pub rpc_socket: Option<PathBuf>,

    /// Create a 1 GiB demo volume and target on first start.
    #[arg(long)]
    pub demo: bool,

    /// Log filter: error, warn, info, debug, trace, or a tracing filter directive.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

impl Args {
    /// Reactor CPU ids: 0..N-1.
    pub fn core_ids(&self) -> Vec<usize> {
        let count = match self.cores {
            Some(n) => usize::from(n),
            None => default_core_count(),
        };
        (0..count).collect()
    }

    pub fn socket_path(&self) -> PathBuf {
        self.rpc_socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join(SOCKET_NAME))
    }
}

/// CPUs minus one (one left for the control plane and the system), at least 1.
pub fn default_core_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .saturating_sub(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("lunard").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let args = parse(&[]).expect("parse");
        assert_eq!(args.poll_mode, PollModeArg::Adaptive);
        assert_eq!(args.listen, "127.0.0.1:3260".parse().expect("addr"));
        assert_eq!(args.state_dir, PathBuf::from("/var/lib/lunar"));
        assert_eq!(
            args.socket_path(),
            PathBuf::from("/var/lib/lunar/lunard.sock")
        );
        assert!(!args.demo);
        assert_eq!(args.core_ids().len(), default_core_count());
        assert!(default_core_count() >= 1);
    }

    #[test]
    fn explicit_values() {
        let args = parse(&[
            "--cores",
            "3",
            "--poll-mode",
            "busy",
            "--listen",
            "0.0.0.0:0",
            "--state-dir",
            "/tmp/s",
            "--demo",
            "--log-level",
            "debug",
        ])
        .expect("parse");
        assert_eq!(args.core_ids(), vec![0, 1, 2]);
        assert_eq!(args.poll_mode.mode(), PollMode::Busy);
        assert_eq!(args.socket_path(), PathBuf::from("/tmp/s/lunard.sock"));
        assert!(args.demo);
        let args = parse(&["--rpc-socket", "/run/l.sock"]).expect("parse");
        assert_eq!(args.socket_path(), PathBuf::from("/run/l.sock"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--cores", "0"]).is_err());
        assert!(parse(&["--poll-mode", "sometimes"]).is_err());
        assert!(parse(&["--listen", "localhost"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
