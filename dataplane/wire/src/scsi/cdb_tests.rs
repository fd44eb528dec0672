//! Tests of the CDB decoder: field extraction per command, validation failures, and
//! property tests (arbitrary bytes never panic; in-mask CDBs decode; out-of-mask bits are
//! pointed at).

use super::*;
use crate::scsi::command_table::COMMANDS;
use crate::scsi::constants::{Asc, SenseKey};
use proptest::prelude::*;

#[test]
fn read10_fields() {
    let cdb = [0x28, 0x18, 0x00, 0x01, 0x02, 0x03, 0x05, 0x01, 0x00, 0x00];
    let Ok(Cdb::Read(rw)) = decode(&cdb) else {
        panic!("not a read: {:?}", decode(&cdb));
    };
    assert_eq!(rw.size, CdbSize::Ten);
    assert_eq!(rw.lba, 0x0001_0203);
    assert_eq!(rw.blocks, 256);
    assert!(rw.dpo && rw.fua);
    assert_eq!(rw.protect, 0);
    assert_eq!(rw.group, 5);
}

#[test]
fn read6_zero_length_means_256_blocks() {
    let cdb = [0x08, 0x1f, 0xff, 0xff, 0x00, 0x00];
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::Read(ReadWrite {
            size: CdbSize::Six,
            lba: 0x1f_ffff,
            blocks: 256,
            protect: 0,
            dpo: false,
            fua: false,
            group: 0,
        }))
    );
}

#[test]
fn write16_fields() {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x8a;
    cdb[1] = 0x28; // WRPROTECT=1, FUA
    cdb[2..10].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    cdb[10..14].copy_from_slice(&77u32.to_be_bytes());
    let Ok(Cdb::Write(rw)) = decode(&cdb) else {
        panic!("not a write");
    };
    assert_eq!(rw.lba, 0x0102_0304_0506_0708);
    assert_eq!(rw.blocks, 77);
    assert_eq!(rw.protect, 1);
    assert!(rw.fua && !rw.dpo);
}

#[test]
fn write12_and_read12() {
    let cdb = [0xaa, 0x00, 0, 0, 0x10, 0, 0, 0, 0x01, 0x00, 0x00, 0x00];
    let Ok(Cdb::Write(rw)) = decode(&cdb) else {
        panic!("not a write");
    };
    assert_eq!((rw.size, rw.lba, rw.blocks), (CdbSize::Twelve, 0x1000, 256));
    let cdb = [0xa8, 0x00, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x00];
    assert!(matches!(
        decode(&cdb),
        Ok(Cdb::Read(ReadWrite {
            lba: 1,
            blocks: 2,
            ..
        }))
    ));
}

#[test]
fn verify_bytchk_and_length() {
    let cdb = [0x2f, 0x12, 0, 0, 0, 9, 0, 0, 4, 0];
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::Verify(VerifyCdb {
            size: CdbSize::Ten,
            lba: 9,
            blocks: 4,
            protect: 0,
            dpo: true,
            bytchk: 1,
            group: 0,
        }))
    );
    let mut cdb16 = [0u8; 16];
    cdb16[0] = 0x8e;
    cdb16[1] = 0x02;
    cdb16[13] = 3;
    assert!(matches!(
        decode(&cdb16),
        Ok(Cdb::WriteAndVerify(VerifyCdb {
            bytchk: 1,
            blocks: 3,
            size: CdbSize::Sixteen,
            ..
        }))
    ));
}

#[test]
fn inquiry_and_mode_sense_fields() {
    assert_eq!(
        decode(&[0x12, 0x01, 0x83, 0x01, 0x00, 0x00]),
        Ok(Cdb::Inquiry {
            evpd: true,
            page_code: 0x83,
            alloc_len: 256,
        })
    );
    assert_eq!(
        decode(&[0x5a, 0x18, 0x7f, 0xff, 0, 0, 0, 0x10, 0x00, 0x00]),
        Ok(Cdb::ModeSense {
            size: CdbSize::Ten,
            dbd: true,
            llbaa: true,
            page_control: PageControl::Changeable,
            page_code: 0x3f,
            subpage_code: 0xff,
            alloc_len: 0x1000,
        })
    );
}

#[test]
fn service_action_commands() {
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    assert_eq!(
        decode(&rc16),
        Ok(Cdb::ReadCapacity16 {
            lba: 0,
            pmi: false,
            alloc_len: 32,
        })
    );
    rc16[1] = 0x13; // not a service action of SERVICE ACTION IN (16) this decoder knows
    assert_eq!(
        decode(&rc16),
        Err(CdbError::UnsupportedServiceAction {
            opcode: 0x9e,
            service_action: 0x13,
        })
    );
    let sense = decode(&rc16).unwrap_err().sense();
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(1));

    let rsoc = [0xa3, 0x0c, 0x82, 0x28, 0x00, 0x00, 0, 0, 0xff, 0xff, 0, 0];
    assert_eq!(
        decode(&rsoc),
        Ok(Cdb::ReportSupportedOperationCodes {
            rctd: true,
            reporting_options: 2,
            requested_opcode: 0x28,
            requested_service_action: 0,
            alloc_len: 0xffff,
        })
    );
}

#[test]
fn pre_fetch_fields() {
    let cdb = [0x34, 0x02, 0, 0, 0, 7, 0x03, 0, 9, 0];
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::PreFetch {
            size: CdbSize::Ten,
            lba: 7,
            blocks: 9,
            immed: true,
        })
    );
    let mut cdb16 = [0u8; 16];
    cdb16[0] = 0x90;
    cdb16[9] = 1;
    cdb16[13] = 2;
    assert!(matches!(
        decode(&cdb16),
        Ok(Cdb::PreFetch {
            size: CdbSize::Sixteen,
            lba: 1,
            blocks: 2,
            immed: false
        })
    ));
}

#[test]
fn reserved_bit_is_pointed_at() {
    // READ (10) byte 1 bit 0 is obsolete/reserved.
    let cdb = [0x28, 0x01, 0, 0, 0, 0, 0, 0, 1, 0];
    assert_eq!(
        decode(&cdb),
        Err(CdbError::InvalidField {
            byte: 1,
            bit: Some(0),
        })
    );
    // TEST UNIT READY byte 2.
    assert_eq!(
        decode(&[0x00, 0, 0x40, 0, 0, 0]),
        Err(CdbError::InvalidField {
            byte: 2,
            bit: Some(6),
        })
    );
}

#[test]
fn control_byte_naca_and_link_are_refused_vendor_bits_ignored() {
    assert_eq!(
        decode(&[0x00, 0, 0, 0, 0, 0x04]),
        Err(CdbError::InvalidField {
            byte: 5,
            bit: Some(2),
        })
    );
    assert_eq!(
        decode(&[0x00, 0, 0, 0, 0, 0x01]),
        Err(CdbError::InvalidField {
            byte: 5,
            bit: Some(0),
        })
    );
    assert_eq!(decode(&[0x00, 0, 0, 0, 0, 0xc0]), Ok(Cdb::TestUnitReady));
}

#[test]
fn unknown_opcode_and_truncation() {
    assert_eq!(decode(&[0x04; 6]), Err(CdbError::UnsupportedOpcode(0x04)));
    assert_eq!(
        decode(&[0x04; 6]).unwrap_err().sense().asc,
        Asc::INVALID_COMMAND_OPERATION_CODE
    );
    assert_eq!(
        decode(&[]),
        Err(CdbError::Truncated {
            needed_bytes: 1,
            len_bytes: 0,
        })
    );
    assert_eq!(
        decode(&[0x28, 0, 0, 0]),
        Err(CdbError::Truncated {
            needed_bytes: 10,
            len_bytes: 4,
        })
    );
    assert_eq!(
        decode(&[0x28, 0, 0, 0]).unwrap_err().sense().key,
        SenseKey::IllegalRequest
    );
}

#[test]
fn iscsi_padding_is_ignored() {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x00;
    cdb[10] = 0xff; // beyond the 6-byte CDB
    assert_eq!(decode(&cdb), Ok(Cdb::TestUnitReady));
}

/// A CDB for `info` whose bits are random but inside the usage mask.
fn in_mask_cdb(index: usize, noise: [u8; 16]) -> Vec<u8> {
    let info = &COMMANDS[index % COMMANDS.len()];
    let len = info.cdb_len();
    let mut cdb: Vec<u8> = noise[..len]
        .iter()
        .zip(info.usage)
        .map(|(n, u)| n & u)
        .collect();
    cdb[0] = info.opcode;
    if let Some(sa) = info.service_action {
        cdb[1] = sa;
    }
    cdb[len - 1] = noise[len - 1] & 0xc0; // vendor bits only
    cdb
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Err(error) = decode(&bytes) {
            let _ = error.sense().encode(crate::scsi::SenseFormat::Fixed);
        }
    }

    #[test]
    fn in_mask_cdbs_decode(index in 0usize..128, noise in any::<[u8; 16]>()) {
        let cdb = in_mask_cdb(index, noise);
        prop_assert!(decode(&cdb).is_ok(), "{:02x?} -> {:?}", cdb, decode(&cdb));
    }

    #[test]
    fn out_of_mask_bit_is_reported(index in 0usize..128, noise in any::<[u8; 16]>(),
                                   byte_pick in any::<usize>(), bit in 0u8..8) {
        let mut cdb = in_mask_cdb(index, noise);
        let info = &COMMANDS[index % COMMANDS.len()];
        let len = cdb.len();
        let byte = 1 + byte_pick % (len - 1);
        let allowed = if byte == len - 1 {
            !0x3f
        } else if byte == 1 && info.service_action.is_some() {
            0x1f
        } else {
            info.usage[byte]
        };
        prop_assume!(allowed & (1 << bit) == 0);
        // Clear the lower out-of-mask bits so the reported bit is the one we set.
        cdb[byte] = (cdb[byte] & allowed) | (1 << bit);
        prop_assert_eq!(
            decode(&cdb),
            Err(CdbError::InvalidField { byte: byte as u16, bit: Some(bit) })
        );
    }
}
