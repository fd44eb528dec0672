//! The control client over the C ABI: one JSON-RPC 2.0 call to `lunard` per function call,
//! on a fresh connection to its unix socket (the framing and envelope are `lunar_api`'s).

use std::os::raw::{c_char, c_int};
use std::path::Path;

use lunar_api::{Client, ClientError};
use serde_json::Value;

use crate::status::*;
use crate::strings::{clear, give, read_str};

/// The outcome of a call, before it is handed to C.
#[derive(Debug, PartialEq)]
pub enum CallError {
    InvalidArgument(String),
    Failed {
        status: c_int,
        message: String,
        rpc_code: i64,
    },
}

/// Call `method` with `params_json` (`None`: no parameters, sent as `{}`) on the daemon at
/// `socket_path`; return the result as JSON text.
pub fn call(
    socket_path: &str,
    method: &str,
    params_json: Option<&str>,
) -> Result<String, CallError> {
    if method.is_empty() {
        return Err(CallError::InvalidArgument("method is empty".to_string()));
    }
    let params: Value = match params_json {
        None => Value::Object(Default::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            CallError::InvalidArgument(format!("params_json is not valid JSON: {e}"))
        })?,
    };
    let result = Client::connect(Path::new(socket_path))
        .and_then(|mut client| client.call(method, params))
        .map_err(|error| {
            let (status, rpc_code) = match &error {
                ClientError::Connect { .. } => (LUNAR_ERR_CONNECT, 0),
                ClientError::Io(_) => (LUNAR_ERR_IO, 0),
                ClientError::Protocol(_) => (LUNAR_ERR_PROTOCOL, 0),
                ClientError::Rpc(rpc) => (LUNAR_ERR_RPC, rpc.code),
            };
            CallError::Failed {
                status,
                message: error.to_string(),
                rpc_code,
            }
        })?;
    Ok(result.to_string())
}

/// Call `method` on the daemon listening on `socket_path` and wait for its answer.
///
/// `params_json` is the JSON text of the parameters (NULL sends `{}`). On `LUNAR_OK`,
/// `*result_json` receives the JSON text of the result. On any error, `*error_message` receives
/// a sentence (the daemon's message for `LUNAR_ERR_RPC`). Both are freed with
/// `lunar_string_free`; either slot may be NULL if the caller does not want it, and a slot that
/// receives nothing is set to NULL.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; `result_json` and `error_message` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn lunar_rpc_call(
    socket_path: *const c_char,
    method: *const c_char,
    params_json: *const c_char,
    result_json: *mut *mut c_char,
    error_message: *mut *mut c_char,
) -> c_int {
    // SAFETY: the same contract, with no error-code slot.
    unsafe {
        lunar_rpc_call_ex(
            socket_path,
            method,
            params_json,
            result_json,
            error_message,
            std::ptr::null_mut(),
        )
    }
}

/// `lunar_rpc_call`, and on `LUNAR_ERR_RPC` `*rpc_error_code` receives the JSON-RPC error code
/// (0 otherwise). `rpc_error_code` may be NULL.
///
/// # Safety
/// As `lunar_rpc_call`; `rpc_error_code` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn lunar_rpc_call_ex(
    socket_path: *const c_char,
    method: *const c_char,
    params_json: *const c_char,
    result_json: *mut *mut c_char,
    error_message: *mut *mut c_char,
    rpc_error_code: *mut i64,
) -> c_int {
    guard(LUNAR_ERR_INTERNAL, || {
        // SAFETY: the slots are NULL or writable, per the contract.
        unsafe {
            clear(result_json);
            clear(error_message);
            if !rpc_error_code.is_null() {
                *rpc_error_code = 0;
            }
        }
        // SAFETY: string arguments are NULL or NUL-terminated, per the contract.
        let arguments = unsafe {
            read_str(socket_path, "socket_path").and_then(|socket_path| {
                let method = read_str(method, "method")?;
                let params = match params_json.is_null() {
                    true => None,
                    false => Some(read_str(params_json, "params_json")?),
                };
                Ok((socket_path, method, params))
            })
        };
        let outcome = arguments
            .map_err(CallError::InvalidArgument)
            .and_then(|(socket_path, method, params)| call(socket_path, method, params));
        match outcome {
            Ok(result) => {
                // SAFETY: `result_json` is NULL or writable.
                unsafe { give(result_json, result) };
                LUNAR_OK
            }
            Err(CallError::InvalidArgument(message)) => {
                // SAFETY: `error_message` is NULL or writable.
                unsafe { give(error_message, message) };
                LUNAR_ERR_INVALID_ARGUMENT
            }
            Err(CallError::Failed {
                status,
                message,
                rpc_code,
            }) => {
                // SAFETY: `error_message` and `rpc_error_code` are NULL or writable.
                unsafe {
                    give(error_message, message);
                    if !rpc_error_code.is_null() {
                        *rpc_error_code = rpc_code;
                    }
                }
                status
            }
        }
    })
}
