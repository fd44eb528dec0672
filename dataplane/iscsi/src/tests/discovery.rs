//! Discovery sessions and Text requests: SendTargets in both session types, invalid keys and
//! values, long responses split with the C bit, continued requests, and what a discovery
//! session refuses.

use lunar_wire::iscsi::codes::reject_reason;
use lunar_wire::iscsi::{Opcode, RESERVED_TAG};

use super::initiator::*;
use crate::connection::{Action, CloseReason, ConnConfig, TargetCatalog};

fn send_targets(ini: &mut Initiator, value: &str) -> Received {
    let itt = ini.itt();
    let data = text_data(&[("SendTargets", value)]);
    let req = ini.text_request(itt, RESERVED_TAG, true, false, &data);
    ini.send(&req);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::TextResponse), "{resp:?}");
    assert_eq!(resp.itt(), itt);
    resp
}

#[test]
fn discovery_login_marks_data_keys_irrelevant() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = text_data(&[
        ("InitiatorName", INITIATOR),
        ("SessionType", "Discovery"),
        ("InitialR2T", "No"),
        ("MaxBurstLength", "65536"),
        ("HeaderDigest", "None"),
    ]);
    ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 0, &keys));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0);
    assert_eq!(resp.value("InitialR2T").as_deref(), Some("Irrelevant"));
    assert_eq!(resp.value("MaxBurstLength").as_deref(), Some("Irrelevant"));
    assert_eq!(resp.value("HeaderDigest").as_deref(), Some("None"));
}

#[test]
fn send_targets_all_lists_every_target_with_its_portals() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_discovery();
    let resp = send_targets(&mut ini, "All");
    assert_eq!(resp.flags(), 0x80, "final, no continuation");
    assert_eq!(resp.ttt(), RESERVED_TAG);
    assert_eq!(
        resp.pairs(),
        vec![
            ("TargetName".to_string(), TARGET.to_string()),
            ("TargetAddress".to_string(), "10.0.0.1:3260,1".to_string()),
            ("TargetAddress".to_string(), "[fd00::1]:3260,1".to_string()),
            ("TargetName".to_string(), OTHER_TARGET.to_string()),
            ("TargetAddress".to_string(), "10.0.0.1:3260,1".to_string()),
        ]
    );
}

#[test]
fn send_targets_by_name() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_discovery();
    let resp = send_targets(&mut ini, OTHER_TARGET);
    assert_eq!(resp.value("TargetName").as_deref(), Some(OTHER_TARGET));
    assert_eq!(resp.pairs().len(), 2);
    let resp = send_targets(&mut ini, "iqn.2024-01.org.lunar:absent");
    assert!(resp.data.is_empty());
    assert_eq!(resp.flags(), 0x80);
}

#[test]
fn invalid_send_targets_requests_fail_as_libiscsi_expects() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_discovery();
    for value in ["Alle", "A", ""] {
        let resp = send_targets(&mut ini, value);
        assert_eq!(
            resp.value("SendTargets").as_deref(),
            Some("Reject"),
            "{value:?}"
        );
    }
    for key in ["SendTargetsPlease", "sENDtARGETS"] {
        let itt = ini.itt();
        let data = text_data(&[(key, "All")]);
        let req = ini.text_request(itt, RESERVED_TAG, true, false, &data);
        ini.send(&req);
        let resp = ini.recv_one();
        assert_eq!(resp.value(key).as_deref(), Some("NotUnderstood"));
    }
    let resp = send_targets(&mut ini, "All");
    assert_eq!(resp.value("TargetName").as_deref(), Some(TARGET));
}

#[test]
fn normal_session_send_targets_reports_its_own_target() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login();
    for value in ["All", ""] {
        let resp = send_targets(&mut ini, value);
        let names: Vec<_> = resp
            .pairs()
            .into_iter()
            .filter(|(k, _)| k == "TargetName")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(names, vec![TARGET.to_string()], "{value:?}");
    }
}

#[test]
fn login_only_keys_are_rejected_in_text_requests() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login();
    let itt = ini.itt();
    let data = text_data(&[
        ("InitialR2T", "No"),
        ("MaxRecvDataSegmentLength", "65536"),
        ("X-vendor", "1"),
    ]);
    let req = ini.text_request(itt, RESERVED_TAG, true, false, &data);
    ini.send(&req);
    let resp = ini.recv_one();
    assert_eq!(resp.value("InitialR2T").as_deref(), Some("Reject"));
    assert_eq!(resp.value("MaxRecvDataSegmentLength"), None, "declarative");
    assert_eq!(resp.value("X-vendor").as_deref(), Some("NotUnderstood"));
    assert_eq!(ini.conn.params.max_xmit_data_segment_len_bytes, 65536);
    assert!(ini.conn.params.initial_r2t);
}

struct ManyTargets;

impl TargetCatalog for ManyTargets {
    fn target_exists(&self, _iqn: &str) -> bool {
        true
    }
    fn send_targets(&self, _only: Option<&str>) -> Vec<(String, Vec<String>)> {
        (0..40)
            .map(|i| {
                (
                    format!("iqn.2024-01.org.lunar:volume-with-a-long-name-{i:03}"),
                    vec![format!("192.168.100.{i}:3260,1")],
                )
            })
            .collect()
    }
}

#[test]
fn long_responses_are_split_and_resumed_with_the_target_transfer_tag() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.catalog = &ManyTargets;
    let keys = text_data(&[
        ("InitiatorName", INITIATOR),
        ("SessionType", "Discovery"),
        ("MaxRecvDataSegmentLength", "512"),
    ]);
    ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 0, &keys));
    assert_eq!(ini.recv_one().login_status(), 0);
    ini.take_actions();

    let itt = ini.itt();
    let req = ini.text_request(
        itt,
        RESERVED_TAG,
        true,
        false,
        &text_data(&[("SendTargets", "All")]),
    );
    ini.send(&req);
    let mut collected = Vec::new();
    let mut pieces = 0;
    loop {
        let resp = ini.recv_one();
        assert!(resp.data.len() <= 512);
        collected.extend_from_slice(&resp.data);
        pieces += 1;
        if resp.flags() & 0x40 == 0 {
            assert_eq!(resp.flags(), 0x80);
            assert_eq!(resp.ttt(), RESERVED_TAG);
            break;
        }
        assert_eq!(resp.flags(), 0x40, "C=1 F=0");
        assert_ne!(resp.ttt(), RESERVED_TAG);
        let next = ini.text_request(itt, resp.ttt(), true, false, &[]);
        ini.send(&next);
    }
    assert!(pieces > 5);
    let names = lunar_wire::iscsi::text::pairs(&collected)
        .map(|kv| kv.expect("reassembled text parses"))
        .filter(|kv| kv.key == "TargetName")
        .count();
    assert_eq!(names, 40);
}

#[test]
fn continued_text_requests_are_reassembled() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_discovery();
    let itt = ini.itt();
    let data = text_data(&[("SendTargets", "All")]);
    let (a, b) = data.split_at(5);
    let first = ini.text_request(itt, RESERVED_TAG, false, true, a);
    ini.send(&first);
    let ask = ini.recv_one();
    assert_eq!(ask.flags(), 0x00);
    assert!(ask.data.is_empty());
    assert_ne!(ask.ttt(), RESERVED_TAG);
    let second = ini.text_request(itt, ask.ttt(), true, false, b);
    ini.send(&second);
    let resp = ini.recv_one();
    assert_eq!(resp.value("TargetName").as_deref(), Some(TARGET));
}

#[test]
fn text_request_with_a_stale_tag_is_rejected() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_discovery();
    let itt = ini.itt();
    let req = ini.text_request(
        itt,
        0x1234,
        true,
        false,
        &text_data(&[("SendTargets", "All")]),
    );
    ini.send(&req);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::INVALID_PDU_FIELD);
}

#[test]
fn discovery_sessions_reject_scsi_commands_and_task_management() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_discovery();
    let itt = ini.itt();
    let cmd = ini.scsi_command(itt, &[0; 6], false, false, true, 0, &[]);
    ini.send(&cmd);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::Reject));
    assert_eq!(resp.bhs[2], reject_reason::PROTOCOL_ERROR);
    assert_eq!(
        &resp.data[..],
        &cmd[..48],
        "the rejected header is returned"
    );
    assert_eq!(resp.exp_cmd_sn(), ini.cmd_sn, "its CmdSN was consumed");
    assert!(ini.take_actions().is_empty());
    let tmf_itt = ini.itt();
    let tmf = ini.task_mgmt(tmf_itt, 1, itt, 0);
    ini.send(&tmf);
    assert!(ini.recv_one().is(Opcode::Reject));
}

#[test]
fn discovery_session_logout() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_discovery();
    let itt = ini.itt();
    let logout = ini.logout(itt, 0, 1);
    ini.send(&logout);
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::LogoutResponse));
    assert_eq!(resp.bhs[2], 0);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::Close(CloseReason::Logout)]
    ));
}
