//! Behaviour of `target_auth_set`, `target_acl_set` and `discovery_auth_*` against fakes:
//! validation, persistence, publication, and that no answer carries a secret.

use lunar_api::auth::{ChapCredentials, ChapInfo, DiscoveryAuthSetParams};
use lunar_api::code;
use lunar_api::target::{TargetAclSetParams, TargetAuthSetParams, MAX_ACL_INITIATORS};
use lunar_api::Empty;
use lunar_reactor::{ChapAuth, ChapSecret};

use super::tests::populated;
use super::*;
use crate::config::{ChapConfig, ChapSecretConfig};
use crate::testing::{standard_opener, FakePlane, MemoryStore};

const T1: &str = "iqn.2026-11.dev.lunar:t1";
const SECRET: &str = "initiator-secret-1";
const MUTUAL: &str = "target-secret-22";

fn credentials(username: &str, secret: &str) -> Option<ChapCredentials> {
    Some(ChapCredentials {
        username: username.into(),
        secret: secret.into(),
    })
}

fn auth(
    c: &mut Controller,
    iqn: &str,
    chap: Option<ChapCredentials>,
    mutual_chap: Option<ChapCredentials>,
) -> Result<lunar_api::target::TargetInfo, ControlError> {
    c.target_auth_set(TargetAuthSetParams {
        iqn: iqn.into(),
        chap,
        mutual_chap,
    })
}

fn acl(
    c: &mut Controller,
    iqn: &str,
    initiators: &[&str],
) -> Result<lunar_api::target::TargetInfo, ControlError> {
    c.target_acl_set(TargetAclSetParams {
        iqn: iqn.into(),
        initiators: initiators.iter().map(|s| s.to_string()).collect(),
    })
}

fn secret(username: &str, secret: &str) -> ChapSecret {
    ChapSecret {
        username: username.into(),
        secret: secret.into(),
    }
}

fn shown(username: &str) -> Option<ChapInfo> {
    Some(ChapInfo {
        username: username.into(),
        secret_set: true,
    })
}

#[test]
fn one_way_chap_is_persisted_published_and_shown_without_secret() {
    let (mut c, plane, store) = populated();
    let info = auth(&mut c, T1, credentials("alice", SECRET), None).expect("set");
    assert_eq!(info.chap, shown("alice"));
    assert_eq!(info.mutual_chap, None);
    let saved = store.state().saved.last().cloned().expect("saved");
    assert_eq!(
        saved.targets[0].chap,
        Some(ChapConfig {
            initiator: ChapSecretConfig {
                username: "alice".into(),
                secret: SECRET.into()
            },
            mutual: None
        })
    );
    let published = plane.last();
    assert_eq!(
        published.access,
        vec![(
            T1.to_string(),
            Vec::new(),
            Some(ChapAuth {
                initiator: secret("alice", SECRET),
                mutual: None
            })
        )]
    );
    let listed = c.target_list(Empty {}).expect("list");
    assert_eq!(listed.targets[0].chap, shown("alice"));
    let text = serde_json::to_string(&listed).expect("json");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains(r#""secret_set":true"#), "{text}");
}

#[test]
fn mutual_chap_and_turning_chap_off() {
    let (mut c, plane, _) = populated();
    let info = auth(
        &mut c,
        T1,
        credentials("alice", SECRET),
        credentials("lunar", MUTUAL),
    )
    .expect("mutual");
    assert_eq!(
        (info.chap, info.mutual_chap),
        (shown("alice"), shown("lunar"))
    );
    let chap = plane.last().access[0].2.clone().expect("chap published");
    assert_eq!(chap.mutual, Some(secret("lunar", MUTUAL)));
    let off = auth(&mut c, "IQN.2026-11.dev.lunar:T1", None, None).expect("off, any case");
    assert_eq!((off.chap, off.mutual_chap), (None, None));
    assert_eq!(plane.last().access[0].2, None);
    assert_eq!(c.config().targets[0].chap, None);
}

#[test]
fn bad_credentials_change_nothing() {
    let (mut c, plane, store) = populated();
    let generation = c.generation();
    let saves = store.state().saved.len();
    let cases = [
        (credentials("alice", "short"), None, "12-255 bytes"),
        (
            credentials("alice", SECRET),
            credentials("lunar", SECRET),
            "must differ",
        ),
        (None, credentials("lunar", MUTUAL), "mutual_chap needs chap"),
        (credentials("al ice", SECRET), None, "user name 'al ice'"),
    ];
    for (chap, mutual, expected) in cases {
        let error = auth(&mut c, T1, chap, mutual).expect_err(expected);
        assert_eq!(error.code(), code::INVALID_PARAMS, "{error}");
        assert!(error.to_string().contains(expected), "{error}");
        assert!(!error.to_string().contains(SECRET), "{error}");
    }
    assert_eq!(c.generation(), generation);
    assert_eq!(store.state().saved.len(), saves);
    assert_eq!(plane.state().published.len() as u64, generation);
}

#[test]
fn unknown_target_is_not_found() {
    let (mut c, _, _) = populated();
    let error = auth(
        &mut c,
        "iqn.2026-11.dev.lunar:ghost",
        credentials("a", SECRET),
        None,
    )
    .expect_err("ghost");
    assert_eq!(error.code(), code::NOT_FOUND);
    assert_eq!(
        error.to_string(),
        "target 'iqn.2026-11.dev.lunar:ghost' not found"
    );
    let error = acl(&mut c, "iqn.2026-11.dev.lunar:ghost", &[]).expect_err("ghost");
    assert_eq!(error.code(), code::NOT_FOUND);
}

#[test]
fn setting_the_same_access_again_publishes_nothing() {
    let (mut c, plane, _) = populated();
    auth(&mut c, T1, credentials("alice", SECRET), None).expect("set");
    let generation = c.generation();
    auth(&mut c, T1, credentials("alice", SECRET), None).expect("again");
    acl(&mut c, T1, &[]).expect("empty list again");
    assert_eq!(c.generation(), generation);
    assert_eq!(plane.state().published.len() as u64, generation);
}

#[test]
fn access_lists_are_normalised_and_published() {
    let (mut c, plane, store) = populated();
    let info = acl(
        &mut c,
        T1,
        &[
            "iqn.1994-05.com.RedHat:Host1",
            "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
        ],
    )
    .expect("acl");
    let expected = vec![
        "iqn.1994-05.com.redhat:host1".to_string(),
        "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test".to_string(),
    ];
    assert_eq!(info.initiators, expected);
    assert_eq!(plane.last().access[0].1, expected);
    assert_eq!(
        store
            .state()
            .saved
            .last()
            .map(|c| c.targets[0].allowed_initiators.clone()),
        Some(expected)
    );
    let open = acl(&mut c, T1, &[]).expect("everyone");
    assert!(open.initiators.is_empty());
    assert!(plane.last().access[0].1.is_empty());
}

#[test]
fn bad_access_lists_are_refused() {
    let (mut c, _, _) = populated();
    let error = acl(&mut c, T1, &["iqn.2026-11.a.b:x", "IQN.2026-11.A.B:X"]).expect_err("twice");
    assert_eq!(error.code(), code::INVALID_PARAMS);
    assert_eq!(
        error.to_string(),
        "initiator 'iqn.2026-11.a.b:x' is listed more than once"
    );
    let error = acl(&mut c, T1, &["host1"]).expect_err("not an iSCSI name");
    assert!(
        error
            .to_string()
            .starts_with("initiator name 'host1' is not valid"),
        "{error}"
    );
    let many: Vec<String> = (0..=MAX_ACL_INITIATORS)
        .map(|i| format!("iqn.2026-11.a.b:h{i}"))
        .collect();
    let error = c
        .target_acl_set(TargetAclSetParams {
            iqn: T1.into(),
            initiators: many,
        })
        .expect_err("too many");
    assert!(error.to_string().contains("at most 1024"), "{error}");
    assert!(c.config().targets[0].allowed_initiators.is_empty());
}

#[test]
fn discovery_chap_is_set_shown_and_cleared() {
    let (mut c, plane, store) = populated();
    assert_eq!(
        c.discovery_auth_get(Empty {}).expect("get"),
        Default::default()
    );
    let info = c
        .discovery_auth_set(DiscoveryAuthSetParams {
            chap: credentials("scout", SECRET),
            mutual_chap: credentials("lunar", MUTUAL),
        })
        .expect("set");
    assert_eq!(
        (info.chap, info.mutual_chap),
        (shown("scout"), shown("lunar"))
    );
    assert_eq!(
        plane.last().discovery_chap,
        Some(ChapAuth {
            initiator: secret("scout", SECRET),
            mutual: Some(secret("lunar", MUTUAL))
        })
    );
    assert!(store
        .state()
        .saved
        .last()
        .is_some_and(|saved| saved.discovery_chap.is_some()));
    let shown_again = c.discovery_auth_get(Empty {}).expect("get");
    let text = serde_json::to_string(&shown_again).expect("json");
    assert!(!text.contains(SECRET) && !text.contains(MUTUAL), "{text}");
    let error = c
        .discovery_auth_set(DiscoveryAuthSetParams {
            chap: credentials("scout", "tiny"),
            mutual_chap: None,
        })
        .expect_err("short");
    assert_eq!(error.code(), code::INVALID_PARAMS);
    assert!(c.config().discovery_chap.is_some(), "unchanged on error");
    c.discovery_auth_set(DiscoveryAuthSetParams {
        chap: None,
        mutual_chap: None,
    })
    .expect("off");
    assert_eq!(plane.last().discovery_chap, None);
}

#[test]
fn persist_failure_keeps_the_old_access() {
    let (mut c, plane, store) = populated();
    let generation = c.generation();
    store.state().fail = true;
    let error = auth(&mut c, T1, credentials("alice", SECRET), None).expect_err("persist");
    assert_eq!(error.code(), code::PERSIST_FAILED);
    let error = acl(&mut c, T1, &["iqn.2026-11.a.b:x"]).expect_err("persist");
    assert_eq!(error.code(), code::PERSIST_FAILED);
    assert_eq!(c.config().targets[0].chap, None);
    assert!(c.config().targets[0].allowed_initiators.is_empty());
    assert_eq!(plane.state().published.len() as u64, generation);
}

#[test]
fn access_survives_a_restart_from_the_state_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::store::FileStore::new(dir.path());
    let (populated, _, _) = populated();
    let mut config = populated.config().clone();
    config.targets[0].allowed_initiators = vec!["iqn.2026-11.a.b:host".into()];
    config.targets[0].chap = Some(ChapConfig {
        initiator: ChapSecretConfig {
            username: "alice".into(),
            secret: SECRET.into(),
        },
        mutual: Some(ChapSecretConfig {
            username: "lunar".into(),
            secret: MUTUAL.into(),
        }),
    });
    config.discovery_chap = config.targets[0].chap.clone();
    config.portals = vec!["127.0.0.1:3270".parse().expect("addr")];
    let mut writer = store.clone();
    crate::store::Persist::save(&mut writer, &config).expect("save");
    let mode = std::fs::metadata(dir.path().join(crate::store::STATE_FILE)).expect("meta");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600,
        "the state file holds secrets"
    );

    let loaded = store.load().expect("load");
    assert_eq!(loaded.config, config);
    let devices = open_devices(&loaded.config, &standard_opener()).expect("open");
    let plane = FakePlane::default();
    let mut restarted = Controller::new(
        loaded.config,
        devices,
        Parts {
            opener: Box::new(standard_opener()),
            publisher: Box::new(plane.clone()),
            store: Box::new(MemoryStore::default()),
            about: About::default(),
        },
    )
    .expect("restart");
    let published = plane.last();
    assert_eq!(
        published.access[0].1,
        vec!["iqn.2026-11.a.b:host".to_string()]
    );
    assert_eq!(
        published.access[0]
            .2
            .as_ref()
            .map(|c| c.initiator.secret.as_str()),
        Some(SECRET)
    );
    assert!(published.discovery_chap.is_some());
    let listed = restarted.target_list(Empty {}).expect("list");
    assert_eq!(listed.targets[0].mutual_chap, shown("lunar"));
}

#[test]
fn restore_refuses_bad_access_settings() {
    let (c, _, _) = populated();
    let devices = open_devices(c.config(), &standard_opener()).expect("open");
    let mut short = c.config().clone();
    short.targets[0].chap = Some(ChapConfig {
        initiator: ChapSecretConfig {
            username: "alice".into(),
            secret: "short".into(),
        },
        mutual: None,
    });
    let error = check_config(&short, &devices).expect_err("short secret");
    assert!(
        error
            .to_string()
            .starts_with("CHAP of target 'iqn.2026-11.dev.lunar:t1'"),
        "{error}"
    );
    let mut upper = c.config().clone();
    upper.targets[0].allowed_initiators = vec!["IQN.2026-11.A.B:X".into()];
    let error = check_config(&upper, &devices).expect_err("not normalised");
    assert!(error.to_string().contains("normalised"), "{error}");
    let mut discovery = c.config().clone();
    discovery.discovery_chap = short.targets[0].chap.clone();
    let error = check_config(&discovery, &devices).expect_err("discovery");
    assert!(error.to_string().starts_with("discovery CHAP"), "{error}");
}

#[test]
fn secrets_never_reach_debug_output() {
    let (mut c, _, _) = populated();
    auth(
        &mut c,
        T1,
        credentials("alice", SECRET),
        credentials("lunar", MUTUAL),
    )
    .expect("set");
    let shown = format!("{:?}", c.config());
    assert!(shown.contains("alice"), "{shown}");
    assert!(
        !shown.contains(SECRET) && !shown.contains(MUTUAL),
        "{shown}"
    );
}
