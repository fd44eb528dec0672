//! The control client called through its C signature against a stand-in daemon on a unix
//! socket: results, daemon errors with their code, and failures before and after connecting.

use std::ffi::{CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::os::raw::c_char;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::ptr::{null, null_mut};
use std::thread::JoinHandle;

use lunar::rpc::{lunar_rpc_call, lunar_rpc_call_ex};
use lunar::strings::lunar_string_free;
use lunar::*;
use serde_json::Value;

/// Accept one connection, read one request line, answer with `answer` (as is), return the
/// request as JSON.
fn serve_once(path: &Path, answer: &'static str) -> JoinHandle<Value> {
    let listener = UnixListener::bind(path).expect("bind");
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut request = String::new();
        reader.read_line(&mut request).expect("read");
        let mut writer = stream;
        writer.write_all(answer.as_bytes()).expect("write");
        serde_json::from_str(&request).expect("request is JSON")
    })
}

struct Outcome {
    status: i32,
    result: Option<String>,
    error: Option<String>,
    rpc_code: i64,
}

fn take(slot: *mut c_char) -> Option<String> {
    if slot.is_null() {
        return None;
    }
    // SAFETY: a library string, freed once right after.
    let text = unsafe { CStr::from_ptr(slot) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed once.
    unsafe { lunar_string_free(slot) };
    Some(text)
}

fn call(socket: &Path, method: &str, params: Option<&str>) -> Outcome {
    let socket = CString::new(socket.to_str().unwrap()).unwrap();
    let method = CString::new(method).unwrap();
    let params = params.map(|p| CString::new(p).unwrap());
    let mut result = null_mut();
    let mut error = null_mut();
    let mut rpc_code = -1;
    // SAFETY: valid strings (or NULL params) and writable slots.
    let status = unsafe {
        lunar_rpc_call_ex(
            socket.as_ptr(),
            method.as_ptr(),
            params.as_ref().map_or(null(), |p| p.as_ptr()),
            &mut result,
            &mut error,
            &mut rpc_code,
        )
    };
    Outcome {
        status,
        result: take(result),
        error: take(error),
        rpc_code,
    }
}

#[test]
fn result_comes_back_as_json_and_request_is_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("lunard.sock");
    let server = serve_once(
        &socket,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"volumes\":[]}}\n",
    );
    let outcome = call(&socket, "volume_list", Some(r#"{"verbose":true}"#));
    assert_eq!(outcome.status, LUNAR_OK);
    assert_eq!(outcome.result.as_deref(), Some(r#"{"volumes":[]}"#));
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.rpc_code, 0);
    let request = server.join().unwrap();
    assert_eq!(request["jsonrpc"], "2.0");
    assert_eq!(request["method"], "volume_list");
    assert_eq!(request["params"], serde_json::json!({"verbose": true}));
    assert!(request["id"].is_u64());
}

#[test]
fn null_params_are_sent_as_an_empty_object() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("lunard.sock");
    let server = serve_once(&socket, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}\n");
    let outcome = call(&socket, "daemon_info", None);
    assert_eq!(outcome.status, LUNAR_OK);
    assert_eq!(outcome.result.as_deref(), Some("null"));
    assert_eq!(server.join().unwrap()["params"], serde_json::json!({}));
}

#[test]
fn daemon_error_gives_message_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("lunard.sock");
    let _server = serve_once(
        &socket,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1001,\"message\":\"volume 'v9' not found\"}}\n",
    );
    let outcome = call(&socket, "volume_delete", Some(r#"{"name":"v9"}"#));
    assert_eq!(outcome.status, LUNAR_ERR_RPC);
    assert_eq!(outcome.error.as_deref(), Some("volume 'v9' not found"));
    assert_eq!(outcome.result, None);
    assert_eq!(outcome.rpc_code, 1001);
}

#[test]
fn garbage_or_missing_answers_are_protocol_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (i, answer) in [
        "not json\n",
        "",
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":1}\n",
    ]
    .into_iter()
    .enumerate()
    {
        let socket = dir.path().join(format!("s{i}.sock"));
        let server = serve_once(&socket, answer);
        let outcome = call(&socket, "daemon_info", None);
        server.join().unwrap();
        assert_eq!(outcome.status, LUNAR_ERR_PROTOCOL, "answer {answer:?}");
        assert!(outcome
            .error
            .is_some_and(|e| e.starts_with("unexpected answer from lunard")));
    }
}

#[test]
fn missing_socket_is_a_connect_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let outcome = call(&socket, "daemon_info", None);
    assert_eq!(outcome.status, LUNAR_ERR_CONNECT);
    let error = outcome.error.unwrap();
    assert!(
        error.contains("absent.sock") && error.contains("is lunard running?"),
        "{error}"
    );
}

#[test]
fn bad_arguments_are_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("never.sock");
    let outcome = call(&socket, "volume_list", Some("{not json"));
    assert_eq!(outcome.status, LUNAR_ERR_INVALID_ARGUMENT);
    assert!(outcome
        .error
        .unwrap()
        .starts_with("params_json is not valid JSON"));
    let outcome = call(&socket, "", None);
    assert_eq!(outcome.status, LUNAR_ERR_INVALID_ARGUMENT);

    let mut error = null_mut();
    let method = c"volume_list";
    // SAFETY: NULL socket path must be refused; NULL result slot is allowed.
    let status = unsafe { lunar_rpc_call(null(), method.as_ptr(), null(), null_mut(), &mut error) };
    assert_eq!(status, LUNAR_ERR_INVALID_ARGUMENT);
    assert_eq!(take(error).as_deref(), Some("socket_path is NULL"));
    // SAFETY: NULL method must be refused; NULL slots are allowed.
    let status = unsafe { lunar_rpc_call(c"/x".as_ptr(), null(), null(), null_mut(), null_mut()) };
    assert_eq!(status, LUNAR_ERR_INVALID_ARGUMENT);
}
