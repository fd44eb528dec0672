//! The control-thread handshake with real reactor threads: publish waits for "installed",
//! generations grow, old generations drain, shutdown joins every reactor.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use lunar_reactor::{DataPlane, DataPlaneConfig, PollMode, Snapshot};

fn start(cores: usize, poll_mode: PollMode) -> DataPlane {
    DataPlane::start(DataPlaneConfig {
        cores: vec![0; cores],
        poll_mode,
        listen: "127.0.0.1:0".parse().unwrap(),
        connection: lunar_iscsi::ConnConfig::default(),
        control_bell: lunar_reactor::Doorbell::unheard(),
    })
    .expect("data plane starts")
}

#[test]
fn publish_installs_on_every_reactor_and_old_generations_drain() {
    let mut plane = start(2, PollMode::Adaptive);
    assert_ne!(plane.listen_addr().port(), 0);
    let first = plane.publish(Snapshot::default()).unwrap();
    let second = plane.publish(Snapshot::default()).unwrap();
    assert_eq!((first, second), (1, 2));
    plane
        .wait_drained(second)
        .expect("nothing pins generation 1");
    assert!(plane.stats().is_empty());
    plane.shutdown();
}

#[test]
fn busy_reactor_also_answers_the_handshake() {
    let mut plane = start(1, PollMode::Busy);
    assert_eq!(plane.publish(Snapshot::default()).unwrap(), 1);
    plane.shutdown();
}

#[test]
fn connections_are_accepted_and_closed_on_shutdown() {
    let mut plane = start(1, PollMode::Adaptive);
    plane.publish(Snapshot::default()).unwrap();
    let mut client = TcpStream::connect(plane.listen_addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plane.shutdown();
    let mut buf = [0u8; 16];
    let n = client.read(&mut buf).expect("closed, not timed out");
    assert_eq!(n, 0, "the reactor closes its connections when it stops");
}

#[test]
fn portals_come_and_go_at_run_time() {
    let mut plane = start(2, PollMode::Adaptive);
    plane.publish(Snapshot::default()).unwrap();
    let extra = plane
        .add_portal("127.0.0.1:0".parse().unwrap())
        .expect("second portal");
    assert_eq!(plane.portals(), vec![plane.listen_addr(), extra]);
    let mut client = TcpStream::connect(extra).expect("the new portal accepts");
    plane.remove_portal(extra).unwrap();
    assert!(
        plane.remove_portal(plane.listen_addr()).is_err(),
        "the last portal stays"
    );
    // The listener is closed once its cancelled accept completes; new connections are refused.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(extra).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refused, "a removed portal stops accepting");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plane.shutdown();
    // Closed either way: accepted then closed at shutdown (EOF), or still in the removed
    // listener's backlog (reset).
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}
