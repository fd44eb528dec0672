//! Security at login: CHAP (one-way, mutual, discovery; the libiscsi exchange; wrong secrets,
//! replays, refused methods, skipped stages, unusable configurations) and access lists
//! (refused logins, SendTargets filtering).

use lunar_wire::iscsi::codes::login_status;
use lunar_wire::iscsi::text;
use lunar_wire::iscsi::Opcode;

use super::initiator::*;
use crate::chap::chap_response;
use crate::connection::{Action, CloseReason, ConnConfig, Connection};
use crate::ChapConfig;

const USER: &str = "host1-user";
const SECRET: &str = "initiator-secret-1";
const TARGET_USER: &str = "lunar-target";
const TARGET_SECRET: &str = "target-secret-22";

fn chap(mutual: bool) -> ChapConfig {
    ChapConfig {
        username: USER.into(),
        secret: SECRET.into(),
        mutual: mutual.then(|| (TARGET_USER.into(), TARGET_SECRET.into())),
    }
}

fn with_catalog(catalog: SecureCatalog) -> Initiator {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.catalog = catalog.leak();
    ini
}

fn chap_target(mutual: bool) -> Initiator {
    with_catalog(SecureCatalog {
        target_chap: Some(chap(mutual)),
        ..SecureCatalog::default()
    })
}

fn first_keys(kind: &str, target: Option<&str>, auth: &str) -> Vec<u8> {
    let mut keys = vec![("InitiatorName", INITIATOR), ("SessionType", kind)];
    if let Some(target) = target {
        keys.push(("TargetName", target));
    }
    keys.push(("AuthMethod", auth));
    text_data(&keys)
}

fn expect_failure(ini: &mut Initiator, status: u16) {
    let resp = ini.recv_one();
    assert!(resp.is(Opcode::LoginResponse));
    assert_eq!(resp.login_status(), status, "{resp:?}");
    let actions = ini.take_actions();
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Close(CloseReason::LoginFailed(_))]
        ),
        "{actions:?}"
    );
}

/// The exchange libiscsi runs: AuthMethod with T=1 (answered T=0 while authentication is
/// pending), then CHAP_A. Returns the identifier and challenge the target sent.
fn start_chap(
    ini: &mut Initiator,
    kind: &str,
    target: Option<&str>,
    algorithms: &str,
) -> (u8, Vec<u8>) {
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &first_keys(kind, target, "CHAP,None"),
    ));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0, "{resp:?}");
    assert_eq!(resp.value("AuthMethod").as_deref(), Some("CHAP"));
    assert_eq!(resp.flags() & 0x80, 0, "no transit before authentication");
    ini.exp_stat_sn = resp.stat_sn().wrapping_add(1);
    ini.send(&login_request(
        false,
        false,
        0,
        0,
        0,
        1,
        1,
        ini.exp_stat_sn,
        &text_data(&[("CHAP_A", algorithms)]),
    ));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0, "{resp:?}");
    assert_eq!(resp.flags() & 0x80, 0);
    assert_eq!(resp.value("CHAP_A").as_deref(), Some("5"));
    let id: u8 = resp
        .value("CHAP_I")
        .expect("CHAP_I")
        .parse()
        .expect("decimal CHAP_I");
    let challenge_text = resp.value("CHAP_C").expect("CHAP_C");
    assert!(
        challenge_text.starts_with("0x"),
        "libiscsi reads 0x challenges"
    );
    let challenge = text::parse_binary(&challenge_text, 1024).expect("hex challenge");
    assert_eq!(challenge.len(), 16);
    ini.exp_stat_sn = resp.stat_sn().wrapping_add(1);
    (id, challenge)
}

/// Sends CHAP_N/CHAP_R (and CHAP_I/CHAP_C for mutual CHAP) with T=1 towards the operational
/// stage; returns the target's answer.
fn answer(
    ini: &mut Initiator,
    name: &str,
    response: &[u8],
    mutual: Option<(u8, &[u8])>,
) -> Received {
    let response = text::format_hex(response);
    let mut keys = vec![("CHAP_N", name.to_string()), ("CHAP_R", response)];
    if let Some((id, challenge)) = mutual {
        keys.push(("CHAP_I", id.to_string()));
        keys.push(("CHAP_C", text::format_hex(challenge)));
    }
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        ini.exp_stat_sn,
        &text_data(&keys),
    ));
    ini.recv_one()
}

/// From the operational stage to the full feature phase.
fn finish_login(ini: &mut Initiator) {
    ini.send(&login_request(
        true,
        false,
        1,
        3,
        0,
        1,
        1,
        ini.exp_stat_sn,
        &text_data(&OPERATIONAL_KEYS),
    ));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0, "{resp:?}");
    assert_eq!(resp.flags() & 0x83, 0x83, "T=1 NSG=FFP");
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::LoggedIn { .. }]
    ));
}

#[test]
fn one_way_chap_login() {
    let mut ini = chap_target(false);
    let (id, challenge) = start_chap(&mut ini, "Normal", Some(TARGET), "5");
    let resp = answer(
        &mut ini,
        USER,
        &chap_response(id, SECRET.as_bytes(), &challenge),
        None,
    );
    assert_eq!(resp.login_status(), 0, "{resp:?}");
    assert_eq!(resp.flags(), 0x81, "T=1 CSG=0 NSG=1 once authenticated");
    assert_eq!(
        resp.value("CHAP_N"),
        None,
        "no target credentials unless asked"
    );
    ini.exp_stat_sn = resp.stat_sn().wrapping_add(1);
    finish_login(&mut ini);
}

#[test]
fn the_libiscsi_algorithm_lists() {
    // libiscsi's CHAP tests: several algorithms (MD5 among them) are fine...
    let mut ini = chap_target(false);
    let (id, challenge) = start_chap(&mut ini, "Normal", Some(TARGET), "5,6,7,8");
    let resp = answer(
        &mut ini,
        USER,
        &chap_response(id, SECRET.as_bytes(), &challenge),
        None,
    );
    assert_eq!(resp.login_status(), 0);
    // ...no MD5, or an empty list, fails the login.
    for bad in ["56", ""] {
        let mut ini = chap_target(false);
        ini.send(&login_request(
            true,
            false,
            0,
            1,
            0,
            1,
            1,
            0,
            &first_keys("Normal", Some(TARGET), "CHAP"),
        ));
        ini.recv_one();
        ini.send(&login_request(
            false,
            false,
            0,
            0,
            0,
            1,
            1,
            1,
            &text_data(&[("CHAP_A", bad)]),
        ));
        expect_failure(&mut ini, login_status::AUTHENTICATION_FAILURE);
    }
}

#[test]
fn wrong_secret_or_name_is_an_authentication_failure() {
    for (name, secret) in [(USER, "not-the-secret!"), ("someone-else", SECRET)] {
        let mut ini = chap_target(false);
        let (id, challenge) = start_chap(&mut ini, "Normal", Some(TARGET), "5");
        let resp = answer(
            &mut ini,
            name,
            &chap_response(id, secret.as_bytes(), &challenge),
            None,
        );
        assert_eq!(resp.login_status(), login_status::AUTHENTICATION_FAILURE);
        assert!(matches!(
            ini.take_actions().as_slice(),
            [Action::Close(CloseReason::LoginFailed(_))]
        ));
        assert!(!ini.conn.wants_recv());
    }
}

#[test]
fn a_response_is_bound_to_its_login_and_cannot_be_replayed() {
    let mut first = chap_target(false);
    let (id, challenge) = start_chap(&mut first, "Normal", Some(TARGET), "5");
    let recorded = chap_response(id, SECRET.as_bytes(), &challenge);
    let resp = answer(&mut first, USER, &recorded, None);
    assert_eq!(resp.login_status(), 0);
    // An eavesdropper replays the recorded response on a new login: fresh challenge, refused.
    let mut second = chap_target(false);
    let (_, other_challenge) = start_chap(&mut second, "Normal", Some(TARGET), "5");
    assert_ne!(
        other_challenge, challenge,
        "every login draws a new challenge"
    );
    let resp = answer(&mut second, USER, &recorded, None);
    assert_eq!(resp.login_status(), login_status::AUTHENTICATION_FAILURE);
}

#[test]
fn seeded_connections_draw_challenges_from_their_seed() {
    let challenge_of = |seed: [u8; 32]| {
        let mut ini = chap_target(false);
        ini.conn = Connection::with_entropy(ConnConfig::default(), ini.now_ms, seed);
        start_chap(&mut ini, "Normal", Some(TARGET), "5")
    };
    assert_eq!(challenge_of([7; 32]), challenge_of([7; 32]));
    assert_ne!(challenge_of([7; 32]).1, challenge_of([8; 32]).1);
}

#[test]
fn mutual_chap_authenticates_the_target_too() {
    let mut ini = chap_target(true);
    let (id, challenge) = start_chap(&mut ini, "Normal", Some(TARGET), "5");
    let our_challenge = [0x5au8; 32];
    let resp = answer(
        &mut ini,
        USER,
        &chap_response(id, SECRET.as_bytes(), &challenge),
        Some((42, &our_challenge)),
    );
    assert_eq!(resp.login_status(), 0, "{resp:?}");
    assert_eq!(resp.value("CHAP_N").as_deref(), Some(TARGET_USER));
    let expected = chap_response(42, TARGET_SECRET.as_bytes(), &our_challenge);
    assert_eq!(resp.value("CHAP_R"), Some(text::format_hex(&expected)));
    ini.exp_stat_sn = resp.stat_sn().wrapping_add(1);
    finish_login(&mut ini);
}

#[test]
fn mutual_chap_refusals() {
    // The initiator asks for mutual CHAP but the target has no credentials for it.
    let mut ini = chap_target(false);
    let (id, challenge) = start_chap(&mut ini, "Normal", Some(TARGET), "5");
    let resp = answer(
        &mut ini,
        USER,
        &chap_response(id, SECRET.as_bytes(), &challenge),
        Some((1, &[1; 16])),
    );
    assert_eq!(resp.login_status(), login_status::AUTHENTICATION_FAILURE);
    // The initiator reflects the target's own challenge.
    let mut ini = chap_target(true);
    let (id, challenge) = start_chap(&mut ini, "Normal", Some(TARGET), "5");
    let resp = answer(
        &mut ini,
        USER,
        &chap_response(id, SECRET.as_bytes(), &challenge),
        Some((id, &challenge)),
    );
    assert_eq!(resp.login_status(), login_status::AUTHENTICATION_FAILURE);
    assert_eq!(
        resp.value("CHAP_R"),
        None,
        "nothing computed for a reflection"
    );
}

#[test]
fn chap_is_mandatory_once_configured() {
    // AuthMethod=None is refused.
    let mut ini = chap_target(false);
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &first_keys("Normal", Some(TARGET), "None"),
    ));
    expect_failure(&mut ini, login_status::AUTHENTICATION_FAILURE);
    // Skipping the security stage (libiscsi without credentials starts in the operational
    // stage) is refused.
    let mut ini = chap_target(false);
    let mut keys = first_keys("Normal", Some(TARGET), "None");
    keys.truncate(keys.len() - "AuthMethod=None\0".len());
    ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 0, &keys));
    expect_failure(&mut ini, login_status::AUTHENTICATION_FAILURE);
    // Leaving the security stage without any AuthMethod is refused.
    let mut ini = chap_target(false);
    ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &keys));
    expect_failure(&mut ini, login_status::AUTHENTICATION_FAILURE);
    // Jumping to the operational stage in the middle of CHAP is refused.
    let mut ini = chap_target(false);
    start_chap(&mut ini, "Normal", Some(TARGET), "5");
    ini.send(&login_request(
        true,
        false,
        1,
        3,
        0,
        1,
        1,
        ini.exp_stat_sn,
        &text_data(&OPERATIONAL_KEYS),
    ));
    let resp = ini.recv_one();
    assert_ne!(resp.login_status(), 0);
}

#[test]
fn targets_without_credentials_keep_auth_method_none() {
    let mut ini = chap_target(false);
    // OTHER_TARGET has no CHAP: None is chosen even when CHAP is offered first.
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &first_keys("Normal", Some(OTHER_TARGET), "CHAP,None"),
    ));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0);
    assert_eq!(resp.value("AuthMethod").as_deref(), Some("None"));
    assert_eq!(resp.flags(), 0x81);
}

#[test]
fn discovery_sessions_have_their_own_credentials() {
    let catalog = SecureCatalog {
        discovery_chap: Some(chap(false)),
        ..SecureCatalog::default()
    };
    // Without CHAP: refused.
    let mut ini = with_catalog(catalog.clone());
    ini.send(&login_request(
        true,
        false,
        0,
        3,
        0,
        1,
        1,
        0,
        &first_keys("Discovery", None, "None"),
    ));
    expect_failure(&mut ini, login_status::AUTHENTICATION_FAILURE);
    // With CHAP: admitted, straight to the full feature phase.
    let mut ini = with_catalog(catalog.clone());
    let (id, challenge) = start_chap(&mut ini, "Discovery", None, "5");
    ini.send(&login_request(
        true,
        false,
        0,
        3,
        0,
        1,
        1,
        ini.exp_stat_sn,
        &text_data(&[
            ("CHAP_N", USER),
            (
                "CHAP_R",
                &text::format_hex(&chap_response(id, SECRET.as_bytes(), &challenge)),
            ),
        ]),
    ));
    let resp = ini.recv_one();
    assert_eq!(resp.login_status(), 0, "{resp:?}");
    assert_eq!(resp.flags() & 0x83, 0x83);
    assert!(matches!(
        ini.take_actions().as_slice(),
        [Action::LoggedIn { target: None, .. }]
    ));
    // Normal sessions to targets without credentials are unaffected.
    let mut ini = with_catalog(catalog);
    ini.login();
}

#[test]
fn an_unusable_configuration_refuses_logins_as_a_target_error() {
    let mut bad = chap(true);
    bad.mutual = Some((TARGET_USER.into(), SECRET.into()));
    let mut ini = with_catalog(SecureCatalog {
        target_chap: Some(bad),
        ..SecureCatalog::default()
    });
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &first_keys("Normal", Some(TARGET), "CHAP"),
    ));
    expect_failure(&mut ini, login_status::TARGET_ERROR);
    let mut ini = with_catalog(SecureCatalog {
        target_chap: Some(ChapConfig::one_way(USER, "short")),
        ..SecureCatalog::default()
    });
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &first_keys("Normal", Some(TARGET), "CHAP"),
    ));
    expect_failure(&mut ini, login_status::TARGET_ERROR);
}

#[test]
fn initiators_outside_the_access_list_cannot_log_in() {
    let catalog = SecureCatalog {
        allowed: Some(vec![(OTHER_TARGET, INITIATOR)]),
        ..SecureCatalog::default()
    };
    let mut ini = with_catalog(catalog.clone());
    ini.send(&login_request(
        true,
        false,
        0,
        1,
        0,
        1,
        1,
        0,
        &first_keys("Normal", Some(TARGET), "None"),
    ));
    expect_failure(&mut ini, login_status::AUTHORIZATION_FAILURE);
    // Even straight from the operational stage.
    let mut ini = with_catalog(catalog.clone());
    let keys = text_data(&[("InitiatorName", INITIATOR), ("TargetName", TARGET)]);
    ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 0, &keys));
    expect_failure(&mut ini, login_status::AUTHORIZATION_FAILURE);
    // The target it is allowed on admits it (names compare case-insensitively).
    let mut ini = with_catalog(catalog);
    let upper = OTHER_TARGET.to_ascii_uppercase();
    ini.send(&login_request(
        true,
        false,
        0,
        3,
        0,
        1,
        1,
        0,
        &first_keys("Normal", Some(&upper), "None"),
    ));
    assert_eq!(ini.recv_one().login_status(), 0);
}

#[test]
fn send_targets_lists_only_visible_targets() {
    let mut ini = with_catalog(SecureCatalog {
        allowed: Some(vec![(OTHER_TARGET, INITIATOR)]),
        ..SecureCatalog::default()
    });
    ini.login_discovery();
    let itt = ini.itt();
    let req = ini.text_request(
        itt,
        lunar_wire::iscsi::RESERVED_TAG,
        true,
        false,
        &text_data(&[("SendTargets", "All")]),
    );
    ini.send(&req);
    let resp = ini.recv_one();
    let names: Vec<String> = resp
        .pairs()
        .into_iter()
        .filter(|(k, _)| k == "TargetName")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(names, vec![OTHER_TARGET.to_string()]);
    // Asking for a hidden target by name reports nothing.
    let itt = ini.itt();
    let req = ini.text_request(
        itt,
        lunar_wire::iscsi::RESERVED_TAG,
        true,
        false,
        &text_data(&[("SendTargets", TARGET)]),
    );
    ini.send(&req);
    assert!(ini.recv_one().pairs().is_empty());
}
