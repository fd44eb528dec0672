//! A small blocking client for the daemon's unix socket: one request line out, one response
//! line back.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::rpc::{Request, Response, RpcError};

/// Longest response line the client accepts (lists of many objects can be long).
pub const MAX_RESPONSE_LINE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to lunard at {path}: {source} (is lunard running?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("connection to lunard failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected answer from lunard: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("{0}")]
    Rpc(RpcError),
}

/// A connection to lunard.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    /// Call `method` with `params` (a JSON object) and return the result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request::new(id, method, params))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        self.writer.flush()?;

        let mut answer = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_RESPONSE_LINE_BYTES)
            .read_until(b'\n', &mut answer)?;
        if read == 0 {
            return Err(ClientError::Protocol(
                "lunard closed the connection without answering".to_string(),
            ));
        }
        if answer.last() != Some(&b'\n') {
            return Err(ClientError::Protocol(
                "answer truncated or too long".to_string(),
            ));
        }
        let response: Response = serde_json::from_slice(&answer)
            .map_err(|e| ClientError::Protocol(format!("not a JSON-RPC response: {e}")))?;
        if response.id.as_u64() != Some(id) {
            return Err(ClientError::Protocol(format!(
                "answer carries id {} instead of {id}",
                response.id
            )));
        }
        match (response.error, response.result) {
            (Some(error), _) => Err(ClientError::Rpc(error)),
            (None, Some(result)) => Ok(result),
            (None, None) => Ok(Value::Null),
        }
    }

    /// [`Client::call`] with typed parameters and result.
    pub fn call_typed<P: Serialize, R: DeserializeOwned>(
        &mut self,
        method: &str,
        params: &P,
    ) -> Result<R, ClientError> {
        let params =
            serde_json::to_value(params).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let result = self.call(method, params)?;
        serde_json::from_value(result)
            .map_err(|e| ClientError::Protocol(format!("result of {method}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn serve_once(listener: UnixListener, answer: &'static str) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            reader.read_line(&mut request).expect("read");
            let mut writer = stream;
            writer.write_all(answer.as_bytes()).expect("write");
            request
        })
    }

    #[test]
    fn call_returns_result_and_sends_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = serve_once(
            listener,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":1}}\n",
        );
        let mut client = Client::connect(&path).expect("connect");
        let result = client
            .call("device_list", serde_json::json!({}))
            .expect("call");
        assert_eq!(result, serde_json::json!({"a": 1}));
        let request: Value =
            serde_json::from_str(&server.join().expect("join")).expect("request json");
        assert_eq!(request["method"], "device_list");
        assert_eq!(request["jsonrpc"], "2.0");
    }

    #[test]
    fn call_returns_rpc_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let _server = serve_once(
            listener,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1001,\"message\":\"device 'x' not found\"}}\n",
        );
        let mut client = Client::connect(&path).expect("connect");
        match client.call("device_remove", serde_json::json!({"name": "x"})) {
            Err(ClientError::Rpc(error)) => {
                assert_eq!(error.code, crate::code::NOT_FOUND);
                assert_eq!(error.to_string(), "device 'x' not found");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn connect_error_says_daemon_may_not_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = Client::connect(&dir.path().join("none.sock")).expect_err("no socket");
        let text = error.to_string();
        assert!(text.contains("is lunard running?"), "{text}");
        assert!(text.contains("none.sock"), "{text}");
    }
}
