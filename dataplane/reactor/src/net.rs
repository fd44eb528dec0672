//! Listening sockets: one per reactor on the same address with SO_REUSEPORT, so the kernel
//! spreads incoming connections over the reactors and each accepts on its own ring.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Backlog of pending connections per listener.
pub const LISTEN_BACKLOG: i32 = 1024;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int with its exact size.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is suitably aligned.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(sin6.sin6_port))))
        }
        _ => None,
    }
}

/// Fail with EADDRINUSE if another process already listens on `addr`: our listeners share
/// their port with SO_REUSEPORT, which would otherwise let a second daemon silently split the
/// connections with the first. (Port 0 is always free.)
pub fn check_port_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is checked and owned below.
    let raw = check(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` is a fresh descriptor nobody else owns; dropping it closes the probe.
    let _probe = unsafe { OwnedFd::from_raw_fd(raw) };
    set_int_opt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    check(unsafe { libc::bind(raw, (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    Ok(())
}

/// A non-blocking-agnostic TCP listener bound with SO_REUSEADDR and SO_REUSEPORT.
pub fn listen(addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is checked and owned below.
    let raw = check(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_int_opt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    set_int_opt(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    check(unsafe { libc::bind(raw, (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    // SAFETY: listen on a bound socket we own.
    check(unsafe { libc::listen(raw, LISTEN_BACKLOG) })?;
    Ok(fd)
}

/// The address a socket is bound to (the real port after binding port 0).
pub fn local_addr(fd: &impl AsRawFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero sockaddr_storage is valid; getsockname writes at most `len` bytes.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: pointers to live locals of the advertised sizes.
    check(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    from_sockaddr(&storage).ok_or_else(|| io::Error::other("unknown address family"))
}

/// Latency over batching for iSCSI: disable Nagle on an accepted connection.
pub fn set_nodelay(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_someone_listens_on_is_not_free() {
        // Once closed, the port is free unless another test running meanwhile takes it (as
        // the local port of a connection, say): a few ports are tried, one must come free.
        let mut freed = Vec::new();
        for _ in 0..5 {
            let first = listen("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = local_addr(&first).unwrap();
            let error = check_port_free(addr).unwrap_err();
            assert_eq!(error.raw_os_error(), Some(libc::EADDRINUSE));
            drop(first);
            freed.push(check_port_free(addr));
            if freed.last().unwrap().is_ok() {
                return;
            }
        }
        panic!("no port was free once closed: {freed:?}");
    }

    #[test]
    fn two_listeners_share_one_port() {
        let first = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = local_addr(&first).unwrap();
        assert_ne!(addr.port(), 0);
        let second = listen(addr).unwrap();
        assert_eq!(local_addr(&second).unwrap(), addr);
        let client = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
    }
}
