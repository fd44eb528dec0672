//! Fuzz entry points for the decoders that read bytes from the network: the iSCSI PDU framer
//! (with the typed header views and additional header segments), the login text parser (on
//! its own and through a connection's login phase), the SCSI CDB decoder (with the sense data
//! its errors produce), and a whole connection fed arbitrary bytes.
//!
//! Each takes arbitrary bytes, must never panic, and checks the properties its decoder
//! promises (a panic here is a finding). The same functions run under cargo-fuzz (`fuzz/`,
//! which includes this file) and under proptest in the normal test suite
//! (`tests/tests/wire_entry_points.rs`). Nothing in this file refers to the rest of the crate.

use lunar_iscsi::{Action, CommandResult, ConnConfig, Connection, TargetCatalog};
use lunar_wire::iscsi::ahs;
use lunar_wire::iscsi::initiator::{
    DataOutHeader, LoginRequestHeader, LogoutRequestHeader, NopOutHeader, ScsiCommandHeader,
    SnackRequestHeader, TaskMgmtRequestHeader, TextRequestHeader,
};
use lunar_wire::iscsi::text;
use lunar_wire::iscsi::{
    next_frame, DigestKind, FrameLimits, FrameStatus, Opcode, Pdu, BHS_LEN_BYTES,
};
use lunar_wire::scsi::{self, Sense, SenseFormat};

/// The only target the entry points' catalog knows.
pub const FUZZ_TARGET_IQN: &str = "iqn.2026-11.dev.lunar.fuzz:target";
/// The initiator name of the logins the entry points build.
pub const FUZZ_INITIATOR_IQN: &str = "iqn.2026-11.dev.lunar.fuzz:initiator";
/// Data segment limits the framer entry point picks from (first input byte).
const FRAMER_LIMITS_BYTES: [u32; 6] = [0, 48, 512, 8192, 256 * 1024, (1 << 24) - 1];
/// A login PDU's data segment is at most this long (the login-phase limit).
const LOGIN_DATA_MAX_BYTES: usize = 8192;
/// Bytes of target output kept for checking; more is counted but not framed.
const SENT_KEPT_MAX_BYTES: usize = 1 << 20;
/// Commands a connection entry point answers with this much data-in at most.
const DATA_IN_MAX_BYTES: u32 = 64 * 1024;

/// Frames `data` (after a first byte choosing the limits) PDU after PDU, as a connection's
/// receive path does, and views each header with its typed layout.
pub fn framer(data: &[u8]) {
    let Some((&choice, mut rest)) = data.split_first() else {
        return;
    };
    let digest = |on: bool| {
        if on {
            DigestKind::Crc32c
        } else {
            DigestKind::None
        }
    };
    let limits = FrameLimits {
        max_data_segment_len_bytes: FRAMER_LIMITS_BYTES
            [usize::from(choice & 0x7) % FRAMER_LIMITS_BYTES.len()],
        header_digest: digest(choice & 0x10 != 0),
        data_digest: digest(choice & 0x20 != 0),
    };
    loop {
        match next_frame(rest, &limits) {
            Ok(FrameStatus::Complete(frame)) => {
                let len = frame.len_bytes;
                assert!(
                    len >= BHS_LEN_BYTES && len <= rest.len(),
                    "frame length {len}"
                );
                assert!(len <= limits.max_pdu_len_bytes());
                assert!(frame.data.len() as u64 <= u64::from(limits.max_data_segment_len_bytes));
                assert_eq!(frame.header_digest.len(), limits.header_digest.len_bytes());
                // The frame is the same when cut out of the stream, and incomplete without its
                // last byte.
                match next_frame(&rest[..len], &limits) {
                    Ok(FrameStatus::Complete(again)) => assert_eq!(again.len_bytes, len),
                    other => panic!("a complete frame cut out of the stream gave {other:?}"),
                }
                assert!(matches!(
                    next_frame(&rest[..len - 1], &limits),
                    Ok(FrameStatus::NeedMore { .. })
                ));
                view_header(frame.bhs_bytes);
                view_ahs(frame.ahs);
                rest = &rest[len..];
            }
            Ok(FrameStatus::NeedMore { needed_len_bytes }) => {
                assert!(needed_len_bytes > rest.len());
                assert!(needed_len_bytes <= limits.max_pdu_len_bytes());
                return;
            }
            Err(_) => {
                let announced = u32::from_be_bytes([0, rest[5], rest[6], rest[7]]);
                assert!(announced > limits.max_data_segment_len_bytes);
                return;
            }
        }
    }
}

/// Views a BHS with the header type of its opcode; the typed fields must agree with the
/// generic ones.
fn view_header(bhs_bytes: &[u8; BHS_LEN_BYTES]) {
    let itt = u32::from_be_bytes([bhs_bytes[16], bhs_bytes[17], bhs_bytes[18], bhs_bytes[19]]);
    let data_len = u32::from_be_bytes([0, bhs_bytes[5], bhs_bytes[6], bhs_bytes[7]]);
    let (tag, len) = match Opcode::from_bits(bhs_bytes[0]) {
        Some(Opcode::NopOut) => {
            let h = NopOutHeader::view(bhs_bytes);
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        Some(Opcode::ScsiCommand) => {
            let h = ScsiCommandHeader::view(bhs_bytes);
            let _ = (h.is_final(), h.is_read(), h.is_write());
            assert_eq!(
                h.expected_data_transfer_len.get().to_be_bytes(),
                bhs_bytes[20..24]
            );
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        Some(Opcode::TaskMgmtRequest) => {
            let h = TaskMgmtRequestHeader::view(bhs_bytes);
            assert!(h.function_code() < 0x80);
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        Some(Opcode::LoginRequest) => {
            let h = LoginRequestHeader::view(bhs_bytes);
            assert_eq!(h.isid, bhs_bytes[8..14]);
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        Some(Opcode::TextRequest) => {
            let h = TextRequestHeader::view(bhs_bytes);
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        Some(Opcode::DataOut) => {
            let h = DataOutHeader::view(bhs_bytes);
            assert_eq!(h.buffer_offset.get().to_be_bytes(), bhs_bytes[40..44]);
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        Some(Opcode::LogoutRequest) => {
            let h = LogoutRequestHeader::view(bhs_bytes);
            assert!(h.reason_code() < 0x80);
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        Some(Opcode::SnackRequest) => {
            let h = SnackRequestHeader::view(bhs_bytes);
            (h.initiator_task_tag.get(), h.data_segment_len.get())
        }
        _ => (itt, data_len),
    };
    assert_eq!(
        (tag, len),
        (itt, data_len),
        "typed and generic header views differ"
    );
}

/// Walks an additional-header-segment area the ways the command path reads it.
fn view_ahs(area: &[u8]) {
    let mut seen_bytes = 0usize;
    for segment in ahs::segments(area) {
        match segment {
            Ok(segment) => seen_bytes += 3 + segment.body.len(),
            Err(_) => break,
        }
    }
    assert!(seen_bytes <= area.len());
    if let Ok(Some(extra)) = ahs::extended_cdb(area) {
        assert!(extra.len() < area.len());
    }
    let _ = ahs::bidi_read_expected_len(area);
}

/// The login text parser on `data`, then `data` as the keys of a login request: the first
/// byte chooses a one-stage login (the data carries every key) or a two-stage one (a valid
/// security stage, then the data as the operational keys). Returns whether the login reached
/// the full feature phase.
pub fn login_text(data: &[u8]) -> bool {
    text_parser(data);
    let Some((&choice, keys)) = data.split_first() else {
        return false;
    };
    let keys = &keys[..keys.len().min(LOGIN_DATA_MAX_BYTES)];
    let mut input = Vec::new();
    if choice & 1 == 0 {
        input.extend(login_pdu(
            choice & 0x40 != 0,
            0,
            1 + ((choice >> 1) & 2),
            0,
            keys,
        ));
    } else {
        let mut security = Vec::new();
        text::push_pair(&mut security, "InitiatorName", FUZZ_INITIATOR_IQN);
        text::push_pair(&mut security, "TargetName", FUZZ_TARGET_IQN);
        text::push_pair(&mut security, "SessionType", "Normal");
        text::push_pair(&mut security, "AuthMethod", "None");
        input.extend(login_pdu(true, 0, 1, 0, &security));
        input.extend(login_pdu(choice & 0x40 == 0, 1, 3, 1, keys));
    }
    let sent = drive(&input, &[], false);
    let (opcodes, logged_in) = frames(&sent);
    // During login a target sends Login Responses and nothing else.
    for opcode in opcodes {
        assert_eq!(
            opcode,
            Opcode::LoginResponse as u8,
            "non-login PDU during login"
        );
    }
    logged_in
}

/// The text parser's own promises: bounded keys and values, and what it parsed re-encodes to
/// text that parses to the same pairs.
fn text_parser(data: &[u8]) {
    for pair in text::pairs(data).flatten() {
        let _ = text::parse_number(pair.value);
        let _ = text::parse_bool(pair.value);
        assert!(text::list_items(pair.value).count() <= pair.value.len() + 1);
    }
    let Ok(pairs) = text::parse(data) else {
        return;
    };
    let mut encoded = Vec::new();
    for pair in &pairs {
        assert!(!pair.key.is_empty() && pair.key.len() <= text::MAX_KEY_LEN_BYTES);
        assert!(pair.value.len() <= text::max_value_len_bytes(pair.key));
        text::push_pair(&mut encoded, pair.key, pair.value);
    }
    let reparsed = text::parse(&encoded).expect("re-encoded pairs parse");
    assert_eq!(
        reparsed, pairs,
        "pairs changed through an encode-parse round trip"
    );
}

/// A Login Request PDU (immediate, CID 0) with `keys` as its data segment.
fn login_pdu(transit: bool, csg: u8, nsg: u8, cmd_sn_offset: u32, keys: &[u8]) -> Vec<u8> {
    let mut pdu = vec![0u8; BHS_LEN_BYTES];
    pdu[0] = 0x40 | Opcode::LoginRequest as u8;
    pdu[1] = (if transit { 0x80 } else { 0 }) | ((csg & 3) << 2) | (nsg & 3);
    let len = (keys.len() as u32).to_be_bytes();
    pdu[5..8].copy_from_slice(&len[1..]);
    pdu[8..14].copy_from_slice(&[0x80, 0, 0, 1, 0, 1]);
    pdu[16..20].copy_from_slice(&7u32.to_be_bytes());
    pdu[24..28].copy_from_slice(&(1 + cmd_sn_offset).to_be_bytes());
    pdu.extend_from_slice(keys);
    pdu.resize(pdu.len().div_ceil(4) * 4, 0);
    pdu
}

/// The CDB decoder on `data`: a decoded CDB belongs to a command of the table; a refused one
/// yields sense data that encodes within its buffer and parses back.
pub fn cdb(data: &[u8]) {
    match scsi::decode(data) {
        Ok(cdb) => {
            assert!(
                scsi::cdb::lookup(data).is_ok(),
                "decoded a CDB lookup refuses"
            );
            let _ = format!("{cdb:?}");
        }
        Err(error) => {
            let sense = error.sense();
            let descriptor = sense.encode(SenseFormat::Descriptor);
            assert!(descriptor.len() <= scsi::SENSE_BUF_MAX_BYTES);
            assert_eq!(Sense::parse(descriptor.as_bytes()), Ok(sense));
            let fixed = sense.encode(SenseFormat::Fixed);
            let parsed = Sense::parse(fixed.as_bytes()).expect("fixed sense parses");
            assert_eq!((parsed.key, parsed.asc), (sense.key, sense.asc));
        }
    }
    let _ = Sense::parse(data);
}

/// A connection fed `data` as its input, cut at points chosen by the first bytes: every
/// command it hands out completes with GOOD and zeros, time moves on, nothing panics, the
/// connection never buffers more than it promises, and what it sends is whole PDUs.
pub fn connection(data: &[u8]) {
    let Some((cuts, input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let cuts = [usize::from(cuts[0]) * 7, usize::from(cuts[1]) * 31];
    frames(&drive(input, &cuts, true));
}

/// The catalog of the entry points: one target.
struct Catalog;

impl TargetCatalog for Catalog {
    fn target_exists(&self, iqn: &str) -> bool {
        iqn.eq_ignore_ascii_case(FUZZ_TARGET_IQN)
    }

    fn send_targets(&self, only: Option<&str>) -> Vec<(String, Vec<String>)> {
        if only.is_some_and(|iqn| !self.target_exists(iqn)) {
            return Vec::new();
        }
        vec![(
            FUZZ_TARGET_IQN.to_string(),
            vec!["127.0.0.1:3260,1".to_string()],
        )]
    }
}

/// Feeds `input` to a new connection in pieces ending at `cuts`, executes what it asks, ticks
/// past every timer; returns what it sent (the first [`SENT_KEPT_MAX_BYTES`]).
fn drive(input: &[u8], cuts: &[usize], execute: bool) -> Vec<u8> {
    let mut conn = Connection::new(ConnConfig::default(), 1_000);
    let mut actions = Vec::new();
    let mut sent = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    let mut start = 0;
    let zeros = vec![0u8; DATA_IN_MAX_BYTES as usize];
    for end in points {
        if end < start {
            continue;
        }
        conn.on_recv(&input[start..end], &Catalog, 2_000, &mut actions);
        assert!(conn.recv_buffered_len_bytes() <= conn.max_recv_buffered_len_bytes());
        for action in actions.drain(..) {
            if let Action::Execute(command) = action {
                assert!(command.data_out.len() as u64 <= u64::from(command.expected_len_bytes));
                if execute {
                    let len = command.expected_len_bytes.min(DATA_IN_MAX_BYTES) as usize;
                    let result = CommandResult {
                        status: 0,
                        sense: &[],
                        data_in: if command.read { &zeros[..len] } else { &[] },
                        scsi_transfer_len_bytes: command.expected_len_bytes,
                    };
                    conn.on_command_done(command.task, result, 2_000);
                }
                conn.recycle(command.data_out);
            }
        }
        take_sent(&mut conn, &mut sent);
        start = end;
    }
    conn.on_tick(1_000_000, &mut actions);
    take_sent(&mut conn, &mut sent);
    sent
}

fn take_sent(conn: &mut Connection, sent: &mut Vec<u8>) {
    let pending = conn.send_buf();
    let keep = pending
        .len()
        .min(SENT_KEPT_MAX_BYTES.saturating_sub(sent.len()));
    sent.extend_from_slice(&pending[..keep]);
    let len = pending.len();
    conn.consume_sent(len);
}

/// The opcodes of the PDUs in a target's output, which must be whole PDUs of target opcodes,
/// and whether a successful final Login Response was among them. The check stops there:
/// digests negotiated at login change the framing of what follows.
fn frames(sent: &[u8]) -> (Vec<u8>, bool) {
    let limits = FrameLimits {
        max_data_segment_len_bytes: (1 << 24) - 1,
        header_digest: DigestKind::None,
        data_digest: DigestKind::None,
    };
    let mut rest = sent;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let frame = match next_frame(rest, &limits) {
            Ok(FrameStatus::Complete(frame)) => frame,
            // Output cut at the kept maximum ends in a partial PDU.
            Ok(FrameStatus::NeedMore { .. }) if sent.len() >= SENT_KEPT_MAX_BYTES => break,
            other => panic!("the target sent a broken PDU: {other:?}"),
        };
        let bhs = frame.bhs_bytes;
        let opcode = bhs[0] & 0x3f;
        assert!(
            Opcode::from_bits(opcode).is_some_and(|op| !op.is_initiator_opcode()),
            "the target sent opcode {opcode:#04x}"
        );
        out.push(opcode);
        let logged_in =
            opcode == Opcode::LoginResponse as u8 && bhs[1] & 0x83 == 0x83 && bhs[36] == 0;
        rest = &rest[frame.len_bytes..];
        if logged_in {
            return (out, true);
        }
    }
    (out, false)
}
