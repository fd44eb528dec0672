//! Errors of the control logic, and how each maps onto a JSON-RPC error code.

use lunar_api::{code, RpcError};
use lunar_reactor::{PortalError, PublishError};

use crate::store::StoreError;

/// Why a control request failed. The message is what the client shows a person.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Malformed parameters, independent of the daemon's state.
    #[error("{0}")]
    InvalidParams(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InUse(String),
    /// Well-formed, but does not fit the current configuration.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Device(String),
    #[error("cannot save the configuration, nothing changed: {0}")]
    Persist(#[source] StoreError),
    #[error("the data plane did not take the new configuration, nothing changed: {0}")]
    Publish(#[source] PublishError),
    #[error("the data plane did not take the portal change: {0}")]
    Portal(#[source] PortalError),
    /// Commands planned on older table generations did not complete in time.
    #[error("{0}")]
    Drain(String),
    /// A broken invariant of the daemon itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ControlError {
    pub fn not_found(kind: &str, name: &str) -> ControlError {
        ControlError::NotFound(format!("{kind} '{name}' not found"))
    }

    pub fn already_exists(kind: &str, name: &str) -> ControlError {
        ControlError::AlreadyExists(format!("{kind} '{name}' already exists"))
    }

    /// "device 'disk1' is used by volume 'vol1'" / "... by volumes 'a', 'b'".
    pub fn in_use(
        kind: &str,
        name: &str,
        verb: &str,
        user_kind: &str,
        users: &[String],
    ) -> ControlError {
        let plural = if users.len() == 1 { "" } else { "s" };
        let list = users
            .iter()
            .map(|u| format!("'{u}'"))
            .collect::<Vec<_>>()
            .join(", ");
        ControlError::InUse(format!(
            "{kind} '{name}' is {verb} {user_kind}{plural} {list}"
        ))
    }

    /// The JSON-RPC error code of this error.
    pub fn code(&self) -> i64 {
        match self {
            ControlError::InvalidParams(_) => code::INVALID_PARAMS,
            ControlError::NotFound(_) => code::NOT_FOUND,
            ControlError::AlreadyExists(_) => code::ALREADY_EXISTS,
            ControlError::InUse(_) => code::IN_USE,
            ControlError::Conflict(_) => code::CONFLICT,
            ControlError::Device(_) => code::DEVICE_ERROR,
            ControlError::Persist(_) => code::PERSIST_FAILED,
            ControlError::Publish(_) | ControlError::Portal(_) | ControlError::Drain(_) => {
                code::PUBLISH_FAILED
            }
            ControlError::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    pub fn to_rpc(&self) -> RpcError {
        RpcError::new(self.code(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_use_message_names_users() {
        let one = ControlError::in_use("device", "disk1", "used by", "volume", &["vol1".into()]);
        assert_eq!(one.to_string(), "device 'disk1' is used by volume 'vol1'");
        assert_eq!(one.code(), code::IN_USE);
        let two = ControlError::in_use(
            "volume",
            "v",
            "exported by",
            "target",
            &["a".into(), "b".into()],
        );
        assert_eq!(
            two.to_string(),
            "volume 'v' is exported by targets 'a', 'b'"
        );
    }

    #[test]
    fn codes_follow_the_kind() {
        assert_eq!(
            ControlError::not_found("device", "x").code(),
            code::NOT_FOUND
        );
        assert_eq!(
            ControlError::not_found("device", "x").to_string(),
            "device 'x' not found"
        );
        assert_eq!(
            ControlError::InvalidParams("x".into()).code(),
            code::INVALID_PARAMS
        );
        assert_eq!(
            ControlError::already_exists("volume", "v").code(),
            code::ALREADY_EXISTS
        );
    }
}
