//! What a connection asks the reactor about configured targets ([`TargetCatalog`]): whether a
//! target exists, the addresses SendTargets reports, the CHAP credentials a login must prove
//! ([`ChapConfig`]) and the initiators a target admits. Also the rules a CHAP configuration
//! must follow ([`ChapConfig::validate`]), shared with the control plane that stores them.

use std::fmt;

/// Shortest CHAP secret accepted. RFC 7143 §12.1.3 asks for secrets that resist an offline
/// dictionary attack on the (unencrypted) exchange: at least 96 bits.
pub const MIN_CHAP_SECRET_LEN_BYTES: usize = 12;
/// Longest CHAP secret accepted (RFC 7143 §12.1.3 requires support for 128 bits; common
/// initiators store up to 255 bytes).
pub const MAX_CHAP_SECRET_LEN_BYTES: usize = 255;
/// Longest CHAP user name accepted.
pub const MAX_CHAP_USERNAME_LEN_BYTES: usize = 255;

/// What the connection needs to know about configured targets. The reactor implements it over
/// its current table snapshot. Target and initiator names are passed lowercase (iSCSI names
/// compare case-insensitively).
pub trait TargetCatalog {
    /// Whether a target with this IQN exists (normal-session login).
    fn target_exists(&self, iqn: &str) -> bool;

    /// Targets to report in SendTargets: `(iqn, addresses)` with each address formatted as
    /// `ip:port,tpgt` (IPv6 in brackets). `only` restricts to one IQN (`SendTargets=<iqn>`).
    /// The connection itself drops the targets [`TargetCatalog::initiator_allowed`] refuses.
    fn send_targets(&self, only: Option<&str>) -> Vec<(String, Vec<String>)>;

    /// CHAP credentials a login must prove: for normal sessions to `target`, or for discovery
    /// sessions when `target` is `None`. `None` means no authentication is required (and then
    /// `AuthMethod=None` is accepted); `Some` makes CHAP mandatory.
    fn chap(&self, target: Option<&str>) -> Option<ChapConfig> {
        let _ = target;
        None
    }

    /// Whether `initiator` may log in to `target` and see it in SendTargets. Unauthorized
    /// logins fail with status 0x0202 (authorization failure).
    fn initiator_allowed(&self, target: &str, initiator: &str) -> bool {
        let _ = (target, initiator);
        true
    }
}

/// CHAP credentials of one target (or of discovery). The initiator proves it knows `secret`
/// under the name `username`; with `mutual`, the target can in turn prove itself with that
/// `(username, secret)` when the initiator asks. Secrets never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ChapConfig {
    pub username: String,
    pub secret: String,
    pub mutual: Option<(String, String)>,
}

impl fmt::Debug for ChapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChapConfig")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field(
                "mutual",
                &self
                    .mutual
                    .as_ref()
                    .map(|(username, _)| (username.as_str(), "<redacted>")),
            )
            .finish()
    }
}

/// Why a CHAP configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChapConfigError {
    #[error("the {role} CHAP user name is empty, longer than {max_bytes} bytes, or contains control characters", max_bytes = MAX_CHAP_USERNAME_LEN_BYTES)]
    InvalidUsername { role: &'static str },
    #[error("the {role} CHAP secret is {len_bytes} bytes long; it must be {min_bytes} to {max_bytes} bytes", min_bytes = MIN_CHAP_SECRET_LEN_BYTES, max_bytes = MAX_CHAP_SECRET_LEN_BYTES)]
    SecretLength {
        role: &'static str,
        len_bytes: usize,
    },
    #[error("the {role} CHAP secret contains a NUL or control character")]
    InvalidSecret { role: &'static str },
    #[error("the mutual (target) CHAP secret must differ from the initiator's secret")]
    MutualSecretReused,
}

fn check_username(username: &str, role: &'static str) -> Result<(), ChapConfigError> {
    if username.is_empty()
        || username.len() > MAX_CHAP_USERNAME_LEN_BYTES
        || username.chars().any(char::is_control)
    {
        return Err(ChapConfigError::InvalidUsername { role });
    }
    Ok(())
}

fn check_secret(secret: &str, role: &'static str) -> Result<(), ChapConfigError> {
    let len_bytes = secret.len();
    if !(MIN_CHAP_SECRET_LEN_BYTES..=MAX_CHAP_SECRET_LEN_BYTES).contains(&len_bytes) {
        return Err(ChapConfigError::SecretLength { role, len_bytes });
    }
    if secret.chars().any(char::is_control) {
        return Err(ChapConfigError::InvalidSecret { role });
    }
    Ok(())
}

impl ChapConfig {
    /// One-way CHAP: the initiator authenticates.
    pub fn one_way(username: impl Into<String>, secret: impl Into<String>) -> ChapConfig {
        ChapConfig {
            username: username.into(),
            secret: secret.into(),
            mutual: None,
        }
    }

    /// Checks the rules of RFC 7143 §12.1.3 this target enforces: names present, secrets of
    /// [`MIN_CHAP_SECRET_LEN_BYTES`] to [`MAX_CHAP_SECRET_LEN_BYTES`] bytes, and a mutual
    /// secret different from the initiator's (a secret used to authenticate initiators must
    /// not authenticate targets). A login against an invalid configuration fails.
    pub fn validate(&self) -> Result<(), ChapConfigError> {
        check_username(&self.username, "initiator")?;
        check_secret(&self.secret, "initiator")?;
        if let Some((username, secret)) = &self.mutual {
            check_username(username, "mutual")?;
            check_secret(secret, "mutual")?;
            if secret == &self.secret {
                return Err(ChapConfigError::MutualSecretReused);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let config = ChapConfig {
            username: "alice".into(),
            secret: "initiator-secret-1".into(),
            mutual: Some(("target".into(), "target-secret-22".into())),
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("alice") && shown.contains("target"));
        assert!(!shown.contains("initiator-secret-1"), "{shown}");
        assert!(!shown.contains("target-secret-22"), "{shown}");
    }

    #[test]
    fn validation_rules() {
        assert_eq!(ChapConfig::one_way("u", "123456789012").validate(), Ok(()));
        assert_eq!(
            ChapConfig::one_way("u", "12345678901").validate(),
            Err(ChapConfigError::SecretLength {
                role: "initiator",
                len_bytes: 11
            })
        );
        assert!(ChapConfig::one_way("u", "x".repeat(256))
            .validate()
            .is_err());
        assert!(ChapConfig::one_way("", "123456789012").validate().is_err());
        assert!(ChapConfig::one_way("u\n", "123456789012")
            .validate()
            .is_err());
        assert!(ChapConfig::one_way("u", "12345678901\0")
            .validate()
            .is_err());
        let mut mutual = ChapConfig::one_way("u", "123456789012");
        mutual.mutual = Some(("t".into(), "123456789012".into()));
        assert_eq!(mutual.validate(), Err(ChapConfigError::MutualSecretReused));
        mutual.mutual = Some(("t".into(), "abcdefghijkl".into()));
        assert_eq!(mutual.validate(), Ok(()));
        mutual.mutual = Some(("t".into(), "short".into()));
        assert!(mutual.validate().is_err());
    }

    #[test]
    fn default_catalog_methods_admit_everyone_without_chap() {
        struct Bare;
        impl TargetCatalog for Bare {
            fn target_exists(&self, _: &str) -> bool {
                true
            }
            fn send_targets(&self, _: Option<&str>) -> Vec<(String, Vec<String>)> {
                Vec::new()
            }
        }
        assert_eq!(Bare.chap(Some("iqn.x")), None);
        assert_eq!(Bare.chap(None), None);
        assert!(Bare.initiator_allowed("iqn.x", "iqn.y"));
    }
}
