//! iSCSI PDU codec (RFC 7143): basic header segments, framing, text key=value pairs.
