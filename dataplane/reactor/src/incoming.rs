//! A connection's receive side. With the ring's provided buffers (see
//! `lunar_uring::recv_buffers`), one multishot receive stays armed for the life of the
//! connection: the kernel fills a shared buffer whenever bytes arrive and the reactor parses
//! them and gives the buffer back, with no submission per receive and no receive memory per
//! connection. When the state machine stops wanting input (backpressure) or the connection
//! closes, the receive is cancelled and armed again once input is wanted. Without provided
//! buffers (kernels before 5.19), a single-shot receive into a buffer of the connection's own.

use io_uring::{cqueue, opcode};
use lunar_iscsi::CloseReason;
use lunar_uring::{with_file, UserData, RECV_BUFFER_GROUP};

use crate::conn::CatalogView;
use crate::reactor::{Op, Reactor};

/// Bytes one receive may bring in: the size of each provided buffer, and of a connection's own
/// buffer without them.
pub const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// Provided receive buffers per reactor, shared by its connections.
pub const RECV_BUFFERS: u16 = 128;

#[derive(Default)]
pub struct Incoming {
    /// The connection's own buffer, only without provided buffers.
    own_buf: Option<Box<[u8]>>,
    /// A receive is in flight (a multishot one until its last completion).
    pub armed: bool,
    /// The armed multishot receive, to cancel it.
    multishot: Option<UserData>,
    cancel_sent: bool,
}

impl Reactor {
    /// Keep a receive armed while the connection wants input; cancel an armed multishot
    /// receive when it does not.
    pub(crate) fn keep_receiving(&mut self, id: UserData) {
        let provided = self.ring.recv_buffers().is_some();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let unsent = conn.out.unsent_bytes();
        let wanted = !conn.is_closing() && conn.iscsi.wants_recv_while_sending(unsent);
        let file = conn.file();
        let incoming = &mut conn.incoming;
        if incoming.armed {
            if let (false, Some(recv), false) = (wanted, incoming.multishot, incoming.cancel_sent) {
                let entry = opcode::AsyncCancel::new(recv.0).build();
                // SAFETY: a cancellation refers to no buffer.
                if unsafe { self.push_op(entry, Op::Ignore) }.is_some() {
                    self.conns.get_mut(id).expect("live").incoming.cancel_sent = true;
                } else {
                    self.starved_conns.push(id);
                }
            }
            return;
        }
        if !wanted {
            return;
        }
        let entry = if provided {
            with_file!(file, |fd| opcode::RecvMulti::new(fd, RECV_BUFFER_GROUP)
                .build())
        } else {
            let buf = incoming
                .own_buf
                .get_or_insert_with(|| vec![0u8; RECV_BUFFER_BYTES].into_boxed_slice());
            with_file!(file, |fd| opcode::Recv::new(
                fd,
                buf.as_mut_ptr(),
                buf.len() as u32
            )
            .build())
        };
        // SAFETY: provided buffers belong to the ring; a connection's own buffer is boxed,
        // owned by it and not read while `armed` is set; the connection (and its fd) lives
        // until no socket operation is armed.
        match unsafe { self.push_op(entry, Op::Recv(id)) } {
            Some(recv) => {
                let incoming = &mut self.conns.get_mut(id).expect("live").incoming;
                incoming.armed = true;
                incoming.multishot = provided.then_some(recv);
            }
            None => self.starved_conns.push(id),
        }
    }

    /// A receive completed: parse what it brought, give its buffer back, and when it was the
    /// receive's last completion, arm again (or close on end of stream and errors).
    pub(crate) fn on_recv(&mut self, id: UserData, result: i32, flags: u32) {
        let now = self.now_ms();
        let more = cqueue::more(flags);
        let provided = cqueue::buffer_select(flags);
        let mut actions = std::mem::take(&mut self.actions);
        let Reactor {
            conns,
            ring,
            tables,
            ..
        } = self;
        if let Some(conn) = conns.get_mut(id) {
            if !more {
                conn.incoming.armed = false;
                conn.incoming.multishot = None;
                conn.incoming.cancel_sent = false;
            }
            if result > 0 && !conn.is_closing() {
                let len = result as usize;
                let bytes = match (provided, ring.recv_buffers(), &conn.incoming.own_buf) {
                    (Some(buffer), Some(buffers), _) => buffers.get(buffer, len),
                    (None, _, Some(own)) => &own[..len.min(own.len())],
                    _ => &[],
                };
                let catalog = CatalogView {
                    table: tables.current(),
                    portals: &conn.portals,
                };
                conn.iscsi.on_recv(bytes, &catalog, now, &mut actions);
            }
        }
        if let (Some(buffer), Some(buffers)) = (provided, ring.recv_buffers_mut()) {
            buffers.recycle(buffer);
        }
        if self.conns.get(id).is_none_or(|c| c.is_closing()) {
            self.actions = actions;
            self.pump(id);
            return;
        }
        self.apply_actions(id, &mut actions);
        self.actions = actions;
        if result <= 0 && !more {
            let quiet = [libc::EAGAIN, libc::EINTR, libc::ENOBUFS, libc::ECANCELED];
            if result < 0 && quiet.contains(&-result) {
                self.pump(id);
                return;
            }
            let reason = if result == 0 {
                CloseReason::PeerClosed
            } else {
                CloseReason::ProtocolError(format!(
                    "receive failed: {}",
                    std::io::Error::from_raw_os_error(-result)
                ))
            };
            self.begin_close(id, reason, true);
            return;
        }
        self.pump(id);
    }
}
