//! Bad RPC input gets a clear JSON-RPC error and costs only its sender: malformed JSON, requests
//! that are not requests, unknown methods, bad parameters, and removals of objects in use.

use serde_json::{json, Value};

use lunar_tests::rpc::{code, json_mentions, RpcError};
use lunar_tests::{Backing, Export};

const BACKING_LEN_BYTES: u64 = 16 << 20;
/// Longest request line lunard reads (lunar-api's bound).
const MAX_REQUEST_LINE_BYTES: usize = lunar_api::MAX_REQUEST_LINE_BYTES;

fn export(tag: &str) -> Export {
    Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), tag)
}

/// The response is a JSON-RPC error with `expected` code and a non-empty message.
fn assert_error_response(export: &Export, response: &Value, expected: i64, what: &str) {
    let error = &response["error"];
    let message = error["message"].as_str().unwrap_or("");
    assert!(
        response["jsonrpc"] == "2.0"
            && error["code"] == json!(expected)
            && !message.trim().is_empty(),
        "{}",
        export.failure(&format!(
            "{what}: expected error {expected} with a message, got {response}"
        ))
    );
}

fn assert_call_error(export: &Export, result: Result<Value, RpcError>, expected: i64, what: &str) {
    match result {
        Err(RpcError::Remote { code, message, .. })
            if code == expected && !message.trim().is_empty() => {}
        other => panic!(
            "{}",
            export.failure(&format!(
                "{what}: expected error {expected} with a message, got {other:?}"
            ))
        ),
    }
}

/// lunard still serves: a fresh connection lists the export's device.
fn assert_still_serving(export: &Export) {
    let devices = export.daemon.call("device_list", json!({}));
    assert!(
        json_mentions(&devices, "name", &export.spec.device),
        "{}",
        export.failure(&format!("device_list after bad input: {devices}"))
    );
}

#[test]
fn malformed_json_gets_a_parse_error() {
    let export = export("rpc-badjson");
    let mut rpc = export.daemon.rpc();
    let response = rpc
        .send_line("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ")
        .unwrap_or_else(|err| {
            panic!(
                "{}",
                export.failure(&format!("no answer to malformed JSON: {err}"))
            )
        });
    assert_error_response(&export, &response, code::PARSE_ERROR, "truncated JSON");
    assert_eq!(
        response["id"],
        Value::Null,
        "{}",
        export.failure("a parse error has a null id")
    );
    assert_still_serving(&export);
}

#[test]
fn a_request_without_a_method_is_invalid() {
    let export = export("rpc-invalid");
    let mut rpc = export.daemon.rpc();
    let response = rpc
        .send_line(r#"{"jsonrpc": "2.0", "id": 7}"#)
        .unwrap_or_else(|err| panic!("{}", export.failure(&format!("no answer: {err}"))));
    assert_error_response(
        &export,
        &response,
        code::INVALID_REQUEST,
        "request without a method",
    );
    assert_still_serving(&export);
}

#[test]
fn an_oversized_line_is_refused_and_the_daemon_survives() {
    let export = export("rpc-oversized");
    let mut rpc = export.daemon.rpc();
    let padding = "x".repeat(MAX_REQUEST_LINE_BYTES + 16);
    let line = format!(
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "device_list", "params": {{"pad": "{padding}"}}}}"#
    );
    match rpc.send_line(&line) {
        Ok(response) => {
            assert_error_response(&export, &response, code::INVALID_REQUEST, "oversized line")
        }
        // Closing the offending connection is also a fair answer; the daemon must live on.
        Err(RpcError::Closed) | Err(RpcError::Io { .. }) => {}
        Err(other) => panic!("{}", export.failure(&format!("oversized line: {other}"))),
    }
    assert_still_serving(&export);
}

#[test]
fn an_unknown_method_is_not_found() {
    let export = export("rpc-unknown");
    let result = export.daemon.try_call("volume_frobnicate", json!({}));
    assert_call_error(&export, result, code::METHOD_NOT_FOUND, "unknown method");
    assert_still_serving(&export);
}

#[test]
fn bad_parameters_are_invalid_params() {
    let export = export("rpc-params");
    let missing_path = export
        .daemon
        .try_call("device_add", json!({"name": "lonely"}));
    assert_call_error(
        &export,
        missing_path,
        code::INVALID_PARAMS,
        "device_add without path",
    );
    let unknown_field = export.daemon.try_call(
        "device_add",
        json!({"name": "typo", "path": "/dev/null", "sise": 1}),
    );
    assert_call_error(
        &export,
        unknown_field,
        code::INVALID_PARAMS,
        "device_add with an unknown field",
    );
    let bad_block_size = export.daemon.try_call(
        "volume_create",
        json!({"name": "odd", "layout": {"linear": {"device": export.spec.device, "offset_bytes": 0,
               "size_bytes": 1 << 20}}, "block_size": 1000}),
    );
    assert_call_error(
        &export,
        bad_block_size,
        code::INVALID_PARAMS,
        "block_size 1000",
    );
    assert_still_serving(&export);
}

#[test]
fn removing_what_is_in_use_is_refused() {
    let export = export("rpc-inuse");
    let spec = &export.spec;
    let device = export
        .daemon
        .try_call("device_remove", json!({"name": spec.device}));
    assert_call_error(
        &export,
        device,
        code::IN_USE,
        "device_remove of a device a volume uses",
    );
    let volume = export
        .daemon
        .try_call("volume_delete", json!({"name": spec.volume}));
    assert_call_error(
        &export,
        volume,
        code::IN_USE,
        "volume_delete of an exported volume",
    );
    let volumes = export.daemon.call("volume_list", json!({}));
    assert!(
        json_mentions(&volumes, "name", &spec.volume),
        "{}",
        export.failure(&format!(
            "a refused volume_delete removed the volume: {volumes}"
        ))
    );
    assert_still_serving(&export);
}

#[test]
fn missing_and_duplicate_names_are_reported() {
    let export = export("rpc-names");
    let missing = export
        .daemon
        .try_call("device_remove", json!({"name": "no-such-device"}));
    assert_call_error(
        &export,
        missing,
        code::NOT_FOUND,
        "device_remove of an unknown device",
    );
    let path = export.backing.path().to_string_lossy().into_owned();
    let duplicate = export.daemon.try_call(
        "device_add",
        json!({"name": export.spec.device, "path": path}),
    );
    assert_call_error(
        &export,
        duplicate,
        code::ALREADY_EXISTS,
        "device_add of an existing name",
    );
    assert_still_serving(&export);
}
