//! Write data that arrives over several receives. A PDU is normally gathered whole before it
//! is handled, which copies its bytes once more; the PDUs carrying write data (SCSI Commands
//! with immediate data, Data-Out) are the large ones, up to MaxRecvDataSegmentLength, and they
//! seldom fit in one receive. So once such a PDU's header is in, the header is checked and
//! handled (the command admitted and its task created, or the Data-Out matched to its task),
//! and its data goes into the task's buffer piece by piece as it arrives: one copy from the
//! receive buffer to the buffer the device write uses. Only without a data digest: with one,
//! the data may not be used before the digest at its end is checked, and the PDU is gathered
//! whole as before.
//!
//! The task moves on (executes, or gets its next R2T) only once the last byte of the PDU is
//! in, as it would with the whole PDU; a header that is refused is answered at once (Reject,
//! or the task ended) and the data that follows it is dropped.

use lunar_wire::iscsi::framer::padded_len;
use lunar_wire::iscsi::{Frame, Opcode, BHS_LEN_BYTES};

use crate::connection::{Action, Connection, Phase};
use crate::intake::exp_stat_sn;

/// The part of a write data PDU's data segment still to come.
#[derive(Debug)]
pub(crate) struct DataOutStream {
    /// The task the data goes to; `None` when the header was refused (the data is dropped).
    itt: Option<u32>,
    data_left_bytes: usize,
    padding_left_bytes: usize,
}

impl Connection {
    /// The length of the header (BHS, AHS, header digest) of the PDU starting at `head`, when
    /// it is a SCSI Command or Data-Out with data that can be taken as it arrives; `None`
    /// otherwise or while the BHS itself is not in.
    pub(crate) fn streamable_header_len(&self, head: &[u8]) -> Option<usize> {
        if self.phase != Phase::FullFeature || self.params.data_digest.len_bytes() != 0 {
            return None;
        }
        let bhs = head.get(..BHS_LEN_BYTES)?;
        if !matches!(
            Opcode::from_bits(bhs[0]),
            Some(Opcode::DataOut | Opcode::ScsiCommand)
        ) {
            return None;
        }
        let data_len = u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]);
        if data_len == 0 || data_len > self.params.max_recv_data_segment_len_bytes {
            // Nothing to stream, or a framing error the whole-PDU path reports.
            return None;
        }
        Some(BHS_LEN_BYTES + usize::from(bhs[4]) * 4 + self.params.header_digest.len_bytes())
    }

    /// `head` is the start of a PDU that is not all in. When it is a streamable write data PDU
    /// (see [`Connection::streamable_header_len`]) whose header is all in, handles the header,
    /// adds the data in `head` to the task and opens the stream for the rest: true, and all of
    /// `head` is used. False, and nothing is changed, otherwise (a header digest that does not
    /// match also leaves the PDU to the whole-PDU path, which drops the connection).
    pub(crate) fn start_data_out_stream(
        &mut self,
        head: &[u8],
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> bool {
        let Some(header_len) = self.streamable_header_len(head) else {
            return false;
        };
        let Some((header, data)) = head.split_at_checked(header_len) else {
            return false;
        };
        let Some((bhs_bytes, after_bhs)) = header.split_first_chunk::<BHS_LEN_BYTES>() else {
            return false;
        };
        let ahs_len = usize::from(bhs_bytes[4]) * 4;
        let (ahs, header_digest) = after_bhs.split_at(ahs_len);
        let header_only = Frame {
            bhs_bytes,
            ahs,
            header_digest,
            data: &[],
            data_padding: &[],
            data_digest: &[],
            len_bytes: header_len,
        };
        let bhs = header_only.bhs();
        let data_len = bhs.data_segment_len_bytes() as usize;
        if data.len() >= padded_len(data_len) || header_only.check_header_digest().is_err() {
            return false;
        }
        self.acknowledge_status(exp_stat_sn(bhs_bytes));
        let itt = if bhs.opcode() == Some(Opcode::ScsiCommand) {
            self.begin_scsi_command(bhs_bytes, ahs, data_len, now_ms)
        } else {
            let accepted = self.begin_data_out(bhs_bytes, data_len, now_ms);
            accepted.then(|| bhs.itt())
        };
        self.stream = Some(DataOutStream {
            itt,
            data_left_bytes: data_len,
            padding_left_bytes: padded_len(data_len) - data_len,
        });
        let rest = self.continue_data_out_stream(data, now_ms, actions);
        debug_assert!(rest.is_empty(), "the PDU was not all in");
        true
    }

    /// With a stream open, takes its bytes from the front of `input` and returns the rest;
    /// at the PDU's last byte closes the stream and moves the task on.
    pub(crate) fn continue_data_out_stream<'a>(
        &mut self,
        input: &'a [u8],
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> &'a [u8] {
        let Some(stream) = self.stream.as_mut() else {
            return input;
        };
        let (data, rest) = input.split_at(stream.data_left_bytes.min(input.len()));
        stream.data_left_bytes -= data.len();
        let (padding, rest) = rest.split_at(stream.padding_left_bytes.min(rest.len()));
        stream.padding_left_bytes -= padding.len();
        let itt = stream.itt;
        let done = stream.data_left_bytes == 0 && stream.padding_left_bytes == 0;
        if let Some(itt) = itt {
            self.append_data_out(itt, data);
        }
        if done {
            self.stream = None;
            // The whole PDU is in: it counts as activity, as every whole PDU does.
            self.keepalive.on_activity(now_ms);
            if let Some(itt) = itt {
                self.advance_write(itt, now_ms, actions);
            }
        }
        rest
    }
}
