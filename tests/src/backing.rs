//! Backing stores for tests: sparse files in a temporary directory, and loop devices over them.
//!
//! A loop device is detached (`losetup -d`) when its guard drops, also while a failing test
//! unwinds. Loop devices need root: without it a loop test fails with a clear message, unless
//! `LUNAR_SKIP_LOOP=1`, in which case it says it was skipped and returns early.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::run_with_timeout;

/// Environment variable that turns "loop tests need root" from a failure into a skip.
pub const SKIP_LOOP_ENV: &str = "LUNAR_SKIP_LOOP";
const LOSETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A sparse file of a fixed length in its own temporary directory.
pub struct SparseFile {
    path: PathBuf,
    len_bytes: u64,
    _dir: TempDir,
}

impl SparseFile {
    /// Creates a sparse (all-zero, unallocated) file of `len_bytes`.
    pub fn create(len_bytes: u64) -> SparseFile {
        let dir = tempfile::Builder::new()
            .prefix("lunar-backing-")
            .tempdir()
            .expect("create a temporary directory for a backing file");
        let path = dir.path().join("backing.img");
        let file = File::create(&path).expect("create the backing file");
        file.set_len(len_bytes).expect("size the backing file");
        SparseFile {
            path,
            len_bytes,
            _dir: dir,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }
}

/// A loop device attached to a sparse file; detached on drop.
pub struct LoopDevice {
    device: PathBuf,
    file: SparseFile,
}

impl LoopDevice {
    /// Attaches a new loop device over a sparse file of `len_bytes`.
    ///
    /// Returns `None` (after printing that the test is skipped) when not root and
    /// `LUNAR_SKIP_LOOP=1`; panics with a clear message when not root otherwise, or when
    /// `losetup` fails.
    pub fn attach(len_bytes: u64) -> Option<LoopDevice> {
        if !nix::unistd::geteuid().is_root() {
            if skip_loop_requested() {
                // Straight to stderr, past the test harness's output capture, so it is seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: loop-device test (not root and {SKIP_LOOP_ENV}=1)"
                );
                return None;
            }
            panic!(
                "loop-device tests need root (losetup); run the tests as root, or set \
                 {SKIP_LOOP_ENV}=1 to skip them"
            );
        }
        let file = SparseFile::create(len_bytes);
        let mut cmd = Command::new("losetup");
        cmd.args(["-f", "--show"]).arg(file.path());
        let out = run_with_timeout(cmd, LOSETUP_TIMEOUT);
        out.assert_success(
            "attach a loop device (is util-linux installed, and /dev/loop-control present?)",
        );
        let device = PathBuf::from(out.output.trim());
        assert!(
            device.starts_with("/dev/"),
            "losetup printed something other than a device: {out}"
        );
        Some(LoopDevice { device, file })
    }

    /// The device node, e.g. `/dev/loop3`.
    pub fn path(&self) -> &Path {
        &self.device
    }

    /// The file behind the device.
    pub fn file(&self) -> &SparseFile {
        &self.file
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let mut cmd = Command::new("losetup");
        cmd.arg("-d").arg(&self.device);
        let out = run_with_timeout(cmd, LOSETUP_TIMEOUT);
        if !out.success() {
            eprintln!("warning: could not detach {}: {out}", self.device.display());
        }
    }
}

fn skip_loop_requested() -> bool {
    std::env::var(SKIP_LOOP_ENV).is_ok_and(|value| value == "1")
}

/// The store a volume is built on.
pub enum Backing {
    /// A sparse file.
    File(SparseFile),
    /// A loop device over a sparse file.
    Loop(LoopDevice),
}

impl Backing {
    /// A sparse file of `len_bytes`.
    pub fn sparse_file(len_bytes: u64) -> Backing {
        Backing::File(SparseFile::create(len_bytes))
    }

    /// A loop device of `len_bytes`, or `None` when loop tests are skipped (see [`LoopDevice::attach`]).
    pub fn loop_device(len_bytes: u64) -> Option<Backing> {
        LoopDevice::attach(len_bytes).map(Backing::Loop)
    }

    /// The path lunard is given (`device_add {"path"}`).
    pub fn path(&self) -> &Path {
        match self {
            Backing::File(file) => file.path(),
            Backing::Loop(device) => device.path(),
        }
    }

    /// Length of the store.
    pub fn len_bytes(&self) -> u64 {
        match self {
            Backing::File(file) => file.len_bytes(),
            Backing::Loop(device) => device.file().len_bytes(),
        }
    }

    /// Reads `len_bytes` at `offset_bytes` directly from the store, bypassing lunard.
    pub fn read_at(&self, offset_bytes: u64, len_bytes: usize) -> Vec<u8> {
        read_at(self.path(), offset_bytes, len_bytes)
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Backing::File(file) => format!("sparse file {}", file.path().display()),
            Backing::Loop(device) => format!(
                "loop device {} over {}",
                device.path().display(),
                device.file().path().display()
            ),
        }
    }
}

/// Reads `len_bytes` at `offset_bytes` from the file or device at `path`.
pub fn read_at(path: &Path, offset_bytes: u64, len_bytes: usize) -> Vec<u8> {
    let mut file = OpenOptions::new()
        .read(true)
        .open(path)
        .unwrap_or_else(|err| panic!("open {}: {err}", path.display()));
    file.seek(SeekFrom::Start(offset_bytes))
        .unwrap_or_else(|err| panic!("seek {} to {offset_bytes}: {err}", path.display()));
    let mut bytes = vec![0u8; len_bytes];
    file.read_exact(&mut bytes).unwrap_or_else(|err| {
        panic!(
            "read {len_bytes} bytes at {offset_bytes} of {}: {err}",
            path.display()
        )
    });
    bytes
}

/// Bytes actually allocated on disk for the file at `path` (for sparseness checks).
pub fn allocated_bytes(path: &Path) -> u64 {
    let meta =
        std::fs::metadata(path).unwrap_or_else(|err| panic!("stat {}: {err}", path.display()));
    meta.blocks() * 512
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_file_has_its_length_and_no_allocation() {
        let file = SparseFile::create(64 << 20);
        assert_eq!(
            std::fs::metadata(file.path()).expect("stat").len(),
            64 << 20
        );
        assert!(allocated_bytes(file.path()) < 1 << 20);
        assert_eq!(
            read_at(file.path(), (64 << 20) - 4096, 4096),
            vec![0u8; 4096]
        );
    }

    #[test]
    fn sparse_file_is_removed_on_drop() {
        let file = SparseFile::create(4096);
        let path = file.path().to_path_buf();
        drop(file);
        assert!(!path.exists());
    }
}
