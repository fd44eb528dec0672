//! One whole run: open every session, read the LUN's geometry, build each session's workload,
//! spread the sessions over threads, run them on one schedule and merge what they counted.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lunar_wire::scsi::encode_lun;

use crate::args::{parse_url, Args};
use crate::engine::{self, Conn, Schedule};
use crate::setup::{self, SessionPlan};
use crate::stats::{Report, RunShape, Stats};
use crate::workload::{regions, Generator, IoShape, Pattern};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the load `args` describe and returns its report.
pub fn run(args: &Args) -> Result<Report, RunError> {
    let url = parse_url(&args.url).map_err(RunError::Usage)?;
    let pattern = Pattern::parse(&args.rw, args.rwmixread)
        .ok_or_else(|| RunError::Usage(format!("unknown --rw '{}'", args.rw)))?;
    let io_bytes = u32::try_from(args.bs)
        .ok()
        .filter(|&b| b > 0 && b <= setup::BURST_MAX_BYTES)
        .ok_or_else(|| {
            RunError::Usage(format!(
                "--bs {} is outside 1..={}",
                args.bs,
                setup::BURST_MAX_BYTES
            ))
        })?;
    let portal = resolve(&url.portal)?;
    let sessions = usize::from(args.sessions);
    let plan = SessionPlan {
        portal,
        initiator_name: &args.initiator_name,
        target_name: &url.target,
        lun: encode_lun(url.lun),
        queue_depth: usize::from(args.iodepth),
        io_bytes: io_bytes as usize,
        isid_salt: isid_salt(),
    };

    let mut opened = Vec::with_capacity(sessions);
    for index in 0..sessions {
        opened.push(setup::open(&plan, index)?);
    }
    let capacity = setup::read_capacity(&mut opened[0], 0)?;
    if io_bytes % capacity.block_len_bytes != 0 {
        return Err(RunError::Usage(format!(
            "--bs {io_bytes} is not a multiple of the LUN's {}-byte blocks",
            capacity.block_len_bytes
        )));
    }
    let usable_bytes = args
        .size
        .map_or(capacity.size_bytes(), |s| s.min(capacity.size_bytes()));
    let total_units = usable_bytes / u64::from(io_bytes);
    let unit_blocks = u64::from(io_bytes / capacity.block_len_bytes);
    let regions = regions(total_units, sessions, args.verify, unit_blocks);
    if regions.iter().any(|r| r.units == 0) {
        return Err(RunError::Usage(format!(
            "the LUN's {usable_bytes} bytes leave no {io_bytes}-byte unit for some session"
        )));
    }
    let shape = IoShape {
        pattern,
        io_bytes,
        block_len_bytes: capacity.block_len_bytes,
    };
    let payload = payload(args.seed, io_bytes as usize);
    let threads = usize::from(args.threads).min(sessions);
    let mut per_thread: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for (index, (mut open, region)) in opened.into_iter().zip(regions).enumerate() {
        open.session.set_keep_read_data(args.verify);
        if !args.verify {
            open.session.fill_slot_buffers(&payload);
        }
        open.stream.set_nonblocking(true)?;
        let stream = mio::net::TcpStream::from_std(open.stream);
        // Sequential sessions start spread over the LUN, not all at unit 0.
        let start_unit = region.units / sessions as u64 * index as u64;
        let generator = Generator::new(
            shape,
            region,
            args.seed.wrapping_add(index as u64),
            start_unit,
            args.verify.then_some(args.seed),
        );
        per_thread[index % threads].push(Conn::new(index, open.session, stream, generator));
    }

    if args.idle {
        println!(
            "{{\"event\":\"sessions_ready\",\"sessions\":{sessions},\"idle_s\":{}}}",
            args.runtime_s
        );
        std::io::stdout().flush()?;
    }
    let start = Instant::now();
    let ramp = if args.idle {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(args.ramp_s)
    };
    let schedule = Schedule {
        measure_start: start + ramp,
        measure_end: start + ramp + Duration::from_secs_f64(args.runtime_s),
        load: !args.idle,
        busy_poll: args.busy_poll,
    };
    let mut stats = Stats::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .map(|conns| scope.spawn(move || engine::run(conns, schedule)))
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(thread_stats) => stats.merge(&thread_stats),
                Err(_) => stats.fail("a load thread panicked".into()),
            }
        }
    });
    let measured_s = if args.idle { 0.0 } else { args.runtime_s };
    Ok(Report::new(
        RunShape {
            url: args.url.clone(),
            rw: pattern.name(),
            bs_bytes: io_bytes,
            sessions,
            iodepth: usize::from(args.iodepth),
            threads,
            verify: args.verify,
        },
        &stats,
        measured_s,
    ))
}

fn resolve(portal: &str) -> Result<SocketAddr, RunError> {
    portal
        .to_socket_addrs()
        .map_err(|e| RunError::Usage(format!("portal '{portal}': {e}")))?
        .next()
        .ok_or_else(|| RunError::Usage(format!("portal '{portal}' resolves to no address")))
}

/// Three bytes that differ between runs, so concurrent runs do not share ISIDs.
fn isid_salt() -> [u8; 3] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = crate::workload::mix64(u64::from(std::process::id()) << 32 | u64::from(nanos));
    let bytes = mixed.to_be_bytes();
    [bytes[0], bytes[1], bytes[2]]
}

/// Write data when nothing is verified: pseudo-random, so no layer can take a shortcut on
/// zeros.
fn payload(seed: u64, len_bytes: usize) -> Vec<u8> {
    let mut rng = crate::workload::Rng::new(seed ^ 0x5eed);
    let mut out = Vec::with_capacity(len_bytes + 8);
    while out.len() < len_bytes {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len_bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_not_zeros_and_has_the_asked_length() {
        let data = payload(1, 4100);
        assert_eq!(data.len(), 4100);
        assert!(data.iter().filter(|&&b| b == 0).count() < 100);
        assert_eq!(payload(1, 64), payload(1, 64));
    }

    #[test]
    fn isid_salts_differ_over_time() {
        let a = isid_salt();
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(a, isid_salt());
    }
}
