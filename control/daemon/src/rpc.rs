//! JSON-RPC 2.0 framing and envelopes on the daemon side: reading bounded lines, turning a line
//! into calls (or the error responses the spec prescribes), and encoding the answers.
//!
//! Pure functions over bytes; the socket handling is in [`crate::server`].

use std::io::{self, BufRead};

use lunar_api::code;
use lunar_api::rpc::{Response, RpcError, JSONRPC_VERSION};
use serde_json::{Map, Value};

/// Most requests in one batch.
pub const MAX_BATCH_REQUESTS: usize = 64;

/// Outcome of reading one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// A line is in the buffer (without its newline; the last line may lack one).
    Line,
    /// The line grew beyond the bound; the rest of it was not read.
    TooLong,
    /// The peer closed the connection before sending anything more.
    Eof,
}

/// Read one `\n`-terminated line into `line` (cleared first), holding at most `max_bytes`.
pub fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max_bytes: usize,
) -> io::Result<LineRead> {
    line.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if line.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > max_bytes {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(found_newline);
        reader.consume(used);
        if found_newline {
            return Ok(LineRead::Line);
        }
    }
}

/// A request to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `None` for a notification (no response is sent).
    pub id: Option<Value>,
    pub method: String,
    pub params: Option<Value>,
}

/// One element of a request line.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Call(Call),
    /// Not a valid request: answer with this.
    Invalid(Response),
}

/// A request line: one request or a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    pub batch: bool,
    pub entries: Vec<Entry>,
}

fn invalid(id: Value, code: i64, message: impl Into<String>) -> Entry {
    Entry::Invalid(Response::failure(id, RpcError::new(code, message)))
}

/// Parse a request line. Returns `None` for a blank line (ignored). Never panics.
pub fn parse_line(line: &[u8]) -> Option<ParsedLine> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(e) => {
            return Some(ParsedLine {
                batch: false,
                entries: vec![invalid(
                    Value::Null,
                    code::PARSE_ERROR,
                    format!("request is not valid JSON: {e}"),
                )],
            })
        }
    };
    Some(match value {
        Value::Array(items) => {
            if items.is_empty() {
                ParsedLine {
                    batch: false,
                    entries: vec![invalid(Value::Null, code::INVALID_REQUEST, "empty batch")],
                }
            } else if items.len() > MAX_BATCH_REQUESTS {
                ParsedLine {
                    batch: false,
                    entries: vec![invalid(
                        Value::Null,
                        code::INVALID_REQUEST,
                        format!(
                            "batch of {} requests is larger than the limit of {MAX_BATCH_REQUESTS}",
                            items.len()
                        ),
                    )],
                }
            } else {
                ParsedLine {
                    batch: true,
                    entries: items.into_iter().map(parse_request).collect(),
                }
            }
        }
        other => ParsedLine {
            batch: false,
            entries: vec![parse_request(other)],
        },
    })
}

/// Check one request object against JSON-RPC 2.0.
fn parse_request(value: Value) -> Entry {
    let Value::Object(mut object) = value else {
        return invalid(
            Value::Null,
            code::INVALID_REQUEST,
            "a request must be a JSON object",
        );
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id),
        Some(_) => {
            return invalid(
                Value::Null,
                code::INVALID_REQUEST,
                "\"id\" must be a string, a number or null",
            )
        }
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    match object.remove("jsonrpc") {
        Some(Value::String(version)) if version == JSONRPC_VERSION => {}
        _ => {
            return invalid(
                reply_id,
                code::INVALID_REQUEST,
                "\"jsonrpc\" must be \"2.0\"",
            )
        }
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => {
            return invalid(
                reply_id,
                code::INVALID_REQUEST,
                "\"method\" must be a string",
            )
        }
        None => return invalid(reply_id, code::INVALID_REQUEST, "\"method\" is missing"),
    };
    let params = match object.remove("params") {
        None => None,
        Some(params @ (Value::Object(_) | Value::Array(_))) => Some(params),
        Some(_) => {
            return invalid(
                reply_id,
                code::INVALID_REQUEST,
                "\"params\" must be an object or an array",
            )
        }
    };
    if let Some(unknown) = first_key(&object) {
        return invalid(
            reply_id,
            code::INVALID_REQUEST,
            format!(
                "unknown member \"{}\" (a request has jsonrpc, id, method, params)",
                unknown.escape_debug()
            ),
        );
    }
    Entry::Call(Call { id, method, params })
}

fn first_key(object: &Map<String, Value>) -> Option<&str> {
    object.keys().next().map(String::as_str)
}

/// The bytes to send back for a line's responses (newline included), or `None` when there
/// is nothing to send (only notifications).
pub fn encode_responses(batch: bool, responses: Vec<Response>) -> Option<Vec<u8>> {
    if responses.is_empty() {
        return None;
    }
    let encoded = if batch {
        serde_json::to_vec(&responses)
    } else {
        serde_json::to_vec(&responses[0])
    };
    let mut bytes = encoded.unwrap_or_else(|e| {
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":{},\"message\":\"cannot encode response: {}\"}}}}",
            code::INTERNAL_ERROR,
            e.to_string().escape_default()
        )
        .into_bytes()
    });
    bytes.push(b'\n');
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{BufReader, Cursor};

    fn one(line: &str) -> Entry {
        let parsed = parse_line(line.as_bytes()).expect("not blank");
        assert!(!parsed.batch);
        assert_eq!(parsed.entries.len(), 1);
        parsed.entries.into_iter().next().expect("entry")
    }

    fn error_of(entry: Entry) -> (Value, i64, String) {
        match entry {
            Entry::Invalid(response) => {
                let error = response.error.expect("error");
                (response.id, error.code, error.message)
            }
            Entry::Call(call) => panic!("expected an error, got {call:?}"),
        }
    }

    #[test]
    fn valid_request() {
        let entry = one(r#"{"jsonrpc":"2.0","id":1,"method":"device_list","params":{}}"#);
        assert_eq!(
            entry,
            Entry::Call(Call {
                id: Some(Value::from(1)),
                method: "device_list".into(),
                params: Some(serde_json::json!({})),
            })
        );
        let notification = one(r#"{"jsonrpc":"2.0","method":"x"}"#);
        assert!(matches!(
            notification,
            Entry::Call(Call {
                id: None,
                params: None,
                ..
            })
        ));
        let null_id = one(r#"{"jsonrpc":"2.0","method":"x","id":null}"#);
        assert!(matches!(
            null_id,
            Entry::Call(Call {
                id: Some(Value::Null),
                ..
            })
        ));
    }

    #[test]
    fn parse_errors_and_invalid_requests() {
        let (id, code, message) = error_of(one("{not json"));
        assert_eq!((id, code), (Value::Null, code::PARSE_ERROR));
        assert!(message.contains("not valid JSON"), "{message}");
        let cases = [
            (r#"42"#, "must be a JSON object"),
            (
                r#"{"jsonrpc":"1.0","id":5,"method":"x"}"#,
                "\"jsonrpc\" must be \"2.0\"",
            ),
            (r#"{"id":5,"method":"x"}"#, "\"jsonrpc\" must be \"2.0\""),
            (r#"{"jsonrpc":"2.0","id":5}"#, "\"method\" is missing"),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":7}"#,
                "\"method\" must be a string",
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"x","params":3}"#,
                "\"params\" must be",
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"x","param":{}}"#,
                "unknown member \"param\"",
            ),
            (
                r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#,
                "\"id\" must be",
            ),
        ];
        for (line, expected) in cases {
            let (id, code, message) = error_of(one(line));
            assert_eq!(code, code::INVALID_REQUEST, "{line}");
            assert!(message.contains(expected), "{line}: {message}");
            if line.contains("\"id\":5") {
                assert_eq!(id, Value::from(5), "{line}");
            }
        }
    }

    #[test]
    fn batches() {
        let parsed = parse_line(br#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 5]"#).expect("line");
        assert!(parsed.batch);
        assert!(matches!(parsed.entries[0], Entry::Call(_)));
        assert!(matches!(parsed.entries[1], Entry::Invalid(_)));
        let (_, code, _) = error_of(one("[]"));
        assert_eq!(code, code::INVALID_REQUEST);
        let big = format!("[{}]", vec!["1"; MAX_BATCH_REQUESTS + 1].join(","));
        let (_, code, message) = error_of(one(&big));
        assert_eq!(code, code::INVALID_REQUEST);
        assert!(message.contains("limit"), "{message}");
    }

    #[test]
    fn blank_lines_are_ignored() {
        assert_eq!(parse_line(b""), None);
        assert_eq!(parse_line(b"  \r\t"), None);
    }

    #[test]
    fn encoding_batches_and_notifications() {
        assert_eq!(encode_responses(false, vec![]), None);
        let single = encode_responses(false, vec![Response::success(Value::from(1), Value::Null)])
            .expect("bytes");
        assert_eq!(single, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}\n");
        let batch = encode_responses(
            true,
            vec![
                Response::success(Value::from(1), Value::from(2)),
                Response::success(Value::from(2), Value::from(3)),
            ],
        )
        .expect("bytes");
        assert!(batch.starts_with(b"[{") && batch.ends_with(b"}]\n"));
    }

    #[test]
    fn bounded_lines() {
        let mut reader = BufReader::with_capacity(4, Cursor::new(b"abc\ndefgh\nlast".to_vec()));
        let mut line = Vec::new();
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 16).ok(),
            Some(LineRead::Line)
        );
        assert_eq!(line, b"abc");
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 16).ok(),
            Some(LineRead::Line)
        );
        assert_eq!(line, b"defgh");
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 16).ok(),
            Some(LineRead::Line)
        );
        assert_eq!(line, b"last");
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 16).ok(),
            Some(LineRead::Eof)
        );

        let mut long = BufReader::with_capacity(8, Cursor::new(vec![b'x'; 1000]));
        assert_eq!(
            read_line_bounded(&mut long, &mut line, 100).ok(),
            Some(LineRead::TooLong)
        );
        assert!(line.len() <= 100);
        let mut exact = Cursor::new(b"0123456789\n".to_vec());
        assert_eq!(
            read_line_bounded(&mut exact, &mut line, 10).ok(),
            Some(LineRead::Line)
        );
        let mut over = Cursor::new(b"01234567890\n".to_vec());
        assert_eq!(
            read_line_bounded(&mut over, &mut line, 10).ok(),
            Some(LineRead::TooLong)
        );
    }

    proptest! {
        #[test]
        fn parse_line_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Some(parsed) = parse_line(&bytes) {
                prop_assert!(!parsed.entries.is_empty());
            }
        }

        #[test]
        fn parse_line_handles_arbitrary_json(value in arbitrary_json()) {
            let bytes = serde_json::to_vec(&value).expect("encode");
            let parsed = parse_line(&bytes).expect("not blank");
            prop_assert!(!parsed.entries.is_empty());
        }

        #[test]
        fn bounded_reader_never_exceeds_bound(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            max in 0usize..64,
            capacity in 1usize..16,
        ) {
            let mut reader = BufReader::with_capacity(capacity, Cursor::new(bytes));
            let mut line = Vec::new();
            for _ in 0..600 {
                match read_line_bounded(&mut reader, &mut line, max) {
                    Ok(LineRead::Line) => prop_assert!(line.len() <= max && !line.contains(&b'\n')),
                    Ok(LineRead::TooLong) | Ok(LineRead::Eof) => break,
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
        }
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z0-9.]{0,8}".prop_map(Value::from),
            Just(Value::from("2.0")),
            Just(Value::from("jsonrpc")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("jsonrpc".to_string()),
                        Just("id".to_string()),
                        Just("method".to_string()),
                        Just("params".to_string()),
                        "[a-z]{1,4}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
