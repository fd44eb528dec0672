//! What the tests read about a process from `/proc` (resident memory, its peak, open file
//! descriptors), and the open-files limit they raise for themselves before opening many sockets
//! (a lunard started afterwards inherits it).

use std::fs;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident set size now.
    pub rss_kib: u64,
    /// `VmHWM`: the largest resident set size the process ever had.
    pub peak_rss_kib: u64,
}

/// `VmRSS` and `VmHWM` of `pid`; `None` if the process is gone or the file unreadable.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_memory(&status)
}

/// `VmRSS` and `VmHWM` out of the text of `/proc/<pid>/status`.
pub fn parse_memory(status: &str) -> Option<Memory> {
    Some(Memory {
        rss_kib: status_kib(status, "VmRSS")?,
        peak_rss_kib: status_kib(status, "VmHWM")?,
    })
}

/// A `Field:   1234 kB` line of `/proc/<pid>/status`, in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name != field {
            return None;
        }
        let mut words = value.split_whitespace();
        let number = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(number)
    })
}

/// How many file descriptors `pid` has open; `None` if `/proc/<pid>/fd` cannot be listed.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Raises this process's soft RLIMIT_NOFILE to at least `wanted` (never lowers it); returns
/// the soft limit now in force. Fails, saying why, if the hard limit is below `wanted`.
pub fn raise_open_files_limit(wanted: u64) -> Result<u64, String> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|err| format!("getrlimit(NOFILE): {err}"))?;
    if soft >= wanted {
        return Ok(soft);
    }
    if hard < wanted {
        return Err(format!(
            "RLIMIT_NOFILE hard limit {hard} is below the {wanted} open files this test needs \
             (raise it with `ulimit -Hn {wanted}` as root)"
        ));
    }
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)
        .map_err(|err| format!("setrlimit(NOFILE, {wanted}, {hard}): {err}"))?;
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STATUS: &str = "Name:\tlunard\nVmPeak:\t  200000 kB\nVmHWM:\t   61000 kB\nVmRSS:\t   59556 kB\nThreads:\t4\n";

    #[test]
    fn reads_rss_and_its_peak() {
        assert_eq!(
            parse_memory(STATUS),
            Some(Memory {
                rss_kib: 59_556,
                peak_rss_kib: 61_000
            })
        );
        assert_eq!(status_kib(STATUS, "Threads"), None, "no kB unit");
        assert_eq!(status_kib(STATUS, "VmSwap"), None);
        assert_eq!(parse_memory("VmRSS:\t12 kB\n"), None, "no VmHWM");
    }

    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        let memory = memory(me).expect("own /proc status");
        assert!(memory.rss_kib > 0 && memory.peak_rss_kib >= memory.rss_kib);
        let before = open_fds(me).expect("own fd list");
        let file = tempfile::tempfile().expect("temp file");
        assert!(open_fds(me).expect("own fd list") > before);
        drop(file);
    }

    #[test]
    fn raising_to_the_current_limit_changes_nothing() {
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!(raise_open_files_limit(soft), Ok(soft));
        assert_eq!(raise_open_files_limit(1), Ok(soft));
        // Above the kernel's ceiling (nr_open) whatever the hard limit says.
        assert!(raise_open_files_limit(u64::MAX - 1).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_status_text(text in "(.{0,40}\n){0,10}") {
            let _ = parse_memory(&text);
        }
    }
}
