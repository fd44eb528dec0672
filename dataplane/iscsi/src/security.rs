//! The security negotiation stage (RFC 7143 §6.3.1, §12): choosing AuthMethod and, once
//! authentication methods are added, running their exchanges. Only `None` is offered for now;
//! CHAP plugs in as another [`AuthMethod`] whose keys are handled in [`Security::on_key`] and
//! whose completion [`Security::check_leave`] requires.

use lunar_wire::iscsi::codes::login_status;
use lunar_wire::iscsi::text::{self, IRRELEVANT, REJECT};

/// A login that cannot proceed: the Status-Class/Detail to answer and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginFailure {
    pub status: u16,
    pub reason: String,
}

impl LoginFailure {
    pub fn new(status: u16, reason: impl Into<String>) -> LoginFailure {
        LoginFailure {
            status,
            reason: reason.into(),
        }
    }
}

/// Authentication methods this target can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    None,
}

impl AuthMethod {
    fn from_name(name: &str) -> Option<AuthMethod> {
        match name {
            "None" => Some(AuthMethod::None),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AuthMethod::None => "None",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Security {
    method: Option<AuthMethod>,
}

/// Prefixes of the keys authentication methods exchange.
const AUTH_KEY_PREFIXES: [&str; 4] = ["CHAP_", "SRP_", "KRB_", "SPKM_"];

impl Security {
    /// Whether `key` belongs to the security stage.
    pub fn is_security_key(key: &str) -> bool {
        key == "AuthMethod" || AUTH_KEY_PREFIXES.iter().any(|p| key.starts_with(p))
    }

    /// Answers a security key; `in_security_stage` is false once the operational stage began.
    pub fn on_key(
        &mut self,
        key: &str,
        value: &str,
        in_security_stage: bool,
    ) -> Result<&'static str, LoginFailure> {
        if !in_security_stage {
            return Ok(REJECT);
        }
        if key != "AuthMethod" {
            // Exchanges of methods not selected.
            return Ok(IRRELEVANT);
        }
        // List, first match in the initiator's order.
        match text::list_items(value).find_map(AuthMethod::from_name) {
            Some(method) => {
                self.method = Some(method);
                Ok(method.name())
            }
            None => Err(LoginFailure::new(
                login_status::AUTHENTICATION_FAILURE,
                format!("no supported AuthMethod in {value:?}"),
            )),
        }
    }

    /// Whether the login may leave the security stage now. No method is required, so an
    /// initiator that offers none (or skips the stage) is admitted.
    pub fn check_leave(&self) -> Result<(), LoginFailure> {
        match self.method {
            None | Some(AuthMethod::None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_none_from_a_list() {
        let mut sec = Security::default();
        assert_eq!(sec.on_key("AuthMethod", "CHAP,None", true), Ok("None"));
        assert_eq!(sec.check_leave(), Ok(()));
    }

    #[test]
    fn refuses_when_only_unsupported_methods_are_offered() {
        let mut sec = Security::default();
        let err = sec.on_key("AuthMethod", "CHAP,SRP", true).unwrap_err();
        assert_eq!(err.status, login_status::AUTHENTICATION_FAILURE);
    }

    #[test]
    fn security_keys_outside_their_stage_are_rejected() {
        let mut sec = Security::default();
        assert_eq!(sec.on_key("AuthMethod", "None", false), Ok(REJECT));
        assert_eq!(sec.on_key("CHAP_A", "5", true), Ok(IRRELEVANT));
        assert!(Security::is_security_key("CHAP_N"));
        assert!(!Security::is_security_key("MaxBurstLength"));
    }
}
