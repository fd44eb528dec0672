//! The JSON-RPC 2.0 envelope, error codes and framing used on the daemon's socket.
//!
//! Framing: one JSON value per line (`\n`-terminated), in both directions. A request line may
//! be at most [`MAX_REQUEST_LINE_BYTES`] long; longer lines are answered with an
//! `INVALID_REQUEST` error and skipped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `jsonrpc` member of every request and response.
pub const JSONRPC_VERSION: &str = "2.0";

/// Longest request line the daemon reads, newline excluded.
pub const MAX_REQUEST_LINE_BYTES: usize = 1 << 20;

/// Error codes. The negative ones are JSON-RPC 2.0's; the positive ones are lunar's.
pub mod code {
    /// The line is not valid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Valid JSON but not a JSON-RPC 2.0 request (or a line over the length bound).
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Parameters missing, of the wrong type, unknown, or malformed in themselves (a bad name,
    /// IQN, block size...), whatever the daemon's state.
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;

    /// The named device, volume or target does not exist.
    pub const NOT_FOUND: i64 = 1001;
    /// An object with that name (or path) already exists.
    pub const ALREADY_EXISTS: i64 = 1002;
    /// The object is used by another one (a device by a volume, a volume by a target).
    pub const IN_USE: i64 = 1003;
    /// The request does not fit the current configuration (extent beyond the device end,
    /// misaligned for the device, overlapping another volume...).
    pub const CONFLICT: i64 = 1004;
    /// A device could not be opened.
    pub const DEVICE_ERROR: i64 = 1005;
    /// The new configuration could not be saved; nothing changed.
    pub const PERSIST_FAILED: i64 = 1006;
    /// The data plane did not take the new configuration.
    pub const PUBLISH_FAILED: i64 = 1007;
    /// The daemon is shutting down.
    pub const SHUTTING_DOWN: i64 = 1008;
}

/// A request as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    pub id: Value,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Request {
    pub fn new(id: u64, method: &str, params: Value) -> Request {
        Request {
            jsonrpc: JSONRPC_VERSION.to_string(),
            id: Value::from(id),
            method: method.to_string(),
            params: Some(params),
        }
    }
}

/// The error member of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// A response as the daemon sends it: exactly one of `result` and `error` is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    /// The request's id (`null` when the request could not be read far enough to know it).
    pub id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    pub fn success(id: Value, result: Value) -> Response {
        Response {
            jsonrpc: JSONRPC_VERSION.to_string(),
            id,
            result: Some(result),
            error: None,
        }
    }

    pub fn failure(id: Value, error: RpcError) -> Response {
        Response {
            jsonrpc: JSONRPC_VERSION.to_string(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_response_has_result_and_no_error() {
        let text = serde_json::to_string(&Response::success(Value::from(7), Value::from(1)))
            .expect("serialize");
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":7,"result":1}"#);
    }

    #[test]
    fn failure_response_has_error_and_no_result() {
        let response = Response::failure(Value::Null, RpcError::new(code::PARSE_ERROR, "bad"));
        let text = serde_json::to_string(&response).expect("serialize");
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#
        );
        let back: Response = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, response);
    }

    #[test]
    fn request_serializes_with_params() {
        let request = Request::new(3, "device_list", serde_json::json!({}));
        let text = serde_json::to_string(&request).expect("serialize");
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":3,"method":"device_list","params":{}}"#
        );
    }
}
