//! INQUIRY (SPC-4 6.6): standard data with version descriptors, and the vital product data
//! pages 00h (supported pages), 80h (unit serial number), 83h (device identification: NAA
//! IEEE Registered Extended and T10 vendor ID designators for the logical unit; relative
//! target port, target port and target device names for the port asked through), B0h (block
//! limits), B1h (block device characteristics: non-rotating medium) and B2h (logical block
//! provisioning).

use lunar_wire::scsi::{Asc, Sense, SenseKey};

use crate::compare::max_compare_and_write_blocks;
use crate::model::{Decision, LogicalUnit};
use crate::nexus::{NexusId, PROTOCOL_ID_ISCSI};
use crate::provisioning::{max_write_same_blocks, MAX_UNMAP_BLOCKS, MAX_UNMAP_DESCRIPTORS};
use crate::reply;

/// T10 vendor identification (8 bytes, space padded).
pub const VENDOR_ID: &[u8; 8] = b"LUNAR   ";
/// Product identification (16 bytes, space padded).
pub const PRODUCT_ID: &[u8; 16] = b"VOLUME          ";
/// Product revision level (4 bytes).
pub const PRODUCT_REVISION: &[u8; 4] = b"0001";
/// IEEE company identifier used in the NAA IEEE Registered Extended designator. It is a
/// Company ID (CID) form value (second-least-significant bit of the first octet set), which
/// cannot collide with a manufacturer's OUI.
pub const NAA_COMPANY_ID: u32 = 0x0a_4c_55;
/// The 36-bit vendor specific identifier of the NAA designator (the 64-bit extension carries
/// the volume's unique id).
const NAA_VENDOR_SPECIFIC_ID: u64 = 0x1;

/// Version descriptors claimed in standard INQUIRY data: SAM-5, SPC-4, SBC-3, iSCSI.
pub const VERSION_DESCRIPTORS: [u16; 4] = [0x00a0, 0x0460, 0x04c0, 0x0960];

/// Length of the standard INQUIRY data this device server returns.
pub const STANDARD_INQUIRY_LEN_BYTES: usize = 96;
/// Bytes of the volume name shown in the vendor specific area of standard INQUIRY data.
const VENDOR_SPECIFIC_NAME_LEN_BYTES: usize = 20;
/// Longest volume name carried in the T10 vendor ID designator.
const DESIGNATOR_NAME_MAX_LEN_BYTES: usize = 64;

const PERIPHERAL_DIRECT_ACCESS: u8 = 0x00;
/// Peripheral qualifier 011b, device type 1Fh: no logical unit is addressed by this LUN.
const PERIPHERAL_NOT_SUPPORTED: u8 = 0x7f;
const VERSION_SPC4: u8 = 0x06;
/// HISUP (hierarchical LUN support) and RESPONSE DATA FORMAT 2.
const HISUP_RESPONSE_FORMAT_2: u8 = 0x12;
const CMDQUE: u8 = 0x02;
/// Standard INQUIRY byte 5: 3PC, third-party copy (EXTENDED COPY) is supported.
const THIRD_PARTY_COPY: u8 = 0x08;

pub const VPD_SUPPORTED_PAGES: u8 = 0x00;
pub const VPD_UNIT_SERIAL_NUMBER: u8 = 0x80;
pub const VPD_DEVICE_IDENTIFICATION: u8 = 0x83;
pub const VPD_BLOCK_LIMITS: u8 = 0xb0;
pub const VPD_BLOCK_DEVICE_CHARACTERISTICS: u8 = 0xb1;
pub const VPD_LOGICAL_BLOCK_PROVISIONING: u8 = 0xb2;
/// Supported VPD pages, ascending.
pub const SUPPORTED_VPD_PAGES: [u8; 6] = [
    VPD_SUPPORTED_PAGES,
    VPD_UNIT_SERIAL_NUMBER,
    VPD_DEVICE_IDENTIFICATION,
    VPD_BLOCK_LIMITS,
    VPD_BLOCK_DEVICE_CHARACTERISTICS,
    VPD_LOGICAL_BLOCK_PROVISIONING,
];

/// Page length of the block limits and block device characteristics pages (SBC-3).
const SBC3_VPD_PAGE_LEN_BYTES: u16 = 0x3c;
/// MEDIUM ROTATION RATE 0001h: non-rotating medium (solid state).
const NON_ROTATING: u16 = 0x0001;

const CODE_SET_BINARY: u8 = 0x01;
const CODE_SET_ASCII: u8 = 0x02;
const CODE_SET_UTF8: u8 = 0x03;
const DESIGNATOR_T10_VENDOR_ID: u8 = 0x01;
/// Association: logical unit (00b), designator type 3 (NAA).
const DESIGNATOR_NAA: u8 = 0x03;
/// PIV (the protocol identifier is valid), association target port (01b), relative target
/// port identifier (type 4).
const DESIGNATOR_RELATIVE_TARGET_PORT: u8 = 0x80 | 0x10 | 0x04;
/// PIV, association target port (01b), SCSI name string (type 8).
const DESIGNATOR_TARGET_PORT_NAME: u8 = 0x80 | 0x10 | 0x08;
/// PIV, association target device (10b), SCSI name string (type 8).
const DESIGNATOR_TARGET_DEVICE_NAME: u8 = 0x80 | 0x20 | 0x08;
/// Longest SCSI name string designator (the DESIGNATOR LENGTH byte, a multiple of 4).
const SCSI_NAME_MAX_LEN_BYTES: usize = 252;

/// Standard INQUIRY byte 1: RMB (removable medium).
const RMB: u8 = 0x80;
/// Block limits byte 32 (page offset): UGAVALID, the unmap granularity alignment is valid.
const UGAVALID: u8 = 0x80;
/// Logical block provisioning byte 5: LBPU, LBPWS, LBPWS10, LBPRZ.
const LBPU: u8 = 0x80;
const LBPWS: u8 = 0x40;
const LBPWS10: u8 = 0x20;
const LBPRZ: u8 = 0x04;
/// PROVISIONING TYPE thin (010b); 000b is full provisioning.
const PROVISIONING_TYPE_THIN: u8 = 0x02;
/// Page length of the logical block provisioning page (no provisioning group descriptor).
const LBP_PAGE_LEN_BYTES: usize = 4;

pub(crate) fn inquiry(
    lu: Option<&LogicalUnit>,
    nexus: Option<&NexusId>,
    evpd: bool,
    page_code: u8,
    alloc_len: u16,
) -> Decision {
    if !evpd {
        if page_code != 0 {
            return reply::fail(Sense::invalid_field_in_cdb(2, None));
        }
        return reply::with_data(standard_inquiry(lu), u32::from(alloc_len));
    }
    let Some(lu) = lu else {
        return reply::fail(Sense::new(
            SenseKey::IllegalRequest,
            Asc::LOGICAL_UNIT_NOT_SUPPORTED,
        ));
    };
    let page = match page_code {
        VPD_SUPPORTED_PAGES => vpd_page(page_code, &SUPPORTED_VPD_PAGES),
        VPD_UNIT_SERIAL_NUMBER => vpd_page(page_code, unit_serial_number(lu).as_bytes()),
        VPD_DEVICE_IDENTIFICATION => vpd_page(page_code, &device_identification(lu, nexus)),
        VPD_BLOCK_LIMITS => vpd_page(page_code, &block_limits(lu)),
        VPD_BLOCK_DEVICE_CHARACTERISTICS => vpd_page(page_code, &block_device_characteristics()),
        VPD_LOGICAL_BLOCK_PROVISIONING => vpd_page(page_code, &logical_block_provisioning(lu)),
        _ => return reply::fail(Sense::invalid_field_in_cdb(2, None)),
    };
    reply::with_data(page, u32::from(alloc_len))
}

/// Printable ASCII (20h..7Eh) version of `name`, other bytes replaced by '_'.
fn printable(name: &str) -> impl Iterator<Item = u8> + '_ {
    name.bytes()
        .map(|b| if (0x20..=0x7e).contains(&b) { b } else { b'_' })
}

/// Standard INQUIRY data; for an unmapped LUN, peripheral qualifier 011b / type 1Fh.
pub(crate) fn standard_inquiry(lu: Option<&LogicalUnit>) -> Vec<u8> {
    let mut data = vec![0u8; STANDARD_INQUIRY_LEN_BYTES];
    data[0] = if lu.is_some() {
        PERIPHERAL_DIRECT_ACCESS
    } else {
        PERIPHERAL_NOT_SUPPORTED
    };
    if lu.is_some_and(|lu| lu.removable) {
        data[1] = RMB;
    }
    data[2] = VERSION_SPC4;
    data[3] = HISUP_RESPONSE_FORMAT_2;
    data[4] = (STANDARD_INQUIRY_LEN_BYTES - 5) as u8;
    if lu.is_some() {
        data[5] = THIRD_PARTY_COPY;
    }
    data[7] = CMDQUE;
    data[8..16].copy_from_slice(VENDOR_ID);
    data[16..32].copy_from_slice(PRODUCT_ID);
    data[32..36].copy_from_slice(PRODUCT_REVISION);
    let name_area = &mut data[36..36 + VENDOR_SPECIFIC_NAME_LEN_BYTES];
    name_area.fill(b' ');
    if let Some(lu) = lu {
        for (dst, src) in name_area.iter_mut().zip(printable(&lu.volume_name)) {
            *dst = src;
        }
    }
    for (index, descriptor) in VERSION_DESCRIPTORS.iter().enumerate() {
        let at = 58 + 2 * index;
        data[at..at + 2].copy_from_slice(&descriptor.to_be_bytes());
    }
    data
}

/// A VPD page of a direct-access LU: header and `payload`.
fn vpd_page(page_code: u8, payload: &[u8]) -> Vec<u8> {
    let mut page = Vec::with_capacity(4 + payload.len());
    page.push(PERIPHERAL_DIRECT_ACCESS);
    page.push(page_code);
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    page.extend_from_slice(&len.to_be_bytes());
    page.extend_from_slice(&payload[..usize::from(len)]);
    page
}

/// The unit serial number: the volume's unique id in hexadecimal.
pub(crate) fn unit_serial_number(lu: &LogicalUnit) -> String {
    format!("{:016x}", lu.volume_uid)
}

/// NAA 6 (IEEE Registered Extended): company id, 36-bit vendor specific id, and the volume's
/// unique id as the 64-bit extension.
pub(crate) fn naa_designator(volume_uid: u64) -> [u8; 16] {
    let mut naa = [0u8; 16];
    let company = NAA_COMPANY_ID & 0x00ff_ffff;
    naa[0] = 0x60 | ((company >> 20) & 0x0f) as u8;
    naa[1] = (company >> 12) as u8;
    naa[2] = (company >> 4) as u8;
    naa[3] = (((company & 0x0f) << 4) as u8) | ((NAA_VENDOR_SPECIFIC_ID >> 32) & 0x0f) as u8;
    naa[4..8].copy_from_slice(&(NAA_VENDOR_SPECIFIC_ID as u32).to_be_bytes());
    naa[8..16].copy_from_slice(&volume_uid.to_be_bytes());
    naa
}

/// A SCSI name string designator: `name` NUL-terminated, padded to a multiple of four.
fn push_scsi_name(page: &mut Vec<u8>, designator: u8, name: &str) {
    let name = &name.as_bytes()[..name.len().min(SCSI_NAME_MAX_LEN_BYTES - 1)];
    let len = (name.len() + 1).next_multiple_of(4);
    page.extend_from_slice(&[
        (PROTOCOL_ID_ISCSI << 4) | CODE_SET_UTF8,
        designator,
        0,
        len as u8,
    ]);
    let start = page.len();
    page.extend_from_slice(name);
    page.resize(start + len, 0);
}

/// Designators of the target port a command came through, and of its target device.
fn port_designators(page: &mut Vec<u8>, nexus: &NexusId) {
    if nexus.relative_target_port_id != 0 {
        page.extend_from_slice(&[
            (PROTOCOL_ID_ISCSI << 4) | CODE_SET_BINARY,
            DESIGNATOR_RELATIVE_TARGET_PORT,
            0,
            4,
            0,
            0,
        ]);
        page.extend_from_slice(&nexus.relative_target_port_id.to_be_bytes());
    }
    if nexus.target_port.is_empty() {
        return;
    }
    push_scsi_name(page, DESIGNATOR_TARGET_PORT_NAME, &nexus.target_port);
    let device = nexus
        .target_port
        .rsplit_once(",t,0x")
        .map_or(nexus.target_port.as_str(), |(name, _)| name);
    push_scsi_name(page, DESIGNATOR_TARGET_DEVICE_NAME, device);
}

/// Identification descriptors of VPD page 83h.
fn device_identification(lu: &LogicalUnit, nexus: Option<&NexusId>) -> Vec<u8> {
    let mut page = Vec::with_capacity(128);
    let naa = naa_designator(lu.volume_uid);
    page.extend_from_slice(&[CODE_SET_BINARY, DESIGNATOR_NAA, 0, naa.len() as u8]);
    page.extend_from_slice(&naa);

    let mut vendor_id: Vec<u8> = VENDOR_ID.to_vec();
    if lu.volume_name.is_empty() {
        vendor_id.extend_from_slice(unit_serial_number(lu).as_bytes());
    } else {
        vendor_id.extend(printable(&lu.volume_name).take(DESIGNATOR_NAME_MAX_LEN_BYTES));
    }
    page.extend_from_slice(&[
        CODE_SET_ASCII,
        DESIGNATOR_T10_VENDOR_ID,
        0,
        vendor_id.len() as u8,
    ]);
    page.extend_from_slice(&vendor_id);
    if let Some(nexus) = nexus {
        port_designators(&mut page, nexus);
    }
    page
}

/// Block limits (SBC-3 6.5.3, SBC-4 6.6.4): transfer, COMPARE AND WRITE, UNMAP (thin logical
/// units), WRITE SAME and atomic write limits. WSNZ is 0: WRITE SAME of 0 blocks means to the
/// end of the medium.
fn block_limits(lu: &LogicalUnit) -> Vec<u8> {
    let mut page = vec![0u8; usize::from(SBC3_VPD_PAGE_LEN_BYTES)];
    let physical_blocks = 1u32 << lu.physical_block_exponent.min(15);
    // Offsets are those of the full page minus the 4-byte header.
    page[1] = max_compare_and_write_blocks(lu);
    let granularity = u16::try_from(physical_blocks).unwrap_or(u16::MAX);
    page[2..4].copy_from_slice(&granularity.to_be_bytes()); // OPTIMAL TRANSFER LENGTH GRANULARITY
    page[4..8].copy_from_slice(&lu.max_transfer_blocks.to_be_bytes());
    if lu.thin_provisioning {
        page[16..20].copy_from_slice(&MAX_UNMAP_BLOCKS.to_be_bytes());
        page[20..24].copy_from_slice(&u32::from(MAX_UNMAP_DESCRIPTORS).to_be_bytes());
        page[24..28].copy_from_slice(&physical_blocks.to_be_bytes()); // OPTIMAL UNMAP GRANULARITY
        page[28] = UGAVALID; // UNMAP GRANULARITY ALIGNMENT 0
    }
    page[32..40].copy_from_slice(&u64::from(max_write_same_blocks(lu)).to_be_bytes());
    if lu.max_atomic_transfer_blocks > 0 {
        let max_atomic = lu.max_atomic_transfer_blocks.min(lu.max_transfer_blocks);
        // ATOMIC ALIGNMENT and ATOMIC TRANSFER LENGTH GRANULARITY stay 0: no restriction.
        page[40..44].copy_from_slice(&max_atomic.to_be_bytes());
    }
    page
}

/// Logical block provisioning (SBC-3 6.5.4): thin logical units support UNMAP and WRITE SAME
/// (10)/(16) with UNMAP; LBPRZ when deallocated blocks read as zeros.
fn logical_block_provisioning(lu: &LogicalUnit) -> Vec<u8> {
    let mut page = vec![0u8; LBP_PAGE_LEN_BYTES];
    if lu.thin_provisioning {
        page[1] = LBPU | LBPWS | LBPWS10;
        if lu.unmap_reads_zeroes {
            page[1] |= LBPRZ;
        }
        page[2] = PROVISIONING_TYPE_THIN;
    }
    page
}

/// Block device characteristics (SBC-3 6.5.2): a non-rotating medium, form factor not
/// reported.
fn block_device_characteristics() -> Vec<u8> {
    let mut page = vec![0u8; usize::from(SBC3_VPD_PAGE_LEN_BYTES)];
    page[0..2].copy_from_slice(&NON_ROTATING.to_be_bytes());
    page
}

#[cfg(test)]
#[path = "inquiry_tests.rs"]
mod tests;
