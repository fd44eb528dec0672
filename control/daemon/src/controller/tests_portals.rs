//! Behaviour of `portal_add`, `portal_remove`, `portal_list` and the portals served at start,
//! against a fake data plane.

use std::net::SocketAddr;

use lunar_api::code;
use lunar_api::portal::{PortalAddParams, PortalInfo, PortalRemoveParams};
use lunar_api::Empty;

use super::tests::populated;
use super::*;
use crate::testing::{standard_opener, FakePlane, MemoryStore, FAKE_FIRST_FREE_PORT, FAKE_LISTEN};

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

fn add(c: &mut Controller, address: &str) -> Result<PortalInfo, ControlError> {
    c.portal_add(PortalAddParams {
        address: address.into(),
    })
}

fn remove(c: &mut Controller, address: &str) -> Result<Empty, ControlError> {
    c.portal_remove(PortalRemoveParams {
        address: address.into(),
    })
}

fn portal(address: &str, listening: bool, persistent: bool) -> PortalInfo {
    PortalInfo {
        address: address.into(),
        listening,
        persistent,
    }
}

fn list(c: &mut Controller) -> Vec<PortalInfo> {
    c.portal_list(Empty {}).expect("list").portals
}

/// A controller restored from `config` on a fresh fake plane.
fn restart(config: Config, plane: &FakePlane) -> Controller {
    let devices = open_devices(&config, &standard_opener()).expect("open");
    Controller::new(
        config,
        devices,
        Parts {
            opener: Box::new(standard_opener()),
            publisher: Box::new(plane.clone()),
            store: Box::new(MemoryStore::default()),
            about: About::default(),
        },
    )
    .expect("restart")
}

#[test]
fn the_listen_address_is_listed_but_not_saved() {
    let (mut c, _, _) = populated();
    assert_eq!(list(&mut c), vec![portal(FAKE_LISTEN, true, false)]);
    assert!(c.config().portals.is_empty());
}

#[test]
fn added_portals_are_served_saved_and_listed() {
    let (mut c, plane, store) = populated();
    let generation = c.generation();
    let info = add(&mut c, "192.0.2.10:3260").expect("add");
    assert_eq!(info, portal("192.0.2.10:3260", true, true));
    assert!(plane.state().portals.contains(&addr("192.0.2.10:3260")));
    assert_eq!(
        store.state().saved.last().map(|c| c.portals.clone()),
        Some(vec![addr("192.0.2.10:3260")])
    );
    let any_port = add(&mut c, "[::1]:0").expect("port 0");
    let bound = format!("[::1]:{FAKE_FIRST_FREE_PORT}");
    assert_eq!(any_port, portal(&bound, true, true));
    assert_eq!(
        c.config().portals[1],
        addr(&bound),
        "the bound port is saved"
    );
    assert_eq!(
        list(&mut c),
        vec![
            portal(FAKE_LISTEN, true, false),
            portal("192.0.2.10:3260", true, true),
            portal(&bound, true, true),
        ]
    );
    assert_eq!(c.generation(), generation, "portals publish no table");
}

#[test]
fn portal_add_errors() {
    let (mut c, plane, _) = populated();
    let error = add(&mut c, FAKE_LISTEN).expect_err("served");
    assert_eq!(error.code(), code::ALREADY_EXISTS);
    assert_eq!(error.to_string(), "portal 127.0.0.1:3260 is already served");
    for bad in [
        "localhost:3260",
        "10.0.0.1",
        "10.0.0.1:99999",
        "",
        "::1:3260",
    ] {
        let error = add(&mut c, bad).expect_err(bad);
        assert_eq!(error.code(), code::INVALID_PARAMS, "{bad}");
        assert!(error.to_string().contains("is not ip:port"), "{error}");
    }
    plane.state().unbindable.push(addr("203.0.113.1:3260"));
    let error = add(&mut c, "203.0.113.1:3260").expect_err("cannot bind");
    assert_eq!(error.code(), code::CONFLICT);
    assert!(
        error
            .to_string()
            .starts_with("cannot listen on 203.0.113.1:3260"),
        "{error}"
    );
    assert!(c.config().portals.is_empty());
}

#[test]
fn a_portal_that_cannot_be_saved_is_not_served() {
    let (mut c, plane, store) = populated();
    store.state().fail = true;
    let error = add(&mut c, "192.0.2.10:3260").expect_err("persist");
    assert_eq!(error.code(), code::PERSIST_FAILED);
    assert_eq!(plane.state().portals, vec![addr(FAKE_LISTEN)]);
    assert!(c.config().portals.is_empty());
}

#[test]
fn removing_portals() {
    let (mut c, plane, store) = populated();
    add(&mut c, "192.0.2.10:3260").expect("add");
    let error = remove(&mut c, "192.0.2.99:3260").expect_err("unknown");
    assert_eq!(error.code(), code::NOT_FOUND);
    assert_eq!(error.to_string(), "portal '192.0.2.99:3260' not found");
    remove(&mut c, FAKE_LISTEN).expect("the listen address may go while another portal stays");
    assert_eq!(list(&mut c), vec![portal("192.0.2.10:3260", true, true)]);
    let error = remove(&mut c, "192.0.2.10:3260").expect_err("last");
    assert_eq!(error.code(), code::CONFLICT);
    assert!(error.to_string().contains("is the last one"), "{error}");
    add(&mut c, "192.0.2.11:3260").expect("another");
    remove(&mut c, "192.0.2.10:3260").expect("no longer the last");
    assert_eq!(plane.state().portals, vec![addr("192.0.2.11:3260")]);
    assert_eq!(
        store.state().saved.last().map(|c| c.portals.clone()),
        Some(vec![addr("192.0.2.11:3260")])
    );
}

#[test]
fn a_failed_save_keeps_the_portal_served() {
    let (mut c, plane, store) = populated();
    add(&mut c, "192.0.2.10:3260").expect("add");
    store.state().fail = true;
    let error = remove(&mut c, "192.0.2.10:3260").expect_err("persist");
    assert_eq!(error.code(), code::PERSIST_FAILED);
    assert!(plane.state().portals.contains(&addr("192.0.2.10:3260")));
    assert_eq!(c.config().portals, vec![addr("192.0.2.10:3260")]);
}

#[test]
fn saved_portals_are_served_at_start() {
    let (mut c, _, _) = populated();
    add(&mut c, "192.0.2.10:3260").expect("add");
    add(&mut c, "192.0.2.11:3260").expect("add");
    let config = c.config().clone();
    let plane = FakePlane::default();
    plane.state().unbindable.push(addr("192.0.2.11:3260"));
    let mut restarted = restart(config.clone(), &plane);
    assert_eq!(
        plane.state().portals,
        vec![addr(FAKE_LISTEN), addr("192.0.2.10:3260")]
    );
    assert_eq!(
        list(&mut restarted),
        vec![
            portal(FAKE_LISTEN, true, false),
            portal("192.0.2.10:3260", true, true),
            portal("192.0.2.11:3260", false, true),
        ],
        "a saved portal that cannot be bound stays saved"
    );
    assert_eq!(restarted.config(), &config);
    plane.state().unbindable.clear();
    let again = add(&mut restarted, "192.0.2.11:3260").expect("retry");
    assert!(again.listening);
    assert_eq!(restarted.config().portals.len(), 2, "not saved twice");
}

#[test]
fn an_unbound_saved_portal_can_be_removed() {
    let (mut c, _, _) = populated();
    add(&mut c, "192.0.2.11:3260").expect("add");
    let plane = FakePlane::default();
    plane.state().unbindable.push(addr("192.0.2.11:3260"));
    let mut restarted = restart(c.config().clone(), &plane);
    remove(&mut restarted, "192.0.2.11:3260").expect("remove");
    assert!(restarted.config().portals.is_empty());
    assert_eq!(list(&mut restarted), vec![portal(FAKE_LISTEN, true, false)]);
}

#[test]
fn a_saved_listen_address_is_not_bound_twice() {
    let (mut c, _, _) = populated();
    let mut config = c.config().clone();
    config.portals = vec![addr(FAKE_LISTEN)];
    let plane = FakePlane::default();
    let mut restarted = restart(config, &plane);
    assert_eq!(plane.state().portals, vec![addr(FAKE_LISTEN)]);
    assert_eq!(list(&mut restarted), vec![portal(FAKE_LISTEN, true, true)]);
    assert_eq!(list(&mut c).len(), 1);
}

#[test]
fn restore_refuses_bad_saved_portals() {
    let (c, _, _) = populated();
    let devices = open_devices(c.config(), &standard_opener()).expect("open");
    let mut zero = c.config().clone();
    zero.portals = vec![addr("0.0.0.0:0")];
    let error = check_config(&zero, &devices).expect_err("port 0");
    assert!(error.to_string().contains("port 0"), "{error}");
    let mut twice = c.config().clone();
    twice.portals = vec![addr("10.0.0.1:3260"), addr("10.0.0.1:3260")];
    let error = check_config(&twice, &devices).expect_err("twice");
    assert!(error.to_string().contains("more than once"), "{error}");
}
