//! The hostile side's tools: a plain TCP connection that sends whatever it is given and then
//! watches how the peer ends it, and a small seeded generator of random bytes (the same seed
//! gives the same bytes, so a failure can be replayed).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long one connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may block before the peer is considered not to be reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest single wait of a read while watching for the end of a connection.
const READ_SLICE: Duration = Duration::from_millis(500);

/// A deterministic xorshift64* generator.
#[derive(Debug, Clone)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Xorshift {
        Xorshift((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (`0` when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64().checked_rem(bound).unwrap_or(0)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// How the peer ended (or did not end) a connection that was being watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEnd {
    /// An orderly close (FIN).
    Closed {
        /// Bytes the peer sent before closing.
        received_bytes: u64,
    },
    /// A reset (RST), as when unread data was still queued at the peer's close.
    Reset {
        /// Bytes the peer sent before the reset.
        received_bytes: u64,
    },
    /// Still open when the watch ended.
    StillOpen {
        /// Bytes the peer sent meanwhile.
        received_bytes: u64,
    },
}

impl PeerEnd {
    /// True if the peer closed or reset the connection.
    pub fn ended(&self) -> bool {
        !matches!(self, PeerEnd::StillOpen { .. })
    }
}

/// A TCP connection that speaks no protocol of its own.
#[derive(Debug)]
pub struct RawSocket {
    stream: TcpStream,
    port: u16,
}

impl RawSocket {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> io::Result<RawSocket> {
        RawSocket::from_stream(TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?)
    }

    /// Wraps a connected stream (e.g. the socket of a session that logged in).
    pub fn from_stream(stream: TcpStream) -> io::Result<RawSocket> {
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let port = stream.local_addr()?.port();
        Ok(RawSocket { stream, port })
    }

    /// The local port: lunard logs it as the peer's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `bytes` in pieces of `chunk_len` as long as the peer takes them; returns how many
    /// bytes went out before the peer closed, reset or stopped reading.
    pub fn send_until_refused(&mut self, bytes: &[u8], chunk_len: usize) -> u64 {
        let mut sent = 0u64;
        for chunk in bytes.chunks(chunk_len.max(1)) {
            if self.stream.write_all(chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    }

    /// Reads and discards what the peer sends until it closes or resets the connection, or
    /// until `timeout` passes.
    pub fn wait_for_close(&mut self, timeout: Duration) -> PeerEnd {
        let deadline = Instant::now() + timeout;
        let mut received_bytes = 0u64;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return PeerEnd::StillOpen { received_bytes };
            }
            let slice = (deadline - now)
                .min(READ_SLICE)
                .max(Duration::from_millis(1));
            if self.stream.set_read_timeout(Some(slice)).is_err() {
                return PeerEnd::Reset { received_bytes };
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return PeerEnd::Closed { received_bytes },
                Ok(len) => received_bytes += len as u64,
                Err(err) => match err.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => {}
                    _ => return PeerEnd::Reset { received_bytes },
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_generator_is_repeatable_and_spread() {
        let a = Xorshift::new(1).bytes(4096);
        assert_eq!(a, Xorshift::new(1).bytes(4096));
        assert_ne!(a, Xorshift::new(2).bytes(4096));
        assert_eq!(Xorshift::new(0).bytes(13).len(), 13);
        let distinct: std::collections::HashSet<u8> = a.iter().copied().collect();
        assert!(
            distinct.len() > 200,
            "only {} distinct byte values",
            distinct.len()
        );
        let mut rng = Xorshift::new(3);
        assert!((0..100).all(|_| rng.below(7) < 7));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn sees_an_orderly_close_and_a_silent_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut quiet = RawSocket::connect(addr).expect("connect");
        let (_quiet_peer, _) = listener.accept().expect("accept");
        assert_eq!(
            quiet.wait_for_close(Duration::from_millis(200)),
            PeerEnd::StillOpen { received_bytes: 0 }
        );

        let mut closing = RawSocket::connect(addr).expect("connect");
        let (mut peer, _) = listener.accept().expect("accept");
        peer.write_all(b"bye").expect("write");
        drop(peer);
        let end = closing.wait_for_close(Duration::from_secs(10));
        assert_eq!(end, PeerEnd::Closed { received_bytes: 3 });
        assert!(end.ended());
        assert_ne!(closing.port(), 0);
    }
}
