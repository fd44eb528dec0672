//! What a connection is sending: the bytes taken from its iSCSI state machine and the read data
//! its responses borrow from the I/O buffer pool (Data-In goes out straight from the buffer
//! the backend read into, gathered with the headers around it in one sendmsg). A borrowed
//! buffer goes back to the pool only once every byte that refers to it has been sent, or the
//! connection is freed with no send in flight.

use lunar_iscsi::{BorrowedData, Connection};
use lunar_uring::{BufId, BufPool};

/// Most pieces one sendmsg gathers (the kernel's UIO_MAXIOV); a longer stream goes out in
/// several sends.
pub const SEND_PIECES_MAX: usize = 1024;

pub struct Outgoing {
    /// The bytes taken from the state machine, without the borrowed data.
    bytes: Vec<u8>,
    /// Borrowed data segments of `bytes`' stream, in order.
    borrowed: Vec<BorrowedData>,
    /// Bytes of the whole stream (`bytes` and `borrowed`).
    total: usize,
    /// Bytes of the stream sent so far.
    done: usize,
    /// Buffers the stream being sent refers to.
    held: Vec<BufId>,
    /// Buffers the state machine's queue refers to (they join `held` when it is taken).
    queued: Vec<BufId>,
    /// The pieces of the armed sendmsg and its header; stable while it is in flight.
    iov: Vec<libc::iovec>,
    msg: Box<libc::msghdr>,
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing {
            bytes: Vec::new(),
            borrowed: Vec::new(),
            total: 0,
            done: 0,
            held: Vec::new(),
            queued: Vec::new(),
            iov: Vec::new(),
            // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
            msg: Box::new(unsafe { std::mem::zeroed() }),
        }
    }
}

/// The next send of a connection.
pub enum SendPlan {
    /// One contiguous range: a plain send.
    Contiguous { ptr: *const u8, len: u32 },
    /// Several pieces: a sendmsg over this header (its iovecs live in the [`Outgoing`]).
    Gathered { msg: *const libc::msghdr },
}

impl Outgoing {
    /// Bytes taken from the state machine and not sent yet.
    pub fn unsent_bytes(&self) -> usize {
        self.total - self.done
    }

    /// A response queued in the state machine refers to `buffer`: keep it until sent.
    pub fn keep_until_sent(&mut self, buffer: BufId) {
        self.queued.push(buffer);
    }

    /// When everything taken so far is sent: release the buffers it borrowed and take what
    /// the state machine queued since.
    pub fn refill(&mut self, iscsi: &mut Connection, pool: &mut BufPool) {
        if self.done < self.total {
            return;
        }
        for buffer in self.held.drain(..) {
            pool.free(buffer);
        }
        self.bytes.clear();
        self.borrowed.clear();
        self.done = 0;
        iscsi.take_send(&mut self.bytes, &mut self.borrowed);
        self.total = self.bytes.len() + self.borrowed.iter().map(|b| b.len_bytes).sum::<usize>();
        std::mem::swap(&mut self.held, &mut self.queued);
    }

    /// `n` more bytes of the stream were sent.
    pub fn sent(&mut self, n: usize) {
        self.done = (self.done + n).min(self.total);
    }

    /// What to send next, if anything: the pointers stay valid until the send completes
    /// (nothing here changes while a send is armed).
    pub fn plan(&mut self, pool: &mut BufPool) -> Option<SendPlan> {
        if self.done == self.total {
            return None;
        }
        if self.borrowed.is_empty() {
            let rest = &self.bytes[self.done..];
            return Some(SendPlan::Contiguous {
                ptr: rest.as_ptr(),
                len: rest.len().min(u32::MAX as usize) as u32,
            });
        }
        self.iov.clear();
        let mut skip = self.done;
        let mut at = 0;
        let mut push = |iov: &mut Vec<libc::iovec>, ptr: *mut u8, len: usize| {
            if skip >= len {
                skip -= len;
                return;
            }
            if iov.len() < SEND_PIECES_MAX {
                iov.push(libc::iovec {
                    // SAFETY: `skip < len`, so the pointer stays inside the piece.
                    iov_base: unsafe { ptr.add(skip) }.cast(),
                    iov_len: len - skip,
                });
            }
            skip = 0;
        };
        for piece in &self.borrowed {
            let before = &mut self.bytes[at..piece.at_bytes];
            push(&mut self.iov, before.as_mut_ptr(), before.len());
            at = piece.at_bytes;
            let Some(buffer) = BufId::from_token(piece.buffer) else {
                continue;
            };
            let data = pool.ptr(buffer, piece.offset_bytes);
            push(&mut self.iov, data, piece.len_bytes);
        }
        let after = &mut self.bytes[at..];
        push(&mut self.iov, after.as_mut_ptr(), after.len());
        self.iov.retain(|piece| piece.iov_len > 0);
        self.msg.msg_iov = self.iov.as_mut_ptr();
        self.msg.msg_iovlen = self.iov.len() as _;
        Some(SendPlan::Gathered { msg: &*self.msg })
    }

    /// The connection is freed (no send in flight): every buffer goes back to the pool.
    pub fn release(&mut self, pool: &mut BufPool) {
        for buffer in self.held.drain(..).chain(self.queued.drain(..)) {
            pool.free(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a plan points at, in order.
    fn planned(plan: &SendPlan) -> Vec<u8> {
        match *plan {
            // SAFETY: the test keeps the Outgoing and the pool alive and unchanged meanwhile.
            SendPlan::Contiguous { ptr, len } => unsafe {
                std::slice::from_raw_parts(ptr, len as usize).to_vec()
            },
            SendPlan::Gathered { msg } => {
                // SAFETY: as above; the header points at the Outgoing's iovecs.
                let msg = unsafe { &*msg };
                let iov = unsafe { std::slice::from_raw_parts(msg.msg_iov, msg.msg_iovlen) };
                iov.iter()
                    .flat_map(|piece| {
                        // SAFETY: every piece points into the stream's bytes or a buffer.
                        unsafe {
                            std::slice::from_raw_parts(piece.iov_base as *const u8, piece.iov_len)
                        }
                        .to_vec()
                    })
                    .collect()
            }
        }
    }

    #[test]
    fn gathered_pieces_are_the_stream_and_resume_after_a_short_send() {
        let mut pool = BufPool::new(2, 4096, 1, 8192).unwrap();
        let buffer = pool.alloc(4096).unwrap();
        for (i, byte) in pool.slice_mut(buffer).iter_mut().enumerate() {
            *byte = i as u8;
        }
        let mut out = Outgoing::default();
        out.bytes = b"HEAD1|pad1|HEAD2|tail".to_vec();
        out.borrowed = vec![
            BorrowedData {
                at_bytes: 6,
                buffer: buffer.token(),
                offset_bytes: 0,
                len_bytes: 10,
            },
            BorrowedData {
                at_bytes: 17,
                buffer: buffer.token(),
                offset_bytes: 10,
                len_bytes: 5,
            },
        ];
        out.total = out.bytes.len() + 15;
        let data: Vec<u8> = (0..15).collect();
        let mut stream = b"HEAD1|".to_vec();
        stream.extend_from_slice(&data[..10]);
        stream.extend_from_slice(b"pad1|HEAD2|");
        stream.extend_from_slice(&data[10..]);
        stream.extend_from_slice(b"tail");
        let plan = out.plan(&mut pool).unwrap();
        assert_eq!(planned(&plan), stream);
        for short in [3, 6, 9, 16, 27, 30] {
            let mut resumed = Outgoing {
                bytes: out.bytes.clone(),
                borrowed: out.borrowed.clone(),
                total: out.total,
                ..Outgoing::default()
            };
            resumed.sent(short);
            let plan = resumed.plan(&mut pool).unwrap();
            assert_eq!(planned(&plan), stream[short..], "after {short} bytes");
        }
        out.sent(stream.len());
        assert!(out.plan(&mut pool).is_none());
        assert_eq!(out.unsent_bytes(), 0);
    }

    #[test]
    fn buffers_go_back_once_their_bytes_are_sent() {
        let mut pool = BufPool::new(2, 4096, 1, 8192).unwrap();
        let buffer = pool.alloc(4096).unwrap();
        let mut out = Outgoing::default();
        out.keep_until_sent(buffer);
        out.total = 10;
        out.release(&mut pool);
        assert_eq!(pool.available(lunar_uring::BufClass::Small), 2);
        // Held by the stream being sent: kept until all of it is sent.
        let buffer = pool.alloc(4096).unwrap();
        out.held.push(buffer);
        let mut iscsi = Connection::new(lunar_iscsi::ConnConfig::default(), 0);
        out.sent(4);
        assert_eq!(out.unsent_bytes(), 6);
        out.refill(&mut iscsi, &mut pool);
        assert_eq!(
            pool.available(lunar_uring::BufClass::Small),
            1,
            "still sending"
        );
        out.sent(6);
        out.refill(&mut iscsi, &mut pool);
        assert_eq!(
            pool.available(lunar_uring::BufClass::Small),
            2,
            "freed once sent"
        );
    }
}
