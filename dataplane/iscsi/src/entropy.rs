//! Randomness for CHAP challenges. The connection performs no I/O on its hot path; a CHAP
//! login needs 17 unpredictable bytes once, taken either from `/dev/urandom` (read once per
//! challenge) or expanded from a seed the reactor supplied at accept time
//! ([`Connection::with_entropy`](crate::Connection::with_entropy)).

use std::io::Read;

use lunar_wire::iscsi::codes::login_status;

use crate::chap::CHALLENGE_ENTROPY_BYTES;
use crate::md5::{md5, MD5_LEN_BYTES};
use crate::security::LoginFailure;

/// Where challenge bytes come from.
pub(crate) enum Entropy {
    Os,
    /// A caller-supplied secret seed and a counter, so that no two challenges repeat.
    Seeded {
        seed: [u8; 32],
        counter: u64,
    },
}

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entropy::Os => f.write_str("Os"),
            Entropy::Seeded { counter, .. } => write!(f, "Seeded {{ counter: {counter} }}"),
        }
    }
}

impl Entropy {
    pub fn seeded(seed: [u8; 32]) -> Entropy {
        Entropy::Seeded { seed, counter: 0 }
    }

    /// Bytes for one challenge and its identifier.
    pub fn challenge_bytes(&mut self) -> Result<[u8; CHALLENGE_ENTROPY_BYTES], LoginFailure> {
        let mut out = [0u8; CHALLENGE_ENTROPY_BYTES];
        match self {
            Entropy::Os => {
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut out))
                    .map_err(|err| {
                        tracing::error!(%err, "cannot read /dev/urandom for a CHAP challenge");
                        LoginFailure::new(
                            login_status::TARGET_ERROR,
                            format!("no randomness for the CHAP challenge: {err}"),
                        )
                    })?;
            }
            Entropy::Seeded { seed, counter } => {
                let mut filled = 0;
                while filled < out.len() {
                    *counter = counter.wrapping_add(1);
                    let block = md5(&[seed, &counter.to_le_bytes()]);
                    let take = MD5_LEN_BYTES.min(out.len() - filled);
                    out[filled..filled + take].copy_from_slice(&block[..take]);
                    filled += take;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_challenges_never_repeat_and_depend_on_the_seed() {
        let mut a = Entropy::seeded([1; 32]);
        let first = a.challenge_bytes().expect("seeded");
        let second = a.challenge_bytes().expect("seeded");
        assert_ne!(first, second);
        let mut b = Entropy::seeded([2; 32]);
        assert_ne!(b.challenge_bytes().expect("seeded"), first);
        assert_eq!(
            format!("{a:?}"),
            "Seeded { counter: 4 }",
            "the seed is never shown"
        );
    }

    #[test]
    fn os_randomness_differs_between_draws() {
        let mut os = Entropy::Os;
        let first = os.challenge_bytes().expect("/dev/urandom is readable here");
        let second = os.challenge_bytes().expect("/dev/urandom is readable here");
        assert_ne!(first, second);
    }
}
