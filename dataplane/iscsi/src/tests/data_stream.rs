//! Data-Out PDUs fed in pieces: their data goes to the task as it arrives (see
//! `data_stream`), and whatever the cut, the command executes once with every byte in order,
//! only after the last byte; refused headers are answered at once and their data skipped; with
//! a data digest the PDU is still gathered whole.

use lunar_wire::iscsi::codes::reject_reason;
use lunar_wire::iscsi::Opcode;

use super::initiator::*;
use crate::connection::{Action, ConnConfig};

fn logged_in(extra: &[(&str, &str)]) -> Initiator {
    let mut ini = Initiator::new(ConnConfig::default());
    let last = ini.login_with(extra);
    ini.header_digest = last.value("HeaderDigest").as_deref() == Some("CRC32C");
    ini.data_digest = last.value("DataDigest").as_deref() == Some("CRC32C");
    ini.take_actions();
    ini
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 509) as u8).collect()
}

/// A write of `data` solicited with one R2T, answered with Data-Out PDUs of `pdu_len` bytes;
/// returns the sealed bytes of all the PDUs in order.
fn solicited_write(ini: &mut Initiator, itt: u32, data: &[u8], pdu_len: usize) -> Vec<u8> {
    let blocks = data.len().div_ceil(512) as u16;
    let cmd = ini.scsi_command(
        itt,
        &write10(blocks),
        false,
        true,
        true,
        data.len() as u32,
        &[],
    );
    ini.send(&cmd);
    let r2t = ini.recv_one();
    assert!(r2t.is(Opcode::ReadyToTransfer), "{r2t:?}");
    assert_eq!(r2t.u32_at(44) as usize, data.len());
    let mut bytes = Vec::new();
    for (sn, start) in (0..data.len()).step_by(pdu_len).enumerate() {
        let end = (start + pdu_len).min(data.len());
        let pdu = ini.data_out(
            itt,
            r2t.ttt(),
            sn as u32,
            start as u32,
            end == data.len(),
            &data[start..end],
        );
        bytes.extend(ini.seal(&pdu));
    }
    bytes
}

/// Feeds `bytes` in pieces of `cut` bytes; asserts nothing executes before the last piece,
/// and that no more than a header (with its digest) is ever buffered: the data goes on.
fn feed_in_pieces(ini: &mut Initiator, bytes: &[u8], cut: usize) {
    let pieces: Vec<&[u8]> = bytes.chunks(cut).collect();
    for (i, piece) in pieces.iter().enumerate() {
        ini.send_raw(piece);
        let buffered = ini.conn.recv_buffered_len_bytes();
        assert!(
            buffered <= 48 + 4,
            "cut {cut}, piece {i}: {buffered} bytes buffered"
        );
        if i + 1 < pieces.len() {
            let early = ini.take_actions();
            assert!(early.is_empty(), "cut {cut}, piece {i}: {early:?}");
        }
    }
}

#[test]
fn data_out_fed_in_any_pieces_arrives_whole_and_executes_after_its_last_byte() {
    // 20,001 bytes: the last PDU's data needs padding.
    let data = pattern(20_001);
    for digests in [&[][..], &[("HeaderDigest", "CRC32C")][..]] {
        for cut in [1, 3, 47, 48, 49, 100, 4096, 8191, 8240, 30_000] {
            let mut keys = vec![("ImmediateData", "No")];
            keys.extend_from_slice(digests);
            let mut ini = logged_in(&keys);
            assert_eq!(ini.header_digest, !digests.is_empty());
            let itt = ini.itt();
            let bytes = solicited_write(&mut ini, itt, &data, 8192);
            feed_in_pieces(&mut ini, &bytes, cut);
            let exec = ini.expect_execute();
            assert_eq!(exec.task.0, itt);
            assert!(exec.data_out[..] == data[..], "cut {cut}: data differs");
            assert_eq!(
                (exec.data_out.as_ptr() as usize) % crate::DATA_OUT_ALIGN_BYTES,
                0,
                "the data is in aligned storage"
            );
            // The connection is still in step: a ping right after is answered.
            let ping_itt = ini.itt();
            let nop = ini.nop_out(ping_itt, RESERVED_TTT, true, b"ping");
            ini.send(&nop);
            let replies = ini.recv();
            assert_eq!(replies.len(), 1, "{replies:?}");
            assert!(replies[0].is(Opcode::NopIn) && replies[0].itt() == ping_itt);
        }
    }
}

#[test]
fn a_refused_data_out_fed_in_pieces_is_rejected_at_its_header_and_its_data_skipped() {
    let mut ini = logged_in(&[("ImmediateData", "No")]);
    let itt = ini.itt();
    let data = pattern(16_384);
    let cmd = ini.scsi_command(itt, &write10(32), false, true, true, 16_384, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    // Buffer offset 512 where 0 is due: refused.
    let pdu = ini.data_out(itt, r2t.ttt(), 0, 512, true, &data[..8192]);
    let (head, tail) = pdu.split_at(100);
    ini.send_raw(head);
    let answers = ini.recv();
    assert!(
        answers
            .first()
            .is_some_and(|p| p.is(Opcode::Reject) && p.bhs[2] == reject_reason::PROTOCOL_ERROR),
        "the header is rejected at once: {answers:?}"
    );
    assert!(
        answers[1..]
            .iter()
            .any(|p| p.is(Opcode::ScsiResponse) && p.itt() == itt),
        "the task ends at once: {answers:?}"
    );
    // The rest of the refused PDU, then a ping: only the ping is seen.
    ini.send_raw(&tail[..4000]);
    let ping_itt = ini.itt();
    let mut rest = tail[4000..].to_vec();
    rest.extend(ini.nop_out(ping_itt, RESERVED_TTT, true, b"ping"));
    ini.send_raw(&rest);
    let answers = ini.recv();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].is(Opcode::NopIn));
    assert_eq!(answers[0].itt(), ping_itt);
    assert!(ini.take_actions().is_empty());
}

#[test]
fn a_stray_data_out_fed_in_pieces_is_rejected_and_the_stream_stays_in_step() {
    let mut ini = logged_in(&[]);
    let pdu = ini.data_out(0x7777, 5, 0, 0, true, &pattern(10_000));
    for piece in pdu.chunks(1_000) {
        ini.send_raw(piece);
    }
    let answers = ini.recv();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].is(Opcode::Reject));
    assert_eq!(answers[0].bhs[2], reject_reason::INVALID_PDU_FIELD);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&cmd);
    assert_eq!(ini.expect_execute().task.0, itt);
}

#[test]
fn with_a_data_digest_a_data_out_fed_in_pieces_is_gathered_whole_and_checked() {
    let mut ini = logged_in(&[("ImmediateData", "No"), ("DataDigest", "CRC32C")]);
    assert!(ini.data_digest);
    let itt = ini.itt();
    let data = pattern(12_000);
    let mut bytes = solicited_write(&mut ini, itt, &data, 4096);
    // Corrupt one data byte of the second PDU (after its 48-byte header and 4-byte digest).
    let second = 48 + 4096 + 4;
    bytes[second + 48 + 10] ^= 1;
    feed_in_pieces_allowing_answers(&mut ini, &bytes, 777);
    let answers = ini.recv();
    assert!(
        answers
            .iter()
            .any(|p| p.is(Opcode::Reject) && p.bhs[2] == reject_reason::DATA_DIGEST_ERROR),
        "{answers:?}"
    );
    let response = answers
        .iter()
        .find(|p| p.is(Opcode::ScsiResponse))
        .expect("the task ends with CHECK CONDITION");
    assert_eq!(response.itt(), itt);
    assert_eq!(response.bhs[3], 0x02, "CHECK CONDITION");
    let executed = ini
        .take_actions()
        .into_iter()
        .any(|a| matches!(a, Action::Execute(_)));
    assert!(!executed, "corrupt data never reaches the device");
}

fn feed_in_pieces_allowing_answers(ini: &mut Initiator, bytes: &[u8], cut: usize) {
    for piece in bytes.chunks(cut) {
        ini.send_raw(piece);
    }
}

const RESERVED_TTT: u32 = 0xffff_ffff;

#[test]
fn immediate_unsolicited_and_solicited_data_fed_in_any_pieces_arrive_whole_in_order() {
    // 8 KiB immediate, 8 KiB unsolicited Data-Out (FirstBurstLength 16 KiB), and the rest
    // (10,001 bytes) solicited by an R2T.
    let data = pattern(26_385);
    for cut in [1, 5, 48, 52, 1000, 8240, 16_500, 40_000] {
        let mut ini = logged_in(&[
            ("ImmediateData", "Yes"),
            ("InitialR2T", "No"),
            ("FirstBurstLength", "16384"),
        ]);
        let itt = ini.itt();
        let mut bytes =
            ini.scsi_command(itt, &write10(52), false, true, false, 26_385, &data[..8192]);
        bytes.extend(ini.data_out(itt, RESERVED_TTT, 0, 8192, true, &data[8192..16_384]));
        feed_in_pieces(&mut ini, &bytes, cut);
        assert!(
            ini.take_actions().is_empty(),
            "cut {cut}: the rest is still to come"
        );
        let r2t = ini.recv_one();
        assert!(r2t.is(Opcode::ReadyToTransfer), "cut {cut}: {r2t:?}");
        assert_eq!((r2t.u32_at(40), r2t.u32_at(44)), (16_384, 10_001));
        let last = ini.data_out(itt, r2t.ttt(), 0, 16_384, true, &data[16_384..]);
        feed_in_pieces(&mut ini, &last, cut);
        let exec = ini.expect_execute();
        assert!(exec.data_out[..] == data[..], "cut {cut}: data differs");
    }
}

#[test]
fn a_rejected_command_fed_in_pieces_loses_its_immediate_data_and_the_stream_stays_in_step() {
    let mut ini = logged_in(&[("ImmediateData", "Yes"), ("FirstBurstLength", "4096")]);
    let itt = ini.itt();
    // 8 KiB of immediate data beyond FirstBurstLength: a protocol error, Reject.
    let cmd = ini.scsi_command(itt, &write10(16), false, true, true, 8192, &pattern(8192));
    let (head, tail) = cmd.split_at(60);
    ini.send_raw(head);
    let answers = ini.recv();
    assert!(
        answers.len() == 1
            && answers[0].is(Opcode::Reject)
            && answers[0].bhs[2] == reject_reason::PROTOCOL_ERROR,
        "rejected at its header: {answers:?}"
    );
    for piece in tail.chunks(3000) {
        ini.send_raw(piece);
    }
    assert!(ini.recv().is_empty() && ini.take_actions().is_empty());
    let read_itt = ini.itt();
    let read = ini.scsi_command(read_itt, &read10(1), true, false, true, 512, &[]);
    ini.send(&read);
    assert_eq!(ini.expect_execute().task.0, read_itt);
}
