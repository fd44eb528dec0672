//! Contract of the device model: the types the reactor exchanges with it, [`decide`] and the
//! reply helpers the reactor calls after backend I/O. The command handlers live in sibling
//! modules (`dispatch`, `inquiry`, `mode`, `block`, `provisioning`, `compare`, `service`,
//! `opcodes`, `pr`).

use std::sync::Arc;

use lunar_wire::scsi::{status, Asc, Sense, SenseKey, CDB_MAX_LEN_BYTES};

use crate::copy::HeldCopy;
use crate::nexus::NexusId;
use crate::pr::ReservationState;
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
    /// The medium is removable (INQUIRY RMB = 1): START STOP UNIT with LOEJ ejects and loads
    /// it, PREVENT ALLOW MEDIUM REMOVAL holds it in, medium-access commands get NOT READY /
    /// MEDIUM NOT PRESENT while it is out. Its state is `reservations.medium`.
    pub removable: bool,
    /// Logical block provisioning management (READ CAPACITY (16) LBPME, VPD 0xB2 LBPU,
    /// LBPWS, LBPWS10, provisioning type thin): UNMAP and WRITE SAME with UNMAP deallocate
    /// blocks ([`BlockOp::Unmap`], [`BlockOp::Deallocate`]) and GET LBA STATUS asks the
    /// backend which blocks are mapped ([`BlockOp::GetLbaStatus`]). Set it when the backend
    /// can deallocate (punch holes in a file, discard on a block device).
    pub thin_provisioning: bool,
    /// Deallocated blocks read back as zeros (LBPRZ = 1): true for holes punched in files and
    /// for fallocate(PUNCH_HOLE) on block devices (which zeroes). Only then does WRITE SAME
    /// with UNMAP deallocate (and the blocks read back as zeros, as with Linux LIO); otherwise
    /// it writes its data.
    pub unmap_reads_zeroes: bool,
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT of READ CAPACITY (16): 2^n logical blocks
    /// per physical block of the backing (0: they are the same size).
    pub physical_block_exponent: u8,
    /// Longest WRITE ATOMIC (16) the backend can write atomically (blocks): every length up
    /// to it, at every LBA (no alignment or granularity restriction is advertised). 0 when it
    /// cannot, and WRITE ATOMIC (16) is not supported. See [`BlockOp::WriteAtomic`].
    pub max_atomic_transfer_blocks: u32,
    /// The state every I_T nexus of the logical unit shares: reservations, the removable
    /// medium, unit attentions for other nexuses. The control thread owns it and publishes a
    /// new one with each change (see [`crate::pr`]).
    pub reservations: Arc<ReservationState>,
}

/// Per I_T nexus, per LU state the model keeps: who the nexus is and its pending unit
/// attention conditions.
///
/// A new nexus starts with POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h) pending,
/// reported once on the first command other than INQUIRY, REPORT LUNS and REQUEST SENSE
/// (SPC-4 5.14). Conditions other nexuses' commands establish (reservations preempted, a
/// logical unit reset, ...) reach it through the logical unit's [`ReservationState`]; the
/// reactor raises local ones with [`NexusState::raise`].
#[derive(Debug, Clone)]
pub struct NexusState {
    pub(crate) pending: PendingAttentions,
    pub(crate) identity: Arc<NexusId>,
    /// The logical unit's unit-attention sequence number this nexus has seen up to.
    pub(crate) seen_event_seq: Option<u64>,
    /// Results of this nexus's EXTENDED COPY commands, for RECEIVE COPY RESULTS.
    pub(crate) held_copies: Vec<HeldCopy>,
}

impl Default for NexusState {
    /// A nexus of unknown identity (empty port names).
    fn default() -> Self {
        NexusState::for_nexus(Arc::new(NexusId::default()))
    }
}

impl NexusState {
    /// A fresh nexus of unknown identity, with the power-on unit attention pending. Prefer
    /// [`NexusState::for_nexus`]: reservations need to know who sends commands.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh nexus `identity` (shared by every LUN of the session), with the power-on unit
    /// attention pending.
    pub fn for_nexus(identity: Arc<NexusId>) -> Self {
        let mut pending = PendingAttentions::default();
        pending.raise(UnitAttention::PowerOnReset);
        NexusState {
            pending,
            identity,
            seen_event_seq: None,
            held_copies: Vec::new(),
        }
    }

    /// Who sends commands on this nexus.
    pub fn identity(&self) -> &NexusId {
        &self.identity
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
/// lba + blocks` of the [`BlockIo`], on the medium; `blocks` is never 0 except for `Flush`.
/// `Unmap` and `ExtendedCopy` are the exceptions: their ranges come from the data-out (see
/// each), and `lba`/`blocks` only summarize them.
///
/// **Serialized operations.** `CompareAndWrite`, `OrWrite` and `WriteAtomic` must look atomic
/// to every other command of the logical unit, on every reactor: from the start of their read
/// (or write) until their write completed, no other write-class operation (`Write`,
/// `WriteSame`, `WriteZeroes`, `Deallocate`, `Unmap`, `CompareAndWrite`, `OrWrite`,
/// `WriteAtomic`) overlapping their range may be in flight, and no read overlapping it may see
/// part of their write. The reactor must therefore take an exclusive lock on the range of the
/// volume shared by all reactors (waiting — parked, not failed — for overlapping writes in
/// flight to drain and holding back new overlapping ones), and release it when the command
/// completes, fails or is aborted.
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
    /// WRITE SAME: write the first `block_size` bytes of the data-out (exactly one block,
    /// checked) to every block of the range, in chunks (one buffer filled with the pattern
    /// can serve every chunk). The blocks stay mapped. With `fua`, durable before completion.
    /// Then [`good_reply`].
    WriteSame,
    /// Write zeros to every block of the range (WRITE SAME of a zero block or with NDOB,
    /// without deallocation); there is no data-out to use. The blocks must stay mapped:
    /// writing zero buffers or fallocate(FALLOC_FL_ZERO_RANGE) both do. With `fua`, durable
    /// before completion. Then [`good_reply`].
    WriteZeroes,
    /// Deallocate the range (WRITE SAME with UNMAP on a thin LU whose deallocated blocks read
    /// as zeros; the data-out pattern is not written): fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) on every
    /// backing extent of the range (io_uring `IORING_OP_FALLOCATE`); afterwards the blocks
    /// must read back as zeros. With `fua`, durable before completion. Then [`good_reply`].
    Deallocate,
    /// UNMAP: deallocate, as [`BlockOp::Deallocate`] does, each range of the command's
    /// data-out parameter list, iterated with [`unmap_ranges`]`(&data_out)` — `descriptors`
    /// ranges, each non-empty and on the medium (checked). `lba` is the first range's start
    /// and `blocks` the total of all ranges (for statistics; the blocks between ranges are
    /// not touched). Then [`good_reply`].
    Unmap { descriptors: u16 },
    /// GET LBA STATUS: find which blocks from `lba` on are mapped and which are deallocated,
    /// for up to `blocks` blocks (files: lseek SEEK_DATA / SEEK_HOLE, off the data path —
    /// e.g. on the control thread; a backend that cannot tell reports everything mapped),
    /// then answer [`lba_status_reply`]`(io, extents)` with what was found, in ascending
    /// order. There is no data-out.
    GetLbaStatus,
    /// COMPARE AND WRITE (serialized, see above): read the range and compare it with the
    /// first `blocks * block_size` bytes of the data-out. On the first difference at byte
    /// offset `n` of the range, answer [`miscompare_reply`]`(io, n)` without writing.
    /// Otherwise write the next `blocks * block_size` bytes of the data-out to the range
    /// (durable first with `fua`) and answer [`good_reply`]. The data-out is exactly `2 *
    /// blocks * block_size` bytes (checked); `blocks` fits one I/O buffer.
    CompareAndWrite,
    /// ORWRITE (serialized, see above): read the range, OR the first `blocks * block_size`
    /// bytes of the data-out into it byte by byte, write the result back (durable first with
    /// `fua`). Then [`good_reply`].
    OrWrite,
    /// EXTENDED COPY: copy, in order, each segment of the data-out parameter list iterated with
    /// [`copy_segments`]`(&data_out)` — `(source lba, destination lba, blocks)`, `segments` of
    /// them, all on this logical unit's medium (checked) — by reading the source blocks and
    /// writing them to the destination (durable first with `fua`); when a segment's source and
    /// destination overlap with the destination after the source, copy it from its end
    /// backwards. `lba` is the first destination and `blocks` the total (for statistics).
    /// Then call [`NexusState::copy_finished`] on the command's nexus (with whether it
    /// succeeded), and answer [`good_reply`] (or [`io_error_reply`]).
    ExtendedCopy {
        segments: u16,
        list_id: u8,
        /// The nexus holds the copy's result under `list_id` (for RECEIVE COPY RESULTS).
        held: bool,
    },
    /// WRITE ATOMIC (16) (serialized, see above): write the first `blocks * block_size`
    /// bytes of the data-out as a single write that is all or nothing also across a crash —
    /// one `pwritev2`/io_uring write with `RWF_ATOMIC` to the one backing extent (`blocks` is
    /// at most [`LogicalUnit::max_atomic_transfer_blocks`], which the reactor only sets above 0
    /// for backends and volume layouts where such a write exists). With `fua`, durable before
    /// completion. Then [`good_reply`].
    WriteAtomic,
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

/// Which shared-state command a [`ControlRequest`] carries (for logs and metrics; the control
/// thread re-decodes the CDB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// PERSISTENT RESERVE OUT.
    PersistentReserveOut,
    /// RESERVE (6)/(10).
    Reserve,
    /// RELEASE (6)/(10).
    Release,
    /// PREVENT ALLOW MEDIUM REMOVAL on a removable logical unit.
    MediumRemoval,
    /// START STOP UNIT with LOEJ on a removable logical unit.
    LoadEject,
}

/// A command that changes state every I_T nexus of the logical unit shares. The reactor sends
/// the command (CDB, data-out, the nexus identity, the logical unit) to the control thread,
/// which calls [`crate::pr::apply_control`] on the logical unit's newest state, persists and
/// publishes the new state, carries out the effects, and answers with the reply it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRequest {
    pub kind: ControlKind,
    /// The CDB (its first bytes; the rest zero).
    pub cdb: [u8; CDB_MAX_LEN_BYTES],
    /// Bytes the CDB asks to transfer (the parameter list length).
    pub transfer_len_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(ScsiReply),
    Io(BlockIo),
    /// Apply on the control thread (see [`ControlRequest`]).
    Control(ControlRequest),
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
/// flushes; COPY ABORTED with WRITE ERROR for an EXTENDED COPY.
pub fn io_error_reply(io: &BlockIo) -> ScsiReply {
    let asc = match io.op {
        BlockOp::Read | BlockOp::Verify | BlockOp::Compare | BlockOp::GetLbaStatus => {
            Asc::UNRECOVERED_READ_ERROR
        }
        BlockOp::Write
        | BlockOp::Flush
        | BlockOp::WriteSame
        | BlockOp::WriteZeroes
        | BlockOp::Deallocate
        | BlockOp::Unmap { .. }
        | BlockOp::CompareAndWrite
        | BlockOp::OrWrite
        | BlockOp::WriteAtomic
        | BlockOp::ExtendedCopy { .. } => Asc::WRITE_ERROR,
    };
    let key = match io.op {
        BlockOp::ExtendedCopy { .. } => SenseKey::CopyAborted,
        _ => SenseKey::MediumError,
    };
    let mut reply = reply::check_condition(Sense::new(key, asc));
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

/// The reply to send when a [`BlockOp::Compare`] or [`BlockOp::CompareAndWrite`] found a
/// difference at byte `offset_bytes` from the start of its range: MISCOMPARE / MISCOMPARE
/// DURING VERIFY OPERATION, with the offset in the INFORMATION field.
pub fn miscompare_reply(io: &BlockIo, offset_bytes: u64) -> ScsiReply {
    let mut reply = reply::check_condition(
        Sense::new(SenseKey::Miscompare, Asc::MISCOMPARE_DURING_VERIFY)
            .with_information(offset_bytes),
    );
    reply.transfer_len_bytes = io.transfer_len_bytes;
    reply
}

pub use crate::copy::copy_segments;
pub use crate::provisioning::{lba_status_reply, unmap_ranges, LbaExtent, ProvisioningStatus};
