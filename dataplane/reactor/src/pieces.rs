//! Backend operations of a command on the ring: read, write (FUA through RWF_DSYNC), fdatasync
//! and fallocate (hole punching for UNMAP), and their completions: short transfers are
//! resubmitted for the remainder, transient errors retried, real errors mark the command failed.
//!
//! Reads land in the command's pool buffer (registered with the ring). Plain writes of 16 KiB
//! and more go out of the host's data-out, whose storage the iSCSI state machine keeps aligned
//! for `O_DIRECT`, so their data is copied once in user space (from the receive buffer) between
//! the socket and the device; smaller ones are copied into a pool buffer first (see
//! `DIRECT_WRITE_MIN_BYTES`).

use io_uring::{opcode, types};
use lunar_uring::{with_file, BufId, BufPool, FileRef, UserData};
use lunar_volume::LegRef;

use crate::reactor::{Op, Reactor};

/// fallocate mode that deallocates a range and keeps the file size (reads return zeros).
pub const PUNCH_HOLE_MODE: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;

/// What one backend operation does.
#[derive(Debug, Clone, Copy)]
pub enum PieceKind {
    Read,
    Write { fua: bool },
    Flush,
    Fallocate { mode: i32 },
}

/// One backend operation of a command (resubmitted for the remainder after a short transfer).
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    pub kind: PieceKind,
    /// The device, as the ring names it.
    pub file: FileRef,
    pub device_offset_bytes: u64,
    /// Offset in the chunk's bytes (in the command's buffer, or in its data-out from the
    /// chunk's start).
    pub buf_offset_bytes: usize,
    pub len_bytes: usize,
    /// The mirror leg the bytes belong to: a failure takes the leg out instead of failing
    /// the command.
    pub mirror_leg: Option<LegRef>,
}

impl Reactor {
    pub(crate) fn submit_piece(&mut self, id: UserData, buf: Option<BufId>, piece: Piece) {
        let fixed = self.ring.fixed_buffers();
        let entry = with_file!(piece.file, |fd| match (piece.kind, buf) {
            (PieceKind::Flush, _) => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build(),
            (PieceKind::Fallocate { mode }, _) => {
                opcode::Fallocate::new(fd, piece.len_bytes as u64)
                    .offset(piece.device_offset_bytes)
                    .mode(mode)
                    .build()
            }
            (PieceKind::Read, Some(buf)) => {
                let ptr = self.ring.bufs_mut().ptr(buf, piece.buf_offset_bytes);
                let len = piece.len_bytes as u32;
                if fixed {
                    opcode::ReadFixed::new(fd, ptr, len, BufPool::registered_index(buf))
                        .offset(piece.device_offset_bytes)
                        .build()
                } else {
                    opcode::Read::new(fd, ptr, len)
                        .offset(piece.device_offset_bytes)
                        .build()
                }
            }
            (PieceKind::Write { fua }, Some(buf)) => {
                let ptr = self.ring.bufs_mut().ptr(buf, piece.buf_offset_bytes);
                let len = piece.len_bytes as u32;
                let rw_flags = if fua { libc::RWF_DSYNC } else { 0 };
                if fixed {
                    opcode::WriteFixed::new(fd, ptr, len, BufPool::registered_index(buf))
                        .offset(piece.device_offset_bytes)
                        .rw_flags(rw_flags)
                        .build()
                } else {
                    opcode::Write::new(fd, ptr, len)
                        .offset(piece.device_offset_bytes)
                        .rw_flags(rw_flags)
                        .build()
                }
            }
            (PieceKind::Write { fua }, None) => {
                let Some(ptr) = self.cmds.get(id).and_then(|cmd| cmd.data_out_piece(&piece)) else {
                    self.on_backend(id, piece, -libc::EINVAL);
                    return;
                };
                let rw_flags = if fua { libc::RWF_DSYNC } else { 0 };
                opcode::Write::new(fd, ptr, piece.len_bytes as u32)
                    .offset(piece.device_offset_bytes)
                    .rw_flags(rw_flags)
                    .build()
            }
            (_, None) => {
                self.on_backend(id, piece, -libc::EINVAL);
                return;
            }
        });
        // SAFETY: a pool buffer stays lent to this command until its last piece completes; a
        // command's data-out is neither changed nor dropped while it has pieces in flight
        // (it is recycled when the command finishes); the device is kept open by the pinned
        // table generation, and keeps its file-table slot while that generation is live.
        if unsafe { self.push_op(entry, Op::Backend { cmd: id, piece }) }.is_none() {
            // Space was checked before the chunk started; treat a failure as an I/O error
            // rather than losing the piece.
            self.on_backend(id, piece, -libc::EBUSY);
        }
    }

    pub(crate) fn on_backend(&mut self, id: UserData, piece: Piece, result: i32) {
        let Some(cmd) = self.cmds.get_mut(id) else {
            return;
        };
        let buf = cmd.buf;
        if result == -libc::EAGAIN || result == -libc::EINTR {
            self.submit_piece(id, buf, piece);
            return;
        }
        let moves_bytes = matches!(piece.kind, PieceKind::Read | PieceKind::Write { .. });
        if result < 0 || (moves_bytes && result == 0 && piece.len_bytes > 0) {
            tracing::warn!(
                reactor = self.id,
                file = ?piece.file,
                offset = piece.device_offset_bytes,
                len = piece.len_bytes,
                kind = ?piece.kind,
                leg = ?piece.mirror_leg,
                "backend I/O failed: {}",
                if result < 0 {
                    std::io::Error::from_raw_os_error(-result).to_string()
                } else {
                    "unexpected end of file".to_string()
                }
            );
            match (piece.kind, piece.mirror_leg) {
                (PieceKind::Read, Some(leg)) => self.report_failed_read_leg(id, leg),
                (PieceKind::Write { .. }, Some(leg)) => {
                    let cmd = self.cmds.get_mut(id).expect("live");
                    cmd.failed_write_leg.get_or_insert(leg);
                }
                _ => self.cmds.get_mut(id).expect("live").failed = true,
            }
        } else if moves_bytes && (result as usize) < piece.len_bytes {
            let n = result as usize;
            let rest = Piece {
                device_offset_bytes: piece.device_offset_bytes + n as u64,
                buf_offset_bytes: piece.buf_offset_bytes + n,
                len_bytes: piece.len_bytes - n,
                ..piece
            };
            self.submit_piece(id, buf, rest);
            return;
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        if let (PieceKind::Read, Some(leg)) = (piece.kind, piece.mirror_leg) {
            let uid = cmd.volume_uid;
            self.balancers.entry(uid).or_default().read_completed(leg);
        }
        let cmd = self.cmds.get_mut(id).expect("live");
        cmd.pending -= 1;
        if cmd.pending == 0 && !cmd.submitting {
            self.complete_step(id);
        }
    }
}
