//! The listening sockets of one reactor: one per portal, each with an accept armed on the ring.
//! Portals come and go at run time (`portal_add` / `portal_remove`): a removed portal's armed
//! accept is cancelled and its socket closed once the cancellation completes.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};

use io_uring::{opcode, types};
use lunar_uring::UserData;

use crate::net;
use crate::reactor::{Op, Reactor};

/// How long a listener waits before accepting again after the process ran out of
/// descriptors (or memory): the connections wait in the listen backlog meanwhile.
pub const ACCEPT_BACKOFF_MS: u64 = 100;

/// Accept errors that mean "no resources now": back off instead of retrying at once.
fn is_exhaustion(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}

pub struct Listener {
    /// Stable id carried by this listener's accept operations.
    id: u32,
    /// No accept is armed before this time (ms since reactor start): resources ran out.
    paused_until_ms: u64,
    /// Within an episode of resource exhaustion (logged once, when it starts and ends).
    exhausted: bool,
    fd: Option<OwnedFd>,
    pub(crate) addr: SocketAddr,
    /// The accept operation in flight, if any.
    accept: Option<UserData>,
    removing: bool,
}

/// The listeners of a reactor.
#[derive(Default)]
pub struct Listeners {
    list: Vec<Listener>,
    next_id: u32,
}

impl Listeners {
    pub fn add(&mut self, fd: OwnedFd) -> SocketAddr {
        let addr = net::local_addr(&fd).unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        self.next_id += 1;
        self.list.push(Listener {
            id: self.next_id,
            paused_until_ms: 0,
            exhausted: false,
            fd: Some(fd),
            addr,
            accept: None,
            removing: false,
        });
        addr
    }

    /// Addresses served (for SendTargets).
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.list.iter().filter(|l| !l.removing).map(|l| l.addr)
    }
}

impl Reactor {
    /// Keep an accept armed on every listener.
    pub(crate) fn arm_accepts(&mut self) {
        if self.shutting_down {
            return;
        }
        let now = self.now_ms();
        for index in 0..self.listeners.list.len() {
            let listener = &self.listeners.list[index];
            if listener.accept.is_some() || listener.removing || listener.paused_until_ms > now {
                continue;
            }
            let Some(fd) = listener.fd.as_ref().map(|f| f.as_raw_fd()) else {
                continue;
            };
            let id = listener.id;
            let entry =
                opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
                    .flags(libc::SOCK_CLOEXEC)
                    .build();
            // SAFETY: the listener fd stays open until its accept has completed (removal
            // cancels the accept and closes the fd only after the completion); no buffers.
            let op = unsafe { self.push_op(entry, Op::Accept(id)) };
            self.listeners.list[index].accept = op;
        }
    }

    /// An accept finished on listener `id`.
    pub(crate) fn on_accept_done(&mut self, id: u32, result: i32) {
        let Some(index) = self.listeners.list.iter().position(|l| l.id == id) else {
            return;
        };
        self.listeners.list[index].accept = None;
        if self.listeners.list[index].removing {
            if result >= 0 {
                self.close_fd_async(result);
            }
            let listener = self.listeners.list.remove(index);
            if let Some(fd) = listener.fd {
                self.close_fd_async(fd.into_raw_fd());
            }
            tracing::info!(reactor = self.id, portal = %listener.addr, "portal removed");
            return;
        }
        let now = self.now_ms();
        let listener = &mut self.listeners.list[index];
        if result < 0 && is_exhaustion(-result) {
            listener.paused_until_ms = now + ACCEPT_BACKOFF_MS;
            if !listener.exhausted {
                listener.exhausted = true;
                tracing::warn!(
                    reactor = self.id,
                    portal = %listener.addr,
                    "accept failed: {}; new connections wait in the backlog, retrying every \
                     {ACCEPT_BACKOFF_MS} ms",
                    std::io::Error::from_raw_os_error(-result)
                );
            }
            return;
        }
        if result >= 0 && listener.exhausted {
            listener.exhausted = false;
            tracing::info!(reactor = self.id, portal = %listener.addr, "accepting connections again");
        }
        self.on_accept(result);
    }

    pub(crate) fn add_listener(&mut self, fd: OwnedFd) {
        let addr = self.listeners.add(fd);
        tracing::info!(reactor = self.id, portal = %addr, "portal added");
    }

    pub(crate) fn remove_listener(&mut self, addr: SocketAddr) {
        let Some(index) = self
            .listeners
            .list
            .iter()
            .position(|l| l.addr == addr && !l.removing)
        else {
            return;
        };
        let listener = &mut self.listeners.list[index];
        listener.removing = true;
        match listener.accept {
            Some(accept) => {
                let entry = opcode::AsyncCancel::new(accept.0).build();
                // SAFETY: cancelling refers to no memory or descriptor of ours.
                let _ = unsafe { self.push_op(entry, Op::Ignore) };
            }
            None => {
                let listener = self.listeners.list.remove(index);
                if let Some(fd) = listener.fd {
                    self.close_fd_async(fd.into_raw_fd());
                }
            }
        }
    }

    /// Close a descriptor we own through the ring.
    pub(crate) fn close_fd_async(&mut self, raw: i32) {
        let entry = opcode::Close::new(types::Fd(raw)).build();
        // SAFETY: ownership of `raw` moves to the close operation; nothing else uses it.
        if unsafe { self.push_op(entry, Op::Ignore) }.is_none() {
            // SAFETY: the close could not be queued; we still own `raw` and close it here.
            drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
        }
    }
}
