//! Requests from the data plane are answered, each once, with the reply the host gets.

use lunar_reactor::{Nexus, ReactorRequest, RequestId, RequestKind};
use lunar_wire::scsi::{status, Asc, Sense, SenseKey};

use super::tests::populated;

const PERSISTENT_RESERVE_OUT_REGISTER: [u8; 10] = [0x5f, 0x00, 0x00, 0, 0, 0, 0, 0, 0x18, 0];

fn request(seq: u64, volume_uid: u64, cdb: &[u8]) -> ReactorRequest {
    ReactorRequest {
        id: RequestId { reactor: 1, seq },
        kind: RequestKind::SharedStateCommand {
            target: "iqn.2026-11.dev.lunar:t1".into(),
            lun: 0,
            volume_uid,
            nexus: Nexus {
                initiator_port: "iqn.2026-11.a.b:host,i,0x230000000001".into(),
                target_port: "iqn.2026-11.dev.lunar:t1,t,0x0001".into(),
            },
            cdb: cdb.to_vec(),
            data_out: vec![0; 24],
        },
    }
}

#[test]
fn reservation_commands_are_refused_with_sense_until_supported() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    plane.state().requests = vec![
        request(7, uid, &PERSISTENT_RESERVE_OUT_REGISTER),
        request(8, uid, &[0x16, 0, 0, 0, 0, 0]),
    ];
    assert_eq!(c.serve_data_plane(), 2);
    let answers = std::mem::take(&mut plane.state().answers);
    assert_eq!(answers.len(), 2);
    let (id, reply) = &answers[0];
    assert_eq!(*id, RequestId { reactor: 1, seq: 7 });
    assert_eq!(reply.status, status::CHECK_CONDITION);
    assert_eq!(reply.transfer_len_bytes, 24, "PROUT parameter list length");
    assert!(reply.data_in.is_empty());
    let sense = Sense::parse(&reply.sense).expect("sense");
    assert_eq!(
        (sense.key, sense.asc),
        (
            SenseKey::IllegalRequest,
            Asc::INVALID_COMMAND_OPERATION_CODE
        )
    );
    assert_eq!(answers[1].0.seq, 8);
    assert_eq!(answers[1].1.transfer_len_bytes, 0);
    assert_eq!(c.serve_data_plane(), 0, "each request is answered once");
    assert!(plane.state().answers.is_empty());
}

#[test]
fn a_request_for_a_deleted_volume_gets_logical_unit_not_supported() {
    let (mut c, plane, _) = populated();
    plane.state().requests = vec![request(1, 0xdead_beef, &PERSISTENT_RESERVE_OUT_REGISTER)];
    c.serve_data_plane();
    let answers = std::mem::take(&mut plane.state().answers);
    let sense = Sense::parse(&answers[0].1.sense).expect("sense");
    assert_eq!(
        (sense.key, sense.asc),
        (SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED)
    );
}

#[test]
fn removals_answer_waiting_requests_before_waiting_for_the_drain() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    plane.state().requests = vec![request(3, uid, &PERSISTENT_RESERVE_OUT_REGISTER)];
    c.target_delete(lunar_api::target::TargetDeleteParams {
        iqn: "iqn.2026-11.dev.lunar:t1".into(),
    })
    .expect("delete");
    assert_eq!(plane.state().answers.len(), 1);
}
