//! The RPC socket end to end against a controller with fakes: framing, error codes,
//! concurrent clients, hostile input.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;

use serde_json::{json, Value};

use super::*;
use crate::testing::controller;

struct Daemon {
    _dir: tempfile::TempDir,
    path: PathBuf,
    plane: crate::testing::FakePlane,
    control: mpsc::Sender<ControlMsg>,
    loop_thread: Option<thread::JoinHandle<()>>,
    _socket: SocketFile,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lunard.sock");
        let (listener, socket) = bind(&path).expect("bind");
        let (control, messages) = mpsc::channel();
        let (plane_tx, plane_rx) = mpsc::channel();
        let loop_thread = thread::spawn(move || {
            let (mut c, plane, _) = controller();
            let _ = plane_tx.send(plane);
            control_loop(&mut c, &messages);
        });
        spawn_acceptor(listener, control.clone()).expect("acceptor");
        Daemon {
            _dir: dir,
            path,
            plane: plane_rx.recv().expect("fake plane"),
            control,
            loop_thread: Some(loop_thread),
            _socket: socket,
        }
    }

    fn connect(&self) -> Client {
        let stream = UnixStream::connect(&self.path).expect("connect");
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.control.send(ControlMsg::Shutdown);
        if let Some(t) = self.loop_thread.take() {
            let _ = t.join();
        }
    }
}

struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line:?}: {e}"))
    }

    fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(format!("{request}\n").as_bytes());
        let answer = self.answer();
        assert_eq!(answer["id"], json!(id));
        answer
    }
}

#[test]
fn socket_is_private_and_answers() {
    let daemon = Daemon::start();
    let mode = std::fs::metadata(&daemon.path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut client = daemon.connect();
    let answer = client.call(
        1,
        "device_add",
        json!({"name": "disk1", "path": "/dev/disk1"}),
    );
    assert_eq!(answer["result"]["name"], json!("disk1"));
    assert_eq!(answer["jsonrpc"], json!("2.0"));
    let answer = client.call(2, "device_remove", json!({"name": "nope"}));
    assert_eq!(answer["error"]["code"], json!(lunar_api::code::NOT_FOUND));
    assert_eq!(answer["error"]["message"], json!("device 'nope' not found"));
    assert!(answer.get("result").is_none());
}

#[test]
fn standard_error_codes() {
    let daemon = Daemon::start();
    let mut client = daemon.connect();
    client.send(b"this is not json\n");
    let answer = client.answer();
    assert_eq!(answer["error"]["code"], json!(-32700));
    assert_eq!(answer["id"], Value::Null);
    client.send(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"nope\"}\n");
    let answer = client.answer();
    assert_eq!(answer["error"]["code"], json!(-32601));
    assert_eq!(answer["id"], json!(9));
    let answer = client.call(10, "device_add", json!({"name": "x"}));
    assert_eq!(answer["error"]["code"], json!(-32602));
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("path"));
    client.send(b"{\"id\":11,\"method\":\"device_list\"}\n");
    assert_eq!(client.answer()["error"]["code"], json!(-32600));
    // The connection still works after all of that.
    let answer = client.call(12, "device_list", json!({}));
    assert_eq!(answer["result"], json!({"devices": []}));
}

#[test]
fn notifications_get_no_answer_and_batches_get_arrays() {
    let daemon = Daemon::start();
    let mut client = daemon.connect();
    client.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"device_add\",\"params\":{\"name\":\"d\",\"path\":\"/dev/disk1\"}}\n");
    client.send(b"\n");
    client.send(b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device_list\"},{\"jsonrpc\":\"2.0\",\"method\":\"device_list\"},7]\n");
    let answer = client.answer();
    let items = answer.as_array().expect("batch answer");
    assert_eq!(items.len(), 2, "{answer}");
    assert_eq!(
        items[0]["result"]["devices"][0]["name"],
        json!("d"),
        "the notification ran first"
    );
    assert_eq!(items[1]["error"]["code"], json!(-32600));
}

#[test]
fn overlong_line_is_refused_and_daemon_keeps_serving() {
    let daemon = Daemon::start();
    let mut hostile = daemon.connect();
    let writer = hostile.writer.try_clone().expect("clone");
    // The daemon stops reading at the bound, so write from another thread.
    let flood = thread::spawn(move || {
        let mut writer = writer;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            if writer.write_all(&chunk).is_err() {
                return true;
            }
        }
        false
    });
    let answer = hostile.answer();
    assert_eq!(answer["error"]["code"], json!(-32600));
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("longer than"));
    let mut rest = Vec::new();
    let _ = hostile.reader.read_to_end(&mut rest);
    assert!(
        flood.join().expect("flood thread"),
        "daemon closed the connection"
    );

    let mut good = daemon.connect();
    assert_eq!(
        good.call(1, "device_list", json!({}))["result"],
        json!({"devices": []})
    );
}

#[test]
fn garbage_bytes_do_not_hurt() {
    let daemon = Daemon::start();
    let mut client = daemon.connect();
    client.send(&[0xff, 0xfe, 0x00, b'{', b'\n']);
    assert_eq!(client.answer()["error"]["code"], json!(-32700));
    drop(client);
    let mut half = daemon.connect();
    half.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"meth");
    drop(half);
    let mut good = daemon.connect();
    assert_eq!(
        good.call(1, "device_list", json!({}))["result"],
        json!({"devices": []})
    );
}

#[test]
fn concurrent_clients_are_serialized() {
    let daemon = Daemon::start();
    let mut setup = daemon.connect();
    setup.call(
        1,
        "device_add",
        json!({"name": "disk1", "path": "/dev/disk1"}),
    );
    let handles: Vec<_> = (0..8u64)
        .map(|i| {
            let mut client = daemon.connect();
            thread::spawn(move || {
                let mut created = 0;
                for j in 0..10u64 {
                    let offset = (i * 10 + j) * 4096;
                    let answer = client.call(
                        j,
                        "volume_create",
                        json!({"name": format!("v{i}-{j}"), "layout": {"linear": {"device": "disk1", "offset_bytes": offset, "size_bytes": 4096}}}),
                    );
                    if answer.get("result").is_some() {
                        created += 1;
                    }
                }
                created
            })
        })
        .collect();
    let created: u32 = handles.into_iter().map(|h| h.join().expect("client")).sum();
    assert_eq!(created, 80);
    let listed = setup.call(2, "volume_list", json!({}));
    assert_eq!(
        listed["result"]["volumes"].as_array().map(Vec::len),
        Some(80)
    );
}

#[test]
fn live_socket_is_not_stolen_and_stale_one_is_replaced() {
    let daemon = Daemon::start();
    match bind(&daemon.path) {
        Err(BindError::InUse(path)) => assert_eq!(path, daemon.path),
        other => panic!("expected InUse, got {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    assert!(stale.exists());
    let (_listener, socket) = bind(&stale).expect("rebind over stale socket");
    drop(socket);
    assert!(!stale.exists(), "socket file removed on drop");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").expect("write");
    assert!(matches!(bind(&file), Err(BindError::NotASocket(_))));
}

#[test]
fn shutdown_answers_pending_clients() {
    let daemon = Daemon::start();
    let mut client = daemon.connect();
    client.call(1, "device_list", json!({}));
    let _ = daemon.control.send(ControlMsg::Shutdown);
    let answer = client.call(2, "device_list", json!({}));
    assert_eq!(
        answer["error"]["code"],
        json!(lunar_api::code::SHUTTING_DOWN)
    );
}

#[test]
fn data_plane_requests_are_answered_while_no_client_calls() {
    use lunar_reactor::{Nexus, ReactorRequest, RequestId, RequestKind};
    let daemon = Daemon::start();
    daemon.plane.state().requests.push(ReactorRequest {
        id: RequestId { reactor: 0, seq: 1 },
        kind: RequestKind::SharedStateCommand {
            target: "iqn.2026-11.dev.lunar:t".into(),
            lun: 0,
            volume_uid: 1,
            nexus: Nexus {
                initiator_port: "iqn.2026-11.a.b:i,i,0x1".into(),
                target_port: "iqn.2026-11.dev.lunar:t,t,0x1".into(),
            },
            cdb: vec![0x17, 0, 0, 0, 0, 0],
            data_out: Vec::new(),
        },
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while daemon.plane.state().answers.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "request not answered within 5 s"
        );
        thread::sleep(Duration::from_millis(1));
    }
    let answers = std::mem::take(&mut daemon.plane.state().answers);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, RequestId { reactor: 0, seq: 1 });
    assert_eq!(
        answers[0].1.status,
        lunar_wire::scsi::status::CHECK_CONDITION
    );
}
