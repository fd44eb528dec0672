//! Requests from the data plane are answered, each once, with the reply the host gets; shared
//! logical-unit state changes are persisted (when durable) and published before the answer.

use lunar_api::target::TargetDeleteParams;
use lunar_reactor::{Nexus, ReactorRequest, RequestId, RequestKind};
use lunar_scsi::{NexusId, ScsiReply};
use lunar_wire::scsi::{status, Asc, Sense, SenseKey};

use super::tests::{create_volume, linear, populated};
use super::*;
use crate::testing::{standard_opener, FakePlane, MemoryStore};

const T1: &str = "iqn.2026-11.dev.lunar:t1";
const HOST_A: &str = "iqn.2026-11.a.b:host-a,i,0x230000000001";
const HOST_B: &str = "iqn.2026-11.a.b:host-b,i,0x230000000002";
const PORT: &str = "iqn.2026-11.dev.lunar:t1,t,0x0001";
const RESERVE_6: [u8; 6] = [0x16, 0, 0, 0, 0, 0];
const RELEASE_6: [u8; 6] = [0x17, 0, 0, 0, 0, 0];
/// PERSISTENT RESERVE OUT, REGISTER, 24 bytes of parameters.
const REGISTER: [u8; 10] = [0x5f, 0x00, 0x00, 0, 0, 0, 0, 0, 24, 0];

/// REGISTER's parameter list: reservation key 0, service action reservation key `key`.
fn register_parameters(key: u64) -> Vec<u8> {
    let mut data = vec![0u8; 24];
    data[8..16].copy_from_slice(&key.to_be_bytes());
    data
}

fn nexus(initiator_port: &str) -> Nexus {
    Nexus {
        initiator_port: initiator_port.into(),
        target_port: PORT.into(),
    }
}

fn request(seq: u64, volume_uid: u64, from: &str, cdb: &[u8], data_out: Vec<u8>) -> ReactorRequest {
    ReactorRequest {
        id: RequestId { reactor: 1, seq },
        kind: RequestKind::SharedStateCommand {
            target: T1.into(),
            lun: 0,
            volume_uid,
            nexus: nexus(from),
            cdb: cdb.to_vec(),
            data_out,
        },
    }
}

/// Queue `requests`, serve them, and return the replies in order.
fn serve(c: &mut Controller, plane: &FakePlane, requests: Vec<ReactorRequest>) -> Vec<ScsiReply> {
    let ids: Vec<RequestId> = requests.iter().map(|r| r.id).collect();
    plane.state().requests = requests;
    assert_eq!(c.serve_data_plane(), ids.len());
    let answers = std::mem::take(&mut plane.state().answers);
    assert_eq!(
        answers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids,
        "every request answered once, in order"
    );
    answers.into_iter().map(|(_, reply)| reply).collect()
}

fn sense_of(reply: &ScsiReply) -> (SenseKey, Asc) {
    let sense = Sense::parse(&reply.sense).expect("sense");
    (sense.key, sense.asc)
}

#[test]
fn register_is_saved_and_published_before_the_answer() {
    let (mut c, plane, store) = populated();
    let uid = c.config().volumes[0].uid.0;
    let generation = c.generation();
    let replies = serve(
        &mut c,
        &plane,
        vec![request(
            7,
            uid,
            HOST_A,
            &REGISTER,
            register_parameters(0xabc),
        )],
    );
    assert_eq!(replies[0].status, status::GOOD);
    assert_eq!(replies[0].transfer_len_bytes, 24);
    assert_eq!(c.generation(), generation + 1);
    let published = plane.last().volumes[0].reservations.clone();
    assert_eq!(published.registrations.len(), 1);
    assert_eq!(published.registrations[0].key, 0xabc);
    assert_eq!(
        published.generation, 1,
        "PRGENERATION counts the registration"
    );
    let saved = store.state().saved.last().cloned().expect("saved");
    assert!(
        saved.volumes[0].reservations.is_some(),
        "durable change saved"
    );
    assert_eq!(&saved, c.config());
    assert_eq!(c.reservation_state(uid).registrations.len(), 1);
}

#[test]
fn spc2_reservations_are_published_but_not_saved_and_conflict() {
    let (mut c, plane, store) = populated();
    let uid = c.config().volumes[0].uid.0;
    let saves = store.state().saved.len();
    let replies = serve(
        &mut c,
        &plane,
        vec![
            request(1, uid, HOST_A, &RESERVE_6, Vec::new()),
            request(2, uid, HOST_B, &RESERVE_6, Vec::new()),
        ],
    );
    assert_eq!(replies[0].status, status::GOOD);
    assert_eq!(replies[1].status, status::RESERVATION_CONFLICT);
    let holder = plane.last().volumes[0].reservations.legacy_holder.clone();
    assert_eq!(holder.map(|h| h.initiator_port), Some(HOST_A.to_string()));
    assert_eq!(
        store.state().saved.len(),
        saves,
        "SPC-2 reservations are not durable"
    );
    let generation = c.generation();
    let replies = serve(
        &mut c,
        &plane,
        vec![request(3, uid, HOST_B, &RELEASE_6, Vec::new())],
    );
    assert_eq!(
        replies[0].status,
        status::GOOD,
        "RELEASE by a non-holder is GOOD"
    );
    assert_eq!(c.generation(), generation, "and changes nothing");
    serve(
        &mut c,
        &plane,
        vec![request(4, uid, HOST_A, &RELEASE_6, Vec::new())],
    );
    assert_eq!(plane.last().volumes[0].reservations.legacy_holder, None);
}

#[test]
fn a_change_that_cannot_be_saved_is_not_applied() {
    let (mut c, plane, store) = populated();
    let uid = c.config().volumes[0].uid.0;
    let generation = c.generation();
    store.state().fail = true;
    let replies = serve(
        &mut c,
        &plane,
        vec![request(1, uid, HOST_A, &REGISTER, register_parameters(5))],
    );
    assert_eq!(replies[0].status, status::CHECK_CONDITION);
    assert_eq!(
        sense_of(&replies[0]),
        (SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE)
    );
    assert_eq!(replies[0].transfer_len_bytes, 24);
    assert_eq!(c.generation(), generation);
    assert!(c.reservation_state(uid).registrations.is_empty());
    assert_eq!(c.config().volumes[0].reservations, None);
    plane.state().fail_publish = true;
    store.state().fail = false;
    let replies = serve(
        &mut c,
        &plane,
        vec![request(2, uid, HOST_A, &RESERVE_6, Vec::new())],
    );
    assert_eq!(replies[0].status, status::CHECK_CONDITION, "publish failed");
    assert_eq!(c.reservation_state(uid).legacy_holder, None);
}

#[test]
fn malformed_commands_get_the_state_machines_answer() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    let replies = serve(
        &mut c,
        &plane,
        vec![
            // REGISTER with a parameter list shorter than 24 bytes.
            request(
                1,
                uid,
                HOST_A,
                &[0x5f, 0, 0, 0, 0, 0, 0, 0, 8, 0],
                vec![0; 8],
            ),
            request(2, uid, HOST_A, &[], Vec::new()),
        ],
    );
    for reply in &replies {
        assert_eq!(reply.status, status::CHECK_CONDITION);
        assert_eq!(sense_of(reply).0, SenseKey::IllegalRequest);
    }
    assert!(c.reservation_state(uid).registrations.is_empty());
}

#[test]
fn a_request_for_a_deleted_volume_gets_logical_unit_not_supported() {
    let (mut c, plane, _) = populated();
    let replies = serve(
        &mut c,
        &plane,
        vec![request(
            1,
            0xdead_beef,
            HOST_A,
            &REGISTER,
            register_parameters(1),
        )],
    );
    assert_eq!(
        sense_of(&replies[0]),
        (SenseKey::IllegalRequest, Asc::LOGICAL_UNIT_NOT_SUPPORTED)
    );
    assert_eq!(replies[0].transfer_len_bytes, 24);
}

#[test]
fn registrations_survive_a_restart() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    serve(
        &mut c,
        &plane,
        vec![
            request(1, uid, HOST_A, &REGISTER, register_parameters(0x1111)),
            request(2, uid, HOST_A, &RESERVE_6, Vec::new()),
        ],
    );
    let config = c.config().clone();
    let devices = open_devices(&config, &standard_opener()).expect("open");
    let restarted_plane = FakePlane::default();
    let restarted = Controller::new(
        config,
        devices,
        Parts {
            opener: Box::new(standard_opener()),
            publisher: Box::new(restarted_plane.clone()),
            store: Box::new(MemoryStore::default()),
            about: About::default(),
        },
    )
    .expect("restart");
    let state = restarted_plane.last().volumes[0].reservations.clone();
    assert_eq!(state.registrations.len(), 1);
    assert_eq!(state.registrations[0].key, 0x1111);
    assert_eq!(
        state.legacy_holder, None,
        "a restart is a power cycle for SPC-2 reservations"
    );
    assert_eq!(restarted.reservation_state(uid).registrations.len(), 1);
}

#[test]
fn unreadable_saved_reservations_are_refused_at_start() {
    let (c, _, _) = populated();
    let devices = open_devices(c.config(), &standard_opener()).expect("open");
    for bad in ["not hex", "00ff", ""] {
        let mut config = c.config().clone();
        config.volumes[0].reservations = Some(bad.to_string());
        let error = check_config(&config, &devices).expect_err(bad);
        assert!(
            error
                .to_string()
                .starts_with("the saved reservations of volume 'vol1' are not readable"),
            "{error}"
        );
    }
    let mut good = c.config().clone();
    good.volumes[0].reservations = Some(encode_saved(&Default::default()));
    check_config(&good, &devices).expect("an encoded empty state");
}

#[test]
fn deleted_volumes_lose_their_state_and_new_ones_start_empty() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    serve(
        &mut c,
        &plane,
        vec![request(1, uid, HOST_A, &REGISTER, register_parameters(9))],
    );
    c.target_delete(TargetDeleteParams { iqn: T1.into() })
        .expect("target_delete");
    c.volume_delete(lunar_api::volume::VolumeDeleteParams {
        name: "vol1".into(),
    })
    .expect("volume_delete");
    assert!(c.reservation_state(uid).registrations.is_empty());
    create_volume(&mut c, "vol2", linear("disk1", 0, Some(1 << 20))).expect("vol2");
    assert!(plane.last().volumes[0]
        .reservations
        .registrations
        .is_empty());
}

#[test]
fn nexus_loss_ends_its_spc2_reservation_only() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    serve(
        &mut c,
        &plane,
        vec![
            request(1, uid, HOST_A, &REGISTER, register_parameters(3)),
            request(2, uid, HOST_A, &RESERVE_6, Vec::new()),
        ],
    );
    let generation = c.generation();
    let other = NexusId {
        initiator_port: HOST_B.into(),
        target_port: PORT.into(),
        relative_target_port_id: 1,
    };
    c.nexus_lost(&other).expect("other nexus");
    assert_eq!(
        c.generation(),
        generation,
        "nothing to change, nothing published"
    );
    let holder = NexusId {
        initiator_port: HOST_A.into(),
        target_port: PORT.into(),
        relative_target_port_id: 1,
    };
    c.nexus_lost(&holder).expect("holder");
    let state = plane.last().volumes[0].reservations.clone();
    assert_eq!(state.legacy_holder, None);
    assert_eq!(state.registrations.len(), 1, "registrations stay");
}

#[test]
fn resets_end_spc2_reservations_and_tell_every_nexus() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    serve(
        &mut c,
        &plane,
        vec![request(1, uid, HOST_A, &RESERVE_6, Vec::new())],
    );
    let events_before = plane.last().volumes[0].reservations.events().len();
    c.logical_units_reset("IQN.2026-11.dev.lunar:T1", Some(0), false)
        .expect("LU reset");
    let state = plane.last().volumes[0].reservations.clone();
    assert_eq!(state.legacy_holder, None);
    assert!(
        state.events().len() > events_before,
        "a unit attention for every nexus"
    );
    let generation = c.generation();
    c.logical_units_reset(T1, Some(9), false)
        .expect("no such LUN");
    assert_eq!(
        c.generation(),
        generation,
        "no logical unit, nothing published"
    );
    c.logical_units_reset(T1, None, true).expect("cold reset");
    assert_eq!(c.generation(), generation + 1);
    let error = c
        .logical_units_reset("iqn.2026-11.dev.lunar:ghost", None, false)
        .expect_err("ghost");
    assert_eq!(error.code(), lunar_api::code::NOT_FOUND);
}

#[test]
fn removals_answer_waiting_requests_before_waiting_for_the_drain() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    plane.state().requests = vec![request(3, uid, HOST_A, &RESERVE_6, Vec::new())];
    c.target_delete(TargetDeleteParams { iqn: T1.into() })
        .expect("delete");
    assert_eq!(plane.state().answers.len(), 1);
}

#[test]
fn lost_nexuses_and_resets_from_the_data_plane_are_applied() {
    let (mut c, plane, _) = populated();
    let uid = c.config().volumes[0].uid.0;
    serve(
        &mut c,
        &plane,
        vec![request(1, uid, HOST_A, &RESERVE_6, Vec::new())],
    );
    plane.state().requests = vec![ReactorRequest {
        id: RequestId { reactor: 0, seq: 2 },
        kind: RequestKind::NexusLost {
            target: T1.into(),
            nexus: nexus(HOST_A),
        },
    }];
    assert_eq!(c.serve_data_plane(), 1);
    assert!(
        plane.state().answers.is_empty(),
        "a lost nexus expects no answer"
    );
    assert_eq!(plane.last().volumes[0].reservations.legacy_holder, None);

    serve(
        &mut c,
        &plane,
        vec![request(3, uid, HOST_B, &RESERVE_6, Vec::new())],
    );
    let reset = ReactorRequest {
        id: RequestId { reactor: 0, seq: 4 },
        kind: RequestKind::Reset {
            target: T1.into(),
            lun: Some(0),
            cold: false,
        },
    };
    let replies = serve(&mut c, &plane, vec![reset]);
    assert_eq!(replies[0].status, status::GOOD);
    assert_eq!(plane.last().volumes[0].reservations.legacy_holder, None);
    let unknown = ReactorRequest {
        id: RequestId { reactor: 0, seq: 5 },
        kind: RequestKind::Reset {
            target: "iqn.2026-11.dev.lunar:gone".into(),
            lun: None,
            cold: true,
        },
    };
    let replies = serve(&mut c, &plane, vec![unknown]);
    assert_eq!(
        replies[0].status,
        status::GOOD,
        "answered even for a deleted target"
    );
}

/// PERSISTENT RESERVE OUT parameters: reservation key, service action reservation key.
fn prout_parameters(key: u64, action_key: u64) -> Vec<u8> {
    let mut data = vec![0u8; 24];
    data[0..8].copy_from_slice(&key.to_be_bytes());
    data[8..16].copy_from_slice(&action_key.to_be_bytes());
    data
}

#[test]
fn preempt_and_abort_aborts_the_preempted_nexus_tasks_before_answering() {
    let (mut c, plane, _store) = populated();
    let uid = c.config().volumes[0].uid.0;
    // Service action in byte 1; scope and type (write exclusive) in byte 2.
    let reserve = [0x5f, 0x01, 0x01, 0, 0, 0, 0, 0, 24, 0];
    let preempt_and_abort = [0x5f, 0x05, 0x01, 0, 0, 0, 0, 0, 24, 0];
    let replies = serve(
        &mut c,
        &plane,
        vec![
            request(1, uid, HOST_A, &REGISTER, register_parameters(0xa)),
            request(2, uid, HOST_B, &REGISTER, register_parameters(0xb)),
            request(3, uid, HOST_A, &reserve, prout_parameters(0xa, 0)),
        ],
    );
    assert!(replies.iter().all(|r| r.status == status::GOOD));
    assert!(plane.state().aborted.is_empty(), "nothing preempted yet");
    let replies = serve(
        &mut c,
        &plane,
        vec![request(
            4,
            uid,
            HOST_B,
            &preempt_and_abort,
            prout_parameters(0xb, 0xa),
        )],
    );
    assert_eq!(replies[0].status, status::GOOD);
    assert_eq!(
        plane.state().aborted,
        vec![(uid, vec![HOST_A.to_string()])],
        "host A's tasks on the volume are aborted, the issuer's are not"
    );
    let state = c.reservation_state(uid);
    assert_eq!(
        state.registrations.len(),
        1,
        "host A's registration is gone"
    );
    assert_eq!(state.registrations[0].key, 0xb);
}
