//! Login of one normal session over a blocking socket: security stage (AuthMethod=None), then
//! operational negotiation, then full feature phase. It offers the fastest data-transfer mode
//! (immediate and unsolicited data, large segments) and keeps only what the target agreed to.

use std::io::{Read, Write};
use std::net::TcpStream;

use lunar_wire::iscsi::header::Pdu;
use lunar_wire::iscsi::initiator::login_flags;
use lunar_wire::iscsi::target::LoginResponseHeader;
use lunar_wire::iscsi::text::{self, KeyValue};
use lunar_wire::iscsi::{next_frame, FrameLimits, FrameStatus, Opcode, BHS_LEN_BYTES};

use crate::pdu::{push_login, Login};
use crate::rxbuf::RxBuf;

/// Login stages (RFC 7143 §11.12.3).
const STAGE_SECURITY: u8 = 0;
const STAGE_OPERATIONAL: u8 = 1;
const STAGE_FULL_FEATURE: u8 = 3;
/// Login PDUs exchanged before giving up on a target that never reaches full feature phase.
const LOGIN_ROUNDS_MAX: usize = 16;
/// RFC 7143 defaults, used when the target does not answer a key.
const DEFAULT_RECV_DATA_SEGMENT_BYTES: u32 = 8192;
const DEFAULT_FIRST_BURST_BYTES: u32 = 65536;
const DEFAULT_MAX_BURST_BYTES: u32 = 262_144;
/// The smallest legal value of the length keys.
const MIN_LENGTH_KEY_BYTES: u32 = 512;
/// Largest legal value of the length keys.
const MAX_LENGTH_KEY_BYTES: u32 = (1 << 24) - 1;

/// Who logs in to what.
#[derive(Debug, Clone)]
pub struct LoginRequest<'a> {
    pub initiator_name: &'a str,
    pub target_name: &'a str,
    pub isid: [u8; 6],
    /// Our MaxRecvDataSegmentLength.
    pub recv_data_segment_max_bytes: u32,
    /// MaxBurstLength and FirstBurstLength we offer.
    pub burst_max_bytes: u32,
}

/// The session parameters that govern the data transfer, after negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The target's MaxRecvDataSegmentLength: the largest Data-Out or immediate data segment.
    pub target_recv_data_segment_max_bytes: u32,
    pub first_burst_bytes: u32,
    pub max_burst_bytes: u32,
    /// ImmediateData=Yes.
    pub immediate_data: bool,
    /// InitialR2T=No (unsolicited Data-Out allowed).
    pub unsolicited_data_out: bool,
    pub tsih: u16,
    /// CmdSN of the first command.
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub max_cmd_sn: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the target closed the connection during login")]
    Closed,
    #[error("login refused: status class {class:#04x}, detail {detail:#04x}")]
    Refused { class: u8, detail: u8 },
    #[error("login protocol: {0}")]
    Protocol(String),
}

fn protocol(message: impl Into<String>) -> LoginError {
    LoginError::Protocol(message.into())
}

/// Logs in on `stream` (blocking, with the socket's own timeouts) and returns what was agreed.
/// `rx` receives the target's bytes; it is empty again when login succeeds.
pub fn login(
    stream: &mut TcpStream,
    rx: &mut RxBuf,
    request: &LoginRequest<'_>,
) -> Result<Negotiated, LoginError> {
    let recv_max = request.recv_data_segment_max_bytes.to_string();
    let burst = request.burst_max_bytes.to_string();
    let security = [
        ("InitiatorName", request.initiator_name),
        ("TargetName", request.target_name),
        ("SessionType", "Normal"),
        ("AuthMethod", "None"),
    ];
    let operational = [
        ("HeaderDigest", "None"),
        ("DataDigest", "None"),
        ("MaxRecvDataSegmentLength", recv_max.as_str()),
        ("InitialR2T", "No"),
        ("ImmediateData", "Yes"),
        ("MaxBurstLength", burst.as_str()),
        ("FirstBurstLength", burst.as_str()),
        ("MaxOutstandingR2T", "1"),
        ("MaxConnections", "1"),
        ("DataPDUInOrder", "Yes"),
        ("DataSequenceInOrder", "Yes"),
        ("DefaultTime2Wait", "0"),
        ("DefaultTime2Retain", "0"),
        ("ErrorRecoveryLevel", "0"),
    ];
    let mut answers: Vec<(String, String)> = Vec::new();
    let mut stage = STAGE_SECURITY;
    let mut keys = encode(&security);
    let mut tsih = 0u16;
    let mut exp_stat_sn = 0u32;
    let cmd_sn = 1u32;
    let mut out = Vec::new();
    for _ in 0..LOGIN_ROUNDS_MAX {
        let next_stage = if stage == STAGE_SECURITY {
            STAGE_OPERATIONAL
        } else {
            STAGE_FULL_FEATURE
        };
        out.clear();
        push_login(
            &mut out,
            &Login {
                isid: request.isid,
                tsih,
                itt: 0,
                cmd_sn,
                exp_stat_sn,
                current_stage: stage,
                next_stage,
                transit: true,
                text: &keys,
            },
        )
        .map_err(|e| protocol(e.to_string()))?;
        stream.write_all(&out)?;
        keys.clear();
        let (bhs, data) = read_pdu(stream, rx)?;
        if Opcode::from_bits(bhs[0]) != Some(Opcode::LoginResponse) {
            return Err(protocol(format!(
                "expected a login response, got opcode {:#04x}",
                bhs[0]
            )));
        }
        let response = LoginResponseHeader::view(&bhs);
        if response.status_class != 0 {
            return Err(LoginError::Refused {
                class: response.status_class,
                detail: response.status_detail,
            });
        }
        exp_stat_sn = response.stat_sn.get().wrapping_add(1);
        tsih = response.tsih.get();
        for pair in text::pairs(&data) {
            let KeyValue { key, value } = pair.map_err(|e| protocol(e.to_string()))?;
            answers.push((key.to_owned(), value.to_owned()));
        }
        let transit = response.flags & login_flags::TRANSIT != 0;
        let continues = response.flags & login_flags::CONTINUE != 0;
        if continues {
            // More text follows: ask for it with an empty request in the same stage.
            continue;
        }
        if !transit {
            continue;
        }
        match login_flags::nsg(response.flags) {
            STAGE_FULL_FEATURE => {
                return negotiated(
                    &answers,
                    tsih,
                    cmd_sn,
                    exp_stat_sn,
                    response.max_cmd_sn.get(),
                )
            }
            STAGE_OPERATIONAL => {
                stage = STAGE_OPERATIONAL;
                keys = encode(&operational);
            }
            other => return Err(protocol(format!("target moved to login stage {other}"))),
        }
    }
    Err(protocol(format!(
        "no full feature phase after {LOGIN_ROUNDS_MAX} login PDUs"
    )))
}

fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in pairs {
        text::push_pair(&mut out, key, value);
    }
    out
}

fn answer<'a>(answers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    answers
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn length_key(answers: &[(String, String)], key: &str, default: u32) -> Result<u32, LoginError> {
    let Some(value) = answer(answers, key) else {
        return Ok(default);
    };
    let parsed: u32 = value
        .parse()
        .map_err(|_| protocol(format!("{key}={value:?} is not a number")))?;
    if !(MIN_LENGTH_KEY_BYTES..=MAX_LENGTH_KEY_BYTES).contains(&parsed) {
        return Err(protocol(format!("{key}={parsed} is out of range")));
    }
    Ok(parsed)
}

/// What the answers mean. Only what the target explicitly agreed to is used: a key it did not
/// answer keeps the RFC default, or the safer choice (no immediate or unsolicited data).
fn negotiated(
    answers: &[(String, String)],
    tsih: u16,
    cmd_sn: u32,
    exp_stat_sn: u32,
    max_cmd_sn: u32,
) -> Result<Negotiated, LoginError> {
    let max_burst_bytes = length_key(answers, "MaxBurstLength", DEFAULT_MAX_BURST_BYTES)?;
    let first_burst_bytes =
        length_key(answers, "FirstBurstLength", DEFAULT_FIRST_BURST_BYTES)?.min(max_burst_bytes);
    Ok(Negotiated {
        target_recv_data_segment_max_bytes: length_key(
            answers,
            "MaxRecvDataSegmentLength",
            DEFAULT_RECV_DATA_SEGMENT_BYTES,
        )?,
        first_burst_bytes,
        max_burst_bytes,
        immediate_data: answer(answers, "ImmediateData") == Some("Yes"),
        unsolicited_data_out: answer(answers, "InitialR2T") == Some("No"),
        tsih,
        cmd_sn,
        exp_stat_sn,
        max_cmd_sn,
    })
}

/// Reads one whole PDU (login phase limits), returning its header and data segment.
fn read_pdu(
    stream: &mut TcpStream,
    rx: &mut RxBuf,
) -> Result<([u8; BHS_LEN_BYTES], Vec<u8>), LoginError> {
    loop {
        match next_frame(rx.filled(), &FrameLimits::LOGIN) {
            Ok(FrameStatus::Complete(frame)) => {
                let pdu = (*frame.bhs_bytes, frame.data.to_vec());
                let len = frame.len_bytes;
                rx.consume(len);
                return Ok(pdu);
            }
            Ok(FrameStatus::NeedMore { .. }) => {}
            Err(e) => return Err(protocol(e.to_string())),
        }
        let spare = rx.spare_mut();
        if spare.is_empty() {
            return Err(protocol("login PDU larger than the receive buffer"));
        }
        let n = stream.read(spare)?;
        if n == 0 {
            return Err(LoginError::Closed);
        }
        rx.commit(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn answered_keys_are_used() {
        let answers = pairs(&[
            ("MaxRecvDataSegmentLength", "65536"),
            ("MaxBurstLength", "1048576"),
            ("FirstBurstLength", "262144"),
            ("ImmediateData", "Yes"),
            ("InitialR2T", "No"),
        ]);
        let n = negotiated(&answers, 3, 1, 2, 40).expect("valid");
        assert_eq!(n.target_recv_data_segment_max_bytes, 65536);
        assert_eq!(n.max_burst_bytes, 1_048_576);
        assert_eq!(n.first_burst_bytes, 262_144);
        assert!(n.immediate_data && n.unsolicited_data_out);
        assert_eq!(
            (n.tsih, n.cmd_sn, n.exp_stat_sn, n.max_cmd_sn),
            (3, 1, 2, 40)
        );
    }

    #[test]
    fn unanswered_keys_fall_back_to_safe_defaults() {
        let n = negotiated(&[], 1, 1, 1, 1).expect("valid");
        assert_eq!(n.target_recv_data_segment_max_bytes, 8192);
        assert_eq!(n.first_burst_bytes, 65536);
        assert_eq!(n.max_burst_bytes, 262_144);
        assert!(!n.immediate_data && !n.unsolicited_data_out);
    }

    #[test]
    fn first_burst_never_exceeds_max_burst() {
        let answers = pairs(&[("MaxBurstLength", "4096"), ("FirstBurstLength", "65536")]);
        assert_eq!(
            negotiated(&answers, 1, 1, 1, 1)
                .expect("valid")
                .first_burst_bytes,
            4096
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        for value in ["abc", "0", "511", "16777216"] {
            let answers = pairs(&[("MaxRecvDataSegmentLength", value)]);
            assert!(negotiated(&answers, 1, 1, 1, 1).is_err(), "{value}");
        }
    }
}
