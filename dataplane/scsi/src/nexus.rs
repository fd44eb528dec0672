//! I_T nexus identity (SAM-5 4.7, SPC-4 7.6.4.6): the iSCSI initiator and target port names a
//! command arrived through, how two nexuses compare, and the iSCSI TransportID that carries an
//! initiator port name in persistent-reservation parameter data.

/// The I_T nexus a command arrived on.
///
/// Port names compare ASCII-case-insensitively (iSCSI names are case-folded and the ISID is
/// hexadecimal), so two identities built from differently cased strings are the same nexus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NexusId {
    /// Initiator port name: `InitiatorName,i,0xISID` (twelve hex digits).
    pub initiator_port: String,
    /// Target port name: `TargetName,t,0xTPGT` (four hex digits).
    pub target_port: String,
    /// RELATIVE TARGET PORT IDENTIFIER of the target port (SPC-4 7.8.6.4); 0 when unknown.
    pub relative_target_port_id: u16,
}

/// Separator between the iSCSI name and the ISID in an initiator port name.
const INITIATOR_PORT_SEPARATOR: &str = ",i,0x";
/// Separator between the iSCSI name and the TPGT in a target port name.
const TARGET_PORT_SEPARATOR: &str = ",t,0x";
/// PROTOCOL IDENTIFIER of iSCSI (SPC-4 7.6.1).
pub const PROTOCOL_ID_ISCSI: u8 = 0x05;
/// TransportID FORMAT CODE 01b: initiator port name (name, ",i,0x", ISID).
const TRANSPORT_ID_FORMAT_PORT: u8 = 0x40;
/// Header of an iSCSI TransportID (protocol, reserved, 2-byte ADDITIONAL LENGTH).
const TRANSPORT_ID_HEADER_LEN_BYTES: usize = 4;
/// Smallest iSCSI TransportID (SPC-4: ADDITIONAL LENGTH at least 20).
const TRANSPORT_ID_MIN_LEN_BYTES: usize = 24;
/// Longest iSCSI name (RFC 7143 §4.2.7.1: 223 bytes) plus the port suffix and NUL, rounded.
pub const TRANSPORT_ID_MAX_LEN_BYTES: usize = 256;

impl NexusId {
    /// The identity of an iSCSI I_T nexus: the session's InitiatorName and ISID, and the
    /// target's name and portal group tag. Names are stored lower case.
    pub fn iscsi(
        initiator_name: &str,
        isid: [u8; 6],
        target_name: &str,
        tpgt: u16,
        relative_target_port_id: u16,
    ) -> NexusId {
        let isid_hex: String = isid.iter().map(|b| format!("{b:02x}")).collect();
        NexusId {
            initiator_port: format!(
                "{}{INITIATOR_PORT_SEPARATOR}{isid_hex}",
                initiator_name.to_ascii_lowercase()
            ),
            target_port: format!(
                "{}{TARGET_PORT_SEPARATOR}{tpgt:04x}",
                target_name.to_ascii_lowercase()
            ),
            relative_target_port_id,
        }
    }

    /// The initiator's iSCSI name (the initiator port name without the ISID).
    pub fn initiator_name(&self) -> &str {
        name_part(&self.initiator_port, INITIATOR_PORT_SEPARATOR)
    }

    /// Same I_T nexus: same initiator port through the same target port.
    pub fn same_nexus(&self, other: &NexusId) -> bool {
        self.same_initiator_port(other) && self.target_port.eq_ignore_ascii_case(&other.target_port)
    }

    /// Same initiator port (through any target port).
    pub fn same_initiator_port(&self, other: &NexusId) -> bool {
        self.initiator_port
            .eq_ignore_ascii_case(&other.initiator_port)
    }

    /// The iSCSI TransportID of the initiator port (format 01b), NUL terminated and padded to
    /// a multiple of four bytes, at least 24 bytes long.
    pub fn transport_id(&self) -> Vec<u8> {
        let name = self.initiator_port.as_bytes();
        let name = &name[..name.len().min(TRANSPORT_ID_MAX_LEN_BYTES - 5)];
        let body_len = (name.len() + 1)
            .next_multiple_of(4)
            .max(TRANSPORT_ID_MIN_LEN_BYTES - TRANSPORT_ID_HEADER_LEN_BYTES);
        let mut id = Vec::with_capacity(TRANSPORT_ID_HEADER_LEN_BYTES + body_len);
        id.push(TRANSPORT_ID_FORMAT_PORT | PROTOCOL_ID_ISCSI);
        id.push(0);
        id.extend_from_slice(&(body_len as u16).to_be_bytes());
        id.extend_from_slice(name);
        id.resize(TRANSPORT_ID_HEADER_LEN_BYTES + body_len, 0);
        id
    }
}

/// The part of a port name before its separator (all of it when there is none).
fn name_part<'a>(port: &'a str, separator: &str) -> &'a str {
    let separator = separator.as_bytes();
    port.as_bytes()
        .windows(separator.len())
        .position(|w| w.eq_ignore_ascii_case(separator))
        .map_or(port, |at| &port[..at])
}

/// Why a TransportID was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportIdError {
    /// Fewer bytes than the header or its ADDITIONAL LENGTH announce.
    Truncated,
    /// Not iSCSI, or a format code other than 01b (initiator port name).
    Unsupported,
    /// The name is not NUL-terminated printable ASCII with a `,i,0x` ISID suffix.
    Malformed,
}

/// Parse an iSCSI TransportID naming an initiator port (format 01b) at the start of `bytes`.
/// Returns the initiator port name (lower case) and the TransportID's length in bytes.
pub fn parse_transport_id(bytes: &[u8]) -> Result<(String, usize), TransportIdError> {
    let header = bytes
        .get(..TRANSPORT_ID_HEADER_LEN_BYTES)
        .ok_or(TransportIdError::Truncated)?;
    if header[0] & 0x0f != PROTOCOL_ID_ISCSI {
        return Err(TransportIdError::Unsupported);
    }
    // Format 00b names only the initiator device, not a port: a registration needs a port.
    if header[0] & 0xc0 != TRANSPORT_ID_FORMAT_PORT {
        return Err(TransportIdError::Unsupported);
    }
    let body_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let total = TRANSPORT_ID_HEADER_LEN_BYTES + body_len;
    let body = bytes
        .get(TRANSPORT_ID_HEADER_LEN_BYTES..total)
        .ok_or(TransportIdError::Truncated)?;
    let name_len = body
        .iter()
        .position(|&b| b == 0)
        .ok_or(TransportIdError::Malformed)?;
    let name = &body[..name_len];
    if name.is_empty() || !name.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(TransportIdError::Malformed);
    }
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let separator_at = name
        .find(INITIATOR_PORT_SEPARATOR)
        .ok_or(TransportIdError::Malformed)?;
    let isid = &name[separator_at + INITIATOR_PORT_SEPARATOR.len()..];
    if separator_at == 0 || isid.is_empty() || !isid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TransportIdError::Malformed);
    }
    Ok((name, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nexus() -> NexusId {
        NexusId::iscsi(
            "iqn.2026-01.test:Host",
            [0x40, 0, 0x01, 0x37, 0, 0x01],
            "iqn.2026-11.dev.lunar:demo",
            1,
            1,
        )
    }

    #[test]
    fn iscsi_port_names() {
        let n = nexus();
        assert_eq!(n.initiator_port, "iqn.2026-01.test:host,i,0x400001370001");
        assert_eq!(n.target_port, "iqn.2026-11.dev.lunar:demo,t,0x0001");
        assert_eq!(n.initiator_name(), "iqn.2026-01.test:host");
    }

    #[test]
    fn comparisons_ignore_case_and_distinguish_ports() {
        let a = nexus();
        let mut b = a.clone();
        b.initiator_port = b.initiator_port.to_ascii_uppercase();
        assert!(a.same_nexus(&b));
        b.target_port = "iqn.2026-11.dev.lunar:demo,t,0x0002".to_string();
        assert!(!a.same_nexus(&b));
        assert!(a.same_initiator_port(&b));
    }

    #[test]
    fn transport_id_round_trips() {
        let n = nexus();
        let id = n.transport_id();
        assert_eq!(id[0], 0x45);
        assert_eq!(id.len() % 4, 0);
        assert!(id.len() >= 24);
        let (port, len) = parse_transport_id(&id).expect("parses");
        assert_eq!(port, n.initiator_port);
        assert_eq!(len, id.len());
        // A short name is padded to the 24-byte minimum.
        let short = NexusId {
            initiator_port: "a,i,0x1".to_string(),
            ..NexusId::default()
        };
        assert_eq!(short.transport_id().len(), 24);
    }

    #[test]
    fn transport_id_refusals() {
        let mut id = nexus().transport_id();
        id[0] = 0x05; // format 00b: device name only
        assert_eq!(parse_transport_id(&id), Err(TransportIdError::Unsupported));
        id[0] = 0x41; // not iSCSI
        assert_eq!(parse_transport_id(&id), Err(TransportIdError::Unsupported));
        let id = nexus().transport_id();
        assert_eq!(
            parse_transport_id(&id[..10]),
            Err(TransportIdError::Truncated)
        );
        let mut no_isid = vec![0x45, 0, 0, 20];
        no_isid.extend_from_slice(b"iqn.x:y\0");
        no_isid.resize(24, 0);
        assert_eq!(
            parse_transport_id(&no_isid),
            Err(TransportIdError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn transport_id_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok((_, len)) = parse_transport_id(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }
    }
}
