//! Session tests: a scripted target feeds PDUs built with lunar-wire's target constructors, and
//! the tests check what the session sends and which commands it reports finished.

use super::*;
use lunar_wire::iscsi::initiator::{DataOutHeader, NopOutHeader, ScsiCommandHeader};
use lunar_wire::iscsi::push_pdu;
use lunar_wire::iscsi::target::{DataInStatus, Residual, StatusSeq};
use proptest::prelude::*;

const LUN: [u8; 8] = [0, 1, 0, 0, 0, 0, 0, 0];

fn negotiated() -> Negotiated {
    Negotiated {
        target_recv_data_segment_max_bytes: 1024,
        first_burst_bytes: 2048,
        max_burst_bytes: 8192,
        immediate_data: true,
        unsolicited_data_out: false,
        tsih: 1,
        cmd_sn: 10,
        exp_stat_sn: 5,
        max_cmd_sn: 41,
    }
}

fn session_with(negotiated: Negotiated, queue_depth: usize) -> Session {
    Session::new(
        SessionShape {
            lun: LUN,
            queue_depth,
            slot_buffer_bytes: 8192,
            recv_data_segment_max_bytes: 65536,
        },
        negotiated,
        RxBuf::new(1 << 18),
    )
}

fn seq(stat_sn: u32, max_cmd_sn: u32) -> StatusSeq {
    StatusSeq {
        stat_sn,
        exp_cmd_sn: 11,
        max_cmd_sn,
    }
}

/// Splits the session's pending bytes into (header, data) pairs and marks them sent.
fn sent(session: &mut Session) -> Vec<([u8; 48], Vec<u8>)> {
    let mut out = Vec::new();
    let bytes = session.pending_tx().to_vec();
    session.advance_tx(bytes.len());
    let limits = FrameLimits {
        max_data_segment_len_bytes: 1 << 20,
        ..FrameLimits::LOGIN
    };
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        match next_frame(rest, &limits) {
            Ok(FrameStatus::Complete(frame)) => {
                out.push((*frame.bhs_bytes, frame.data.to_vec()));
                rest = &rest[frame.len_bytes..];
            }
            other => panic!("partial PDU in tx: {other:?}"),
        }
    }
    out
}

fn feed(session: &mut Session, bytes: &[u8]) -> Result<Vec<(Completion, Vec<u8>)>, SessionError> {
    let spare = session.rx_spare();
    spare[..bytes.len()].copy_from_slice(bytes);
    session.commit_rx(bytes.len());
    let mut done = Vec::new();
    session.process(Instant::now(), &mut |c: &Completion, data: &[u8]| {
        done.push((*c, data.to_vec()))
    })?;
    Ok(done)
}

fn read_op(len_bytes: u32) -> Op {
    Op {
        cdb: scsi::read_16(0, len_bytes / 512),
        direction: Direction::Read,
        len_bytes,
        user: 77,
    }
}

fn write_op(len_bytes: u32) -> Op {
    Op {
        cdb: scsi::write_16(0, len_bytes / 512),
        direction: Direction::Write,
        len_bytes,
        user: 78,
    }
}

fn itt_of(pdu: &([u8; 48], Vec<u8>)) -> u32 {
    u32::from_be_bytes([pdu.0[16], pdu.0[17], pdu.0[18], pdu.0[19]])
}

#[test]
fn read_completes_on_data_in_with_status_and_keeps_the_data() {
    let mut session = session_with(negotiated(), 4);
    session.set_keep_read_data(true);
    session
        .submit(read_op(1024), Instant::now(), |_| {})
        .expect("submit");
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 1);
    let cmd = ScsiCommandHeader::view(&pdus[0].0);
    assert!(cmd.is_read() && cmd.is_final());
    assert_eq!(cmd.cmd_sn.get(), 10);
    assert_eq!(cmd.exp_stat_sn.get(), 5);
    let itt = itt_of(&pdus[0]);

    let mut target = Vec::new();
    let first = DataInHeader::new(LUN, itt, 0, 0, false, None, seq(0, 42));
    push_pdu(&mut target, &first, &[1u8; 512]).unwrap();
    let status = DataInStatus {
        status: 0,
        residual: Residual::None,
        stat_sn: 5,
    };
    let last = DataInHeader::new(LUN, itt, 1, 512, true, Some(status), seq(5, 42));
    push_pdu(&mut target, &last, &[2u8; 512]).unwrap();
    let done = feed(&mut session, &target).expect("valid");
    assert_eq!(done.len(), 1);
    let (completion, data) = &done[0];
    assert_eq!(completion.outcome, Outcome::Good);
    assert_eq!(completion.op.user, 77);
    assert_eq!(completion.received_bytes, 1024);
    assert_eq!(&data[..512], &[1u8; 512]);
    assert_eq!(&data[512..], &[2u8; 512]);
    assert_eq!(session.in_flight(), 0);

    // The next command carries the advanced CmdSN and ExpStatSN.
    session
        .submit(read_op(512), Instant::now(), |_| {})
        .expect("submit");
    let pdus = sent(&mut session);
    let cmd = ScsiCommandHeader::view(&pdus[0].0);
    assert_eq!(cmd.cmd_sn.get(), 11);
    assert_eq!(cmd.exp_stat_sn.get(), 6);
    assert_ne!(itt_of(&pdus[0]), itt);
}

#[test]
fn data_in_arriving_in_pieces_is_framed_once_whole() {
    let mut session = session_with(negotiated(), 1);
    session
        .submit(read_op(512), Instant::now(), |_| {})
        .unwrap();
    let itt = itt_of(&sent(&mut session)[0]);
    let mut target = Vec::new();
    let status = DataInStatus {
        status: 0,
        residual: Residual::None,
        stat_sn: 5,
    };
    let pdu = DataInHeader::new(LUN, itt, 0, 0, true, Some(status), seq(5, 42));
    push_pdu(&mut target, &pdu, &[9u8; 512]).unwrap();
    let mut finished = 0;
    for chunk in target.chunks(100) {
        finished += feed(&mut session, chunk).expect("valid").len();
    }
    assert_eq!(finished, 1);
}

#[test]
fn write_sends_immediate_data_then_answers_r2t_with_data_out() {
    let mut session = session_with(negotiated(), 2);
    session
        .submit(write_op(4096), Instant::now(), |buf| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (i / 512) as u8;
            }
        })
        .expect("submit");
    let pdus = sent(&mut session);
    // Immediate data is limited by the target's 1024-byte segment size; InitialR2T=Yes.
    assert_eq!(pdus.len(), 1);
    let cmd = ScsiCommandHeader::view(&pdus[0].0);
    assert!(cmd.is_write() && cmd.is_final());
    assert_eq!(cmd.expected_data_transfer_len.get(), 4096);
    assert_eq!(pdus[0].1.len(), 1024);
    assert_eq!(&pdus[0].1[512..], &[1u8; 512]);
    let itt = itt_of(&pdus[0]);

    let mut target = Vec::new();
    let r2t = ReadyToTransferHeader::new(LUN, itt, 0x1234, 0, 1024, 3072, seq(0, 42));
    push_pdu(&mut target, &r2t, &[]).unwrap();
    assert!(feed(&mut session, &target).unwrap().is_empty());
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 3);
    for (i, (bhs, data)) in pdus.iter().enumerate() {
        let h = DataOutHeader::view(bhs);
        assert_eq!(h.target_transfer_tag.get(), 0x1234);
        assert_eq!(h.data_sn.get(), i as u32);
        assert_eq!(h.buffer_offset.get(), 1024 + 1024 * i as u32);
        assert_eq!(h.flags & 0x80 != 0, i == 2);
        assert_eq!(data.len(), 1024);
        assert_eq!(data[0], (2 + 2 * i) as u8);
    }

    let mut target = Vec::new();
    let response = ScsiResponseHeader::new(itt, 0, Residual::None, 0, seq(5, 42));
    push_pdu(&mut target, &response, &[]).unwrap();
    let done = feed(&mut session, &target).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0.outcome, Outcome::Good);
    assert_eq!(done[0].1[4095], 7);
}

#[test]
fn unsolicited_data_out_follows_immediate_data_up_to_the_first_burst() {
    let mut negotiated = negotiated();
    negotiated.unsolicited_data_out = true;
    let mut session = session_with(negotiated, 1);
    session
        .submit(write_op(4096), Instant::now(), |_| {})
        .unwrap();
    let pdus = sent(&mut session);
    // Command with 1024 immediate bytes, then one Data-Out of 1024 (FirstBurst 2048).
    assert_eq!(pdus.len(), 2);
    assert!(!ScsiCommandHeader::view(&pdus[0].0).is_final());
    let data_out = DataOutHeader::view(&pdus[1].0);
    assert_eq!(data_out.target_transfer_tag.get(), RESERVED_TAG);
    assert_eq!(data_out.buffer_offset.get(), 1024);
    assert_eq!(data_out.flags & 0x80, 0x80);
    assert_eq!(pdus[1].1.len(), 1024);
}

#[test]
fn check_condition_reports_the_sense_key() {
    let mut session = session_with(negotiated(), 1);
    session
        .submit(read_op(512), Instant::now(), |_| {})
        .unwrap();
    let itt = itt_of(&sent(&mut session)[0]);
    let mut target = Vec::new();
    let response = ScsiResponseHeader::new(itt, 2, Residual::None, 0, seq(5, 42));
    push_pdu(&mut target, &response, &[0, 4, 0x70, 0, 0x06, 0]).unwrap();
    let done = feed(&mut session, &target).unwrap();
    assert_eq!(
        done[0].0.outcome,
        Outcome::CheckCondition { sense_key: Some(6) }
    );
}

#[test]
fn residual_underflow_is_reported() {
    let mut session = session_with(negotiated(), 1);
    session
        .submit(read_op(1024), Instant::now(), |_| {})
        .unwrap();
    let itt = itt_of(&sent(&mut session)[0]);
    let mut target = Vec::new();
    let status = DataInStatus {
        status: 0,
        residual: Residual::Underflow(512),
        stat_sn: 5,
    };
    let pdu = DataInHeader::new(LUN, itt, 0, 0, true, Some(status), seq(5, 42));
    push_pdu(&mut target, &pdu, &[0u8; 512]).unwrap();
    let done = feed(&mut session, &target).unwrap();
    assert_eq!(
        done[0].0.outcome,
        Outcome::Residual {
            underflow: true,
            count_bytes: 512
        }
    );
}

#[test]
fn the_cmd_sn_window_limits_submissions() {
    let mut negotiated = negotiated();
    negotiated.max_cmd_sn = 11; // CmdSN 10 and 11 fit.
    let mut session = session_with(negotiated, 8);
    for _ in 0..2 {
        assert!(session.can_submit());
        session
            .submit(read_op(512), Instant::now(), |_| {})
            .unwrap();
    }
    assert!(!session.can_submit());
    assert_eq!(
        session.submit(read_op(512), Instant::now(), |_| {}),
        Err(SubmitError::WindowClosed)
    );
    // A NOP-In opening the window lets the next one go.
    let mut target = Vec::new();
    push_pdu(
        &mut target,
        &NopInHeader::new(LUN, RESERVED_TAG, RESERVED_TAG, seq(0, 12)),
        &[],
    )
    .unwrap();
    feed(&mut session, &target).unwrap();
    assert!(session.can_submit());
}

#[test]
fn queue_depth_limits_submissions() {
    let mut session = session_with(negotiated(), 2);
    for _ in 0..2 {
        session
            .submit(read_op(512), Instant::now(), |_| {})
            .unwrap();
    }
    assert_eq!(
        session.submit(read_op(512), Instant::now(), |_| {}),
        Err(SubmitError::NoSlot)
    );
    assert_eq!(session.in_flight(), 2);
}

#[test]
fn too_long_transfers_are_refused_before_taking_a_slot() {
    let mut session = session_with(negotiated(), 1);
    assert!(matches!(
        session.submit(read_op(16384), Instant::now(), |_| {}),
        Err(SubmitError::TooLong { .. })
    ));
    assert_eq!(session.in_flight(), 0);
}

#[test]
fn target_ping_gets_an_answer() {
    let mut session = session_with(negotiated(), 1);
    let mut target = Vec::new();
    push_pdu(
        &mut target,
        &NopInHeader::new(LUN, RESERVED_TAG, 0xabcd, seq(4, 42)),
        &[],
    )
    .unwrap();
    feed(&mut session, &target).unwrap();
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 1);
    let nop = NopOutHeader::view(&pdus[0].0);
    assert_eq!(nop.target_transfer_tag.get(), 0xabcd);
    assert_eq!(nop.initiator_task_tag.get(), RESERVED_TAG);
    assert_eq!(nop.lun, LUN);
}

#[test]
fn logout_round_trip() {
    let mut session = session_with(negotiated(), 1);
    session.logout();
    assert!(!session.can_submit());
    let pdus = sent(&mut session);
    assert_eq!(pdus[0].0[0] & 0x3f, 0x06);
    let itt = itt_of(&pdus[0]);
    let mut target = Vec::new();
    push_pdu(
        &mut target,
        &LogoutResponseHeader::new(itt, 0, 0, 0, seq(5, 42)),
        &[],
    )
    .unwrap();
    feed(&mut session, &target).unwrap();
    assert!(session.logged_out());
}

#[test]
fn data_for_unknown_tasks_and_out_of_bounds_data_end_the_session() {
    let mut session = session_with(negotiated(), 1);
    let mut target = Vec::new();
    push_pdu(
        &mut target,
        &ScsiResponseHeader::new(0x0005_0000, 0, Residual::None, 0, seq(5, 42)),
        &[],
    )
    .unwrap();
    assert!(matches!(
        feed(&mut session, &target),
        Err(SessionError::UnknownTask { .. })
    ));

    let mut session = session_with(negotiated(), 1);
    session
        .submit(read_op(512), Instant::now(), |_| {})
        .unwrap();
    let itt = itt_of(&sent(&mut session)[0]);
    let mut target = Vec::new();
    let pdu = DataInHeader::new(LUN, itt, 0, 256, false, None, seq(0, 42));
    push_pdu(&mut target, &pdu, &[0u8; 512]).unwrap();
    assert!(matches!(
        feed(&mut session, &target),
        Err(SessionError::OutOfBounds { .. })
    ));
}

#[test]
fn reject_and_logout_requests_end_the_session() {
    let mut session = session_with(negotiated(), 1);
    let mut target = Vec::new();
    push_pdu(
        &mut target,
        &RejectHeader::new(0x09, seq(5, 42)),
        &[0u8; 48],
    )
    .unwrap();
    assert_eq!(
        feed(&mut session, &target).map(|_| ()),
        Err(SessionError::Rejected { reason: 0x09 })
    );

    let mut session = session_with(negotiated(), 1);
    let mut target = Vec::new();
    let message =
        AsyncMessageHeader::new(LUN, async_event::LOGOUT_REQUESTED, [0, 0, 0], seq(5, 42));
    push_pdu(&mut target, &message, &[]).unwrap();
    assert_eq!(
        feed(&mut session, &target).map(|_| ()),
        Err(SessionError::TargetLeaving { event: 1 })
    );
}

proptest! {
    /// Whatever the target sends, the session never panics and never reports more
    /// completions than it had commands.
    #[test]
    fn arbitrary_target_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        keep in any::<bool>(),
    ) {
        let mut session = session_with(negotiated(), 4);
        session.set_keep_read_data(keep);
        for _ in 0..4 {
            session.submit(read_op(1024), Instant::now(), |_| {}).unwrap();
        }
        let spare = session.rx_spare();
        let n = bytes.len().min(spare.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        session.commit_rx(n);
        let mut completions = 0;
        let _ = session.process(Instant::now(), &mut |_: &Completion, _: &[u8]| completions += 1);
        prop_assert!(completions <= 4);
        prop_assert_eq!(session.in_flight(), 4 - completions);
    }
}
