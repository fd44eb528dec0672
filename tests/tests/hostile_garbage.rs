//! Clients that send garbage: random bytes (before and after a valid login), and PDUs whose
//! DataSegmentLength is huge, each followed by a stream of bytes. lunard must drop every one
//! of them with a log line naming the peer and the reason, close their sockets, not reserve
//! memory from an announced length, and keep serving a well-behaved client meanwhile (see
//! `lunar_tests::hostile` for the checks and the memory budget).

use std::net::SocketAddr;
use std::thread;

use lunar_tests::hostile::{
    MemoryBudget, RawSocket, Rig, Xorshift, DROP_TIMEOUT, LOGGED_IN_CONNECTION_KIB,
    UNLOGGED_CONNECTION_KIB,
};
use lunar_tests::initiator::pdu::{op, Pdu};
use lunar_tests::initiator::Session;

/// Connections sending random bytes, per test.
const RANDOM_PEERS: u64 = 24;
/// Random bytes each of them sends (when lunard takes them).
const RANDOM_BYTES_PER_PEER: usize = 64 * 1024;
/// Bytes sent after a huge DataSegmentLength, as if the data followed.
const BYTES_AFTER_HUGE_HEADER: usize = 4 << 20;
/// The largest DataSegmentLength the 24-bit field can announce.
const HUGE_LEN_BYTES: u32 = (1 << 24) - 1;

/// Runs `attack` for each of `count` peers in parallel; each returns the port of a connection
/// lunard must have dropped. Panics (through the rig) with every error.
fn attack_in_parallel(
    rig: &Rig,
    count: u64,
    attack: impl Fn(SocketAddr, u64) -> Result<u16, String> + Sync,
) -> Vec<u16> {
    let addr = rig.addr();
    let results: Vec<Result<u16, String>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..count)
            .map(|peer| {
                let attack = &attack;
                scope.spawn(move || attack(addr, peer))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err("attacker panicked".into()))
            })
            .collect()
    });
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if !errors.is_empty() {
        rig.fail(&format!("{} attackers failed: {errors:#?}", errors.len()));
    }
    results.into_iter().flatten().collect()
}

/// Sends `bytes` on `socket` as long as lunard takes them, then waits for lunard to end the
/// connection; returns the socket's port.
fn send_and_expect_drop(mut socket: RawSocket, bytes: &[u8], what: &str) -> Result<u16, String> {
    socket.send_until_refused(bytes, 4096);
    let end = socket.wait_for_close(DROP_TIMEOUT);
    if end.ended() {
        Ok(socket.port())
    } else {
        Err(format!(
            "{what} (port {}): lunard kept the connection open for {DROP_TIMEOUT:?} ({end:?})",
            socket.port()
        ))
    }
}

fn logged_in_socket(addr: SocketAddr, iqn: &str) -> Result<RawSocket, String> {
    let session = Session::login(addr, iqn).map_err(|err| format!("login: {err}"))?;
    RawSocket::from_stream(session.into_stream()).map_err(|err| format!("socket: {err}"))
}

#[test]
fn random_bytes_before_login_cost_only_their_sender() {
    let rig = Rig::start("garbage-before-login");
    let ports = attack_in_parallel(&rig, RANDOM_PEERS, |addr, peer| {
        let bytes = Xorshift::new(0x5eed_0000 + peer).bytes(RANDOM_BYTES_PER_PEER);
        let socket = RawSocket::connect(addr).map_err(|err| format!("connect: {err}"))?;
        send_and_expect_drop(socket, &bytes, &format!("random peer {peer}"))
    });
    rig.assert_drops_logged(&ports, "random bytes before login");
    rig.finish(MemoryBudget {
        connections: RANDOM_PEERS,
        per_connection_kib: UNLOGGED_CONNECTION_KIB,
    });
}

#[test]
fn random_bytes_after_login_cost_only_their_sender() {
    let rig = Rig::start("garbage-after-login");
    let iqn = rig.iqn().to_string();
    let ports = attack_in_parallel(&rig, RANDOM_PEERS, |addr, peer| {
        let bytes = Xorshift::new(0xfeed_0000 + peer).bytes(RANDOM_BYTES_PER_PEER);
        let socket = logged_in_socket(addr, &iqn)?;
        send_and_expect_drop(socket, &bytes, &format!("random peer {peer} after login"))
    });
    rig.assert_drops_logged(&ports, "random bytes after login");
    rig.finish(MemoryBudget {
        connections: RANDOM_PEERS,
        per_connection_kib: LOGGED_IN_CONNECTION_KIB,
    });
}

/// A BHS with `opcode` announcing `len_bytes` of data (nothing else set).
fn huge_header(opcode: u8, immediate: bool, len_bytes: u32) -> Vec<u8> {
    let mut pdu = Pdu::new(opcode, immediate);
    pdu.bhs[1] = 0x80;
    pdu.bhs[5..8].copy_from_slice(&len_bytes.to_be_bytes()[1..]);
    pdu.set_u32(16, 1);
    pdu.bhs.to_vec()
}

/// The header, then as much of its announced data as lunard takes.
fn header_then_data(header: Vec<u8>) -> Vec<u8> {
    let mut bytes = header;
    bytes.resize(bytes.len() + BYTES_AFTER_HUGE_HEADER, 0x5a);
    bytes
}

#[test]
fn huge_data_segment_lengths_are_refused_without_reserving_memory() {
    let rig = Rig::start("huge-segment");
    let iqn = rig.iqn().to_string();
    // Before login: a Login Request and a SCSI Command announcing 16 MiB; after login: a SCSI
    // Command, a NOP-Out and a Text Request announcing 16 MiB, and a Data-Out announcing one
    // byte more than lunard's MaxRecvDataSegmentLength. Four peers of each kind.
    const KINDS: u64 = 6;
    let ports = attack_in_parallel(&rig, 4 * KINDS, |addr, peer| {
        let kind = peer % KINDS;
        let what = format!("huge data segment, kind {kind}, peer {peer}");
        let (socket, header) = match kind {
            0 => (
                RawSocket::connect(addr).map_err(|e| e.to_string())?,
                huge_header(op::LOGIN_REQUEST, true, HUGE_LEN_BYTES),
            ),
            1 => (
                RawSocket::connect(addr).map_err(|e| e.to_string())?,
                huge_header(op::SCSI_COMMAND, false, HUGE_LEN_BYTES),
            ),
            2 => (
                logged_in_socket(addr, &iqn)?,
                huge_header(op::SCSI_COMMAND, false, HUGE_LEN_BYTES),
            ),
            3 => (
                logged_in_socket(addr, &iqn)?,
                huge_header(op::NOP_OUT, true, HUGE_LEN_BYTES),
            ),
            4 => (
                logged_in_socket(addr, &iqn)?,
                huge_header(0x04, true, HUGE_LEN_BYTES),
            ),
            _ => {
                let session = Session::login(addr, &iqn).map_err(|e| format!("login: {e}"))?;
                let over = session.target_max_data_segment_bytes() + 1;
                let socket =
                    RawSocket::from_stream(session.into_stream()).map_err(|e| e.to_string())?;
                (socket, huge_header(op::DATA_OUT, false, over))
            }
        };
        send_and_expect_drop(socket, &header_then_data(header), &what)
    });
    rig.assert_drops_logged(&ports, "huge data segment lengths");
    rig.finish(MemoryBudget {
        connections: 4 * KINDS,
        per_connection_kib: LOGGED_IN_CONNECTION_KIB,
    });
}
