//! Opening backing devices and files: block devices (loop devices included) and regular files,
//! with O_DIRECT when the filesystem allows it, and their geometry (size, logical block size).
//! Control path only: called by the control thread when a device is added, never per I/O.
//!
//! `unsafe` here is limited to three calls the standard library does not expose: the
//! BLKGETSIZE64 and BLKSSZGET ioctls, and statx for the filesystem's O_DIRECT alignment.

use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    BlockDevice,
    File,
}

/// An open backing device or file.
#[derive(Debug)]
pub struct BackendFile {
    pub fd: OwnedFd,
    pub path: PathBuf,
    pub kind: BackendKind,
    pub size_bytes: u64,
    /// Logical block size of the device (512 for files opened buffered).
    pub logical_block_bytes: u32,
    /// Opened with O_DIRECT (false when the filesystem refused it and we fell back).
    pub direct: bool,
}

/// How to open a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open O_RDONLY instead of O_RDWR (for read-only exports; writes then fail with EBADF).
    pub read_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The path exists but is neither a block device nor a regular file.
    #[error("cannot use {path} as a backend: it is a {found}, not a block device or regular file")]
    NotBlockOrFile { path: PathBuf, found: &'static str },
    /// Asking the opened device for its geometry failed.
    #[error("cannot read the geometry of {path}: {op} failed: {source}")]
    Geometry {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    /// The device reports a logical block size lunar cannot serve.
    #[error(
        "cannot use {path}: its logical block size {logical_block_bytes} is not a power of two \
         between {MIN_LOGICAL_BLOCK_BYTES} and {MAX_LOGICAL_BLOCK_BYTES}"
    )]
    UnsupportedBlockSize {
        path: PathBuf,
        logical_block_bytes: u64,
    },
}

/// Smallest logical block size (also the size assumed for buffered files).
pub const MIN_LOGICAL_BLOCK_BYTES: u32 = 512;
/// Largest logical block size accepted.
pub const MAX_LOGICAL_BLOCK_BYTES: u32 = 64 * 1024;

impl BackendFile {
    /// Open `path` read-write (see [`BackendFile::open_with`]).
    pub fn open(path: &Path) -> Result<BackendFile, BackendError> {
        BackendFile::open_with(path, OpenOptions::default())
    }

    /// Open a block device or regular file with O_DIRECT | O_CLOEXEC, falling back to buffered
    /// I/O (with a warning) when the filesystem refuses O_DIRECT, and read its geometry.
    pub fn open_with(path: &Path, options: OpenOptions) -> Result<BackendFile, BackendError> {
        open_backend(path, options, |direct| open_file(path, options, direct))
    }
}

/// `open(2)` with the flags a backend needs.
///
/// O_NOATIME: a read would otherwise update the inode's access time (for a block device, its
/// device node's) on every I/O, in the submitting thread. Only the file's owner or a process
/// with CAP_FOWNER may ask for it; anyone else gets EPERM and opens without it.
fn open_file(path: &Path, options: OpenOptions, direct: bool) -> io::Result<File> {
    let direct_flag = if direct { libc::O_DIRECT } else { 0 };
    let open = |extra: i32| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(!options.read_only)
            .custom_flags(libc::O_CLOEXEC | direct_flag | extra)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        result => result,
    }
}

/// The body of `open_with`, with `open(direct)` injectable so the fallback can be tested.
fn open_backend(
    path: &Path,
    options: OpenOptions,
    open: impl Fn(bool) -> io::Result<File>,
) -> Result<BackendFile, BackendError> {
    let open_error = |source| BackendError::Open {
        path: path.to_path_buf(),
        source,
    };
    // Refuse directories, character devices, FIFOs and sockets before opening them: opening
    // some character devices has side effects (a tape rewinds), and a FIFO would open fine.
    let kind = backend_kind(path, &std::fs::metadata(path).map_err(open_error)?)?;

    let (file, direct) = match open(true) {
        Ok(file) => (file, true),
        Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
            tracing::warn!(
                path = %path.display(),
                direct = false,
                "the filesystem refuses O_DIRECT; using buffered I/O"
            );
            (open(false).map_err(open_error)?, false)
        }
        Err(error) => return Err(open_error(error)),
    };
    // The path may have been replaced between the check and the open: check what we opened.
    let opened = file.metadata().map_err(|source| BackendError::Geometry {
        path: path.to_path_buf(),
        op: "fstat",
        source,
    })?;
    if backend_kind(path, &opened)? != kind {
        return Err(BackendError::NotBlockOrFile {
            path: path.to_path_buf(),
            found: "file that changed type while being opened",
        });
    }

    let geometry_error = |op, source| BackendError::Geometry {
        path: path.to_path_buf(),
        op,
        source,
    };
    let (size_bytes, reported_block_bytes) = match kind {
        BackendKind::File => {
            let block_bytes = match direct {
                true => direct_io_alignment_bytes(&file).unwrap_or(MIN_LOGICAL_BLOCK_BYTES),
                false => MIN_LOGICAL_BLOCK_BYTES,
            };
            (
                opened.len(),
                u64::from(block_bytes.max(MIN_LOGICAL_BLOCK_BYTES)),
            )
        }
        BackendKind::BlockDevice => {
            let size_bytes = block_device_size_bytes(&file)
                .map_err(|source| geometry_error("ioctl BLKGETSIZE64", source))?;
            let block_bytes = block_device_logical_block_bytes(&file)
                .map_err(|source| geometry_error("ioctl BLKSSZGET", source))?;
            (size_bytes, block_bytes)
        }
    };
    let logical_block_bytes = supported_block_size(reported_block_bytes).ok_or_else(|| {
        BackendError::UnsupportedBlockSize {
            path: path.to_path_buf(),
            logical_block_bytes: reported_block_bytes,
        }
    })?;

    tracing::debug!(
        path = %path.display(),
        ?kind,
        size_bytes,
        logical_block_bytes,
        direct,
        read_only = options.read_only,
        "backend opened"
    );
    Ok(BackendFile {
        fd: OwnedFd::from(file),
        path: path.to_path_buf(),
        kind,
        size_bytes,
        logical_block_bytes,
        direct,
    })
}

fn backend_kind(path: &Path, metadata: &Metadata) -> Result<BackendKind, BackendError> {
    let file_type = metadata.file_type();
    let found = if file_type.is_block_device() {
        return Ok(BackendKind::BlockDevice);
    } else if file_type.is_file() {
        return Ok(BackendKind::File);
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    };
    Err(BackendError::NotBlockOrFile {
        path: path.to_path_buf(),
        found,
    })
}

fn supported_block_size(block_bytes: u64) -> Option<u32> {
    let block_bytes = u32::try_from(block_bytes).ok()?;
    let in_bounds = (MIN_LOGICAL_BLOCK_BYTES..=MAX_LOGICAL_BLOCK_BYTES).contains(&block_bytes);
    (in_bounds && block_bytes.is_power_of_two()).then_some(block_bytes)
}

/// `_IOR(ty, nr, size)` from `<asm-generic/ioctl.h>` (and the variant of powerpc, mips, sparc).
const fn ioctl_read(ty: u32, nr: u32, size: usize) -> libc::Ioctl {
    #[cfg(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))]
    const DIRECTION_READ: u32 = 2 << 29;
    #[cfg(not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )))]
    const DIRECTION_READ: u32 = 2 << 30;
    (DIRECTION_READ | ((size as u32) << 16) | (ty << 8) | nr) as libc::Ioctl
}

/// `BLKGETSIZE64` from `<linux/fs.h>`: `_IOR(0x12, 114, size_t)`; the device size in bytes.
const BLKGETSIZE64: libc::Ioctl = ioctl_read(0x12, 114, std::mem::size_of::<usize>());

fn block_device_size_bytes(file: &File) -> io::Result<u64> {
    let mut size_bytes: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points to a live local of
    // that type; `file` keeps the descriptor open for the duration of the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size_bytes as *mut u64) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size_bytes)
}

fn block_device_logical_block_bytes(file: &File) -> io::Result<u64> {
    let mut block_bytes: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer, which points to a live local of
    // that type; `file` keeps the descriptor open for the duration of the call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::BLKSSZGET,
            &mut block_bytes as *mut libc::c_int,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // A negative size is nonsense; report it as such (it fails `supported_block_size`).
    Ok(u64::try_from(block_bytes).unwrap_or(0))
}

/// The file offset alignment O_DIRECT needs on this file's filesystem (statx STATX_DIOALIGN,
/// Linux 6.1+); `None` when the kernel or filesystem does not say.
fn direct_io_alignment_bytes(file: &File) -> Option<u32> {
    // SAFETY: `statx` is a plain C struct of integers, for which all-zero bytes are valid; the
    // kernel writes at most `size_of::<statx>()` bytes into it. The path is a NUL-terminated
    // empty string, which with AT_EMPTY_PATH makes statx describe the open descriptor, kept
    // open by `file` for the duration of the call.
    let (rc, stat) = unsafe {
        let mut stat: libc::statx = std::mem::zeroed();
        let rc = libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stat,
        );
        (rc, stat)
    };
    let reported = rc == 0 && stat.stx_mask & libc::STATX_DIOALIGN != 0;
    // 0 means "O_DIRECT not supported here" (yet the open succeeded): no usable answer.
    (reported && stat.stx_dio_offset_align != 0).then_some(stat.stx_dio_offset_align)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::process::Command;

    /// The `flags:` line of /proc/self/fdinfo: what the kernel holds for the descriptor.
    fn open_flags(backend: &BackendFile) -> i32 {
        let fdinfo =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", backend.fd.as_raw_fd()))
                .expect("read fdinfo");
        let flags = fdinfo
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .expect("flags line");
        i32::from_str_radix(flags.trim(), 8).expect("octal flags")
    }

    /// A buffer of `len` bytes aligned to 4096, carved out of a larger Vec (no unsafe).
    fn aligned(storage: &mut Vec<u8>, len: usize) -> &mut [u8] {
        storage.resize(len + 4096, 0);
        let skip = storage.as_ptr().align_offset(4096);
        &mut storage[skip..skip + len]
    }

    fn temp_file(len_bytes: u64) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        file.as_file().set_len(len_bytes).expect("set_len");
        file
    }

    #[test]
    fn regular_file_opens_direct_read_write_with_its_size() {
        let file = temp_file(1 << 20);
        let backend = BackendFile::open(file.path()).expect("open");
        assert_eq!(backend.kind, BackendKind::File);
        assert_eq!(backend.size_bytes, 1 << 20);
        assert_eq!(backend.path, file.path());
        let flags = open_flags(&backend);
        assert_eq!(flags & libc::O_ACCMODE, libc::O_RDWR);
        assert_ne!(flags & libc::O_CLOEXEC, 0);
        assert_ne!(
            flags & libc::O_NOATIME,
            0,
            "its owner reads it without atime updates"
        );
        // The temp directory's filesystem decides; the flag must agree with `direct`.
        assert_eq!(flags & libc::O_DIRECT != 0, backend.direct);
        assert!(backend.logical_block_bytes.is_power_of_two());
        assert!(backend.logical_block_bytes >= MIN_LOGICAL_BLOCK_BYTES);
        if backend.direct {
            let expected = direct_io_alignment_bytes(&File::open(file.path()).expect("reopen"))
                .unwrap_or(MIN_LOGICAL_BLOCK_BYTES)
                .max(MIN_LOGICAL_BLOCK_BYTES);
            assert_eq!(backend.logical_block_bytes, expected);
        }

        // An aligned write and read through the descriptor round-trip.
        let io = File::from(backend.fd.try_clone().expect("dup"));
        let mut out_storage = Vec::new();
        let out = aligned(&mut out_storage, 4096);
        out.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 251) as u8);
        io.write_all_at(out, 8192).expect("write");
        let mut in_storage = Vec::new();
        let back = aligned(&mut in_storage, 4096);
        io.read_exact_at(back, 8192).expect("read");
        assert_eq!(
            back,
            &out_storage[out_storage.as_ptr().align_offset(4096)..][..4096]
        );
    }

    #[test]
    fn read_only_option_opens_read_only() {
        let file = temp_file(4096);
        let backend =
            BackendFile::open_with(file.path(), OpenOptions { read_only: true }).expect("open");
        assert_eq!(open_flags(&backend) & libc::O_ACCMODE, libc::O_RDONLY);
        assert_eq!(backend.size_bytes, 4096);
    }

    #[test]
    fn missing_path_error_names_path_and_errno() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("loop9");
        let error = BackendFile::open(&path).expect_err("missing");
        match &error {
            BackendError::Open { path: p, source } => {
                assert_eq!(p, &path);
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = error.to_string();
        let expected = format!("cannot open {}: No such file or directory", path.display());
        assert!(text.starts_with(&expected), "{text}");
    }

    #[test]
    fn directories_char_devices_and_fifos_are_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = BackendFile::open(dir.path()).expect_err("directory");
        assert_eq!(
            error.to_string(),
            format!(
                "cannot use {} as a backend: it is a directory, not a block device or regular file",
                dir.path().display()
            )
        );
        let error = BackendFile::open(Path::new("/dev/null")).expect_err("char device");
        assert!(matches!(
            error,
            BackendError::NotBlockOrFile {
                found: "character device",
                ..
            }
        ));
        let fifo = dir.path().join("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|status| status.success()) {
            let error = BackendFile::open(&fifo).expect_err("fifo");
            assert!(matches!(
                error,
                BackendError::NotBlockOrFile { found: "FIFO", .. }
            ));
        }
    }

    #[test]
    fn symlink_to_a_file_opens_the_file() {
        let file = temp_file(8192);
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(file.path(), &link).expect("symlink");
        let backend = BackendFile::open(&link).expect("open");
        assert_eq!(
            (backend.kind, backend.size_bytes),
            (BackendKind::File, 8192)
        );
    }

    #[test]
    fn einval_on_o_direct_falls_back_to_buffered_512() {
        let file = temp_file(65536);
        let options = OpenOptions::default();
        let backend = open_backend(file.path(), options, |direct| {
            if direct {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            } else {
                open_file(file.path(), options, false)
            }
        })
        .expect("fallback");
        assert!(!backend.direct);
        assert_eq!(backend.logical_block_bytes, 512);
        assert_eq!(backend.size_bytes, 65536);
        assert_eq!(open_flags(&backend) & libc::O_DIRECT, 0);
    }

    #[test]
    fn other_open_errors_do_not_fall_back() {
        let file = temp_file(4096);
        let error = open_backend(file.path(), OpenOptions::default(), |direct| {
            assert!(direct, "no buffered retry after EACCES");
            Err(io::Error::from_raw_os_error(libc::EACCES))
        })
        .expect_err("EACCES");
        assert!(error.to_string().contains("Permission denied"), "{error}");
    }

    #[test]
    fn block_sizes_outside_512_to_64k_or_not_powers_of_two_are_refused() {
        assert_eq!(supported_block_size(512), Some(512));
        assert_eq!(supported_block_size(4096), Some(4096));
        assert_eq!(supported_block_size(65536), Some(65536));
        for bad in [0, 256, 520, 131072, u64::MAX] {
            assert_eq!(supported_block_size(bad), None, "{bad}");
        }
    }

    #[cfg(all(
        target_env = "gnu",
        any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        )
    ))]
    #[test]
    fn blkgetsize64_matches_linux_headers() {
        assert_eq!(BLKGETSIZE64, 0x8008_1272);
    }

    /// A loop device over a temp file, detached when dropped (also on test failure).
    struct LoopDevice {
        path: PathBuf,
    }

    impl LoopDevice {
        /// `None` when not root or losetup is unavailable (the test then checks nothing more).
        fn attach(backing: &Path, sector_bytes: u32) -> Option<LoopDevice> {
            // /proc/self belongs to the effective user of this process.
            let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
            if euid != 0 {
                eprintln!("not root: skipping the loop device check");
                return None;
            }
            let output = Command::new("losetup")
                .args(["-f", "--show", "-b", &sector_bytes.to_string()])
                .arg(backing)
                .output()
                .ok()?;
            if !output.status.success() {
                eprintln!(
                    "losetup failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                return None;
            }
            let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
            Some(LoopDevice {
                path: PathBuf::from(path),
            })
        }
    }

    impl Drop for LoopDevice {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
        }
    }

    #[test]
    fn loop_device_reports_size_and_logical_block_size() {
        let file = temp_file(8 << 20);
        for sector_bytes in [512, 4096] {
            let Some(device) = LoopDevice::attach(file.path(), sector_bytes) else {
                return;
            };
            let backend = BackendFile::open(&device.path).expect("open loop device");
            assert_eq!(backend.kind, BackendKind::BlockDevice);
            assert_eq!(backend.size_bytes, 8 << 20);
            assert_eq!(backend.logical_block_bytes, sector_bytes);
            assert!(backend.direct);
            assert_ne!(open_flags(&backend) & libc::O_DIRECT, 0);
        }
    }
}
