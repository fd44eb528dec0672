//! The fuzz entry points (`lunar_tests::entry_points`, also run by cargo-fuzz in `fuzz/`)
//! driven by proptest in the normal test suite: arbitrary bytes, and inputs shaped to get past
//! the first checks (valid headers, real login keys, CDBs of known commands).
//!
//! The wire and iscsi crates' own property tests already feed arbitrary bytes to the framer
//! (one PDU), the text parser and the CDB decoder; these add PDU streams with typed header
//! views, round trips of parsed text, login keys through a connection's login phase, refused
//! CDBs' sense data, and the framing of everything a connection sends.

use lunar_tests::entry_points::{cdb, connection, framer, login_text};
use proptest::prelude::*;

/// Keys a login may carry (RFC 7143 §13), so that generated text reaches the negotiation.
const LOGIN_KEYS: &[&str] = &[
    "InitiatorName",
    "TargetName",
    "SessionType",
    "AuthMethod",
    "HeaderDigest",
    "DataDigest",
    "MaxConnections",
    "InitialR2T",
    "ImmediateData",
    "MaxRecvDataSegmentLength",
    "MaxBurstLength",
    "FirstBurstLength",
    "DefaultTime2Wait",
    "DefaultTime2Retain",
    "MaxOutstandingR2T",
    "DataPDUInOrder",
    "DataSequenceInOrder",
    "ErrorRecoveryLevel",
    "TargetAlias",
    "InitiatorAlias",
    "CHAP_A",
    "CHAP_N",
    "CHAP_R",
    "X-vendor.key",
];

/// Values of the kinds those keys take, and some they should not.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("None".to_string()),
        Just("CRC32C,None".to_string()),
        Just("Yes".to_string()),
        Just("No".to_string()),
        Just("Normal".to_string()),
        Just("Discovery".to_string()),
        Just("CHAP,None".to_string()),
        Just("iqn.2026-11.dev.lunar.fuzz:target".to_string()),
        (0u64..=u64::MAX).prop_map(|n| n.to_string()),
        (0u32..(1 << 25)).prop_map(|n| format!("0x{n:x}")),
        "[ -~]{0,300}",
    ]
}

/// `key=value\0` text of up to 24 pairs (repeats and junk included).
fn login_keys() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((0..LOGIN_KEYS.len(), value(), any::<bool>()), 0..24).prop_map(
        |pairs| {
            let mut text = Vec::new();
            for (key, value, terminated) in pairs {
                text.extend_from_slice(LOGIN_KEYS[key].as_bytes());
                text.push(b'=');
                text.extend_from_slice(value.as_bytes());
                if terminated {
                    text.push(0);
                }
            }
            text
        },
    )
}

/// A stream of PDUs with random headers whose DataSegmentLength fits their data.
fn pdu_stream() -> impl Strategy<Value = Vec<u8>> {
    let pdu = (
        any::<[u8; 48]>(),
        0u8..4,
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(mut bhs, ahs_words, data)| {
            bhs[4] = ahs_words;
            let len = (data.len() as u32).to_be_bytes();
            bhs[5..8].copy_from_slice(&len[1..]);
            let mut out = bhs.to_vec();
            out.extend(std::iter::repeat_n(0u8, usize::from(ahs_words) * 4));
            out.extend_from_slice(&data);
            out.resize(out.len().div_ceil(4) * 4, 0);
            out
        });
    (any::<u8>(), proptest::collection::vec(pdu, 0..6)).prop_map(|(choice, pdus)| {
        // Limits: the largest data segment; no digests, so the stream frames as built.
        let mut stream = vec![(choice & 0x08) | 0x05];
        stream.extend(pdus.into_iter().flatten());
        stream
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn framer_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        framer(&data);
    }

    #[test]
    fn framer_takes_streams_of_pdus(stream in pdu_stream()) {
        framer(&stream);
    }

    #[test]
    fn login_text_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = login_text(&data);
    }

    #[test]
    fn login_keys_go_through_both_login_shapes(choice in any::<u8>(), keys in login_keys()) {
        let mut data = vec![choice];
        data.extend_from_slice(&keys);
        let _ = login_text(&data);
    }

    #[test]
    fn cdb_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        cdb(&data);
    }

    #[test]
    fn cdbs_of_every_opcode(opcode in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..32)) {
        let mut data = vec![opcode];
        data.extend_from_slice(&rest);
        cdb(&data);
    }

    #[test]
    fn connection_never_panics(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        connection(&data);
    }
}

#[test]
fn a_valid_login_reaches_full_feature_phase_without_tripping_a_check() {
    // Two-stage login (choice byte odd), operational keys that a target accepts.
    let mut data = vec![1u8];
    for (key, value) in [
        ("HeaderDigest", "None"),
        ("DataDigest", "None"),
        ("MaxRecvDataSegmentLength", "65536"),
        ("InitialR2T", "Yes"),
        ("ImmediateData", "No"),
    ] {
        data.extend_from_slice(format!("{key}={value}\0").as_bytes());
    }
    assert!(login_text(&data), "a valid two-stage login did not log in");
    // The same keys as a one-stage login miss the initiator and target names: refused.
    data[0] = 0;
    assert!(!login_text(&data));
}
