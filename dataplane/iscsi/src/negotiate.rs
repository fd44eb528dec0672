//! Negotiation of the operational keys (RFC 7143 §6.2, §13): each key's range, the result
//! function (minimum, maximum, AND, OR, first match in a list, declarative) and the value this
//! target brings to it. Invalid values are answered `Reject` and leave the default in place;
//! keys irrelevant to a discovery session are answered `Irrelevant`.

use lunar_wire::iscsi::header::MAX_DATA_SEGMENT_LEN_BYTES;
use lunar_wire::iscsi::text::{self, format_bool, IRRELEVANT, REJECT};
use lunar_wire::iscsi::DigestKind;

use crate::connection::ConnConfig;
use crate::params::{
    clamp_len_key, SessionParams, MAX_OUTSTANDING_R2T, MIN_LEN_KEY_BYTES, PROTOCOL_LEVEL,
    TARGET_TIME2RETAIN_S, TARGET_TIME2WAIT_S,
};

/// Largest FirstBurstLength accepted: bounds the unsolicited data a connection buffers to
/// `session_queue_depth` times this.
pub(crate) const MAX_FIRST_BURST_BYTES: u32 = 256 * 1024;

/// The answer to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Value(String),
    Constant(&'static str),
    /// Declarative key: nothing to answer.
    Silent,
}

/// What the answers depend on besides the key itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub config: &'a ConnConfig,
    pub discovery: bool,
    /// MaxBurstLength proposed in the same key set (FirstBurstLength must not exceed it).
    pub proposed_max_burst_len_bytes: Option<u32>,
}

/// Keys with no meaning in a discovery session.
const DISCOVERY_IRRELEVANT: [&str; 7] = [
    "InitialR2T",
    "ImmediateData",
    "MaxBurstLength",
    "FirstBurstLength",
    "MaxOutstandingR2T",
    "DataPDUInOrder",
    "DataSequenceInOrder",
];

/// Every operational key this target negotiates (see [`negotiate`]).
const OPERATIONAL_KEYS: [&str; 22] = [
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
    "IFMarker",
    "OFMarker",
    "IFMarkInt",
    "OFMarkInt",
    "RDMAExtensions",
    "TaskReporting",
    "iSCSIProtocolLevel",
    "SessionType",
];

/// Whether `key` may only be negotiated during login (answered `Reject` afterwards).
pub(crate) fn is_login_key(key: &str) -> bool {
    OPERATIONAL_KEYS.contains(&key)
        || matches!(
            key,
            "InitiatorName"
                | "TargetName"
                | "TargetAlias"
                | "TargetAddress"
                | "TargetPortalGroupTag"
        )
        || crate::security::Security::is_security_key(key)
}

fn number_in(value: &str, lo: u32, hi: u32) -> Option<u32> {
    text::parse_number(value)
        .ok()
        .filter(|v| (u64::from(lo)..=u64::from(hi)).contains(v))
        .map(|v| v as u32)
}

fn numeric(value: &str, lo: u32, hi: u32, apply: impl FnOnce(u32) -> u32) -> Reply {
    match number_in(value, lo, hi) {
        Some(offer) => Reply::Value(apply(offer).to_string()),
        None => Reply::Constant(REJECT),
    }
}

fn boolean(value: &str, apply: impl FnOnce(bool) -> bool) -> Reply {
    match text::parse_bool(value) {
        Ok(offer) => Reply::Constant(format_bool(apply(offer))),
        Err(_) => Reply::Constant(REJECT),
    }
}

/// Answers an operational key and records the result in `params`; `None` when `key` is not
/// an operational key.
#[allow(clippy::unnecessary_min_or_max)] // result functions stay explicit for every key
pub(crate) fn negotiate(
    key: &str,
    value: &str,
    params: &mut SessionParams,
    ctx: &Context<'_>,
) -> Option<Reply> {
    if ctx.discovery && DISCOVERY_IRRELEVANT.contains(&key) {
        return Some(Reply::Constant(IRRELEVANT));
    }
    let burst_cap = clamp_len_key(ctx.config.max_burst_len_bytes);
    let reply = match key {
        "HeaderDigest" | "DataDigest" => {
            // List, first match in the initiator's order; both kinds are supported.
            let chosen = text::list_items(value).find_map(|item| match item {
                "CRC32C" => Some((DigestKind::Crc32c, "CRC32C")),
                "None" => Some((DigestKind::None, "None")),
                _ => None,
            });
            match chosen {
                Some((kind, name)) => {
                    if key == "HeaderDigest" {
                        params.header_digest = kind;
                    } else {
                        params.data_digest = kind;
                    }
                    Reply::Constant(name)
                }
                None => Reply::Constant(REJECT),
            }
        }
        "MaxConnections" => numeric(value, 1, 65535, |offer| {
            params.max_connections = offer.min(1);
            params.max_connections
        }),
        "InitialR2T" => boolean(value, |offer| {
            // OR: we accept unsolicited data, so the initiator's value stands.
            params.initial_r2t = offer;
            offer
        }),
        "ImmediateData" => boolean(value, |offer| {
            // AND: we accept immediate data, so the initiator's value stands.
            params.immediate_data = offer;
            offer
        }),
        "MaxRecvDataSegmentLength" => {
            match number_in(value, MIN_LEN_KEY_BYTES, MAX_DATA_SEGMENT_LEN_BYTES) {
                Some(len) => {
                    params.max_xmit_data_segment_len_bytes = len;
                    Reply::Silent
                }
                None => Reply::Constant(REJECT),
            }
        }
        "MaxBurstLength" => numeric(
            value,
            MIN_LEN_KEY_BYTES,
            MAX_DATA_SEGMENT_LEN_BYTES,
            |offer| {
                params.max_burst_len_bytes = offer.min(burst_cap);
                params.first_burst_len_bytes =
                    params.first_burst_len_bytes.min(params.max_burst_len_bytes);
                params.max_burst_len_bytes
            },
        ),
        "FirstBurstLength" => {
            let max_burst = ctx
                .proposed_max_burst_len_bytes
                .map_or(params.max_burst_len_bytes, |p| p.max(MIN_LEN_KEY_BYTES))
                .min(burst_cap);
            numeric(
                value,
                MIN_LEN_KEY_BYTES,
                MAX_DATA_SEGMENT_LEN_BYTES,
                |offer| {
                    params.first_burst_len_bytes = offer.min(max_burst).min(MAX_FIRST_BURST_BYTES);
                    params.first_burst_len_bytes
                },
            )
        }
        "DefaultTime2Wait" => numeric(value, 0, 3600, |offer| {
            params.default_time2wait_s = offer.max(TARGET_TIME2WAIT_S);
            params.default_time2wait_s
        }),
        "DefaultTime2Retain" => numeric(value, 0, 3600, |offer| {
            // Minimum with our value (0 today, which makes this a constant).
            params.default_time2retain_s = offer.min(TARGET_TIME2RETAIN_S);
            params.default_time2retain_s
        }),
        "MaxOutstandingR2T" => numeric(value, 1, 65535, |offer| {
            params.max_outstanding_r2t = offer.min(MAX_OUTSTANDING_R2T);
            params.max_outstanding_r2t
        }),
        "DataPDUInOrder" => boolean(value, |_| {
            // OR with our Yes.
            params.data_pdu_in_order = true;
            true
        }),
        "DataSequenceInOrder" => boolean(value, |_| {
            params.data_sequence_in_order = true;
            true
        }),
        "ErrorRecoveryLevel" => numeric(value, 0, 2, |_| {
            params.error_recovery_level = 0;
            0
        }),
        // Obsolete markers (RFC 7143 §13.25): never NotUnderstood; AND with our No.
        "IFMarker" | "OFMarker" => boolean(value, |_| false),
        "IFMarkInt" | "OFMarkInt" => Reply::Constant(REJECT),
        // iSER is not offered: AND with our No.
        "RDMAExtensions" => boolean(value, |_| false),
        "TaskReporting" => {
            if text::list_items(value).any(|item| item == "RFC3720") {
                Reply::Constant("RFC3720")
            } else {
                Reply::Constant(REJECT)
            }
        }
        "iSCSIProtocolLevel" => numeric(value, 0, 31, |offer| offer.min(PROTOCOL_LEVEL)),
        _ => return None,
    };
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(key: &str, value: &str, params: &mut SessionParams) -> Option<Reply> {
        let config = ConnConfig::default();
        let ctx = Context {
            config: &config,
            discovery: false,
            proposed_max_burst_len_bytes: None,
        };
        negotiate(key, value, params, &ctx)
    }

    fn value(s: &str) -> Option<Reply> {
        Some(Reply::Value(s.to_string()))
    }

    #[test]
    fn digests_take_the_first_supported_item_of_the_list() {
        let mut p = SessionParams::rfc_defaults();
        assert_eq!(
            answer("HeaderDigest", "CRC32C,None", &mut p),
            Some(Reply::Constant("CRC32C"))
        );
        assert_eq!(p.header_digest, DigestKind::Crc32c);
        assert_eq!(
            answer("DataDigest", "None,CRC32C", &mut p),
            Some(Reply::Constant("None"))
        );
        assert_eq!(p.data_digest, DigestKind::None);
        assert_eq!(
            answer("DataDigest", "X-vendor,CRC32C", &mut p),
            Some(Reply::Constant("CRC32C"))
        );
        assert_eq!(p.data_digest, DigestKind::Crc32c);
        let mut q = SessionParams::rfc_defaults();
        for bad in ["crc32c", "", "MD5"] {
            assert_eq!(
                answer("HeaderDigest", bad, &mut q),
                Some(Reply::Constant(REJECT)),
                "{bad}"
            );
        }
        assert_eq!(q.header_digest, DigestKind::None);
    }

    #[test]
    fn numeric_result_functions() {
        let mut p = SessionParams::rfc_defaults();
        assert_eq!(answer("MaxConnections", "4", &mut p), value("1"));
        assert_eq!(
            answer("MaxBurstLength", "16776192", &mut p),
            value("1048576")
        );
        assert_eq!(p.max_burst_len_bytes, 1 << 20);
        assert_eq!(
            answer("FirstBurstLength", "262144", &mut p),
            value("262144")
        );
        assert_eq!(answer("FirstBurstLength", "65536", &mut p), value("65536"));
        assert_eq!(answer("DefaultTime2Wait", "0", &mut p), value("2"));
        assert_eq!(answer("DefaultTime2Wait", "10", &mut p), value("10"));
        assert_eq!(answer("DefaultTime2Retain", "20", &mut p), value("0"));
        assert_eq!(answer("MaxOutstandingR2T", "64", &mut p), value("8"));
        assert_eq!(answer("MaxOutstandingR2T", "1", &mut p), value("1"));
        assert_eq!(answer("ErrorRecoveryLevel", "2", &mut p), value("0"));
        assert_eq!(answer("iSCSIProtocolLevel", "2", &mut p), value("1"));
    }

    #[test]
    fn first_burst_never_exceeds_max_burst() {
        let config = ConnConfig::default();
        let mut p = SessionParams::rfc_defaults();
        let ctx = Context {
            config: &config,
            discovery: false,
            proposed_max_burst_len_bytes: Some(4096),
        };
        assert_eq!(
            negotiate("FirstBurstLength", "65536", &mut p, &ctx),
            value("4096")
        );
        let mut p = SessionParams::rfc_defaults();
        assert_eq!(answer("MaxBurstLength", "8192", &mut p), value("8192"));
        assert_eq!(p.first_burst_len_bytes, 8192);
    }

    #[test]
    fn booleans_follow_and_or() {
        let mut p = SessionParams::rfc_defaults();
        assert_eq!(
            answer("InitialR2T", "No", &mut p),
            Some(Reply::Constant("No"))
        );
        assert!(!p.initial_r2t);
        assert_eq!(
            answer("ImmediateData", "No", &mut p),
            Some(Reply::Constant("No"))
        );
        assert!(!p.immediate_data);
        assert_eq!(
            answer("DataPDUInOrder", "No", &mut p),
            Some(Reply::Constant("Yes"))
        );
        assert_eq!(
            answer("IFMarker", "Yes", &mut p),
            Some(Reply::Constant("No"))
        );
        assert_eq!(
            answer("OFMarkInt", "1~65535", &mut p),
            Some(Reply::Constant(REJECT))
        );
    }

    #[test]
    fn invalid_values_are_rejected_and_keep_defaults() {
        let mut p = SessionParams::rfc_defaults();
        for (key, bad) in [
            ("MaxBurstLength", "100"),
            ("MaxBurstLength", "16777216"),
            ("MaxRecvDataSegmentLength", "abc"),
            ("InitialR2T", "maybe"),
            ("DefaultTime2Wait", "3601"),
            ("ErrorRecoveryLevel", "3"),
            ("MaxOutstandingR2T", "0"),
        ] {
            assert_eq!(
                answer(key, bad, &mut p),
                Some(Reply::Constant(REJECT)),
                "{key}={bad}"
            );
        }
        assert_eq!(p, SessionParams::rfc_defaults());
    }

    #[test]
    fn declarative_length_is_silent_and_recorded() {
        let mut p = SessionParams::rfc_defaults();
        assert_eq!(
            answer("MaxRecvDataSegmentLength", "0x10000", &mut p),
            Some(Reply::Silent)
        );
        assert_eq!(p.max_xmit_data_segment_len_bytes, 65536);
    }

    #[test]
    fn discovery_sessions_mark_data_keys_irrelevant() {
        let config = ConnConfig::default();
        let mut p = SessionParams::rfc_defaults();
        let ctx = Context {
            config: &config,
            discovery: true,
            proposed_max_burst_len_bytes: None,
        };
        assert_eq!(
            negotiate("InitialR2T", "No", &mut p, &ctx),
            Some(Reply::Constant(IRRELEVANT))
        );
        assert_eq!(
            negotiate("HeaderDigest", "None", &mut p, &ctx),
            Some(Reply::Constant("None"))
        );
        assert!(p.initial_r2t);
    }

    #[test]
    fn every_operational_key_is_answered() {
        for key in OPERATIONAL_KEYS.iter().filter(|k| **k != "SessionType") {
            let mut p = SessionParams::rfc_defaults();
            assert!(answer(key, "1", &mut p).is_some(), "{key}");
            assert!(is_login_key(key));
        }
        assert!(is_login_key("AuthMethod"));
        assert!(!is_login_key("SendTargets"));
    }

    #[test]
    fn unknown_keys_are_not_operational() {
        let mut p = SessionParams::rfc_defaults();
        assert_eq!(answer("X-com.example.Foo", "1", &mut p), None);
        assert_eq!(answer("InitiatorName", "iqn.x", &mut p), None);
    }
}
