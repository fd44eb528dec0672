//! MODE SENSE (6)/(10) (SPC-4 6.11, 6.12): the mode parameter header (write protect, DPOFUA),
//! the short or long LBA block descriptor (DBD, LLBAA), and the caching (08h) and control
//! (0Ah) pages, singly or all (3Fh), for every page control value. Nothing is changeable, so
//! the changeable mask is all zeros and the default and saved values equal the current ones.

use lunar_wire::scsi::{CdbSize, PageControl, Sense};

use crate::model::{Decision, LogicalUnit};
use crate::reply;

pub const PAGE_CACHING: u8 = 0x08;
pub const PAGE_CONTROL: u8 = 0x0a;
pub const PAGE_ALL: u8 = 0x3f;
/// SUBPAGE CODE FFh with page 3Fh: all pages and subpages.
const SUBPAGE_ALL: u8 = 0xff;

/// Device-specific parameter bits of a direct-access device (SBC-3 6.4.1).
const DSP_WRITE_PROTECT: u8 = 0x80;
const DSP_DPOFUA: u8 = 0x10;
/// LONGLBA bit of the MODE SENSE (10) header.
const LONGLBA: u8 = 0x01;

const SHORT_BLOCK_DESCRIPTOR_LEN_BYTES: usize = 8;
const LONG_BLOCK_DESCRIPTOR_LEN_BYTES: usize = 16;
const CACHING_PAGE_LEN_BYTES: u8 = 0x12;
const CONTROL_PAGE_LEN_BYTES: u8 = 0x0a;
/// Caching page WCE bit (byte 2).
const WCE: u8 = 0x04;
/// Control page byte 2: GLTSD (no implicit saving of log parameters).
const CONTROL_GLTSD: u8 = 0x02;
/// Control page byte 3: QUEUE ALGORITHM MODIFIER 1 (unrestricted reordering allowed).
const CONTROL_QAM_UNRESTRICTED: u8 = 0x10;
/// Control page BUSY TIMEOUT PERIOD: unlimited.
const BUSY_TIMEOUT_UNLIMITED: u16 = 0xffff;

/// The fields of a MODE SENSE CDB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModeSenseRequest {
    pub size: CdbSize,
    pub dbd: bool,
    pub llbaa: bool,
    pub page_control: PageControl,
    pub page_code: u8,
    pub subpage_code: u8,
    pub alloc_len: u16,
}

pub(crate) fn mode_sense(lu: &LogicalUnit, request: &ModeSenseRequest) -> Decision {
    let changeable = request.page_control == PageControl::Changeable;
    let mut pages = Vec::with_capacity(40);
    match (request.page_code, request.subpage_code) {
        (PAGE_CACHING, 0) => caching_page(lu, changeable, &mut pages),
        (PAGE_CONTROL, 0) => control_page(changeable, &mut pages),
        (PAGE_ALL, 0 | SUBPAGE_ALL) => {
            caching_page(lu, changeable, &mut pages);
            control_page(changeable, &mut pages);
        }
        (PAGE_CACHING | PAGE_CONTROL | PAGE_ALL, _) => {
            return reply::fail(Sense::invalid_field_in_cdb(3, None))
        }
        _ => return reply::fail(Sense::invalid_field_in_cdb(2, Some(5))),
    }

    let mut descriptor = Vec::with_capacity(LONG_BLOCK_DESCRIPTOR_LEN_BYTES);
    if !request.dbd {
        block_descriptor(lu, request.llbaa, changeable, &mut descriptor);
    }
    let mut device_specific = DSP_DPOFUA;
    if lu.read_only {
        device_specific |= DSP_WRITE_PROTECT;
    }

    let mut data = Vec::with_capacity(8 + descriptor.len() + pages.len());
    if request.size == CdbSize::Six {
        let total = 4 + descriptor.len() + pages.len();
        data.push(u8::try_from(total - 1).unwrap_or(u8::MAX));
        data.push(0); // MEDIUM TYPE
        data.push(device_specific);
        data.push(descriptor.len() as u8);
    } else {
        let total = 8 + descriptor.len() + pages.len();
        data.extend_from_slice(&u16::try_from(total - 2).unwrap_or(u16::MAX).to_be_bytes());
        data.push(0); // MEDIUM TYPE
        data.push(device_specific);
        data.push(if descriptor.len() == LONG_BLOCK_DESCRIPTOR_LEN_BYTES {
            LONGLBA
        } else {
            0
        });
        data.push(0);
        data.extend_from_slice(&(descriptor.len() as u16).to_be_bytes());
    }
    data.extend_from_slice(&descriptor);
    data.extend_from_slice(&pages);
    reply::with_data(data, u32::from(request.alloc_len))
}

/// Short (8-byte) or, with LLBAA, long (16-byte) LBA mode parameter block descriptor. Nothing
/// in it is changeable.
fn block_descriptor(lu: &LogicalUnit, llbaa: bool, changeable: bool, out: &mut Vec<u8>) {
    let (blocks, block_len) = if changeable {
        (0, 0)
    } else {
        (lu.num_blocks, lu.block_size)
    };
    if llbaa {
        out.extend_from_slice(&blocks.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&block_len.to_be_bytes());
    } else {
        let short_blocks = u32::try_from(blocks).unwrap_or(u32::MAX);
        out.extend_from_slice(&short_blocks.to_be_bytes());
        out.push(0);
        out.extend_from_slice(&block_len.to_be_bytes()[1..]);
    }
    debug_assert!(
        out.len() == SHORT_BLOCK_DESCRIPTOR_LEN_BYTES
            || out.len() == LONG_BLOCK_DESCRIPTOR_LEN_BYTES
    );
}

/// Caching mode page (SBC-3 6.4.5): WCE reflects the LU's volatile write cache; read cache
/// enabled (RCD = 0); no prefetch controls.
fn caching_page(lu: &LogicalUnit, changeable: bool, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[PAGE_CACHING, CACHING_PAGE_LEN_BYTES]);
    out.resize(start + 2 + usize::from(CACHING_PAGE_LEN_BYTES), 0);
    if !changeable && lu.write_cache {
        out[start + 2] = WCE;
    }
}

/// Control mode page (SPC-4 7.5.8): fixed-format sense (D_SENSE = 0), one task set, QERR 0,
/// unrestricted reordering, no software write protect.
fn control_page(changeable: bool, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[PAGE_CONTROL, CONTROL_PAGE_LEN_BYTES]);
    out.resize(start + 2 + usize::from(CONTROL_PAGE_LEN_BYTES), 0);
    if !changeable {
        out[start + 2] = CONTROL_GLTSD;
        out[start + 3] = CONTROL_QAM_UNRESTRICTED;
        out[start + 8..start + 10].copy_from_slice(&BUSY_TIMEOUT_UNLIMITED.to_be_bytes());
    }
}

#[cfg(test)]
#[path = "mode_tests.rs"]
mod tests;
