//! Slowloris: clients that stop in the middle of a PDU and never send the rest, or trickle a
//! login one byte at a time. lunard must not wait for them forever: each is dropped (by the
//! login timeout before login, by the keep-alive or the Data-Out timeout after), with a log
//! line, its socket closed, while a well-behaved client keeps being served.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use lunar_tests::hostile::{MemoryBudget, RawSocket, Rig, DROP_TIMEOUT, LOGGED_IN_CONNECTION_KIB};
use lunar_tests::initiator::keys::encode_keys;
use lunar_tests::initiator::pdu::{op, Pdu};
use lunar_tests::initiator::{scsi, Session, INITIATOR_NAME};

/// Pause between two bytes of the trickled login.
const TRICKLE_INTERVAL: Duration = Duration::from_millis(250);
/// A write whose data is left half sent: blocks at [`lunar_tests::hostile::HOSTILE_LBA`].
const STALLED_WRITE_BLOCKS: u32 = 128;

/// A whole Login Request PDU (security stage to operational stage) for `iqn`.
fn login_request(iqn: &str) -> Vec<u8> {
    let mut pdu = Pdu::new(op::LOGIN_REQUEST, true);
    pdu.bhs[1] = 0x81;
    pdu.bhs[8] = 0x80;
    pdu.bhs[13] = 0x77;
    pdu.set_u32(16, 1);
    pdu.set_u32(24, 1);
    pdu.set_data(encode_keys(&[
        ("InitiatorName", INITIATOR_NAME),
        ("TargetName", iqn),
        ("SessionType", "Normal"),
        ("AuthMethod", "None"),
    ]));
    pdu.encode()
}

/// How one slow client behaves.
#[derive(Debug, Clone, Copy)]
enum Stall {
    /// 20 bytes of a login BHS, then nothing.
    MidLoginHeader,
    /// A login BHS announcing its keys and a third of them, then nothing.
    MidLoginData,
    /// A login sent one byte every [`TRICKLE_INTERVAL`] as long as lunard takes it.
    TrickledLogin,
    /// Logged in; 30 bytes of a NOP-Out BHS, then nothing.
    MidHeaderAfterLogin,
    /// Logged in; a WRITE whose solicited Data-Out stops half-way through a PDU.
    MidDataOut,
}

const STALLS: [Stall; 5] = [
    Stall::MidLoginHeader,
    Stall::MidLoginData,
    Stall::TrickledLogin,
    Stall::MidHeaderAfterLogin,
    Stall::MidDataOut,
];

/// Carries out `stall` and returns the socket, now silent, for the wait.
fn stall(addr: SocketAddr, iqn: &str, stall: Stall) -> Result<RawSocket, String> {
    let connect = || RawSocket::connect(addr).map_err(|err| format!("connect: {err}"));
    let login = || Session::login(addr, iqn).map_err(|err| format!("login: {err}"));
    let send = |socket: &mut RawSocket, bytes: &[u8]| {
        socket.send(bytes).map_err(|err| format!("send: {err}"))
    };
    match stall {
        Stall::MidLoginHeader => {
            let mut socket = connect()?;
            send(&mut socket, &login_request(iqn)[..20])?;
            Ok(socket)
        }
        Stall::MidLoginData => {
            let mut socket = connect()?;
            let request = login_request(iqn);
            let keys_len = request.len() - 48;
            send(&mut socket, &request[..48 + keys_len / 3])?;
            Ok(socket)
        }
        Stall::TrickledLogin => {
            let mut socket = connect()?;
            let deadline = Instant::now() + DROP_TIMEOUT;
            for byte in login_request(iqn) {
                if Instant::now() >= deadline || socket.send(&[byte]).is_err() {
                    break;
                }
                thread::sleep(TRICKLE_INTERVAL);
            }
            Ok(socket)
        }
        Stall::MidHeaderAfterLogin => {
            let mut session = login()?;
            let mut nop = Pdu::new(op::NOP_OUT, true);
            nop.bhs[1] = 0x80;
            nop.set_u32(16, session.new_itt());
            nop.set_u32(20, u32::MAX);
            session
                .send_bytes(&nop.encode()[..30])
                .map_err(|err| format!("send: {err}"))?;
            RawSocket::from_stream(session.into_stream()).map_err(|err| err.to_string())
        }
        Stall::MidDataOut => {
            let mut session = login()?;
            let block_len = 512u32;
            let write_len = STALLED_WRITE_BLOCKS * block_len;
            let itt = session.new_itt();
            let cmd_sn = session.take_cmd_sn();
            let cdb = scsi::write16(
                lunar_tests::hostile::HOSTILE_LBA,
                STALLED_WRITE_BLOCKS,
                false,
            );
            let command = session.command_pdu(0, itt, cmd_sn, &cdb, 0, write_len);
            session
                .send_pdu(&command)
                .map_err(|err| format!("send: {err}"))?;
            let r2t = loop {
                let pdu = session
                    .recv_pdu("the R2T of the stalled write")
                    .map_err(|err| err.to_string())?;
                if pdu.opcode() == op::R2T {
                    break pdu;
                }
            };
            let desired = r2t.u32_at(44).min(write_len);
            let data = vec![0xd5; desired as usize];
            let pdu = session.data_out_pdu(0, itt, r2t.ttt(), 0, r2t.u32_at(40), &data, true);
            let wire = pdu.encode();
            session
                .send_bytes(&wire[..48 + wire.len().saturating_sub(48) / 2])
                .map_err(|err| format!("send: {err}"))?;
            RawSocket::from_stream(session.into_stream()).map_err(|err| err.to_string())
        }
    }
}

#[test]
fn clients_stuck_mid_pdu_are_dropped() {
    let rig = Rig::start("slowloris");
    let addr = rig.addr();
    let iqn = rig.iqn().to_string();
    let results: Vec<Result<u16, String>> = thread::scope(|scope| {
        let workers: Vec<_> = STALLS
            .iter()
            .map(|&kind| {
                let iqn = iqn.as_str();
                scope.spawn(move || {
                    let mut socket =
                        stall(addr, iqn, kind).map_err(|e| format!("{kind:?}: {e}"))?;
                    let end = socket.wait_for_close(DROP_TIMEOUT);
                    if end.ended() {
                        Ok(socket.port())
                    } else {
                        Err(format!(
                            "{kind:?} (port {}): still open after {DROP_TIMEOUT:?}",
                            socket.port()
                        ))
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("a slow client panicked".into()))
            })
            .collect()
    });
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if !errors.is_empty() {
        rig.fail(&format!("slow clients: {errors:#?}"));
    }
    let ports: Vec<u16> = results.into_iter().flatten().collect();
    rig.assert_drops_logged(&ports, "slow clients");
    rig.finish(MemoryBudget {
        connections: STALLS.len() as u64,
        per_connection_kib: LOGGED_IN_CONNECTION_KIB,
    });
}
