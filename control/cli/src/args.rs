//! Command line of `lunarctl`.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::size::parse_size;

/// Socket used when neither --socket nor $LUNAR_SOCKET is given.
pub const DEFAULT_SOCKET: &str = "/var/lib/lunar/lunard.sock";
/// Environment variable naming the socket.
pub const SOCKET_ENV: &str = "LUNAR_SOCKET";

/// lunarctl: configure and inspect a running lunard.
#[derive(Debug, Clone, Parser)]
#[command(name = "lunarctl", version)]
pub struct Cli {
    /// lunard's RPC socket [default: $LUNAR_SOCKET, else /var/lib/lunar/lunard.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Print results as JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The socket to use, given the value of $LUNAR_SOCKET.
    pub fn socket_path(&self, env: Option<std::ffi::OsString>) -> PathBuf {
        self.socket
            .clone()
            .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Call any method with JSON parameters and print the JSON result.
    Call {
        /// Method name, e.g. device_list.
        method: String,
        /// Parameters as a JSON object; `-` reads them from standard input.
        #[arg(default_value = "{}")]
        params: String,
    },
    /// Backing devices and files.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Virtual volumes: create, list, delete, snapshot, clone, resize.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Pools of devices that thin volumes, snapshots and clones allocate from.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// iSCSI targets, their CHAP credentials and initiator access lists.
    #[command(subcommand)]
    Target(TargetCommand),
    /// CHAP for discovery (SendTargets) sessions.
    #[command(subcommand)]
    Discovery(DiscoveryCommand),
    /// Addresses lunard accepts iSCSI connections on.
    #[command(subcommand)]
    Portal(PortalCommand),
    /// Mirror legs of a volume: add, remove, bring a faulty one back.
    #[command(subcommand)]
    Mirror(crate::tasks::MirrorCommand),
    /// Background tasks (resyncs, migrations) and their progress.
    #[command(subcommand)]
    Task(crate::tasks::TaskCommand),
    /// Per-volume I/O statistics.
    Stats {
        /// Only this volume.
        volume: Option<String>,
    },
    /// Daemon version, addresses and table generation.
    Info,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DeviceCommand {
    /// Open a block device or file and name it.
    Add {
        name: String,
        path: PathBuf,
    },
    List,
    /// Forget a device no volume uses.
    Remove {
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume: one extent of a device (--device), a thin volume (--pool and --size), or
    /// any layout tree (--layout JSON: concat, stripe, mirror, thin, nested).
    Create(VolumeCreateArgs),
    List,
    /// Delete a volume no target exports.
    Delete {
        name: String,
    },
    /// Take a read-only snapshot of a thin volume.
    Snapshot {
        /// The thin volume.
        volume: String,
        /// Name of the snapshot.
        name: String,
    },
    /// Create a writable thin volume from a snapshot.
    Clone {
        /// The snapshot.
        snapshot: String,
        /// Name of the clone.
        name: String,
    },
    /// Grow a volume to SIZE (bytes, or 1M, 1G...). A thin volume grows its table; another
    /// volume grows by --extend, or its last extent grows in place.
    Resize {
        name: String,
        #[arg(value_parser = parse_size)]
        size: u64,
        /// Layout added at the end (JSON), e.g. '{"linear":{"device":"disk2"}}'.
        #[arg(long, value_name = "JSON")]
        extend: Option<String>,
    },
    /// Move a volume onto another layout while hosts keep using it (a background task).
    Migrate(crate::tasks::MigrateArgs),
}

#[derive(Debug, Clone, ClapArgs)]
pub struct VolumeCreateArgs {
    pub name: String,
    /// Device holding the extent.
    #[arg(long, required_unless_present_any = ["pool", "layout"], conflicts_with_all = ["pool", "layout"])]
    pub device: Option<String>,
    /// Start of the extent on the device (bytes, or 1M, 1G...).
    #[arg(long, value_parser = parse_size, default_value = "0", conflicts_with_all = ["pool", "layout"])]
    pub offset: u64,
    /// Size of the volume [default with --device: the rest of the device]
    #[arg(long, value_parser = parse_size, conflicts_with = "layout")]
    pub size: Option<u64>,
    /// A thin volume of --size bytes allocating from this pool.
    #[arg(long, requires = "size", conflicts_with = "layout")]
    pub pool: Option<String>,
    /// The layout tree as JSON, e.g.
    /// '{"mirror":{"legs":[{"linear":{"device":"d1"}},{"linear":{"device":"d2"}}]}}'.
    #[arg(long, value_name = "JSON")]
    pub layout: Option<String>,
    /// 512 or 4096.
    #[arg(long, default_value_t = 512)]
    pub block_size: u32,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PoolCommand {
    /// Create a pool owning whole devices.
    Create {
        name: String,
        /// Devices of the pool (none may hold a volume extent).
        #[arg(required = true)]
        devices: Vec<String>,
        /// Segment size: a power of two from 4K to 64M [default: 1M]
        #[arg(long, value_parser = parse_size)]
        segment: Option<u64>,
    },
    List,
    /// Delete a pool no volume allocates from.
    Delete {
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum TargetCommand {
    /// Create a target exporting volumes as LUNs.
    Create {
        /// iSCSI name, e.g. iqn.2026-11.dev.lunar:disk1
        iqn: String,
        /// LUN=VOLUME, optionally :ro (read-only) or :rw, and :removable (removable medium).
        /// Repeat for more LUNs.
        #[arg(long = "lun", value_name = "N=VOLUME[:ro][:removable]", required = true, value_parser = parse_lun)]
        luns: Vec<LunArg>,
    },
    List,
    Delete {
        iqn: String,
    },
    /// Set the CHAP credentials initiators must prove to log in (or --none).
    Auth {
        /// iSCSI name of the target.
        iqn: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Allow only these initiators to discover and log in; no IQN allows every initiator.
    Acl {
        /// iSCSI name of the target.
        iqn: String,
        /// Initiator names (e.g. iqn.1994-05.com.redhat:host1).
        initiators: Vec<String>,
    },
}

/// CHAP settings on the command line.
#[derive(Debug, Clone, PartialEq, Eq, ClapArgs)]
pub struct AuthArgs {
    /// User name initiators log in with.
    #[arg(
        long,
        value_name = "USER",
        requires = "chap_secret",
        required_unless_present = "none"
    )]
    pub chap_user: Option<String>,
    /// Secret initiators prove (12-255 bytes).
    #[arg(long, value_name = "SECRET", requires = "chap_user")]
    pub chap_secret: Option<String>,
    /// Mutual CHAP: user name lunard answers with.
    #[arg(long, value_name = "USER", requires_all = ["mutual_secret", "chap_user"])]
    pub mutual_user: Option<String>,
    /// Mutual CHAP: secret lunard proves (different from --chap-secret).
    #[arg(long, value_name = "SECRET", requires = "mutual_user")]
    pub mutual_secret: Option<String>,
    /// No authentication.
    #[arg(long, conflicts_with_all = ["chap_user", "chap_secret", "mutual_user", "mutual_secret"])]
    pub none: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DiscoveryCommand {
    /// Set the CHAP credentials initiators must prove in discovery sessions (or --none).
    Auth(AuthArgs),
    /// Show the discovery CHAP settings (user names only).
    Show,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PortalCommand {
    /// Serve iSCSI on one more address (ip:port, IPv6 as [addr]:port; port 0 picks one).
    Add {
        address: String,
    },
    /// Stop accepting on an address (not the last one).
    Remove {
        address: String,
    },
    List,
}

/// One `--lun` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunArg {
    pub lun: u64,
    pub volume: String,
    pub read_only: bool,
    /// Exported as removable medium.
    pub removable: bool,
}

/// Parse `N=VOLUME[:ro|:rw][:removable]`.
pub fn parse_lun(text: &str) -> Result<LunArg, String> {
    let usage = || {
        format!("'{text}' is not N=VOLUME[:ro][:removable], e.g. 0=vol1, 1=vol2:ro or 2=iso:ro:removable")
    };
    let (lun, rest) = text.split_once('=').ok_or_else(usage)?;
    let lun = lun.trim().parse::<u64>().map_err(|_| usage())?;
    let mut parts = rest.split(':');
    let volume = parts.next().unwrap_or_default();
    if volume.is_empty() {
        return Err(usage());
    }
    let mut arg = LunArg {
        lun,
        volume: volume.to_string(),
        read_only: false,
        removable: false,
    };
    for flag in parts {
        match flag {
            "ro" => arg.read_only = true,
            "rw" => arg.read_only = false,
            "removable" => arg.removable = true,
            _ => return Err(usage()),
        }
    }
    Ok(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lunarctl").chain(args.iter().copied()))
    }

    #[test]
    fn socket_precedence() {
        let cli = parse(&["device", "list"]).expect("parse");
        assert_eq!(cli.socket_path(None), PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(
            cli.socket_path(Some("/e.sock".into())),
            PathBuf::from("/e.sock")
        );
        assert_eq!(
            cli.socket_path(Some("".into())),
            PathBuf::from(DEFAULT_SOCKET)
        );
        let cli = parse(&["--socket", "/a.sock", "device", "list"]).expect("parse");
        assert_eq!(
            cli.socket_path(Some("/e.sock".into())),
            PathBuf::from("/a.sock")
        );
        let cli = parse(&["device", "list", "--socket", "/b.sock", "--json"]).expect("global");
        assert_eq!(cli.socket.as_deref(), Some(std::path::Path::new("/b.sock")));
        assert!(cli.json);
    }

    #[test]
    fn call_defaults_to_empty_params() {
        match parse(&["call", "device_list"]).expect("parse").command {
            Command::Call { method, params } => {
                assert_eq!(method, "device_list");
                assert_eq!(params, "{}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn volume_create_sizes() {
        let cli = parse(&[
            "volume", "create", "v", "--device", "d", "--size", "1G", "--offset", "1M",
        ])
        .expect("parse");
        match cli.command {
            Command::Volume(VolumeCommand::Create(args)) => {
                assert_eq!(
                    (args.offset, args.size, args.block_size),
                    (1 << 20, Some(1 << 30), 512)
                );
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&[
            "volume",
            "create",
            "v",
            "--device",
            "d",
            "--block-size",
            "4096",
        ])
        .expect("parse");
        match cli.command {
            Command::Volume(VolumeCommand::Create(args)) => {
                assert_eq!((args.offset, args.size, args.block_size), (0, None, 4096));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse(&["volume", "create", "v"]).is_err(),
            "--device is required"
        );
        assert!(parse(&["volume", "create", "v", "--device", "d", "--size", "1GB"]).is_err());
    }

    #[test]
    fn target_luns() {
        let cli = parse(&[
            "target",
            "create",
            "iqn.2026-11.dev.lunar:t",
            "--lun",
            "0=a",
            "--lun",
            "1=b:ro",
        ])
        .expect("parse");
        match cli.command {
            Command::Target(TargetCommand::Create { iqn, luns }) => {
                assert_eq!(iqn, "iqn.2026-11.dev.lunar:t");
                assert_eq!(
                    luns,
                    vec![
                        LunArg {
                            lun: 0,
                            volume: "a".into(),
                            read_only: false,
                            removable: false,
                        },
                        LunArg {
                            lun: 1,
                            volume: "b".into(),
                            read_only: true,
                            removable: false,
                        },
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse(&["target", "create", "iqn.x"]).is_err(),
            "a LUN is required"
        );
        assert!(parse_lun("x=a").is_err());
        assert!(parse_lun("0=").is_err());
        assert!(parse_lun("0=a:wo").is_err());
        assert!(parse_lun("0").is_err());
        assert_eq!(parse_lun("3=v:rw").map(|l| l.read_only), Ok(false));
        let iso = parse_lun("2=iso:ro:removable").expect("removable");
        assert!(iso.read_only && iso.removable);
        assert!(parse_lun("2=iso:removable").is_ok_and(|l| l.removable && !l.read_only));
        assert!(parse_lun("2=iso:ro:tape").is_err());
        assert!(parse_lun("2=:ro").is_err());
    }

    #[test]
    fn auth_arguments() {
        let cli = parse(&[
            "target",
            "auth",
            "iqn.t",
            "--chap-user",
            "u",
            "--chap-secret",
            "s",
            "--mutual-user",
            "m",
            "--mutual-secret",
            "ms",
        ])
        .expect("mutual");
        match cli.command {
            Command::Target(TargetCommand::Auth { iqn, auth }) => {
                assert_eq!(iqn, "iqn.t");
                assert_eq!(auth.chap_user.as_deref(), Some("u"));
                assert_eq!(auth.mutual_secret.as_deref(), Some("ms"));
                assert!(!auth.none);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["target", "auth", "iqn.t", "--none"]).is_ok());
        assert!(
            parse(&["target", "auth", "iqn.t"]).is_err(),
            "credentials or --none"
        );
        assert!(
            parse(&["target", "auth", "iqn.t", "--chap-user", "u"]).is_err(),
            "a user needs a secret"
        );
        assert!(
            parse(&[
                "target",
                "auth",
                "iqn.t",
                "--none",
                "--chap-user",
                "u",
                "--chap-secret",
                "s"
            ])
            .is_err(),
            "--none excludes credentials"
        );
        assert!(
            parse(&[
                "discovery",
                "auth",
                "--mutual-user",
                "m",
                "--mutual-secret",
                "s"
            ])
            .is_err(),
            "mutual needs one-way"
        );
        assert!(parse(&[
            "discovery",
            "auth",
            "--chap-user",
            "u",
            "--chap-secret",
            "s"
        ])
        .is_ok());
        assert!(matches!(
            parse(&["discovery", "show"]).expect("show").command,
            Command::Discovery(DiscoveryCommand::Show)
        ));
    }

    #[test]
    fn acl_and_portal_arguments() {
        match parse(&["target", "acl", "iqn.t", "iqn.a", "iqn.b"])
            .expect("acl")
            .command
        {
            Command::Target(TargetCommand::Acl { iqn, initiators }) => {
                assert_eq!(iqn, "iqn.t");
                assert_eq!(initiators, vec!["iqn.a".to_string(), "iqn.b".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["target", "acl", "iqn.t"])
            .expect("everyone")
            .command
        {
            Command::Target(TargetCommand::Acl { initiators, .. }) => {
                assert!(initiators.is_empty())
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["portal", "add", "0.0.0.0:3261"])
                .expect("add")
                .command,
            Command::Portal(PortalCommand::Add { .. })
        ));
        assert!(parse(&["portal", "remove"]).is_err(), "needs an address");
        assert!(matches!(
            parse(&["portal", "list"]).expect("list").command,
            Command::Portal(PortalCommand::List)
        ));
    }

    #[test]
    fn other_commands() {
        assert!(matches!(
            parse(&["stats"]).expect("parse").command,
            Command::Stats { volume: None }
        ));
        assert!(matches!(
            parse(&["info"]).expect("parse").command,
            Command::Info
        ));
        assert!(matches!(
            parse(&["device", "add", "d", "rel/path"])
                .expect("parse")
                .command,
            Command::Device(DeviceCommand::Add { .. })
        ));
        assert!(parse(&["device"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }
}
