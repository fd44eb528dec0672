//! The security negotiation stage (RFC 7143 §6.3.1, §12): choosing AuthMethod and running the
//! CHAP exchange (through [`ChapState`]). When the target (or discovery) has CHAP credentials,
//! CHAP is mandatory: `AuthMethod=None` is refused, and the login may not leave the security
//! stage before the initiator proved its identity. Without credentials, `None` is chosen.

use lunar_wire::iscsi::codes::login_status;
use lunar_wire::iscsi::text::{self, IRRELEVANT, NOT_UNDERSTOOD, REJECT};

use crate::catalog::ChapConfig;
use crate::chap::{ChapKeys, ChapState, CHALLENGE_ENTROPY_BYTES};

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
    Chap,
}

impl AuthMethod {
    fn name(self) -> &'static str {
        match self {
            AuthMethod::None => "None",
            AuthMethod::Chap => "CHAP",
        }
    }
}

/// Whether the login may move past the security stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leave {
    Allowed,
    /// Authentication is under way: answer with T=0 and stay.
    NotYet,
    Refused(LoginFailure),
}

#[derive(Debug)]
pub(crate) struct Security {
    method: Option<AuthMethod>,
    chap: ChapState,
    /// CHAP keys of the request being answered.
    pending: ChapKeys,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            method: None,
            chap: ChapState::AwaitAlgorithm,
            pending: ChapKeys::default(),
        }
    }
}

/// Prefixes of the keys authentication methods exchange.
const AUTH_KEY_PREFIXES: [&str; 4] = ["CHAP_", "SRP_", "KRB_", "SPKM_"];

impl Security {
    /// Whether `key` belongs to the security stage.
    pub fn is_security_key(key: &str) -> bool {
        key == "AuthMethod" || AUTH_KEY_PREFIXES.iter().any(|p| key.starts_with(p))
    }

    /// Takes a security key. Returns the answer to send now, or `None` for CHAP keys, which
    /// [`Security::finish_request`] answers together. `chap_required` says whether
    /// credentials are configured; `in_security_stage` is false once the operational stage
    /// began (security keys are then rejected).
    pub fn on_key(
        &mut self,
        key: &str,
        value: &str,
        in_security_stage: bool,
        chap_required: bool,
    ) -> Result<Option<&'static str>, LoginFailure> {
        if !in_security_stage {
            return Ok(Some(REJECT));
        }
        if key == "AuthMethod" {
            let method = Self::choose(value, chap_required)?;
            self.method = Some(method);
            return Ok(Some(method.name()));
        }
        if self.method != Some(AuthMethod::Chap) {
            // Exchanges of methods not selected.
            return Ok(Some(IRRELEVANT));
        }
        if self.pending.record(key, value) {
            Ok(None)
        } else {
            Ok(Some(NOT_UNDERSTOOD))
        }
    }

    /// The method for an `AuthMethod` list: CHAP when credentials are configured (refused if
    /// the initiator does not offer it), otherwise `None`.
    fn choose(offer: &str, chap_required: bool) -> Result<AuthMethod, LoginFailure> {
        let (wanted, reason) = if chap_required {
            ("CHAP", "CHAP is required")
        } else {
            ("None", "no authentication is configured")
        };
        if text::list_items(offer).any(|item| item == wanted) {
            Ok(if chap_required {
                AuthMethod::Chap
            } else {
                AuthMethod::None
            })
        } else {
            Err(LoginFailure::new(
                login_status::AUTHENTICATION_FAILURE,
                format!("AuthMethod={offer:?} refused: {reason}"),
            ))
        }
    }

    /// Answers the CHAP keys collected from one request into `response`.
    pub fn finish_request(
        &mut self,
        config: Option<&ChapConfig>,
        entropy: &mut dyn FnMut() -> Result<[u8; CHALLENGE_ENTROPY_BYTES], LoginFailure>,
        response: &mut Vec<u8>,
    ) -> Result<(), LoginFailure> {
        let keys = std::mem::take(&mut self.pending);
        if keys.is_empty() {
            return Ok(());
        }
        let Some(config) = config else {
            // CHAP is only chosen with credentials; nothing to check against otherwise.
            return Err(LoginFailure::new(
                login_status::AUTHENTICATION_FAILURE,
                "CHAP keys without CHAP credentials",
            ));
        };
        self.chap.on_request(&keys, config, entropy, response)
    }

    /// Whether the login may leave the security stage now.
    pub fn leave(&self, chap_required: bool) -> Leave {
        match (self.method, chap_required) {
            (Some(AuthMethod::Chap), _) if self.chap == ChapState::Authenticated => Leave::Allowed,
            (Some(AuthMethod::Chap), _) => Leave::NotYet,
            (_, true) => Leave::Refused(LoginFailure::new(
                login_status::AUTHENTICATION_FAILURE,
                "CHAP authentication is required",
            )),
            (_, false) => Leave::Allowed,
        }
    }

    /// Whether the initiator has authenticated (or no authentication is required).
    pub fn satisfied(&self, chap_required: bool) -> bool {
        self.leave(chap_required) == Leave::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_none_from_a_list_without_credentials() {
        let mut sec = Security::default();
        assert_eq!(
            sec.on_key("AuthMethod", "CHAP,None", true, false),
            Ok(Some("None"))
        );
        assert_eq!(sec.leave(false), Leave::Allowed);
    }

    #[test]
    fn picks_chap_when_credentials_exist_and_refuses_none() {
        let mut sec = Security::default();
        assert_eq!(
            sec.on_key("AuthMethod", "None,CHAP", true, true),
            Ok(Some("CHAP"))
        );
        assert_eq!(sec.leave(true), Leave::NotYet);
        let err = Security::default()
            .on_key("AuthMethod", "None", true, true)
            .expect_err("None refused");
        assert_eq!(err.status, login_status::AUTHENTICATION_FAILURE);
        assert!(matches!(
            Security::default().leave(true),
            Leave::Refused(LoginFailure {
                status: login_status::AUTHENTICATION_FAILURE,
                ..
            })
        ));
    }

    #[test]
    fn refuses_when_only_unsupported_methods_are_offered() {
        let mut sec = Security::default();
        let err = sec
            .on_key("AuthMethod", "CHAP,SRP", true, false)
            .unwrap_err();
        assert_eq!(err.status, login_status::AUTHENTICATION_FAILURE);
    }

    #[test]
    fn security_keys_outside_their_stage_or_method() {
        let mut sec = Security::default();
        assert_eq!(
            sec.on_key("AuthMethod", "None", false, false),
            Ok(Some(REJECT))
        );
        assert_eq!(sec.on_key("CHAP_A", "5", true, false), Ok(Some(IRRELEVANT)));
        assert!(Security::is_security_key("CHAP_N"));
        assert!(!Security::is_security_key("MaxBurstLength"));
        let mut chap = Security::default();
        chap.on_key("AuthMethod", "CHAP", true, true).expect("chap");
        assert_eq!(chap.on_key("CHAP_A", "5", true, true), Ok(None));
        assert_eq!(
            chap.on_key("CHAP_X", "1", true, true),
            Ok(Some(NOT_UNDERSTOOD))
        );
        assert_eq!(
            chap.on_key("SRP_U", "x", true, true),
            Ok(Some(NOT_UNDERSTOOD))
        );
    }
}
