//! CHAP credentials as `target_auth_set` and `discovery_auth_set` take them, and as every
//! other answer shows them: by user name only, never with the secret.

use serde::{Deserialize, Deserializer, Serialize};

/// Shortest CHAP secret accepted (RFC 7143 recommends at least 96 bits).
pub const MIN_CHAP_SECRET_BYTES: usize = 12;
/// Longest CHAP secret accepted.
pub const MAX_CHAP_SECRET_BYTES: usize = 255;
/// Longest CHAP user name accepted (the bound of an iSCSI text value).
pub const MAX_CHAP_USERNAME_BYTES: usize = 255;

/// A CHAP user name and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChapCredentials {
    /// Visible ASCII characters, 1-255 bytes.
    pub username: String,
    /// 12-255 bytes, no control characters.
    pub secret: String,
}

impl std::fmt::Debug for ChapCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChapCredentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// How answers show a CHAP credential: the user name, and that a secret is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChapInfo {
    pub username: String,
    pub secret_set: bool,
}

/// `discovery_auth_set`: CHAP for discovery (SendTargets) sessions. `chap` must be given:
/// `null` turns authentication off. `mutual_chap` (optional, needs `chap`) is what lunard
/// proves to the initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryAuthSetParams {
    #[serde(deserialize_with = "present_or_null")]
    pub chap: Option<ChapCredentials>,
    #[serde(default)]
    pub mutual_chap: Option<ChapCredentials>,
}

/// Result of `discovery_auth_set` and `discovery_auth_get`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryAuthInfo {
    #[serde(default)]
    pub chap: Option<ChapInfo>,
    #[serde(default)]
    pub mutual_chap: Option<ChapInfo>,
}

/// Deserialize a field that must be present but may be `null`: a security setting is never
/// switched off by leaving a field out.
pub(crate) fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_never_shows_the_secret() {
        let credentials = ChapCredentials {
            username: "alice".into(),
            secret: "very-secret-words".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("very-secret-words"), "{shown}");
    }

    #[test]
    fn chap_must_be_present_but_may_be_null() {
        let off: DiscoveryAuthSetParams =
            serde_json::from_value(json!({"chap": null})).expect("null");
        assert_eq!(off.chap, None);
        assert_eq!(off.mutual_chap, None);
        let missing =
            serde_json::from_value::<DiscoveryAuthSetParams>(json!({})).expect_err("missing chap");
        assert!(
            missing.to_string().contains("missing field `chap`"),
            "{missing}"
        );
        let on: DiscoveryAuthSetParams = serde_json::from_value(json!({
            "chap": {"username": "u", "secret": "s"},
            "mutual_chap": {"username": "t", "secret": "m"}
        }))
        .expect("both");
        assert_eq!(on.chap.map(|c| c.username), Some("u".to_string()));
        assert_eq!(on.mutual_chap.map(|c| c.secret), Some("m".to_string()));
        let typo = serde_json::from_value::<DiscoveryAuthSetParams>(
            json!({"chap": {"username": "u", "secret": "s", "secrit": "x"}}),
        )
        .expect_err("unknown field");
        assert!(
            typo.to_string().contains("unknown field `secrit`"),
            "{typo}"
        );
    }
}
