//! Builders of immediate replies: GOOD with parameter data truncated to the allocation
//! length, GOOD without data, CHECK CONDITION with fixed-format sense, and RESERVATION
//! CONFLICT.

use lunar_wire::scsi::{status, Sense, SenseFormat};

use crate::model::{Decision, ScsiReply};

/// GOOD with `data` truncated to `alloc_len` bytes; the CDB asked for `alloc_len` bytes.
pub(crate) fn data(mut data: Vec<u8>, alloc_len: u32) -> ScsiReply {
    let keep = usize::try_from(alloc_len).unwrap_or(usize::MAX);
    data.truncate(keep);
    ScsiReply {
        status: status::GOOD,
        sense: Vec::new(),
        data_in: data,
        transfer_len_bytes: alloc_len,
    }
}

/// GOOD without data; the CDB asked for `transfer_len_bytes`.
pub(crate) fn good(transfer_len_bytes: u32) -> ScsiReply {
    ScsiReply {
        status: status::GOOD,
        sense: Vec::new(),
        data_in: Vec::new(),
        transfer_len_bytes,
    }
}

/// CHECK CONDITION with `sense` in fixed format and no data. The transfer length is left 0;
/// `dispatch` fills in what the CDB asked for.
pub(crate) fn check_condition(sense: Sense) -> ScsiReply {
    ScsiReply {
        status: status::CHECK_CONDITION,
        sense: sense.encode(SenseFormat::Fixed).as_bytes().to_vec(),
        data_in: Vec::new(),
        transfer_len_bytes: 0,
    }
}

/// [`check_condition`] as a [`Decision`].
pub(crate) fn fail(sense: Sense) -> Decision {
    Decision::Reply(check_condition(sense))
}

/// RESERVATION CONFLICT status, no sense. The transfer length is left 0; `dispatch` fills in
/// what the CDB asked for.
pub(crate) fn reservation_conflict() -> Decision {
    Decision::Reply(ScsiReply {
        status: status::RESERVATION_CONFLICT,
        sense: Vec::new(),
        data_in: Vec::new(),
        transfer_len_bytes: 0,
    })
}

/// [`good`] as a [`Decision`].
pub(crate) fn ok(transfer_len_bytes: u32) -> Decision {
    Decision::Reply(good(transfer_len_bytes))
}

/// [`data`] as a [`Decision`].
pub(crate) fn with_data(bytes: Vec<u8>, alloc_len: u32) -> Decision {
    Decision::Reply(data(bytes, alloc_len))
}
