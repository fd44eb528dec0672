//! SCSI codec (SPC-4 / SBC-3): CDB decoding, status codes and sense data.
