//! A JSON-RPC 2.0 client for lunard's unix socket: one JSON object per line, each way.
//!
//! It talks to the socket directly (not through lunarctl), so the tests check the wire contract
//! itself, including what lunard answers to malformed requests.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// How long a call may wait for its answer.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest response line accepted.
const RESPONSE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Error codes (JSON-RPC 2.0's and lunar's), from the API crate.
pub use lunar_api::code;

/// Why a call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The socket failed (connect, write, read, timeout).
    #[error("rpc socket {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// No answer within [`RPC_TIMEOUT`].
    #[error("no rpc response within {}s", RPC_TIMEOUT.as_secs())]
    Timeout,
    /// The server closed the connection without answering.
    #[error("rpc socket closed before a response arrived")]
    Closed,
    /// The answer is not a JSON-RPC 2.0 response.
    #[error("malformed rpc response: {0}")]
    Malformed(String),
    /// The server answered with a JSON-RPC error object.
    #[error("rpc error {code}: {message}")]
    Remote {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
        /// The optional `data` member.
        data: Option<Value>,
    },
}

impl RpcError {
    /// The JSON-RPC error code, if the server answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Remote { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One connection to lunard's RPC socket.
pub struct RpcClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl RpcClient {
    /// Connects to the socket at `path`, with [`RPC_TIMEOUT`] on reads and writes.
    pub fn connect(path: &Path) -> Result<RpcClient, RpcError> {
        let io_err = |op| move |source| RpcError::Io { op, source };
        let stream = UnixStream::connect(path).map_err(io_err("connect"))?;
        stream
            .set_read_timeout(Some(RPC_TIMEOUT))
            .map_err(io_err("set read timeout"))?;
        stream
            .set_write_timeout(Some(RPC_TIMEOUT))
            .map_err(io_err("set write timeout"))?;
        let writer = stream.try_clone().map_err(io_err("clone"))?;
        Ok(RpcClient {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    /// Calls `method` with `params` and returns its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.send_line(&request.to_string())?;
        if response.get("id") != Some(&json!(id)) {
            return Err(RpcError::Malformed(format!(
                "response id does not match request id {id}: {response}"
            )));
        }
        into_result(response)
    }

    /// Sends one raw line (a newline is appended) and returns the parsed response object, whatever
    /// it is: for testing how the server treats malformed requests.
    pub fn send_line(&mut self, line: &str) -> Result<Value, RpcError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .map_err(|source| RpcError::Io {
                op: "write",
                source,
            })?;
        let mut response = String::new();
        let read = (&mut self.reader)
            .take(RESPONSE_MAX_BYTES)
            .read_line(&mut response)
            .map_err(|source| match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RpcError::Timeout,
                _ => RpcError::Io { op: "read", source },
            })?;
        if read == 0 {
            return Err(RpcError::Closed);
        }
        serde_json::from_str(&response)
            .map_err(|err| RpcError::Malformed(format!("{err}: {}", response.trim_end())))
    }
}

/// Splits a JSON-RPC response object into its result or its error.
pub fn into_result(response: Value) -> Result<Value, RpcError> {
    if response.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(RpcError::Malformed(format!(
            "missing \"jsonrpc\": \"2.0\": {response}"
        )));
    }
    if let Some(error) = response.get("error") {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error.get("message").and_then(Value::as_str);
        return match (code, message) {
            (Some(code), Some(message)) => Err(RpcError::Remote {
                code,
                message: message.to_string(),
                data: error.get("data").cloned(),
            }),
            _ => Err(RpcError::Malformed(format!(
                "error object without code and message: {response}"
            ))),
        };
    }
    match response.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(RpcError::Malformed(format!(
            "neither result nor error: {response}"
        ))),
    }
}

/// True if `value` holds, at any depth, an object whose `key` equals `expected` (a string).
///
/// The list methods' exact result shape is the daemon's; tests only need "is X listed".
pub fn json_mentions(value: &Value, key: &str, expected: &str) -> bool {
    match value {
        Value::Object(map) => {
            map.get(key).and_then(Value::as_str) == Some(expected)
                || map
                    .values()
                    .any(|child| json_mentions(child, key, expected))
        }
        Value::Array(items) => items
            .iter()
            .any(|child| json_mentions(child, key, expected)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::thread;

    #[test]
    fn splits_results_and_errors() {
        let ok = into_result(json!({"jsonrpc": "2.0", "id": 1, "result": {"a": 1}}));
        assert_eq!(ok.expect("result"), json!({"a": 1}));
        let err = into_result(
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no"}}),
        )
        .expect_err("error object");
        assert_eq!(err.code(), Some(code::METHOD_NOT_FOUND));
        assert!(matches!(
            into_result(json!({"id": 1, "result": 1})),
            Err(RpcError::Malformed(_))
        ));
        assert!(matches!(
            into_result(json!({"jsonrpc": "2.0", "id": 1})),
            Err(RpcError::Malformed(_))
        ));
        assert!(matches!(
            into_result(json!({"jsonrpc": "2.0", "error": {"code": "x"}})),
            Err(RpcError::Malformed(_))
        ));
    }

    #[test]
    fn finds_names_at_any_depth() {
        let listing = json!({"devices": [{"name": "d0", "path": "/x"}, {"name": "d1"}]});
        assert!(json_mentions(&listing, "name", "d1"));
        assert!(!json_mentions(&listing, "name", "d2"));
        assert!(!json_mentions(&listing, "path", "d0"));
        assert!(json_mentions(&json!([{"iqn": "iqn.x"}]), "iqn", "iqn.x"));
    }

    #[test]
    fn talks_one_object_per_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut writer = stream;
            let mut line = String::new();
            reader.read_line(&mut line).expect("read request");
            let request: Value = serde_json::from_str(&line).expect("request is JSON");
            assert_eq!(request["method"], "device_list");
            assert_eq!(request["jsonrpc"], "2.0");
            let response = json!({"jsonrpc": "2.0", "id": request["id"], "result": []});
            writer
                .write_all(format!("{response}\n").as_bytes())
                .expect("write");
            line.clear();
            reader.read_line(&mut line).expect("read second request");
            let request: Value = serde_json::from_str(&line).expect("request is JSON");
            let response = json!({"jsonrpc": "2.0", "id": 999, "result": []});
            assert_ne!(request["id"], 999);
            writer
                .write_all(format!("{response}\n").as_bytes())
                .expect("write");
        });
        let mut client = RpcClient::connect(&path).expect("connect");
        assert_eq!(
            client.call("device_list", json!({})).expect("call"),
            json!([])
        );
        assert!(matches!(
            client.call("device_list", json!({})),
            Err(RpcError::Malformed(_))
        ));
        server.join().expect("server thread");
    }
}
