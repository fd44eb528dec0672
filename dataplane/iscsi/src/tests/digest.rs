//! CRC32C digests in the full feature phase: negotiation, digests on everything the target
//! sends, and the ERL 0 answers to digest errors (RFC 7143 §7.8): a header digest error drops
//! the connection, a data digest error gets a Reject and the PDU is discarded; write data lost
//! that way ends its task with CHECK CONDITION (protocol service CRC error).

use lunar_wire::iscsi::codes::reject_reason;
use lunar_wire::iscsi::{Opcode, RESERVED_TAG};

use super::initiator::*;
use crate::connection::{Action, CloseReason, ConnConfig};

/// Logs in with the given digests and switches the test initiator to them.
fn logged_in(header: &str, data: &str) -> Initiator {
    let mut ini = Initiator::new(ConnConfig::default());
    let last = ini.login_with(&[
        ("HeaderDigest", header),
        ("DataDigest", data),
        ("ImmediateData", "Yes"),
        ("MaxRecvDataSegmentLength", "512"),
    ]);
    ini.header_digest = last.value("HeaderDigest").as_deref() == Some("CRC32C");
    ini.data_digest = last.value("DataDigest").as_deref() == Some("CRC32C");
    ini.take_actions();
    ini
}

/// Flips one bit at `offset` of a PDU after sealing it.
fn corrupt(ini: &Initiator, pdu: &[u8], offset: usize) -> Vec<u8> {
    let mut sealed = ini.seal(pdu);
    sealed[offset] ^= 0x10;
    sealed
}

fn expect_reject(ini: &mut Initiator, reason: u8, itt: u32) {
    let reject = ini.recv_one();
    assert!(reject.is(Opcode::Reject), "{reject:?}");
    assert_eq!(reject.bhs[2], reason);
    assert_eq!(reject.data.len(), 48, "the rejected header comes back");
    assert_eq!(
        u32::from_be_bytes([
            reject.data[16],
            reject.data[17],
            reject.data[18],
            reject.data[19]
        ]),
        itt
    );
}

#[test]
fn both_digests_protect_every_pdu_both_ways() {
    let mut ini = logged_in("CRC32C,None", "CRC32C,None");
    assert!(ini.header_digest && ini.data_digest);
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &read10(2), true, false, true, 1024, &[]);
    ini.send(&cmd);
    ini.expect_execute();
    ini.complete(itt, 0, &[], &[0x3c; 1024], 1024);
    // `recv` checks every digest; the data is split by the initiator's 512-byte segments.
    let pdus = ini.recv();
    assert_eq!(pdus.len(), 2);
    assert!(pdus
        .iter()
        .all(|p| p.is(Opcode::DataIn) && p.data == [0x3c; 512]));
    // A write with immediate data and an R2T for the rest.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(2), false, true, true, 1024, &[1; 512]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    assert!(r2t.is(Opcode::ReadyToTransfer));
    let out = ini.data_out(itt, r2t.ttt(), 0, 512, true, &[2; 512]);
    ini.send(&out);
    let exec = ini.expect_execute();
    assert_eq!(&exec.data_out[..512], &[1; 512]);
    assert_eq!(&exec.data_out[512..], &[2; 512]);
}

#[test]
fn the_initiators_order_decides() {
    let ini = logged_in("None,CRC32C", "CRC32C");
    assert!(!ini.header_digest);
    assert!(ini.data_digest);
    let ini = logged_in("CRC32C", "None");
    assert!(ini.header_digest && !ini.data_digest);
}

#[test]
fn a_header_digest_error_drops_the_connection() {
    let mut ini = logged_in("CRC32C", "None");
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, true, &[]);
    let bad = corrupt(&ini, &nop, 48);
    ini.send_raw(&bad);
    assert!(
        ini.recv().is_empty(),
        "no Reject: the header cannot be trusted"
    );
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::HeaderDigestError)]
    ));
    assert!(!ini.conn.wants_recv());
}

#[test]
fn a_header_digest_error_in_a_header_announcing_too_much_data_is_still_a_digest_error() {
    let mut ini = logged_in("CRC32C", "None");
    let itt = ini.itt();
    // Digest computed before the length was corrupted.
    let nop = ini.nop_out(itt, RESERVED_TAG, true, &[]);
    let mut bad = ini.seal(&nop);
    bad[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    ini.send_raw(&bad);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::HeaderDigestError)]
    ));
}

#[test]
fn a_data_digest_error_on_a_ping_is_rejected_and_the_session_goes_on() {
    let mut ini = logged_in("None", "CRC32C");
    let itt = ini.itt();
    let nop = ini.nop_out(itt, RESERVED_TAG, true, b"ping");
    let bad = corrupt(&ini, &nop, 49);
    ini.send_raw(&bad);
    expect_reject(&mut ini, reject_reason::DATA_DIGEST_ERROR, itt);
    assert!(ini.take_actions().is_empty());
    // Sent again intact, it is answered.
    ini.send(&nop);
    let reply = ini.recv_one();
    assert!(reply.is(Opcode::NopIn));
    assert_eq!(reply.data, b"ping");
}

#[test]
fn corrupt_write_data_ends_the_task_once_its_solicited_data_is_in() {
    let mut ini = logged_in("CRC32C", "CRC32C");
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(2), false, true, true, 1024, &[]);
    ini.send(&cmd);
    let r2t = ini.recv_one();
    assert!(r2t.is(Opcode::ReadyToTransfer));
    assert_eq!(r2t.u32_at(44), 1024, "one R2T for both blocks");
    let first = ini.data_out(itt, r2t.ttt(), 0, 0, false, &[7; 512]);
    // Header, its digest, then the data: flip a data byte.
    let bad = corrupt(&ini, &first, 48 + 4 + 100);
    ini.send_raw(&bad);
    expect_reject(&mut ini, reject_reason::DATA_DIGEST_ERROR, itt);
    assert!(ini.take_actions().is_empty());
    // The target waits for the rest of the R2T's data before answering.
    let second = ini.data_out(itt, r2t.ttt(), 1, 512, true, &[7; 512]);
    ini.send(&second);
    assert!(ini.take_actions().is_empty(), "never executed");
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::ScsiResponse));
    assert_eq!(resp.bhs[3], 0x02, "CHECK CONDITION");
    assert_eq!(&resp.data[2..3], &[0x70]);
    assert_eq!(resp.data[2 + 2] & 0x0f, 0x0b, "ABORTED COMMAND");
    assert_eq!(
        &resp.data[2 + 12..2 + 14],
        &[0x47, 0x05],
        "PROTOCOL SERVICE CRC ERROR"
    );
    // The session carries on.
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &[9; 512]);
    ini.send(&cmd);
    assert_eq!(&ini.expect_execute().data_out[..], vec![9; 512]);
}

#[test]
fn a_corrupt_command_is_discarded_and_may_be_sent_again() {
    let mut ini = logged_in("CRC32C", "CRC32C");
    let itt = ini.itt();
    let cmd_sn = ini.cmd_sn;
    let cmd = ini.scsi_command(itt, &write10(1), false, true, true, 512, &[5; 512]);
    let bad = corrupt(&ini, &cmd, 48 + 4 + 3);
    ini.send_raw(&bad);
    expect_reject(&mut ini, reject_reason::DATA_DIGEST_ERROR, itt);
    assert!(ini.take_actions().is_empty());
    // Its CmdSN is still expected: the same command sent again runs.
    let again = ini.scsi_command_sn(itt, &write10(1), false, true, true, 512, &[5; 512], cmd_sn);
    ini.send(&again);
    assert_eq!(&ini.expect_execute().data_out[..], vec![5; 512]);
}

#[test]
fn borrowed_data_in_is_the_same_on_the_wire_as_copied_data_in() {
    // Split by the 512-byte segment length, with and without digests, GOOD and with a
    // residual, or CHECK CONDITION (no data sent, nothing borrowed).
    for (header, data) in [("None", "None"), ("CRC32C", "CRC32C"), ("None", "CRC32C")] {
        for (expected_len, data_len, status) in [(2048, 2048, 0), (4096, 1500, 0), (512, 0, 2)] {
            let mut copied = logged_in(header, data);
            let mut borrowing = logged_in(header, data);
            let data_in: Vec<u8> = (0..data_len).map(|i| (i * 13 % 251) as u8).collect();
            let sense: &[u8] = if status == 0 {
                &[]
            } else {
                &[0x70, 0, 5, 0, 0, 0, 0, 0]
            };
            let mut itts = Vec::new();
            for ini in [&mut copied, &mut borrowing] {
                let itt = ini.itt();
                itts.push(itt);
                let cmd = ini.scsi_command(itt, &read10(8), true, false, true, expected_len, &[]);
                ini.send(&cmd);
                ini.expect_execute();
            }
            copied.complete(itts[0], status, sense, &data_in, 4096);
            let used = borrowing.complete_borrowing(itts[1], status, sense, &data_in, 4096);
            assert_eq!(
                used,
                data_len > 0 && status == 0,
                "{header}/{data} {data_len}"
            );
            let (a, b) = (copied.recv(), borrowing.recv());
            assert!(!a.is_empty());
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(&b) {
                assert_eq!(a.bhs, b.bhs);
                assert_eq!(a.data, b.data);
            }
        }
    }
}
