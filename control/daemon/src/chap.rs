//! CHAP settings: the rules credentials obey, and their three forms (what the state file keeps,
//! what the data plane receives, what answers show). Error messages name user names but never
//! contain a secret.

use lunar_api::auth::{
    ChapCredentials, ChapInfo, MAX_CHAP_SECRET_BYTES, MAX_CHAP_USERNAME_BYTES,
    MIN_CHAP_SECRET_BYTES,
};
use lunar_reactor::{ChapAuth, ChapSecret};

use crate::config::{ChapConfig, ChapSecretConfig};

/// Which credential a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// What initiators prove (`chap`).
    Initiator,
    /// What lunard proves in mutual CHAP (`mutual_chap`).
    Mutual,
}

impl Role {
    fn field(self) -> &'static str {
        match self {
            Role::Initiator => "chap",
            Role::Mutual => "mutual_chap",
        }
    }
}

/// Check one user name and secret.
fn check_secret(role: Role, username: &str, secret: &str) -> Result<(), String> {
    let field = role.field();
    if username.is_empty() || username.len() > MAX_CHAP_USERNAME_BYTES {
        return Err(format!(
            "{field} user name must be 1-{MAX_CHAP_USERNAME_BYTES} bytes long (it is {})",
            username.len()
        ));
    }
    if !username.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{field} user name '{}' is not valid: use visible ASCII characters, no spaces",
            username.escape_debug()
        ));
    }
    let len = secret.len();
    if !(MIN_CHAP_SECRET_BYTES..=MAX_CHAP_SECRET_BYTES).contains(&len) {
        return Err(format!(
            "{field} secret of user '{}' is {len} bytes long: CHAP secrets must be \
             {MIN_CHAP_SECRET_BYTES}-{MAX_CHAP_SECRET_BYTES} bytes (RFC 7143 recommends at least \
             96 bits)",
            username.escape_debug()
        ));
    }
    if secret.chars().any(char::is_control) {
        return Err(format!(
            "{field} secret of user '{}' contains a control character",
            username.escape_debug()
        ));
    }
    Ok(())
}

/// Check a whole CHAP setting (also the ones read back from the state file).
pub fn check_chap_config(chap: &ChapConfig) -> Result<(), String> {
    check_secret(
        Role::Initiator,
        &chap.initiator.username,
        &chap.initiator.secret,
    )?;
    if let Some(mutual) = &chap.mutual {
        check_secret(Role::Mutual, &mutual.username, &mutual.secret)?;
        if mutual.secret == chap.initiator.secret {
            return Err(
                "mutual_chap secret must differ from the chap secret: with the same secret in \
                 both directions, an attacker can reflect the target's challenge back at it"
                    .to_string(),
            );
        }
    }
    Ok(())
}

/// The CHAP setting asked for by `chap` and `mutual_chap` (both `None`: no authentication).
pub fn chap_config(
    chap: Option<ChapCredentials>,
    mutual_chap: Option<ChapCredentials>,
) -> Result<Option<ChapConfig>, String> {
    let stored = |c: ChapCredentials| ChapSecretConfig {
        username: c.username,
        secret: c.secret,
    };
    match (chap, mutual_chap) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(
            "mutual_chap needs chap: the target only proves itself to initiators that proved \
             themselves first"
                .to_string(),
        ),
        (Some(chap), mutual) => {
            let config = ChapConfig {
                initiator: stored(chap),
                mutual: mutual.map(stored),
            };
            check_chap_config(&config)?;
            Ok(Some(config))
        }
    }
}

/// The form the data plane receives.
pub fn to_snapshot(chap: &ChapConfig) -> ChapAuth {
    let secret = |c: &ChapSecretConfig| ChapSecret {
        username: c.username.clone(),
        secret: c.secret.clone(),
    };
    ChapAuth {
        initiator: secret(&chap.initiator),
        mutual: chap.mutual.as_ref().map(secret),
    }
}

/// The form answers show: `(chap, mutual_chap)`, user names only.
pub fn to_info(chap: Option<&ChapConfig>) -> (Option<ChapInfo>, Option<ChapInfo>) {
    let info = |c: &ChapSecretConfig| ChapInfo {
        username: c.username.clone(),
        secret_set: !c.secret.is_empty(),
    };
    match chap {
        None => (None, None),
        Some(chap) => (Some(info(&chap.initiator)), chap.mutual.as_ref().map(info)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "correct-horse-battery";
    const OTHER: &str = "staple-of-the-target";

    fn credentials(username: &str, secret: &str) -> ChapCredentials {
        ChapCredentials {
            username: username.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn no_credentials_means_no_authentication() {
        assert_eq!(chap_config(None, None), Ok(None));
    }

    #[test]
    fn one_way_and_mutual_are_stored() {
        let one_way = chap_config(Some(credentials("alice", SECRET)), None)
            .expect("valid")
            .expect("set");
        assert_eq!(one_way.initiator.username, "alice");
        assert_eq!(one_way.initiator.secret, SECRET);
        assert_eq!(one_way.mutual, None);
        let mutual = chap_config(
            Some(credentials("alice", SECRET)),
            Some(credentials("target", OTHER)),
        )
        .expect("valid")
        .expect("set");
        let shown = to_info(Some(&mutual));
        assert_eq!(
            shown,
            (
                Some(ChapInfo {
                    username: "alice".into(),
                    secret_set: true
                }),
                Some(ChapInfo {
                    username: "target".into(),
                    secret_set: true
                })
            )
        );
        let snapshot = to_snapshot(&mutual);
        assert_eq!(snapshot.initiator.secret, SECRET);
        assert_eq!(snapshot.mutual.map(|m| m.secret).as_deref(), Some(OTHER));
    }

    #[test]
    fn secret_length_bounds() {
        for len in [0, 1, 11, 256, 1000] {
            let error = chap_config(Some(credentials("u", &"s".repeat(len))), None)
                .expect_err("bad length");
            assert!(error.contains(&format!("is {len} bytes long")), "{error}");
            assert!(error.contains("12-255 bytes"), "{error}");
        }
        for len in [12, 100, 255] {
            assert!(chap_config(Some(credentials("u", &"s".repeat(len))), None).is_ok());
        }
        let error = chap_config(
            Some(credentials("u", SECRET)),
            Some(credentials("t", "short")),
        )
        .expect_err("short mutual");
        assert!(
            error.starts_with("mutual_chap secret of user 't'"),
            "{error}"
        );
    }

    #[test]
    fn user_names_are_visible_ascii() {
        for bad in ["", "a b", "tab\tname", "ünï", "nul\0"] {
            let error = chap_config(Some(credentials(bad, SECRET)), None).expect_err(bad);
            assert!(error.starts_with("chap user name"), "{error}");
        }
        let long = "u".repeat(256);
        assert!(chap_config(Some(credentials(&long, SECRET)), None).is_err());
        assert!(chap_config(Some(credentials(&"u".repeat(255), SECRET)), None).is_ok());
    }

    #[test]
    fn control_characters_in_secrets_are_refused() {
        let error =
            chap_config(Some(credentials("u", "twelve-bytes\n")), None).expect_err("newline");
        assert!(error.contains("control character"), "{error}");
        assert!(!error.contains("twelve-bytes"), "{error}");
    }

    #[test]
    fn mutual_secret_must_differ_and_needs_chap() {
        let error = chap_config(
            Some(credentials("alice", SECRET)),
            Some(credentials("target", SECRET)),
        )
        .expect_err("same secret");
        assert!(error.contains("must differ"), "{error}");
        assert!(!error.contains(SECRET), "{error}");
        let error =
            chap_config(None, Some(credentials("target", OTHER))).expect_err("mutual alone");
        assert!(error.starts_with("mutual_chap needs chap"), "{error}");
    }

    proptest! {
        #[test]
        fn errors_never_contain_the_secret(
            username in "[a-z]{1,8}",
            secret in "[\\PC\\t\\n]{0,300}",
            mutual in proptest::option::of("[\\PC]{0,300}"),
        ) {
            // Secrets are long enough to be distinctive in a message.
            prop_assume!(secret.len() >= 6);
            let result = chap_config(
                Some(credentials(&username, &secret)),
                mutual.map(|m| credentials("target", &m)),
            );
            if let Err(error) = result {
                prop_assert!(!error.contains(&secret), "{}", error);
            }
        }
    }
}
