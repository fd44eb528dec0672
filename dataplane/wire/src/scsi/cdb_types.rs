//! The typed form of a decoded CDB ([`Cdb`]) and the field structs of the command families
//! that share a layout. Pure data: [`super::cdb::decode`] fills them in.

/// Which variant of a command family the CDB is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdbSize {
    Six,
    Ten,
    Twelve,
    Sixteen,
}

impl CdbSize {
    pub const fn len_bytes(self) -> u16 {
        match self {
            CdbSize::Six => 6,
            CdbSize::Ten => 10,
            CdbSize::Twelve => 12,
            CdbSize::Sixteen => 16,
        }
    }

    /// Byte offset of the LOGICAL BLOCK ADDRESS field in READ/WRITE/VERIFY style CDBs.
    pub const fn lba_offset(self) -> u16 {
        match self {
            CdbSize::Six => 1,
            _ => 2,
        }
    }

    /// Byte offset of the TRANSFER LENGTH (or VERIFICATION LENGTH, NUMBER OF LOGICAL BLOCKS)
    /// field in READ/WRITE/VERIFY/SYNCHRONIZE CACHE style CDBs.
    pub const fn transfer_len_offset(self) -> u16 {
        match self {
            CdbSize::Six => 4,
            CdbSize::Ten => 7,
            CdbSize::Twelve => 6,
            CdbSize::Sixteen => 10,
        }
    }
}

/// READ / WRITE (6), (10), (12), (16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWrite {
    pub size: CdbSize,
    pub lba: u64,
    /// Transfer length in logical blocks (READ/WRITE (6): 0 already turned into 256).
    pub blocks: u32,
    /// RDPROTECT / WRPROTECT.
    pub protect: u8,
    pub dpo: bool,
    pub fua: bool,
    pub group: u8,
}

/// VERIFY and WRITE AND VERIFY (10), (12), (16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyCdb {
    pub size: CdbSize,
    pub lba: u64,
    /// Verification length (VERIFY) or transfer length (WRITE AND VERIFY) in logical blocks.
    pub blocks: u32,
    /// VRPROTECT / WRPROTECT.
    pub protect: u8,
    pub dpo: bool,
    /// BYTCHK (two bits): 00b no data-out comparison, 01b compare with data-out.
    pub bytchk: u8,
    pub group: u8,
}

/// WRITE SAME (10) and (16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSameCdb {
    pub size: CdbSize,
    pub lba: u64,
    /// NUMBER OF LOGICAL BLOCKS; 0 means "to the last logical block" (when WSNZ is 0).
    pub blocks: u32,
    /// WRPROTECT.
    pub protect: u8,
    /// UNMAP: the blocks may be deallocated when that reads back as the data written.
    pub unmap: bool,
    /// NDOB (16 only): no data-out buffer, the data written is zeros.
    pub ndob: bool,
    pub group: u8,
}

/// COMPARE AND WRITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareAndWriteCdb {
    pub lba: u64,
    /// NUMBER OF LOGICAL BLOCKS compared and then written (the data-out carries twice that).
    pub blocks: u8,
    /// WRPROTECT.
    pub protect: u8,
    pub dpo: bool,
    pub fua: bool,
    pub group: u8,
}

/// PC field of MODE SENSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageControl {
    Current,
    Changeable,
    Default,
    Saved,
}

/// A decoded CDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cdb {
    TestUnitReady,
    RequestSense {
        desc: bool,
        alloc_len: u8,
    },
    Read(ReadWrite),
    Write(ReadWrite),
    Inquiry {
        evpd: bool,
        page_code: u8,
        alloc_len: u16,
    },
    ModeSense {
        size: CdbSize,
        dbd: bool,
        llbaa: bool,
        page_control: PageControl,
        page_code: u8,
        subpage_code: u8,
        alloc_len: u16,
    },
    StartStopUnit {
        immed: bool,
        power_condition_modifier: u8,
        power_condition: u8,
        no_flush: bool,
        loej: bool,
        start: bool,
    },
    PreventAllowMediumRemoval {
        prevent: u8,
    },
    ReadCapacity10 {
        lba: u32,
        pmi: bool,
    },
    ReadCapacity16 {
        lba: u64,
        pmi: bool,
        alloc_len: u32,
    },
    WriteAndVerify(VerifyCdb),
    Verify(VerifyCdb),
    SynchronizeCache {
        size: CdbSize,
        lba: u64,
        /// 0 means "to the last logical block".
        blocks: u32,
        immed: bool,
    },
    PreFetch {
        size: CdbSize,
        lba: u64,
        blocks: u32,
        immed: bool,
    },
    ReadDefectData {
        size: CdbSize,
        req_plist: bool,
        req_glist: bool,
        format: u8,
        /// READ DEFECT DATA (12) only; 0 for (10).
        address_descriptor_index: u32,
        alloc_len: u32,
    },
    ReportLuns {
        select_report: u8,
        alloc_len: u32,
    },
    ReportSupportedOperationCodes {
        rctd: bool,
        reporting_options: u8,
        requested_opcode: u8,
        requested_service_action: u16,
        alloc_len: u32,
    },
    WriteSame(WriteSameCdb),
    Unmap {
        group: u8,
        /// PARAMETER LIST LENGTH in bytes.
        param_len: u16,
    },
    GetLbaStatus {
        lba: u64,
        alloc_len: u32,
    },
    CompareAndWrite(CompareAndWriteCdb),
    /// ORWRITE (16): `protect` is ORPROTECT.
    OrWrite(ReadWrite),
    /// WRITE ATOMIC (16).
    WriteAtomic(ReadWrite),
    PersistentReserveIn {
        service_action: u8,
        alloc_len: u16,
    },
    PersistentReserveOut {
        service_action: u8,
        scope: u8,
        /// TYPE (low nibble of byte 2).
        pr_type: u8,
        /// PARAMETER LIST LENGTH in bytes.
        param_len: u32,
    },
    /// RESERVE (6) / (10) of the whole logical unit (no third party, no extents).
    Reserve {
        size: CdbSize,
    },
    /// RELEASE (6) / (10) of the whole logical unit.
    Release {
        size: CdbSize,
    },
    /// EXTENDED COPY (LID1).
    ExtendedCopy {
        /// PARAMETER LIST LENGTH in bytes.
        param_len: u32,
    },
    /// RECEIVE COPY RESULTS (COPY STATUS or OPERATING PARAMETERS).
    ReceiveCopyResults {
        service_action: u8,
        list_id: u8,
        alloc_len: u32,
    },
}
