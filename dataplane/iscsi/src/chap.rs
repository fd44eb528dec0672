//! The target side of CHAP (RFC 1994, RFC 7143 §12.1.3) with MD5 (CHAP_A=5): pick the
//! algorithm, send an identifier and a fresh random challenge, check CHAP_N and CHAP_R, and,
//! when the initiator sends its own CHAP_I/CHAP_C (mutual CHAP), answer with the target's
//! name and response. One challenge per login: it is consumed by the first response, so a
//! response can never be replayed, and an initiator challenge equal to ours (a reflection) is
//! refused.

use lunar_wire::iscsi::codes::login_status;
use lunar_wire::iscsi::text::{self, REJECT};

use crate::catalog::ChapConfig;
use crate::md5::{md5, MD5_LEN_BYTES};
use crate::security::LoginFailure;

/// CHAP_A value of MD5, the only algorithm offered.
pub(crate) const ALGORITHM_MD5: &str = "5";
/// Bytes of the challenge the target sends.
pub(crate) const CHALLENGE_LEN_BYTES: usize = 16;
/// Random bytes one challenge consumes: the challenge and the identifier.
pub(crate) const CHALLENGE_ENTROPY_BYTES: usize = CHALLENGE_LEN_BYTES + 1;
/// Longest challenge accepted from an initiator for mutual CHAP.
pub(crate) const MAX_INITIATOR_CHALLENGE_LEN_BYTES: usize = 1024;

/// Where the CHAP exchange of a login is.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ChapState {
    /// AuthMethod=CHAP was chosen; CHAP_A is next.
    AwaitAlgorithm,
    /// The challenge is out; CHAP_N and CHAP_R are next.
    AwaitResponse {
        identifier: u8,
        challenge: [u8; CHALLENGE_LEN_BYTES],
    },
    /// The initiator proved its identity.
    Authenticated,
}

impl std::fmt::Debug for ChapState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChapState::AwaitAlgorithm => f.write_str("AwaitAlgorithm"),
            ChapState::AwaitResponse { .. } => f.write_str("AwaitResponse"),
            ChapState::Authenticated => f.write_str("Authenticated"),
        }
    }
}

/// The CHAP keys of one login request, collected before they are answered together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ChapKeys {
    pub algorithms: Option<String>,
    pub name: Option<String>,
    pub response: Option<String>,
    pub identifier: Option<String>,
    pub challenge: Option<String>,
}

impl ChapKeys {
    /// Records one `CHAP_*` key; false for a key that is not part of CHAP.
    pub fn record(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "CHAP_A" => &mut self.algorithms,
            "CHAP_N" => &mut self.name,
            "CHAP_R" => &mut self.response,
            "CHAP_I" => &mut self.identifier,
            "CHAP_C" => &mut self.challenge,
            _ => return false,
        };
        *slot = Some(value.to_string());
        true
    }

    pub fn is_empty(&self) -> bool {
        *self == ChapKeys::default()
    }
}

fn auth_failure(reason: impl Into<String>) -> LoginFailure {
    LoginFailure::new(login_status::AUTHENTICATION_FAILURE, reason)
}

fn initiator_error(reason: impl Into<String>) -> LoginFailure {
    LoginFailure::new(login_status::INITIATOR_ERROR, reason)
}

/// `MD5(identifier || secret || challenge)`, the RFC 1994 response.
pub(crate) fn chap_response(identifier: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    md5(&[&[identifier], secret, challenge])
}

/// Compares without an early exit, so timing does not tell how much of a response matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ChapState {
    /// Answers the CHAP keys of one request into `response`. `entropy` supplies the random
    /// bytes of the challenge (called at most once per login).
    pub fn on_request(
        &mut self,
        keys: &ChapKeys,
        config: &ChapConfig,
        entropy: &mut dyn FnMut() -> Result<[u8; CHALLENGE_ENTROPY_BYTES], LoginFailure>,
        response: &mut Vec<u8>,
    ) -> Result<(), LoginFailure> {
        if let Some(algorithms) = &keys.algorithms {
            self.choose_algorithm(algorithms, entropy, response)?;
        }
        if keys.name.is_some() || keys.response.is_some() {
            self.check_response(keys, config, response)?;
        } else if keys.identifier.is_some() || keys.challenge.is_some() {
            return Err(initiator_error(
                "CHAP_I/CHAP_C sent without CHAP_N and CHAP_R",
            ));
        }
        Ok(())
    }

    fn choose_algorithm(
        &mut self,
        algorithms: &str,
        entropy: &mut dyn FnMut() -> Result<[u8; CHALLENGE_ENTROPY_BYTES], LoginFailure>,
        response: &mut Vec<u8>,
    ) -> Result<(), LoginFailure> {
        if *self != ChapState::AwaitAlgorithm {
            return Err(initiator_error(format!(
                "CHAP_A while the exchange is {self:?}"
            )));
        }
        if !text::list_items(algorithms).any(|a| a == ALGORITHM_MD5) {
            text::push_pair(response, "CHAP_A", REJECT);
            return Err(auth_failure(format!(
                "no supported CHAP algorithm in CHAP_A={algorithms:?} (only MD5, 5)"
            )));
        }
        let random = entropy()?;
        let mut challenge = [0u8; CHALLENGE_LEN_BYTES];
        challenge.copy_from_slice(&random[..CHALLENGE_LEN_BYTES]);
        let identifier = random[CHALLENGE_LEN_BYTES];
        text::push_pair(response, "CHAP_A", ALGORITHM_MD5);
        text::push_pair(response, "CHAP_I", &identifier.to_string());
        text::push_pair(response, "CHAP_C", &text::format_hex(&challenge));
        *self = ChapState::AwaitResponse {
            identifier,
            challenge,
        };
        Ok(())
    }

    fn check_response(
        &mut self,
        keys: &ChapKeys,
        config: &ChapConfig,
        response: &mut Vec<u8>,
    ) -> Result<(), LoginFailure> {
        // The challenge is used once, whatever the outcome.
        let ChapState::AwaitResponse {
            identifier,
            challenge,
        } = std::mem::replace(self, ChapState::AwaitAlgorithm)
        else {
            return Err(initiator_error(format!(
                "CHAP_N/CHAP_R while the exchange is {self:?}"
            )));
        };
        let (Some(name), Some(answer)) = (&keys.name, &keys.response) else {
            return Err(auth_failure("CHAP_N and CHAP_R must come together"));
        };
        let answer = text::parse_binary(answer, MD5_LEN_BYTES)
            .map_err(|err| auth_failure(format!("CHAP_R: {err}")))?;
        if answer.len() != MD5_LEN_BYTES {
            return Err(auth_failure(format!(
                "CHAP_R is {} bytes; MD5 responses are {MD5_LEN_BYTES}",
                answer.len()
            )));
        }
        let expected = chap_response(identifier, config.secret.as_bytes(), &challenge);
        // Evaluate both checks so that timing does not tell which one failed.
        let name_ok = constant_time_eq(name.as_bytes(), config.username.as_bytes());
        let response_ok = constant_time_eq(&answer, &expected);
        if !(name_ok & response_ok) {
            return Err(auth_failure(format!(
                "CHAP authentication of {name:?} failed"
            )));
        }
        *self = ChapState::Authenticated;
        match (&keys.identifier, &keys.challenge) {
            (None, None) => Ok(()),
            (Some(id), Some(their_challenge)) => {
                self.answer_mutual(id, their_challenge, &challenge, config, response)
            }
            _ => Err(auth_failure("mutual CHAP needs both CHAP_I and CHAP_C")),
        }
    }

    /// The initiator asks the target to authenticate itself.
    fn answer_mutual(
        &mut self,
        identifier: &str,
        their_challenge: &str,
        our_challenge: &[u8],
        config: &ChapConfig,
        response: &mut Vec<u8>,
    ) -> Result<(), LoginFailure> {
        let Some((username, secret)) = &config.mutual else {
            return Err(auth_failure(
                "the initiator asks for mutual CHAP but the target has no credentials for it",
            ));
        };
        let identifier = text::parse_number(identifier)
            .ok()
            .and_then(|id| u8::try_from(id).ok())
            .ok_or_else(|| auth_failure(format!("CHAP_I={identifier:?} is not 0 to 255")))?;
        let challenge = text::parse_binary(their_challenge, MAX_INITIATOR_CHALLENGE_LEN_BYTES)
            .map_err(|err| auth_failure(format!("CHAP_C: {err}")))?;
        if challenge.is_empty() {
            return Err(auth_failure("empty CHAP_C"));
        }
        if challenge == our_challenge {
            return Err(auth_failure(
                "the initiator reflected the target's challenge",
            ));
        }
        let answer = chap_response(identifier, secret.as_bytes(), &challenge);
        text::push_pair(response, "CHAP_N", username);
        text::push_pair(response, "CHAP_R", &text::format_hex(&answer));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ChapConfig {
        ChapConfig {
            username: "alice".into(),
            secret: "initiator-secret".into(),
            mutual: Some(("lunar".into(), "target-secret-1".into())),
        }
    }

    fn fixed_entropy() -> Result<[u8; CHALLENGE_ENTROPY_BYTES], LoginFailure> {
        let mut bytes = [0u8; CHALLENGE_ENTROPY_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8 + 0x40;
        }
        Ok(bytes)
    }

    fn pairs(response: &[u8]) -> Vec<(String, String)> {
        text::parse(response)
            .expect("well-formed")
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    /// Runs CHAP_A and returns the identifier and challenge the target sent.
    fn challenged(state: &mut ChapState) -> (u8, Vec<u8>) {
        let keys = ChapKeys {
            algorithms: Some("7,5".into()),
            ..ChapKeys::default()
        };
        let mut response = Vec::new();
        state
            .on_request(&keys, &config(), &mut fixed_entropy, &mut response)
            .expect("algorithm accepted");
        let got = pairs(&response);
        assert_eq!(got[0], ("CHAP_A".into(), "5".into()));
        let id: u8 = got[1].1.parse().expect("decimal identifier");
        let challenge = text::parse_binary(&got[2].1, 64).expect("hex challenge");
        assert_eq!(challenge.len(), CHALLENGE_LEN_BYTES);
        (id, challenge)
    }

    fn answer(name: &str, response: &[u8]) -> ChapKeys {
        ChapKeys {
            name: Some(name.into()),
            response: Some(text::format_hex(response)),
            ..ChapKeys::default()
        }
    }

    #[test]
    fn rfc1994_response_is_md5_of_id_secret_challenge() {
        // Computed independently: md5(b"\x01" + b"secret" + bytes(range(16))).
        let got = chap_response(1, b"secret", &(0u8..16).collect::<Vec<_>>());
        assert_eq!(text::format_hex(&got), "0x740e86463bda3a4d7017d6e0fba0699d");
    }

    #[test]
    fn one_way_exchange_succeeds_with_the_right_secret() {
        let mut state = ChapState::AwaitAlgorithm;
        let (id, challenge) = challenged(&mut state);
        let good = chap_response(id, b"initiator-secret", &challenge);
        let mut response = Vec::new();
        state
            .on_request(
                &answer("alice", &good),
                &config(),
                &mut fixed_entropy,
                &mut response,
            )
            .expect("authenticated");
        assert_eq!(state, ChapState::Authenticated);
        assert!(response.is_empty(), "no mutual keys without CHAP_I/CHAP_C");
    }

    #[test]
    fn wrong_secret_name_or_length_fail_and_consume_the_challenge() {
        let cases: [(&str, Vec<u8>); 3] = [
            ("alice", b"wrong-secret".to_vec()),
            ("mallory", b"initiator-secret".to_vec()),
            ("alice", Vec::new()),
        ];
        for (name, secret) in cases {
            let mut state = ChapState::AwaitAlgorithm;
            let (id, challenge) = challenged(&mut state);
            let mut keys = answer(name, &chap_response(id, &secret, &challenge));
            if secret.is_empty() {
                // Right value, truncated to 15 bytes.
                let good = chap_response(id, b"initiator-secret", &challenge);
                keys = answer(name, &good[..15]);
            }
            let err = state
                .on_request(&keys, &config(), &mut fixed_entropy, &mut Vec::new())
                .expect_err("must fail");
            assert_eq!(err.status, login_status::AUTHENTICATION_FAILURE, "{name}");
            // Replaying the right answer now finds no challenge.
            let good = chap_response(id, b"initiator-secret", &challenge);
            let replay = state
                .on_request(
                    &answer("alice", &good),
                    &config(),
                    &mut fixed_entropy,
                    &mut Vec::new(),
                )
                .expect_err("challenge consumed");
            assert_eq!(replay.status, login_status::INITIATOR_ERROR);
        }
    }

    #[test]
    fn base64_responses_are_accepted() {
        let mut state = ChapState::AwaitAlgorithm;
        let (id, challenge) = challenged(&mut state);
        let good = chap_response(id, b"initiator-secret", &challenge);
        let keys = ChapKeys {
            name: Some("alice".into()),
            response: Some(format!("0b{}", base64(&good))),
            ..ChapKeys::default()
        };
        state
            .on_request(&keys, &config(), &mut fixed_entropy, &mut Vec::new())
            .expect("base64 CHAP_R");
    }

    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn mutual_exchange_answers_with_the_target_credentials() {
        let mut state = ChapState::AwaitAlgorithm;
        let (id, challenge) = challenged(&mut state);
        let good = chap_response(id, b"initiator-secret", &challenge);
        let their_challenge = [9u8; 32];
        let mut keys = answer("alice", &good);
        keys.identifier = Some("77".into());
        keys.challenge = Some(text::format_hex(&their_challenge));
        let mut response = Vec::new();
        state
            .on_request(&keys, &config(), &mut fixed_entropy, &mut response)
            .expect("mutual");
        let got = pairs(&response);
        assert_eq!(got[0], ("CHAP_N".into(), "lunar".into()));
        let expected = chap_response(77, b"target-secret-1", &their_challenge);
        assert_eq!(got[1], ("CHAP_R".into(), text::format_hex(&expected)));
    }

    #[test]
    fn mutual_refusals() {
        let run = |config: &ChapConfig, id: &str, their: Option<Vec<u8>>| {
            let mut state = ChapState::AwaitAlgorithm;
            let (tid, challenge) = challenged(&mut state);
            let mut keys = answer(
                "alice",
                &chap_response(tid, b"initiator-secret", &challenge),
            );
            keys.identifier = Some(id.into());
            keys.challenge = Some(match their {
                Some(c) => text::format_hex(&c),
                None => text::format_hex(&challenge),
            });
            let mut response = Vec::new();
            let result = state.on_request(&keys, config, &mut fixed_entropy, &mut response);
            assert!(response.is_empty(), "no target response on refusal");
            result.expect_err("refused").status
        };
        let auth = login_status::AUTHENTICATION_FAILURE;
        // Our own challenge reflected back.
        assert_eq!(run(&config(), "1", None), auth);
        // Identifier out of range.
        assert_eq!(run(&config(), "256", Some(vec![1; 16])), auth);
        // No target credentials configured.
        let one_way = ChapConfig::one_way("alice", "initiator-secret");
        assert_eq!(run(&one_way, "1", Some(vec![1; 16])), auth);
        // Only one of CHAP_I and CHAP_C.
        let mut state = ChapState::AwaitAlgorithm;
        let (id, challenge) = challenged(&mut state);
        let mut keys = answer("alice", &chap_response(id, b"initiator-secret", &challenge));
        keys.identifier = Some("3".into());
        assert!(state
            .on_request(&keys, &config(), &mut fixed_entropy, &mut Vec::new())
            .is_err());
    }

    #[test]
    fn algorithm_negotiation() {
        for bad in ["56", "", "6,7", "MD5"] {
            let mut state = ChapState::AwaitAlgorithm;
            let keys = ChapKeys {
                algorithms: Some(bad.into()),
                ..ChapKeys::default()
            };
            let mut response = Vec::new();
            let err = state
                .on_request(&keys, &config(), &mut fixed_entropy, &mut response)
                .expect_err(bad);
            assert_eq!(err.status, login_status::AUTHENTICATION_FAILURE);
            assert_eq!(pairs(&response), vec![("CHAP_A".into(), "Reject".into())]);
        }
        // A second CHAP_A after the challenge is out of sequence.
        let mut state = ChapState::AwaitAlgorithm;
        challenged(&mut state);
        let keys = ChapKeys {
            algorithms: Some("5".into()),
            ..ChapKeys::default()
        };
        let err = state
            .on_request(&keys, &config(), &mut fixed_entropy, &mut Vec::new())
            .expect_err("sequence");
        assert_eq!(err.status, login_status::INITIATOR_ERROR);
    }

    #[test]
    fn response_before_the_challenge_is_refused() {
        let mut state = ChapState::AwaitAlgorithm;
        let keys = answer("alice", &[0; 16]);
        assert!(state
            .on_request(&keys, &config(), &mut fixed_entropy, &mut Vec::new())
            .is_err());
        let mut state = ChapState::AwaitAlgorithm;
        let keys = ChapKeys {
            challenge: Some("0x0102".into()),
            ..ChapKeys::default()
        };
        assert!(state
            .on_request(&keys, &config(), &mut fixed_entropy, &mut Vec::new())
            .is_err());
    }

    #[test]
    fn entropy_failure_fails_the_login() {
        let mut state = ChapState::AwaitAlgorithm;
        let keys = ChapKeys {
            algorithms: Some("5".into()),
            ..ChapKeys::default()
        };
        let mut failing = || Err(LoginFailure::new(login_status::TARGET_ERROR, "no entropy"));
        let err = state
            .on_request(&keys, &config(), &mut failing, &mut Vec::new())
            .expect_err("no challenge without randomness");
        assert_eq!(err.status, login_status::TARGET_ERROR);
    }
}
