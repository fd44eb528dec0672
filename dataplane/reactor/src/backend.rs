//! Contract for opening backing devices and files.

use std::os::fd::OwnedFd;
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

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BackendFile {
    pub fn open(_path: &Path) -> Result<BackendFile, BackendError> {
        unimplemented!("contract only")
    }
}
