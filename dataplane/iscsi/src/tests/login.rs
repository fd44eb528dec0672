//! Login phase transitions: stages, continuation, identity checks, negotiation answers and
//! every failure status.

use lunar_wire::iscsi::codes::login_status;
use lunar_wire::iscsi::Opcode;

use super::initiator::*;
use crate::connection::{Action, CloseReason, ConnConfig, SessionKind};

fn security_keys() -> Vec<u8> {
    text_data(&[
        ("InitiatorName", INITIATOR),
        ("InitiatorAlias", "host1"),
        ("SessionType", "Normal"),
        ("TargetName", TARGET),
        ("AuthMethod", "CHAP,None"),
    ])
}

fn expect_login_failure(ini: &mut Initiator, status: u16) {
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::LoginResponse));
    assert_eq!(resp.login_status(), status, "{resp:?}");
    assert_eq!(resp.flags() & 0x80, 0, "no transit on failure");
    let actions = ini.take_actions();
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Close(CloseReason::LoginFailed(_))]
        ),
        "{actions:?}"
    );
    assert!(!ini.conn.wants_recv());
    // Nothing more is processed.
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    assert!(ini.recv().is_empty());
}

#[test]
fn two_stage_login_negotiates_and_enters_full_feature_phase() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        0x77,
        5,
        900,
        &security_keys(),
    ));
    let first = ini.recv_one();
    assert!(first.is(Opcode::LoginResponse));
    assert_eq!(first.flags(), 0x81, "T=1 CSG=0 NSG=1");
    assert_eq!(first.login_status(), login_status::SUCCESS);
    assert_eq!(&first.bhs[8..14], &ISID);
    assert_eq!(first.tsih(), 0);
    assert_eq!(first.itt(), 0x77);
    assert_eq!(
        first.stat_sn(),
        900,
        "StatSN starts at the initiator's ExpStatSN"
    );
    assert_eq!(first.exp_cmd_sn(), 5);
    assert_eq!(first.max_cmd_sn(), 5 + 127);
    assert_eq!(first.value("AuthMethod").as_deref(), Some("None"));
    assert_eq!(first.value("TargetPortalGroupTag").as_deref(), Some("1"));
    assert!(ini.take_actions().is_empty());

    let op = text_data(&OPERATIONAL_KEYS);
    ini.send(&login_request(true, false, 1, 3, 0, 0x77, 5, 901, &op));
    let last = ini.recv_one();
    assert_eq!(last.flags(), 0x87, "T=1 CSG=1 NSG=3");
    assert_eq!(last.login_status(), login_status::SUCCESS);
    assert_ne!(last.tsih(), 0, "TSIH assigned on the final response");
    assert_eq!(last.stat_sn(), 901);
    let pairs = last.pairs();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("HeaderDigest"), Some("None"));
    assert_eq!(get("DataDigest"), Some("None"));
    assert_eq!(get("MaxConnections"), Some("1"));
    assert_eq!(get("InitialR2T"), Some("Yes"));
    assert_eq!(get("ImmediateData"), Some("Yes"));
    assert_eq!(get("MaxBurstLength"), Some("262144"));
    assert_eq!(get("FirstBurstLength"), Some("65536"));
    assert_eq!(get("DefaultTime2Wait"), Some("2"));
    assert_eq!(get("DefaultTime2Retain"), Some("0"));
    assert_eq!(get("MaxOutstandingR2T"), Some("1"));
    assert_eq!(get("ErrorRecoveryLevel"), Some("0"));
    assert_eq!(
        get("MaxRecvDataSegmentLength"),
        Some("262144"),
        "ours, declared"
    );
    assert_eq!(
        pairs
            .iter()
            .filter(|(k, _)| k == "MaxRecvDataSegmentLength")
            .count(),
        1
    );
    let actions = ini.take_actions();
    match actions.as_slice() {
        [Action::LoggedIn {
            kind: SessionKind::Normal,
            initiator,
            target: Some(target),
            isid,
            tsih,
        }] => {
            assert_eq!(initiator, INITIATOR);
            assert_eq!(target, TARGET);
            assert_eq!(isid, &ISID);
            assert_eq!(*tsih, last.tsih());
            assert_ne!(*tsih, 0);
            let identity = ini.conn.session_identity().expect("logged in");
            assert_eq!(identity.tsih, *tsih);
            assert_eq!(identity.isid, ISID);
            assert_eq!(identity.initiator, INITIATOR);
        }
        other => panic!("{other:?}"),
    }
    assert!(ini.conn.wants_recv());
    // The declared limit applies from now on.
    assert_eq!(ini.conn.params.max_recv_data_segment_len_bytes, 262_144);
    assert_eq!(ini.conn.params.max_xmit_data_segment_len_bytes, 8192);
}

#[test]
fn successive_sessions_get_distinct_tsihs() {
    let mut a = Initiator::new(ConnConfig::default());
    let mut b = Initiator::new(ConnConfig::default());
    assert_ne!(a.login().tsih(), b.login().tsih());
}

#[test]
fn security_stage_may_go_straight_to_full_feature_phase() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        false,
        0,
        3,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x83);
    assert_eq!(resp.login_status(), 0);
    assert_ne!(resp.tsih(), 0);
    assert_eq!(
        resp.value("MaxRecvDataSegmentLength").as_deref(),
        Some("262144")
    );
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::LoggedIn { .. }]
    ));
}

#[test]
fn login_may_skip_the_security_stage() {
    let mut ini = Initiator::new(ConnConfig::default());
    let mut keys = text_data(&[("InitiatorName", INITIATOR), ("TargetName", TARGET)]);
    keys.extend(text_data(&OPERATIONAL_KEYS));
    ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 0, &keys));
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x87);
    assert_eq!(resp.login_status(), 0);
    assert_eq!(resp.value("TargetPortalGroupTag").as_deref(), Some("1"));
}

#[test]
fn staying_in_a_stage_answers_without_transit() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        false,
        false,
        0,
        0,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x00, "T=0 CSG=0");
    assert_eq!(resp.login_status(), 0);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 1, &[]));
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x81);
    assert_eq!(resp.stat_sn(), 1);
    assert_eq!(resp.value("TargetPortalGroupTag"), None, "sent once");
}

#[test]
fn continued_login_text_is_reassembled() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = security_keys();
    let (a, b) = keys.split_at(20); // splits inside a key=value pair
    ini.send(&login_request(false, true, 0, 0, 0, 1, 1, 0, a));
    let ask = ini.recv_one();
    assert_eq!(ask.flags(), 0x00, "empty answer, T=0 C=0");
    assert!(ask.data.is_empty());
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 1, b));
    let resp = ini.recv_one();
    assert_eq!(resp.flags(), 0x81);
    assert_eq!(resp.value("AuthMethod").as_deref(), Some("None"));
}

#[test]
fn unknown_and_invalid_keys_get_not_understood_and_reject() {
    let mut ini = Initiator::new(ConnConfig::default());
    let mut keys = security_keys();
    keys.extend(text_data(&[
        ("X-com.example.Feature", "1"),
        ("X#org.example", "2"),
        ("Bogus", "3"),
    ]));
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0);
    assert_eq!(
        resp.value("X-com.example.Feature").as_deref(),
        Some("NotUnderstood")
    );
    assert_eq!(
        resp.value("X#org.example").as_deref(),
        Some("NotUnderstood")
    );
    assert_eq!(resp.value("Bogus").as_deref(), Some("NotUnderstood"));
    let op = text_data(&[
        ("MaxBurstLength", "100"),
        ("InitialR2T", "Perhaps"),
        ("IFMarker", "No"),
        ("OFMarkInt", "2048~8192"),
        ("TargetAlias", "mine"),
        ("DataDigest", "MD5"),
    ]);
    ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 1, &op));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0);
    assert_eq!(resp.value("MaxBurstLength").as_deref(), Some("Reject"));
    assert_eq!(resp.value("InitialR2T").as_deref(), Some("Reject"));
    assert_eq!(resp.value("IFMarker").as_deref(), Some("No"));
    assert_eq!(resp.value("OFMarkInt").as_deref(), Some("Reject"));
    assert_eq!(resp.value("TargetAlias").as_deref(), Some("Reject"));
    assert_eq!(resp.value("DataDigest").as_deref(), Some("Reject"));
    assert_eq!(ini.conn.params.max_burst_len_bytes, 262_144, "default kept");
}

#[test]
fn first_burst_answer_respects_max_burst_in_the_same_request() {
    let mut ini = Initiator::new(ConnConfig::default());
    let last = ini.login_with(&[
        ("FirstBurstLength", "131072"),
        ("MaxBurstLength", "65536"),
        ("InitialR2T", "No"),
        ("MaxOutstandingR2T", "4"),
    ]);
    assert_eq!(last.value("FirstBurstLength").as_deref(), Some("65536"));
    assert_eq!(last.value("MaxBurstLength").as_deref(), Some("65536"));
    assert_eq!(last.value("InitialR2T").as_deref(), Some("No"));
    assert_eq!(last.value("MaxOutstandingR2T").as_deref(), Some("4"));
    assert!(!ini.conn.params.initial_r2t);
}

#[test]
fn configured_burst_cap_bounds_the_answers() {
    let config = ConnConfig {
        max_burst_len_bytes: 16 * 1024,
        max_recv_data_segment_len_bytes: 4096,
        ..ConnConfig::default()
    };
    let mut ini = Initiator::new(config);
    let last = ini.login_with(&[("MaxBurstLength", "1048576"), ("FirstBurstLength", "65536")]);
    assert_eq!(last.value("MaxBurstLength").as_deref(), Some("16384"));
    assert_eq!(last.value("FirstBurstLength").as_deref(), Some("16384"));
    assert_eq!(
        last.value("MaxRecvDataSegmentLength").as_deref(),
        Some("4096")
    );
}

#[test]
fn missing_initiator_name_fails_with_missing_parameter() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = text_data(&[("TargetName", TARGET), ("AuthMethod", "None")]);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    expect_login_failure(&mut ini, login_status::MISSING_PARAMETER);
}

#[test]
fn missing_target_name_fails_with_missing_parameter() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = text_data(&[("InitiatorName", INITIATOR), ("AuthMethod", "None")]);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    expect_login_failure(&mut ini, login_status::MISSING_PARAMETER);
}

#[test]
fn unknown_target_fails_with_not_found() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = text_data(&[
        ("InitiatorName", INITIATOR),
        ("TargetName", "iqn.2024-01.org.lunar:nope"),
    ]);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    expect_login_failure(&mut ini, login_status::NOT_FOUND);
}

#[test]
fn target_names_compare_case_insensitively() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = text_data(&[
        ("InitiatorName", INITIATOR),
        ("TargetName", "IQN.2024-01.ORG.LUNAR:DISK1"),
    ]);
    ini.send(&login_request(true, false, 0, 3, 0, 1, 1, 0, &keys));
    assert_eq!(ini.recv_one().login_status(), 0);
    match ini.take_actions().as_slice() {
        [Action::LoggedIn {
            target: Some(t), ..
        }] => assert_eq!(t, TARGET),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_session_type_fails() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = text_data(&[("InitiatorName", INITIATOR), ("SessionType", "Bogus")]);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    expect_login_failure(&mut ini, login_status::SESSION_TYPE_NOT_SUPPORTED);
}

#[test]
fn unsupported_version_fails() {
    let mut ini = Initiator::new(ConnConfig::default());
    let mut pdu = login_request(true, false, 0, 1, 0, 1, 1, 0, &security_keys());
    pdu[2] = 2;
    pdu[3] = 1;
    ini.send(&pdu);
    expect_login_failure(&mut ini, login_status::UNSUPPORTED_VERSION);
}

#[test]
fn joining_an_existing_session_fails() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        7,
        1,
        1,
        0,
        &security_keys(),
    ));
    expect_login_failure(&mut ini, login_status::SESSION_DOES_NOT_EXIST);
}

#[test]
fn unsupported_auth_method_fails_authentication() {
    let mut ini = Initiator::new(ConnConfig::default());
    let keys = text_data(&[
        ("InitiatorName", INITIATOR),
        ("TargetName", TARGET),
        ("AuthMethod", "CHAP"),
    ]);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    expect_login_failure(&mut ini, login_status::AUTHENTICATION_FAILURE);
}

#[test]
fn duplicate_keys_fail_within_and_across_requests() {
    let mut ini = Initiator::new(ConnConfig::default());
    let mut keys = security_keys();
    keys.extend(text_data(&[("AuthMethod", "None")]));
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);

    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    assert_eq!(ini.recv_one().login_status(), 0);
    let op = text_data(&[("InitiatorName", INITIATOR)]);
    ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 1, &op));
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);
}

#[test]
fn malformed_text_fails() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        b"InitiatorName\0",
    ));
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);
}

#[test]
fn stage_violations_fail() {
    // CSG different from the current stage.
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    assert_eq!(ini.recv_one().login_status(), 0);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 1, &[]));
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);
    // T and C together.
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        true,
        0,
        1,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);
    // Transit to the reserved stage 2.
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        true,
        false,
        0,
        2,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);
    // Starting in the full feature phase.
    let mut ini = Initiator::new(ConnConfig::default());
    ini.send(&login_request(
        false,
        false,
        3,
        0,
        0,
        1,
        1,
        0,
        &security_keys(),
    ));
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);
}

#[test]
fn non_login_pdu_during_login_fails() {
    let mut ini = Initiator::new(ConnConfig::default());
    let nop = ini.nop_out(1, u32::MAX, true, &[]);
    ini.send(&nop);
    expect_login_failure(&mut ini, login_status::INVALID_DURING_LOGIN);
}

#[test]
fn oversized_login_pdu_is_refused_before_buffering() {
    let mut ini = Initiator::new(ConnConfig::default());
    let mut pdu = login_request(true, false, 0, 1, 0, 1, 1, 0, &[]);
    pdu[5..8].copy_from_slice(&[0, 0x20, 0x01]); // 8193 bytes announced
    ini.send(&pdu);
    assert_eq!(ini.conn.recv_buffered_len_bytes(), 0);
    expect_login_failure(&mut ini, login_status::INITIATOR_ERROR);
}

#[test]
fn login_times_out() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.tick(1_000 + 14_999);
    assert!(ini.take_actions().is_empty());
    ini.tick(1_000 + 15_000);
    let actions = ini.take_actions();
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Close(CloseReason::LoginFailed(_))]
        ),
        "{actions:?}"
    );
}

#[test]
fn pdus_split_at_every_byte_boundary_give_the_same_answer() {
    let request = login_request(true, false, 0, 3, 0, 9, 1, 0, &security_keys());
    let mut whole = Initiator::new(ConnConfig::default());
    whole.send(&request);
    let expected = whole.recv_one();
    for cut in 1..request.len() {
        let mut ini = Initiator::new(ConnConfig::default());
        ini.send(&request[..cut]);
        assert!(ini.recv().is_empty(), "cut {cut}");
        ini.send(&request[cut..]);
        let got = ini.recv_one();
        // TSIHs differ between sessions; everything else is identical.
        assert_eq!(got.bhs[..14], expected.bhs[..14], "cut {cut}");
        assert_eq!(got.bhs[16..], expected.bhs[16..], "cut {cut}");
        assert_eq!(got.data, expected.data, "cut {cut}");
    }
}
