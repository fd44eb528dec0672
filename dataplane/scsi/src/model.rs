//! Contract of the device model; the implementation lives in sibling modules.

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

/// Per I_T nexus, per LU state the model keeps (pending unit attentions, last sense).
#[derive(Debug, Clone, Default)]
pub struct NexusState {
    _private: (),
}

/// Block operation the volume layer must perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOp {
    Read,
    Write,
    /// Flush volatile caches of the range (SYNCHRONIZE CACHE); `blocks == 0` means to the end.
    Flush,
    /// VERIFY with BYTCHK=0: check the range is readable.
    Verify,
}

/// A command that needs backend I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockIo {
    pub op: BlockOp,
    pub lba: u64,
    pub blocks: u32,
    /// Force unit access: the write must be durable before completion.
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
    /// Bytes the CDB asks to transfer (allocation length or transfer length).
    pub transfer_len_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(ScsiReply),
    Io(BlockIo),
}

/// Decide what to do with `cdb` addressed to `lun`. `lu` is `None` when the LUN is not mapped
/// in this target; `luns` is the target's LUN list (for REPORT LUNS).
pub fn decide(
    _lu: Option<&LogicalUnit>,
    _luns: &[u64],
    _nexus: &mut NexusState,
    _cdb: &[u8],
    _expected_len_bytes: u32,
    _data_out: &[u8],
) -> Decision {
    unimplemented!("contract only")
}

/// The reply to send when the backend I/O of a `BlockIo` failed.
pub fn io_error_reply(_io: &BlockIo) -> ScsiReply {
    unimplemented!("contract only")
}
