//! Contract of the device model: the types the reactor exchanges with it, [`decide`] and the
//! reply helpers the reactor calls after backend I/O. The command handlers live in sibling
//! modules (`dispatch`, `inquiry`, `mode`, `block`, `service`, `opcodes`).

use lunar_wire::scsi::{status, Asc, Sense, SenseKey};

use crate::reply;
use crate::unit_attention::{PendingAttentions, UnitAttention};

/// What the model knows about one exported logical unit.
#[derive(Debug, Clone)]
pub struct LogicalUnit {
    /// Logical block length in bytes (512 or 4096).
    pub block_size: u32,
    /// Number of logical blocks.
    pub num_blocks: u64,
    /// The LUN is exported read-only (writes get DATA PROTECT / WRITE PROTECTED).
    pub read_only: bool,
    /// Stable 64-bit identifier of the volume, used for the NAA designator in VPD 0x83 and the
    /// unit serial number in VPD 0x80.
    pub volume_uid: u64,
    /// Volume name (reported as a vendor-specific designator / in the product revision area).
    pub volume_name: String,
    /// Largest transfer one command may request (blocks); reported in VPD 0xB0.
    pub max_transfer_blocks: u32,
    /// Whether the volume has a volatile write cache that SYNCHRONIZE CACHE / FUA must flush
    /// (reported in the caching mode page WCE bit).
    pub write_cache: bool,
}

/// Per I_T nexus, per LU state the model keeps: the pending unit attention conditions.
///
/// A new nexus (`NexusState::default()`) starts with POWER ON, RESET, OR BUS DEVICE RESET
/// OCCURRED (29h/00h) pending, reported once on the first command other than INQUIRY,
/// REPORT LUNS and REQUEST SENSE (SPC-4 5.14). The reactor raises further conditions with
/// [`NexusState::raise`] (e.g. after a LOGICAL UNIT RESET or a capacity change).
#[derive(Debug, Clone)]
pub struct NexusState {
    pub(crate) pending: PendingAttentions,
}

impl Default for NexusState {
    fn default() -> Self {
        let mut pending = PendingAttentions::default();
        pending.raise(UnitAttention::PowerOnReset);
        NexusState { pending }
    }
}

impl NexusState {
    /// A fresh nexus, with the power-on unit attention pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Establish a unit attention condition for this nexus. Reset-class conditions replace
    /// everything pending before them.
    pub fn raise(&mut self, attention: UnitAttention) {
        self.pending.raise(attention);
    }

    /// The unit attention the next command would be told about, if any.
    pub fn pending_unit_attention(&self) -> Option<UnitAttention> {
        self.pending.peek()
    }
}

/// Block operation the volume layer must perform. Every variant's range is `lba ..
/// lba + blocks` of the [`BlockIo`]; `blocks` is never 0 except for `Flush`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOp {
    /// Read the range; the data read is the command's data-in (`blocks * block_size` bytes,
    /// the transport truncates it to the expected length). Then [`good_reply`].
    Read,
    /// Write the first `blocks * block_size` bytes of the command's data-out to the range
    /// (`decide` has checked that many bytes are there). With `fua`, the data must be durable
    /// before completion. Then [`good_reply`]. WRITE AND VERIFY arrives as a `Write` with
    /// `fua` set: the data is verified by being durably written.
    Write,
    /// Flush volatile caches of the range (SYNCHRONIZE CACHE, START STOP UNIT); `blocks == 0`
    /// means to the end of the volume. Then [`good_reply`].
    Flush,
    /// VERIFY with BYTCHK=0: read the range (the data is discarded) to check it is readable.
    /// Then [`good_reply`].
    Verify,
    /// VERIFY with BYTCHK=1: read the range and compare it with the first `blocks *
    /// block_size` bytes of the command's data-out (`decide` has checked that many bytes are
    /// there). On the first difference, at byte offset `n` from the start of the range, answer
    /// [`miscompare_reply`]`(io, n)`; when all bytes match, [`good_reply`].
    Compare,
}

/// A command that needs backend I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockIo {
    pub op: BlockOp,
    pub lba: u64,
    pub blocks: u32,
    /// Force unit access: the write must be durable before completion. Set for FUA writes,
    /// for WRITE AND VERIFY, and for every write when the LU has no volatile write cache.
    pub fua: bool,
    /// Bytes the CDB asks to transfer (for residual computation by the transport).
    pub transfer_len_bytes: u32,
}

/// An immediate answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiReply {
    /// SCSI status byte.
    pub status: u8,
    /// Sense bytes (fixed format) when status is CHECK CONDITION.
    pub sense: Vec<u8>,
    /// Data-in (already truncated to the CDB's allocation length).
    pub data_in: Vec<u8>,
    /// Bytes the CDB asks to transfer (allocation length or transfer length), also when the
    /// command fails (0 when the CDB could not be decoded).
    pub transfer_len_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(ScsiReply),
    Io(BlockIo),
}

/// Decide what to do with `cdb` addressed to `lun`. `lu` is `None` when the LUN is not mapped
/// in this target; `luns` is the target's LUN list (for REPORT LUNS), as LUN numbers (see
/// `lunar_wire::scsi::encode_lun`).
///
/// `expected_len_bytes` is the transport's expected data transfer length and `data_out` the
/// data-out received (at most `expected_len_bytes`). A write whose CDB asks for more blocks
/// than the expected length covers writes only the whole blocks the expected length covers
/// (`BlockIo::blocks`), while `transfer_len_bytes` stays what the CDB asked, so the transport
/// reports the overflow residual.
pub fn decide(
    lu: Option<&LogicalUnit>,
    luns: &[u64],
    nexus: &mut NexusState,
    cdb: &[u8],
    expected_len_bytes: u32,
    data_out: &[u8],
) -> Decision {
    crate::dispatch::decide(lu, luns, nexus, cdb, expected_len_bytes, data_out)
}

/// The reply to send when the backend I/O of a `BlockIo` failed: MEDIUM ERROR with
/// UNRECOVERED READ ERROR for reads, verifies and compares, WRITE ERROR for writes and
/// flushes.
pub fn io_error_reply(io: &BlockIo) -> ScsiReply {
    let asc = match io.op {
        BlockOp::Read | BlockOp::Verify | BlockOp::Compare => Asc::UNRECOVERED_READ_ERROR,
        BlockOp::Write | BlockOp::Flush => Asc::WRITE_ERROR,
    };
    let mut reply = reply::check_condition(Sense::new(SenseKey::MediumError, asc));
    reply.transfer_len_bytes = io.transfer_len_bytes;
    reply
}

/// The reply to send when the backend I/O of a `BlockIo` succeeded (GOOD). For reads the
/// reactor supplies the data-in itself; `data_in` here is empty.
pub fn good_reply(io: &BlockIo) -> ScsiReply {
    ScsiReply {
        status: status::GOOD,
        sense: Vec::new(),
        data_in: Vec::new(),
        transfer_len_bytes: io.transfer_len_bytes,
    }
}

/// The reply to send when a [`BlockOp::Compare`] found a difference at byte `offset_bytes`
/// from the start of its range: MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION, with the
/// offset in the INFORMATION field.
pub fn miscompare_reply(io: &BlockIo, offset_bytes: u64) -> ScsiReply {
    let mut reply = reply::check_condition(
        Sense::new(SenseKey::Miscompare, Asc::MISCOMPARE_DURING_VERIFY)
            .with_information(offset_bytes),
    );
    reply.transfer_len_bytes = io.transfer_len_bytes;
    reply
}
