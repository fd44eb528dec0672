//! The device I/O the control thread does on pool slots, with plain syscalls (never on the
//! reactors' path): zeroing a range (a hole punched with `fallocate`, or zeros written where
//! the device cannot punch), copying a range (copy-on-write), and `fdatasync` before the change
//! that depends on the bytes is saved.
//!
//! Devices may be open with O_DIRECT, so every buffer is aligned to [`IO_ALIGN_BYTES`] and
//! every offset and length is a multiple of the device's logical block size (slots and volume
//! blocks are).

use std::io;
use std::os::fd::AsRawFd;

use lunar_reactor::BackendFile;
use nix::errno::Errno;
use nix::fcntl::{fallocate, FallocateFlags};
use nix::sys::uio::{pread, pwrite};
use nix::unistd::fdatasync;

/// Alignment of the buffers (the largest logical block size a device may have).
pub const IO_ALIGN_BYTES: usize = 4096;
/// Bytes read or written per syscall when copying or writing zeros.
pub const IO_CHUNK_BYTES: u64 = 1 << 20;

/// A zeroed buffer of `len` bytes starting on an [`IO_ALIGN_BYTES`] boundary, carved out of a
/// slightly larger vector.
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn zeroed(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + IO_ALIGN_BYTES];
        let start = storage.as_ptr().align_offset(IO_ALIGN_BYTES);
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    fn bytes(&self, len: usize) -> &[u8] {
        &self.storage[self.start..self.start + len.min(self.len)]
    }

    fn bytes_mut(&mut self, len: usize) -> &mut [u8] {
        let end = self.start + len.min(self.len);
        &mut self.storage[self.start..end]
    }
}

fn offset_of(offset_bytes: u64) -> io::Result<i64> {
    i64::try_from(offset_bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("offset {offset_bytes} is beyond 2^63"),
        )
    })
}

fn with_context(op: &str, file: &BackendFile, offset_bytes: u64, error: Errno) -> io::Error {
    io::Error::new(
        io::Error::from(error).kind(),
        format!(
            "{op} {} at offset {offset_bytes}: {error}",
            file.path.display()
        ),
    )
}

/// `pwrite` all of `bytes` at `offset_bytes`.
pub fn write_all_at(file: &BackendFile, mut bytes: &[u8], mut offset_bytes: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match pwrite(&file.fd, bytes, offset_of(offset_bytes)?) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!(
                        "write {} at offset {offset_bytes}: the device took no bytes",
                        file.path.display()
                    ),
                ))
            }
            Ok(written) => {
                bytes = &bytes[written..];
                offset_bytes += written as u64;
            }
            Err(Errno::EINTR) => {}
            Err(error) => return Err(with_context("write", file, offset_bytes, error)),
        }
    }
    Ok(())
}

/// `pread` until `bytes` is full; an early end of the device is an error.
pub fn read_exact_at(
    file: &BackendFile,
    mut bytes: &mut [u8],
    mut offset_bytes: u64,
) -> io::Result<()> {
    while !bytes.is_empty() {
        match pread(&file.fd, bytes, offset_of(offset_bytes)?) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "read {} at offset {offset_bytes}: end of device",
                        file.path.display()
                    ),
                ))
            }
            Ok(read) => {
                bytes = &mut bytes[read..];
                offset_bytes += read as u64;
            }
            Err(Errno::EINTR) => {}
            Err(error) => return Err(with_context("read", file, offset_bytes, error)),
        }
    }
    Ok(())
}

/// Make `[offset_bytes, offset_bytes + len_bytes)` of `file` read as zeros: punch a hole
/// (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`, which frees the space of a sparse file and
/// discards with zeroing on a block device), or write zeros where the device cannot.
pub fn zero_range(file: &BackendFile, offset_bytes: u64, len_bytes: u64) -> io::Result<()> {
    if len_bytes == 0 {
        return Ok(());
    }
    let punched = fallocate(
        file.fd.as_raw_fd(),
        FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
        offset_of(offset_bytes)?,
        offset_of(len_bytes)?,
    );
    if punched.is_ok() {
        return Ok(());
    }
    let chunk = len_bytes.min(IO_CHUNK_BYTES) as usize;
    let zeros = AlignedBuf::zeroed(chunk);
    let mut done: u64 = 0;
    while done < len_bytes {
        let this = (len_bytes - done).min(chunk as u64) as usize;
        write_all_at(file, zeros.bytes(this), offset_bytes + done)?;
        done += this as u64;
    }
    Ok(())
}

/// Copy `len_bytes` from `from` at `from_offset_bytes` to `to` at `to_offset_bytes`.
pub fn copy_range(
    from: &BackendFile,
    from_offset_bytes: u64,
    to: &BackendFile,
    to_offset_bytes: u64,
    len_bytes: u64,
) -> io::Result<()> {
    let chunk = len_bytes.min(IO_CHUNK_BYTES) as usize;
    let mut buffer = AlignedBuf::zeroed(chunk);
    let mut done: u64 = 0;
    while done < len_bytes {
        let this = (len_bytes - done).min(chunk as u64) as usize;
        read_exact_at(from, buffer.bytes_mut(this), from_offset_bytes + done)?;
        write_all_at(to, buffer.bytes(this), to_offset_bytes + done)?;
        done += this as u64;
    }
    Ok(())
}

/// Make what was written to `file` durable.
pub fn sync(file: &BackendFile) -> io::Result<()> {
    loop {
        match fdatasync(file.fd.as_raw_fd()) {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(error) => return Err(with_context("fdatasync", file, 0, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::file_device;

    #[test]
    fn buffers_are_aligned() {
        for len in [512, 4096, 1 << 20] {
            let mut buffer = AlignedBuf::zeroed(len);
            assert_eq!(buffer.bytes(len).as_ptr() as usize % IO_ALIGN_BYTES, 0);
            assert_eq!(buffer.bytes_mut(len).len(), len);
            assert!(buffer.bytes(len).iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn zeroing_and_copying_move_the_right_bytes() {
        let device = file_device(4 << 20);
        let pattern: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
        write_all_at(&device, &pattern, 0).expect("write pattern");
        copy_range(&device, 0, &device, 2 << 20, 2 << 20).expect("copy");
        let mut copied = vec![0u8; 2 << 20];
        read_exact_at(&device, &mut copied, 2 << 20).expect("read copy");
        assert_eq!(copied, pattern);
        zero_range(&device, 4096, 8192).expect("zero");
        let mut head = vec![0xffu8; 16384];
        read_exact_at(&device, &mut head, 0).expect("read head");
        assert_eq!(&head[..4096], &pattern[..4096]);
        assert!(head[4096..12288].iter().all(|&b| b == 0));
        assert_eq!(&head[12288..], &pattern[12288..16384]);
        sync(&device).expect("sync");
    }

    #[test]
    fn reading_past_the_end_is_an_error_naming_the_device() {
        let device = file_device(8192);
        let error = copy_range(&device, 4096, &device, 0, 8192).expect_err("past the end");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            error
                .to_string()
                .contains(&device.path.display().to_string()),
            "{error}"
        );
    }
}
