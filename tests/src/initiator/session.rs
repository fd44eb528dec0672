//! A minimal, blocking iSCSI initiator session over TCP, for data tests: login (no
//! authentication, no digests), one SCSI command at a time with R2T-driven writes, logout.
//!
//! It negotiates the simplest data-transfer mode on purpose (`InitialR2T=Yes`,
//! `ImmediateData=No`, `MaxOutstandingR2T=1`, in-order PDUs and sequences, error recovery level 0)
//! so every write goes through R2T and Data-Out, and reads through Data-In.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use super::keys::{decode_keys, encode_keys, key_value};
use super::pdu::{decode, op, Decoded, Pdu, PduError, RESERVED_TAG};
use super::scsi::{decode_sense, Sense, STATUS_CHECK_CONDITION, STATUS_GOOD};

/// The initiator name the test initiator logs in with.
pub const INITIATOR_NAME: &str = "iqn.2026-11.dev.lunar:test-initiator";
/// Time any single read or write on the socket may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// MaxRecvDataSegmentLength this initiator declares.
pub const RECV_DATA_SEGMENT_MAX_BYTES: u32 = 256 * 1024;
/// Default MaxRecvDataSegmentLength of a target that declares none (RFC 7143 §13.12).
const DEFAULT_TARGET_RECV_DATA_SEGMENT_BYTES: u32 = 8192;
/// Login rounds before giving up on a target that never reaches full feature phase.
const LOGIN_ROUNDS_MAX: usize = 8;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InitiatorError {
    /// A socket operation failed (including timeouts).
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The target did not answer within [`IO_TIMEOUT`].
    #[error("{op}: no answer from the target within {}s", IO_TIMEOUT.as_secs())]
    Timeout {
        /// What was being waited for.
        op: &'static str,
    },
    /// The target closed the connection.
    #[error("the target closed the connection while waiting for {0}")]
    Closed(&'static str),
    /// The target sent a PDU this initiator does not accept.
    #[error("bad PDU from the target: {0}")]
    Pdu(#[from] PduError),
    /// The target refused the login.
    #[error("login refused: status class {class:#04x}, detail {detail:#04x}")]
    LoginRefused {
        /// Status-Class.
        class: u8,
        /// Status-Detail.
        detail: u8,
    },
    /// The target broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The target sent a Reject PDU.
    #[error("the target rejected a PDU (reason {reason:#04x})")]
    Rejected {
        /// The reject reason code.
        reason: u8,
    },
    /// The command completed with a non-GOOD status.
    #[error("SCSI status {status:#04x}{}", sense.map(|s| format!(", sense {s}")).unwrap_or_default())]
    Status {
        /// The SCSI status.
        status: u8,
        /// The decoded sense data, if any.
        sense: Option<Sense>,
    },
}

/// What a command returned.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// The SCSI status.
    pub status: u8,
    /// Sense data, for CHECK CONDITION.
    pub sense: Option<Sense>,
    /// The Data-In bytes (for reads), `data_in_len` long.
    pub data: Vec<u8>,
}

/// A logged-in session with one connection.
pub struct Session {
    pub(super) stream: TcpStream,
    pub(super) rx: Vec<u8>,
    pub(super) cmd_sn: u32,
    pub(super) exp_stat_sn: u32,
    /// The command window the target announced last: `[exp_cmd_sn, max_cmd_sn]`.
    pub(super) exp_cmd_sn: u32,
    pub(super) max_cmd_sn: u32,
    pub(super) next_itt: u32,
    pub(super) target_recv_data_segment_bytes: u32,
    /// The keys the target answered during login.
    pub target_keys: Vec<(String, String)>,
}

/// Sessions opened by this process so far: each gets its own ISID qualifier, so that sessions
/// open at the same time are distinct I_T nexuses rather than reinstatements of each other.
static SESSIONS_OPENED: AtomicU16 = AtomicU16::new(0);

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> InitiatorError {
    move |source| match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => InitiatorError::Timeout { op },
        _ => InitiatorError::Io { op, source },
    }
}

impl Session {
    /// Connects to `portal` and logs in to `target_iqn` (normal session).
    pub fn login(portal: SocketAddr, target_iqn: &str) -> Result<Session, InitiatorError> {
        let stream = TcpStream::connect_timeout(&portal, IO_TIMEOUT).map_err(io_err("connect"))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(io_err("set read timeout"))?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(io_err("set write timeout"))?;
        stream.set_nodelay(true).map_err(io_err("set nodelay"))?;
        let mut session = Session {
            stream,
            rx: Vec::new(),
            cmd_sn: 1,
            exp_stat_sn: 0,
            exp_cmd_sn: 1,
            max_cmd_sn: 1,
            next_itt: 1,
            target_recv_data_segment_bytes: DEFAULT_TARGET_RECV_DATA_SEGMENT_BYTES,
            target_keys: Vec::new(),
        };
        session.negotiate(target_iqn)?;
        Ok(session)
    }

    fn negotiate(&mut self, target_iqn: &str) -> Result<(), InitiatorError> {
        let recv_max = RECV_DATA_SEGMENT_MAX_BYTES.to_string();
        let security = [
            ("InitiatorName", INITIATOR_NAME),
            ("TargetName", target_iqn),
            ("SessionType", "Normal"),
            ("AuthMethod", "None"),
        ];
        let operational = [
            ("HeaderDigest", "None"),
            ("DataDigest", "None"),
            ("MaxRecvDataSegmentLength", recv_max.as_str()),
            ("InitialR2T", "Yes"),
            ("ImmediateData", "No"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "65536"),
            ("MaxOutstandingR2T", "1"),
            ("MaxConnections", "1"),
            ("DataPDUInOrder", "Yes"),
            ("DataSequenceInOrder", "Yes"),
            ("DefaultTime2Wait", "0"),
            ("DefaultTime2Retain", "0"),
            ("ErrorRecoveryLevel", "0"),
        ];
        let itt = self.take_itt();
        let isid = isid(SESSIONS_OPENED.fetch_add(1, Ordering::Relaxed));
        let mut tsih = [0u8; 2];
        // Security stage first (AuthMethod=None), then operational, then full feature phase.
        let (mut stage, mut keys) = (0u8, encode_keys(&security));
        for _ in 0..LOGIN_ROUNDS_MAX {
            let next_stage = if stage == 0 { 1 } else { 3 };
            self.send(&self.login_request(
                itt,
                isid,
                tsih,
                stage,
                next_stage,
                std::mem::take(&mut keys),
            ))?;
            let response = self.recv("a login response")?;
            if response.opcode() != op::LOGIN_RESPONSE {
                return Err(InitiatorError::Protocol(format!(
                    "expected a login response, got opcode {:#04x}",
                    response.opcode()
                )));
            }
            let (class, detail) = (response.bhs[36], response.bhs[37]);
            if class != 0 {
                return Err(InitiatorError::LoginRefused { class, detail });
            }
            self.exp_stat_sn = response.stat_sn().wrapping_add(1);
            tsih.copy_from_slice(&response.bhs[14..16]);
            self.target_keys.extend(decode_keys(&response.data));
            let transit = response.flags() & 0x80 != 0;
            let answered_next = response.flags() & 0x03;
            match (transit, answered_next) {
                (true, 3) => {
                    if let Some(value) = key_value(&self.target_keys, "MaxRecvDataSegmentLength") {
                        self.target_recv_data_segment_bytes = value.parse().map_err(|_| {
                            InitiatorError::Protocol(format!(
                                "bad MaxRecvDataSegmentLength {value:?}"
                            ))
                        })?;
                    }
                    if self.target_recv_data_segment_bytes < 512 {
                        return Err(InitiatorError::Protocol(format!(
                            "target MaxRecvDataSegmentLength {} is below 512",
                            self.target_recv_data_segment_bytes
                        )));
                    }
                    return Ok(());
                }
                (true, 1) => {
                    stage = 1;
                    keys = encode_keys(&operational);
                }
                (true, other) => {
                    return Err(InitiatorError::Protocol(format!(
                        "login moved to stage {other}"
                    )))
                }
                // The target wants another round in this stage: ask again with no new keys.
                (false, _) => {}
            }
        }
        Err(InitiatorError::Protocol(format!(
            "no full feature phase after {LOGIN_ROUNDS_MAX} login rounds"
        )))
    }

    #[allow(clippy::too_many_arguments)]
    fn login_request(
        &self,
        itt: u32,
        isid: [u8; 6],
        tsih: [u8; 2],
        stage: u8,
        next_stage: u8,
        keys: Vec<u8>,
    ) -> Pdu {
        let mut pdu = Pdu::new(op::LOGIN_REQUEST, true);
        pdu.bhs[1] = 0x80 | (stage << 2) | next_stage;
        pdu.bhs[8..14].copy_from_slice(&isid);
        pdu.bhs[14..16].copy_from_slice(&tsih);
        pdu.set_u32(16, itt);
        pdu.set_u32(24, self.cmd_sn);
        pdu.set_u32(28, self.exp_stat_sn);
        pdu.set_data(keys);
        pdu
    }

    pub(super) fn take_itt(&mut self) -> u32 {
        let itt = self.next_itt;
        self.next_itt = match self.next_itt.wrapping_add(1) {
            RESERVED_TAG | 0 => 1,
            next => next,
        };
        itt
    }

    pub(super) fn send(&mut self, pdu: &Pdu) -> Result<(), InitiatorError> {
        self.stream.write_all(&pdu.encode()).map_err(io_err("send"))
    }

    pub(super) fn recv(&mut self, waiting_for: &'static str) -> Result<Pdu, InitiatorError> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match decode(&self.rx, RECV_DATA_SEGMENT_MAX_BYTES)? {
                Decoded::Complete(pdu, used) => {
                    self.rx.drain(..used);
                    self.note_window(&pdu);
                    return Ok(pdu);
                }
                Decoded::NeedMore(_) => {
                    let read = self.stream.read(&mut chunk).map_err(io_err(waiting_for))?;
                    if read == 0 {
                        return Err(InitiatorError::Closed(waiting_for));
                    }
                    self.rx.extend_from_slice(&chunk[..read]);
                }
            }
        }
    }

    /// Sends one SCSI command to `lun` and waits for its status. `data_out` is written through
    /// R2T/Data-Out; `data_in_len` bytes are expected back through Data-In.
    pub fn execute(
        &mut self,
        lun: u16,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: u32,
    ) -> Result<CommandOutcome, InitiatorError> {
        if cdb.len() > 16 {
            return Err(InitiatorError::Protocol(format!(
                "CDB of {} bytes needs an AHS",
                cdb.len()
            )));
        }
        let out_len = u32::try_from(data_out.len())
            .map_err(|_| InitiatorError::Protocol("Data-Out over 4 GiB".to_string()))?;
        let itt = self.take_itt();
        let mut command = Pdu::new(op::SCSI_COMMAND, false);
        command.bhs[1] = 0x80
            | if data_in_len > 0 { 0x40 } else { 0 }
            | if out_len > 0 { 0x20 } else { 0 }
            | 0x01; // SIMPLE task attribute
        command.set_lun(lun);
        command.set_u32(16, itt);
        command.set_u32(20, if out_len > 0 { out_len } else { data_in_len });
        command.set_u32(24, self.cmd_sn);
        command.set_u32(28, self.exp_stat_sn);
        command.bhs[32..32 + cdb.len()].copy_from_slice(cdb);
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        self.send(&command)?;

        let mut data_in = vec![0u8; data_in_len as usize];
        loop {
            let pdu = self.recv("the command's response")?;
            match pdu.opcode() {
                op::DATA_IN => {
                    self.expect_itt(&pdu, itt)?;
                    let offset = pdu.u32_at(40) as usize;
                    let end = offset
                        .checked_add(pdu.data.len())
                        .filter(|end| *end <= data_in.len());
                    let Some(end) = end else {
                        return Err(InitiatorError::Protocol(format!(
                            "Data-In of {} bytes at offset {offset} overruns the {data_in_len}-byte buffer",
                            pdu.data.len()
                        )));
                    };
                    data_in[offset..end].copy_from_slice(&pdu.data);
                    if pdu.flags() & 0x01 != 0 {
                        self.exp_stat_sn = pdu.stat_sn().wrapping_add(1);
                        return Ok(CommandOutcome {
                            status: pdu.bhs[3],
                            sense: None,
                            data: data_in,
                        });
                    }
                }
                op::R2T => {
                    self.expect_itt(&pdu, itt)?;
                    self.answer_r2t(&pdu, lun, itt, data_out)?;
                }
                op::SCSI_RESPONSE => {
                    self.expect_itt(&pdu, itt)?;
                    self.exp_stat_sn = pdu.stat_sn().wrapping_add(1);
                    if pdu.bhs[2] != 0 {
                        return Err(InitiatorError::Protocol(format!(
                            "iSCSI response code {:#04x} (target failure)",
                            pdu.bhs[2]
                        )));
                    }
                    let sense = sense_from_response_data(&pdu.data);
                    return Ok(CommandOutcome {
                        status: pdu.bhs[3],
                        sense,
                        data: data_in,
                    });
                }
                op::NOP_IN => self.answer_nop_in(&pdu)?,
                op::ASYNC_MESSAGE => {}
                op::REJECT => return Err(InitiatorError::Rejected { reason: pdu.bhs[2] }),
                other => {
                    return Err(InitiatorError::Protocol(format!(
                        "unexpected opcode {other:#04x} while a command is outstanding"
                    )))
                }
            }
        }
    }

    fn expect_itt(&self, pdu: &Pdu, itt: u32) -> Result<(), InitiatorError> {
        if pdu.itt() == itt {
            Ok(())
        } else {
            Err(InitiatorError::Protocol(format!(
                "opcode {:#04x} carries ITT {:#x}, the outstanding command is {itt:#x}",
                pdu.opcode(),
                pdu.itt()
            )))
        }
    }

    fn answer_r2t(
        &mut self,
        r2t: &Pdu,
        lun: u16,
        itt: u32,
        data_out: &[u8],
    ) -> Result<(), InitiatorError> {
        let ttt = r2t.ttt();
        let offset = r2t.u32_at(40) as usize;
        let desired = r2t.u32_at(44) as usize;
        let end = offset
            .checked_add(desired)
            .filter(|end| *end <= data_out.len() && desired > 0);
        let Some(end) = end else {
            return Err(InitiatorError::Protocol(format!(
                "R2T for {desired} bytes at offset {offset} of a {}-byte write",
                data_out.len()
            )));
        };
        let segment_max = self.target_recv_data_segment_bytes as usize;
        let mut data_sn = 0u32;
        let mut position = offset;
        while position < end {
            let chunk_end = end.min(position + segment_max);
            let mut pdu = Pdu::new(op::DATA_OUT, false);
            pdu.bhs[1] = if chunk_end == end { 0x80 } else { 0 };
            pdu.set_lun(lun);
            pdu.set_u32(16, itt);
            pdu.set_u32(20, ttt);
            pdu.set_u32(28, self.exp_stat_sn);
            pdu.set_u32(36, data_sn);
            pdu.set_u32(40, position as u32);
            pdu.set_data(data_out[position..chunk_end].to_vec());
            self.send(&pdu)?;
            data_sn += 1;
            position = chunk_end;
        }
        Ok(())
    }

    fn answer_nop_in(&mut self, nop_in: &Pdu) -> Result<(), InitiatorError> {
        if nop_in.ttt() == RESERVED_TAG {
            return Ok(());
        }
        let mut reply = Pdu::new(op::NOP_OUT, true);
        reply.bhs[1] = 0x80;
        reply.bhs[8..16].copy_from_slice(&nop_in.bhs[8..16]);
        reply.set_u32(16, RESERVED_TAG);
        reply.set_u32(20, nop_in.ttt());
        reply.set_u32(24, self.cmd_sn);
        reply.set_u32(28, self.exp_stat_sn);
        self.send(&reply)
    }

    /// Closes the session (Logout, reason "close the session") and waits for the answer.
    pub fn logout(mut self) -> Result<(), InitiatorError> {
        let itt = self.take_itt();
        let mut pdu = Pdu::new(op::LOGOUT_REQUEST, true);
        pdu.bhs[1] = 0x80;
        pdu.set_u32(16, itt);
        pdu.set_u32(24, self.cmd_sn);
        pdu.set_u32(28, self.exp_stat_sn);
        self.send(&pdu)?;
        loop {
            let answer = self.recv("the logout response")?;
            match answer.opcode() {
                op::LOGOUT_RESPONSE if answer.bhs[2] == 0 => return Ok(()),
                op::LOGOUT_RESPONSE => {
                    return Err(InitiatorError::Protocol(format!(
                        "logout response {:#04x}",
                        answer.bhs[2]
                    )))
                }
                op::NOP_IN => self.answer_nop_in(&answer)?,
                op::ASYNC_MESSAGE => {}
                other => {
                    return Err(InitiatorError::Protocol(format!(
                        "unexpected opcode {other:#04x} after logout"
                    )))
                }
            }
        }
    }
}

/// ISID of the `count`-th session of this process: random-qualifier format (type 10b), the
/// process id in the 24-bit random part, `count` as the qualifier.
fn isid(count: u16) -> [u8; 6] {
    let pid = std::process::id().to_be_bytes();
    let qualifier = count.to_be_bytes();
    [0x80, pid[1], pid[2], pid[3], qualifier[0], qualifier[1]]
}

/// Sense data in a SCSI Response data segment: a 2-byte length, then the sense bytes.
fn sense_from_response_data(data: &[u8]) -> Option<Sense> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    decode_sense(data.get(2..2 + len.min(data.len().saturating_sub(2)))?)
}

/// Turns a non-GOOD outcome into an error.
pub fn check_good(outcome: CommandOutcome) -> Result<CommandOutcome, InitiatorError> {
    match outcome.status {
        STATUS_GOOD => Ok(outcome),
        status => Err(InitiatorError::Status {
            status,
            sense: if status == STATUS_CHECK_CONDITION {
                outcome.sense
            } else {
                None
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sessions_get_distinct_random_format_isids() {
        assert_ne!(isid(0), isid(1));
        assert_eq!(isid(7)[0] & 0xc0, 0x80);
        assert_eq!(&isid(0x0102)[4..], &[1, 2]);
    }

    #[test]
    fn finds_sense_after_its_length() {
        let mut data = vec![0, 18, 0x70, 0, 0x05];
        data.resize(20, 0);
        data[2 + 12] = 0x24;
        assert_eq!(
            sense_from_response_data(&data),
            Some(Sense {
                key: 5,
                asc: 0x24,
                ascq: 0
            })
        );
        assert_eq!(sense_from_response_data(&[]), None);
        assert_eq!(sense_from_response_data(&[0, 0]), None);
    }

    proptest! {
        #[test]
        fn response_sense_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = sense_from_response_data(&bytes);
        }
    }
}
