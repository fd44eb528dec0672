//! The operational parameters of a session (RFC 7143 §13) as negotiated at login, their RFC
//! defaults, and the bounds this target applies to them.

use lunar_wire::iscsi::framer::LOGIN_MAX_DATA_SEGMENT_LEN_BYTES;
use lunar_wire::iscsi::header::MAX_DATA_SEGMENT_LEN_BYTES;
use lunar_wire::iscsi::DigestKind;

use crate::connection::ConnConfig;

/// Smallest value of the length keys (MaxRecvDataSegmentLength, MaxBurstLength,
/// FirstBurstLength).
pub(crate) const MIN_LEN_KEY_BYTES: u32 = 512;

/// MaxOutstandingR2T this target offers at most.
pub(crate) const MAX_OUTSTANDING_R2T: u32 = 8;

/// DefaultTime2Wait this target asks for (seconds, result function Maximum).
pub(crate) const TARGET_TIME2WAIT_S: u32 = 2;

/// DefaultTime2Retain this target offers (seconds, result function Minimum): at
/// ErrorRecoveryLevel 0 nothing is retained after a connection ends.
pub(crate) const TARGET_TIME2RETAIN_S: u32 = 0;

/// iSCSIProtocolLevel this target implements (RFC 7144: 1 = RFC 7143).
pub(crate) const PROTOCOL_LEVEL: u32 = 1;

/// Negotiated session and connection parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionParams {
    pub header_digest: DigestKind,
    pub data_digest: DigestKind,
    pub max_connections: u32,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    /// What we accept per PDU (our declared MaxRecvDataSegmentLength).
    pub max_recv_data_segment_len_bytes: u32,
    /// What the initiator accepts per PDU (its declared MaxRecvDataSegmentLength): bounds the
    /// Data-In and Text Response PDUs we send.
    pub max_xmit_data_segment_len_bytes: u32,
    pub max_burst_len_bytes: u32,
    pub first_burst_len_bytes: u32,
    pub default_time2wait_s: u32,
    pub default_time2retain_s: u32,
    pub max_outstanding_r2t: u32,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub error_recovery_level: u32,
}

impl SessionParams {
    /// The RFC defaults, which hold for every key the initiator does not negotiate.
    pub fn rfc_defaults() -> SessionParams {
        SessionParams {
            header_digest: DigestKind::None,
            data_digest: DigestKind::None,
            max_connections: 1,
            initial_r2t: true,
            immediate_data: true,
            max_recv_data_segment_len_bytes: LOGIN_MAX_DATA_SEGMENT_LEN_BYTES,
            max_xmit_data_segment_len_bytes: LOGIN_MAX_DATA_SEGMENT_LEN_BYTES,
            max_burst_len_bytes: 262_144,
            first_burst_len_bytes: 65_536,
            default_time2wait_s: 2,
            default_time2retain_s: 20,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
        }
    }

    /// Values the RFC leaves to the target when the initiator does not propose them, adjusted
    /// to what this target is configured for; called once login completes.
    pub fn finish(&mut self, config: &ConnConfig) {
        let burst_cap = clamp_len_key(config.max_burst_len_bytes);
        self.max_burst_len_bytes = self.max_burst_len_bytes.min(burst_cap);
        self.first_burst_len_bytes = self.first_burst_len_bytes.min(self.max_burst_len_bytes);
    }
}

/// Our MaxRecvDataSegmentLength declaration from the configuration, within the RFC range.
pub(crate) fn declared_max_recv_data_segment_len(config: &ConnConfig) -> u32 {
    clamp_len_key(config.max_recv_data_segment_len_bytes)
}

/// Clamps a configured length to the RFC range of the length keys.
pub(crate) fn clamp_len_key(value: u32) -> u32 {
    value.clamp(MIN_LEN_KEY_BYTES, MAX_DATA_SEGMENT_LEN_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_applies_the_configured_burst_cap() {
        let mut params = SessionParams::rfc_defaults();
        let config = ConnConfig {
            max_burst_len_bytes: 32 * 1024,
            ..ConnConfig::default()
        };
        params.finish(&config);
        assert_eq!(params.max_burst_len_bytes, 32 * 1024);
        assert_eq!(params.first_burst_len_bytes, 32 * 1024);
    }

    #[test]
    fn declared_length_stays_in_range() {
        let tiny = ConnConfig {
            max_recv_data_segment_len_bytes: 1,
            ..ConnConfig::default()
        };
        assert_eq!(declared_max_recv_data_segment_len(&tiny), 512);
        let huge = ConnConfig {
            max_recv_data_segment_len_bytes: u32::MAX,
            ..ConnConfig::default()
        };
        assert_eq!(declared_max_recv_data_segment_len(&huge), (1 << 24) - 1);
    }
}
