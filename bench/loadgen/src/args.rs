//! Command line of `lunar-load`, and the parsing of its LUN URL and sizes.

use clap::Parser;

/// lunar-load: an iSCSI load generator with many sessions, deep queues and optional data
/// verification. Prints a report (JSON with --json) and exits non-zero on any error or data
/// mismatch.
#[derive(Debug, Clone, Parser)]
#[command(name = "lunar-load", version)]
pub struct Args {
    /// The LUN: iscsi://HOST[:PORT]/TARGET-IQN/LUN
    pub url: String,

    /// Sessions (one TCP connection each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub sessions: u16,

    /// Commands in flight per session.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub iodepth: u16,

    /// Threads the sessions are spread over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,

    /// Access pattern: randread, randwrite, read, write or randrw.
    #[arg(long, default_value = "randread")]
    pub rw: String,

    /// Percentage of reads for randrw.
    #[arg(long, default_value_t = 70, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub rwmixread: u8,

    /// Bytes per I/O (suffixes k, m: 4k, 128k); a multiple of the LUN's block length.
    #[arg(long, default_value = "4k", value_parser = parse_size)]
    pub bs: u64,

    /// Seconds measured (after the ramp); with --idle, seconds the sessions stay idle.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub runtime_s: f64,

    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0, value_parser = parse_seconds)]
    pub ramp_s: f64,

    /// Use only the first SIZE bytes of the LUN (suffixes k, m, g, t).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,

    /// Write a per-unit pattern and check every read of a written unit against it (sessions
    /// then work on disjoint parts of the LUN).
    #[arg(long)]
    pub verify: bool,

    /// Log in, print a `sessions_ready` line, hold the sessions idle for --runtime-s, log out.
    #[arg(long)]
    pub idle: bool,

    /// Spin instead of sleeping in epoll (lowest latency, one busy core per thread).
    #[arg(long)]
    pub busy_poll: bool,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// InitiatorName to log in with.
    #[arg(long, default_value = "iqn.2026-11.dev.lunar:lunar-load")]
    pub initiator_name: String,

    /// Seed of the access pattern and of the verification patterns.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The parts of an iSCSI LUN URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunUrl {
    /// HOST:PORT (port 3260 when the URL has none).
    pub portal: String,
    pub target: String,
    pub lun: u64,
}

/// Parses `iscsi://HOST[:PORT]/TARGET-IQN/LUN`.
pub fn parse_url(url: &str) -> Result<LunUrl, String> {
    let rest = url
        .strip_prefix("iscsi://")
        .ok_or_else(|| format!("'{url}' does not start with iscsi://"))?;
    let (portal, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("'{url}' has no target"))?;
    let (target, lun) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("'{url}' has no LUN"))?;
    if portal.is_empty() || target.is_empty() {
        return Err(format!("'{url}' needs a portal and a target"));
    }
    let lun = lun
        .parse()
        .map_err(|_| format!("'{lun}' is not a LUN number"))?;
    let portal = if portal
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        portal.to_owned()
    } else {
        format!("{portal}:3260")
    };
    Ok(LunUrl {
        portal,
        target: target.to_owned(),
        lun,
    })
}

/// Parses a byte count with an optional binary suffix: 4096, 4k, 128K, 1m, 2g, 1t.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => return Err(format!("unknown size suffix in '{text}'")),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size"))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if value.is_finite() && (0.0..=86_400.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} seconds is out of range (0 to 86400)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls_with_and_without_port() {
        assert_eq!(
            parse_url("iscsi://127.0.0.1:3261/iqn.2026-11.dev.lunar:bench/1"),
            Ok(LunUrl {
                portal: "127.0.0.1:3261".into(),
                target: "iqn.2026-11.dev.lunar:bench".into(),
                lun: 1
            })
        );
        assert_eq!(
            parse_url("iscsi://localhost/iqn.x:y/0").map(|u| u.portal),
            Ok("localhost:3260".into())
        );
        for bad in [
            "http://x/y/0",
            "iscsi://x",
            "iscsi://x/y",
            "iscsi://x/y/z",
            "iscsi:///y/0",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("128K"), Ok(131_072));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("64t"), Ok(64 << 40));
        assert!(parse_size("4q").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("99999999999t").is_err());
    }

    #[test]
    fn seconds_are_bounded() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        for bad in ["-1", "nan", "inf", "1e9", "x"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_parse() {
        let args = Args::try_parse_from(["lunar-load", "iscsi://h/t/0"]).expect("parse");
        assert_eq!((args.sessions, args.iodepth, args.bs), (1, 32, 4096));
        assert!(Args::try_parse_from(["lunar-load", "--sessions", "0", "iscsi://h/t/0"]).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,40}") {
            let _ = parse_url(&text);
            let _ = parse_size(&text);
            let _ = parse_seconds(&text);
        }
    }
}
