//! INQUIRY (SPC-4 6.6): standard data with version descriptors, and the vital product data
//! pages 00h (supported pages), 80h (unit serial number), 83h (device identification: NAA
//! IEEE Registered Extended and T10 vendor ID designators), B0h (block limits) and B1h (block
//! device characteristics: non-rotating medium).

use lunar_wire::scsi::{Asc, Sense, SenseKey};

use crate::model::{Decision, LogicalUnit};
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

pub const VPD_SUPPORTED_PAGES: u8 = 0x00;
pub const VPD_UNIT_SERIAL_NUMBER: u8 = 0x80;
pub const VPD_DEVICE_IDENTIFICATION: u8 = 0x83;
pub const VPD_BLOCK_LIMITS: u8 = 0xb0;
pub const VPD_BLOCK_DEVICE_CHARACTERISTICS: u8 = 0xb1;
/// Supported VPD pages, ascending.
pub const SUPPORTED_VPD_PAGES: [u8; 5] = [
    VPD_SUPPORTED_PAGES,
    VPD_UNIT_SERIAL_NUMBER,
    VPD_DEVICE_IDENTIFICATION,
    VPD_BLOCK_LIMITS,
    VPD_BLOCK_DEVICE_CHARACTERISTICS,
];

/// Page length of the block limits and block device characteristics pages (SBC-3).
const SBC3_VPD_PAGE_LEN_BYTES: u16 = 0x3c;
/// MEDIUM ROTATION RATE 0001h: non-rotating medium (solid state).
const NON_ROTATING: u16 = 0x0001;

const CODE_SET_BINARY: u8 = 0x01;
const CODE_SET_ASCII: u8 = 0x02;
const DESIGNATOR_T10_VENDOR_ID: u8 = 0x01;
/// Association: logical unit (00b), designator type 3 (NAA).
const DESIGNATOR_NAA: u8 = 0x03;

pub(crate) fn inquiry(
    lu: Option<&LogicalUnit>,
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
        VPD_DEVICE_IDENTIFICATION => vpd_page(page_code, &device_identification(lu)),
        VPD_BLOCK_LIMITS => vpd_page(page_code, &block_limits(lu)),
        VPD_BLOCK_DEVICE_CHARACTERISTICS => vpd_page(page_code, &block_device_characteristics()),
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
    data[2] = VERSION_SPC4;
    data[3] = HISUP_RESPONSE_FORMAT_2;
    data[4] = (STANDARD_INQUIRY_LEN_BYTES - 5) as u8;
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

/// Identification descriptors of VPD page 83h.
fn device_identification(lu: &LogicalUnit) -> Vec<u8> {
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
    page
}

/// Block limits (SBC-3 6.5.3): only the maximum transfer length is limited; no UNMAP, WRITE
/// SAME or COMPARE AND WRITE.
fn block_limits(lu: &LogicalUnit) -> Vec<u8> {
    let mut page = vec![0u8; usize::from(SBC3_VPD_PAGE_LEN_BYTES)];
    // Offsets are those of the full page minus the 4-byte header.
    page[2..4].copy_from_slice(&1u16.to_be_bytes()); // OPTIMAL TRANSFER LENGTH GRANULARITY
    page[4..8].copy_from_slice(&lu.max_transfer_blocks.to_be_bytes());
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
