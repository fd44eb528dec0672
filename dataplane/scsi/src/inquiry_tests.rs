//! Tests of INQUIRY: standard data layout, allocation length, and every VPD page.

use lunar_wire::scsi::{opcode, Asc};

use crate::inquiry::*;
use crate::model::{decide, LogicalUnit};
use crate::test_support::*;

fn inquiry_cdb(evpd: bool, page_code: u8, alloc_len: u16) -> [u8; 6] {
    let len = alloc_len.to_be_bytes();
    [
        opcode::INQUIRY,
        u8::from(evpd),
        page_code,
        len[0],
        len[1],
        0,
    ]
}

fn vpd(lu: &LogicalUnit, page_code: u8) -> Vec<u8> {
    let data = data_of(run(lu, &inquiry_cdb(true, page_code, 1024), 1024));
    assert_eq!(data[0], 0, "peripheral: connected direct-access device");
    assert_eq!(data[1], page_code);
    let page_len = u16::from_be_bytes([data[2], data[3]]) as usize;
    assert_eq!(data.len(), 4 + page_len, "page length matches the data");
    data
}

#[test]
fn standard_data() {
    let data = data_of(run(&lu(), &inquiry_cdb(false, 0, 260), 260));
    assert_eq!(data.len(), STANDARD_INQUIRY_LEN_BYTES);
    assert_eq!(data[0], 0x00);
    assert_eq!(data[1] & 0x80, 0, "not removable");
    assert_eq!(data[2], 0x06, "SPC-4");
    assert_eq!(data[3] & 0x0f, 2, "response data format");
    assert_eq!(data[3] & 0xc0, 0, "no AERC / TRMTSK");
    assert_eq!(usize::from(data[4]), data.len() - 5);
    assert_eq!(data[5] & 0x01, 0, "no protection information");
    assert_eq!(data[7] & 0x02, 0x02, "command queuing");
    assert_eq!(&data[8..16], VENDOR_ID);
    assert_eq!(&data[16..32], PRODUCT_ID);
    assert!(data[8..36].iter().all(|b| (0x20..=0x7e).contains(b)));
    assert_eq!(&data[36..40], b"vol1");
    let descriptors: Vec<u16> = (0..8)
        .map(|i| u16::from_be_bytes([data[58 + 2 * i], data[59 + 2 * i]]))
        .collect();
    assert!(descriptors.contains(&0x0460), "SPC-4");
    assert!(descriptors.contains(&0x04c0), "SBC-3");
}

#[test]
fn allocation_length_truncates_and_is_16_bits() {
    for alloc_len in [0u16, 5, 36, 95] {
        let reply = reply_of(run(&lu(), &inquiry_cdb(false, 0, alloc_len), 512));
        assert_eq!(reply.data_in.len(), usize::from(alloc_len));
        assert_eq!(reply.transfer_len_bytes, u32::from(alloc_len));
    }
    let a = data_of(run(&lu(), &inquiry_cdb(false, 0, 511), 512));
    let b = data_of(run(&lu(), &inquiry_cdb(false, 0, 512), 512));
    assert_eq!(a, b);
}

#[test]
fn page_code_without_evpd_is_invalid() {
    let sense = sense_of(run(&lu(), &inquiry_cdb(false, 1, 256), 256));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(2));
}

#[test]
fn supported_pages_are_ascending_and_readable() {
    let data = vpd(&lu(), VPD_SUPPORTED_PAGES);
    let pages = &data[4..];
    assert_eq!(pages, &SUPPORTED_VPD_PAGES);
    assert!(pages.windows(2).all(|w| w[0] < w[1]));
    for page in pages {
        vpd(&lu(), *page);
    }
    let sense = sense_of(run(&lu(), &inquiry_cdb(true, 0xb3, 255), 255));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn unit_serial_number_is_the_uid() {
    let data = vpd(&lu(), VPD_UNIT_SERIAL_NUMBER);
    assert_eq!(&data[4..], b"1122334455667788");
}

#[test]
fn device_identification_designators() {
    let data = vpd(&lu(), VPD_DEVICE_IDENTIFICATION);
    // NAA designator: binary, LU association, type 3, 16 bytes, NAA 6.
    assert_eq!(&data[4..8], &[0x01, 0x03, 0x00, 16]);
    let naa = &data[8..24];
    assert_eq!(naa[0] >> 4, 6);
    let company = u32::from(naa[0] & 0x0f) << 20
        | u32::from(naa[1]) << 12
        | u32::from(naa[2]) << 4
        | u32::from(naa[3] >> 4);
    assert_eq!(company, NAA_COMPANY_ID);
    assert_eq!(&naa[8..16], &0x1122_3344_5566_7788u64.to_be_bytes());
    // T10 vendor ID designator: ASCII, type 1, vendor then volume name.
    assert_eq!(&data[24..27], &[0x02, 0x01, 0x00]);
    let len = usize::from(data[27]);
    assert_eq!(&data[28..28 + len], b"LUNAR   vol1");
    // Then the port the command came through: relative target port 1 (iSCSI, PIV, target
    // port association, type 4)...
    let port = &data[28 + len..];
    assert_eq!(&port[..8], &[0x51, 0x94, 0x00, 4, 0, 0, 0, 1]);
    // ... the target port name and the target device name, NUL-terminated and padded.
    assert_eq!(&port[8..10], &[0x53, 0x98]);
    let name_len = usize::from(port[11]);
    assert_eq!(name_len % 4, 0);
    let name = &port[12..12 + name_len];
    assert!(name.starts_with(b"iqn.2026-11.dev.lunar:t,t,0x0001\0"));
    let device = &port[12 + name_len..];
    assert_eq!(&device[..2], &[0x53, 0xa8]);
    assert!(device[4..].starts_with(b"iqn.2026-11.dev.lunar:t\0"));
    assert_eq!(device.len(), 4 + usize::from(device[3]));
}

#[test]
fn device_identification_without_a_known_port() {
    let mut nexus = crate::model::NexusState::default();
    nexus.raise(crate::unit_attention::UnitAttention::PowerOnReset);
    let cdb = inquiry_cdb(true, VPD_DEVICE_IDENTIFICATION, 1024);
    let data = data_of(decide(Some(&lu()), &[0], &mut nexus, &cdb, 1024, &[]));
    let len = usize::from(data[27]);
    assert_eq!(data.len(), 28 + len, "logical unit designators only");
}

#[test]
fn designators_are_stable_and_distinct_per_volume() {
    let a = vpd(&lu(), VPD_DEVICE_IDENTIFICATION);
    assert_eq!(a, vpd(&lu(), VPD_DEVICE_IDENTIFICATION));
    let other = LogicalUnit {
        volume_uid: 2,
        volume_name: String::new(),
        ..lu()
    };
    let b = vpd(&other, VPD_DEVICE_IDENTIFICATION);
    assert_ne!(a[8..24], b[8..24]);
    let len = usize::from(b[27]);
    assert_eq!(&b[28..28 + len], b"LUNAR   0000000000000002");
}

#[test]
fn names_are_made_printable() {
    let odd = LogicalUnit {
        volume_name: "v\u{e9}l\n".to_string(),
        ..lu()
    };
    let data = data_of(run(&odd, &inquiry_cdb(false, 0, 96), 96));
    assert!(data[36..56].iter().all(|b| (0x20..=0x7e).contains(b)));
    let page = vpd(&odd, VPD_DEVICE_IDENTIFICATION);
    let len = usize::from(page[27]);
    assert!(page[28..28 + len].iter().all(|b| (0x20..=0x7e).contains(b)));
}

#[test]
fn block_limits_page() {
    let data = vpd(&lu(), VPD_BLOCK_LIMITS);
    assert_eq!(data[3], 0x3c);
    assert_eq!(
        u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        MAX_TRANSFER_BLOCKS
    );
    let be32 = |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    assert_eq!(
        data[4] & 0x01,
        0,
        "WSNZ: WRITE SAME of 0 blocks means to the end"
    );
    assert_eq!(data[5], 255, "MAXIMUM COMPARE AND WRITE LENGTH");
    assert_eq!(be32(20), 1 << 20, "MAXIMUM UNMAP LBA COUNT");
    assert_eq!(be32(24), 256, "MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT");
    assert_eq!(be32(28), 1, "OPTIMAL UNMAP GRANULARITY");
    assert_eq!(data[32], 0x80, "UGAVALID, alignment 0");
    let max_write_same = u64::from(be32(36)) << 32 | u64::from(be32(40));
    assert_eq!(max_write_same, 16 * 1024 * 1024 / u64::from(BLOCK_SIZE));
    assert_eq!(be32(44), 0, "no atomic writes");

    // Fully provisioned: no UNMAP limits. Atomic writes: their limit.
    let thick = LogicalUnit {
        max_atomic_transfer_blocks: 16,
        physical_block_exponent: 3,
        ..thick_lu()
    };
    let data = vpd(&thick, VPD_BLOCK_LIMITS);
    assert!(data[20..36].iter().all(|b| *b == 0));
    assert_eq!(
        u16::from_be_bytes([data[6], data[7]]),
        8,
        "physical block granularity"
    );
    assert_eq!(&data[44..48], &16u32.to_be_bytes());
    assert!(
        data[48..56].iter().all(|b| *b == 0),
        "no alignment or granularity"
    );
}

#[test]
fn logical_block_provisioning_page() {
    let data = vpd(&lu(), VPD_LOGICAL_BLOCK_PROVISIONING);
    assert_eq!(data.len(), 8);
    assert_eq!(
        data[5],
        0x80 | 0x40 | 0x20 | 0x04,
        "LBPU LBPWS LBPWS10 LBPRZ"
    );
    assert_eq!(data[6] & 0x07, 0x02, "thin");
    let no_zeroes = LogicalUnit {
        unmap_reads_zeroes: false,
        ..lu()
    };
    assert_eq!(vpd(&no_zeroes, VPD_LOGICAL_BLOCK_PROVISIONING)[5], 0xe0);
    let data = vpd(&thick_lu(), VPD_LOGICAL_BLOCK_PROVISIONING);
    assert_eq!(&data[4..], &[0, 0, 0, 0], "fully provisioned");
}

#[test]
fn removable_medium_bit() {
    let removable = LogicalUnit {
        removable: true,
        ..lu()
    };
    let data = data_of(run(&removable, &inquiry_cdb(false, 0, 96), 96));
    assert_eq!(data[1], 0x80);
    assert_eq!(data[5] & 0x08, 0x08, "3PC: EXTENDED COPY");
    assert_eq!(data_of(run(&lu(), &inquiry_cdb(false, 0, 96), 96))[1], 0);
}

#[test]
fn block_device_characteristics_non_rotating() {
    let data = vpd(&lu(), VPD_BLOCK_DEVICE_CHARACTERISTICS);
    assert_eq!(data[3], 0x3c);
    assert_eq!(&data[4..6], &[0x00, 0x01]);
}

#[test]
fn unmapped_lun() {
    let mut nexus = ready_nexus();
    let cdb = inquiry_cdb(false, 0, 96);
    let data = data_of(decide(None, &[0], &mut nexus, &cdb, 96, &[]));
    assert_eq!(data[0], 0x7f, "peripheral qualifier 011b, type 1Fh");
    let cdb = inquiry_cdb(true, 0x83, 255);
    let sense = sense_of(decide(None, &[0], &mut nexus, &cdb, 255, &[]));
    assert_eq!(sense.asc, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
}
