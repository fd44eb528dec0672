//! Text Request / Text Response in the full feature phase (RFC 7143 §11.10, §11.11): requests
//! continued over several PDUs (C bit, answered with empty responses carrying a target
//! transfer tag), responses split by the initiator's MaxRecvDataSegmentLength (C bit, resumed
//! by an empty request echoing the tag), SendTargets, and renegotiation of
//! MaxRecvDataSegmentLength. Keys that may only be negotiated at login are answered `Reject`,
//! unknown keys `NotUnderstood`.

use lunar_wire::iscsi::codes::reject_reason;
use lunar_wire::iscsi::header::MAX_DATA_SEGMENT_LEN_BYTES;
use lunar_wire::iscsi::initiator::{text_flags, TextRequestHeader};
use lunar_wire::iscsi::target::TextResponseHeader;
use lunar_wire::iscsi::text::{self, KeyValue, NOT_UNDERSTOOD, REJECT};
use lunar_wire::iscsi::{Frame, Pdu, RESERVED_TAG};

use crate::connection::{Connection, TargetCatalog};
use crate::negotiate::is_login_key;
use crate::params::MIN_LEN_KEY_BYTES;

/// Most text accepted in one request, across C-bit continuations.
pub(crate) const MAX_TEXT_REQUEST_BYTES: usize = 64 * 1024;

/// State of the text exchange in progress, if any.
#[derive(Debug, Default)]
pub(crate) struct TextExchange {
    /// Text of a request being continued, and the tag the initiator echoes to continue it.
    request: Vec<u8>,
    request_ttt: Option<u32>,
    /// A response too long for one PDU: all of it, how much is sent, and the tag to resume.
    response: Vec<u8>,
    response_sent: usize,
    response_ttt: Option<u32>,
    /// Whether the request being answered had F set (the response may then end with F).
    response_final: bool,
}

impl Connection {
    pub(crate) fn on_text_request(&mut self, frame: &Frame<'_>, catalog: &dyn TargetCatalog) {
        let req = TextRequestHeader::view(frame.bhs_bytes);
        if !self.admit(frame.bhs().is_immediate(), req.cmd_sn.get()) {
            return;
        }
        let itt = req.initiator_task_tag.get();
        let ttt = req.target_transfer_tag.get();
        let is_final = req.flags & text_flags::FINAL != 0;
        let cont = req.flags & text_flags::CONTINUE != 0;
        if itt == RESERVED_TAG || (cont && is_final) {
            self.text = TextExchange::default();
            self.reject(reject_reason::PROTOCOL_ERROR, frame.bhs_bytes);
            return;
        }
        let resuming_response = self.text.response_ttt.is_some_and(|t| t == ttt)
            && self.text.response_sent < self.text.response.len();
        if resuming_response {
            self.send_text_chunk(itt, req.lun);
            return;
        }
        if ttt == RESERVED_TAG {
            // A new exchange replaces any unfinished one.
            self.text = TextExchange::default();
        } else if self.text.request_ttt != Some(ttt) && self.text.response_ttt != Some(ttt) {
            self.text = TextExchange::default();
            self.reject(reject_reason::INVALID_PDU_FIELD, frame.bhs_bytes);
            return;
        }
        if self.text.request.len() + frame.data.len() > MAX_TEXT_REQUEST_BYTES {
            self.text = TextExchange::default();
            self.reject(reject_reason::PROTOCOL_ERROR, frame.bhs_bytes);
            return;
        }
        self.text.request.extend_from_slice(frame.data);
        if cont {
            let ttt = self.ttt.next();
            self.text.request_ttt = Some(ttt);
            let header = TextResponseHeader::new(0, req.lun, itt, ttt, self.seq.take());
            self.send.push(&header, &[]);
            return;
        }
        let request = std::mem::take(&mut self.text.request);
        self.text = TextExchange::default();
        let pairs = match text::parse(&request) {
            Ok(pairs) => pairs,
            Err(err) => {
                tracing::debug!(%err, "malformed text request");
                self.reject(reject_reason::PROTOCOL_ERROR, frame.bhs_bytes);
                return;
            }
        };
        let mut response = Vec::new();
        for kv in &pairs {
            self.answer_text_key(kv, catalog, &mut response);
        }
        self.text.response = response;
        self.text.response_final = is_final;
        self.send_text_chunk(itt, req.lun);
    }

    fn answer_text_key(
        &mut self,
        kv: &KeyValue<'_>,
        catalog: &dyn TargetCatalog,
        response: &mut Vec<u8>,
    ) {
        match kv.key {
            "SendTargets" => self.answer_send_targets(kv.value, catalog, response),
            "MaxRecvDataSegmentLength" => match text::parse_number(kv.value) {
                Ok(len)
                    if (u64::from(MIN_LEN_KEY_BYTES)..=u64::from(MAX_DATA_SEGMENT_LEN_BYTES))
                        .contains(&len) =>
                {
                    // Declarative: takes effect for what we send from now on.
                    self.params.max_xmit_data_segment_len_bytes = len as u32;
                }
                _ => text::push_pair(response, kv.key, REJECT),
            },
            // Declarative and allowed at any time; nothing to answer.
            "InitiatorAlias" => {}
            key if is_login_key(key) => text::push_pair(response, key, REJECT),
            key => text::push_pair(response, key, NOT_UNDERSTOOD),
        }
    }

    /// Sends the next piece of the pending response: F when it is the last piece of an answer
    /// to a final request, C with a fresh tag when more remains.
    fn send_text_chunk(&mut self, itt: u32, lun: [u8; 8]) {
        let max = self.params.max_xmit_data_segment_len_bytes as usize;
        let start = self.text.response_sent.min(self.text.response.len());
        let end = (start + max).min(self.text.response.len());
        let more = end < self.text.response.len();
        let (flags, ttt) = if more {
            (text_flags::CONTINUE, self.ttt.next())
        } else if self.text.response_final {
            (text_flags::FINAL, RESERVED_TAG)
        } else {
            // The initiator has more to say: give it a tag to continue with.
            (0, self.ttt.next())
        };
        let header = TextResponseHeader::new(flags, lun, itt, ttt, self.seq.take());
        self.send.push(&header, &[&self.text.response[start..end]]);
        self.text.response_sent = end;
        if more {
            self.text.response_ttt = Some(ttt);
        } else {
            let final_ttt = (ttt != RESERVED_TAG).then_some(ttt);
            self.text = TextExchange {
                response_ttt: final_ttt,
                ..TextExchange::default()
            };
        }
    }
}
