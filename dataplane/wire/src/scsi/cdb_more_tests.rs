//! Decoding tests of the provisioning, atomic-write and reservation commands.

use super::*;
use crate::scsi::constants::Asc;

fn cdb16(opcode: u8, flags: u8, lba: u64, len: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = opcode;
    cdb[1] = flags;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&len.to_be_bytes());
    cdb
}

#[test]
fn write_same_10_and_16() {
    let cdb = [0x41, 0x08, 0, 0, 0x12, 0x34, 0x05, 0x01, 0x00, 0];
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::WriteSame(WriteSameCdb {
            size: CdbSize::Ten,
            lba: 0x1234,
            blocks: 256,
            protect: 0,
            unmap: true,
            ndob: false,
            group: 5,
        }))
    );
    let cdb = cdb16(0x93, 0x21, 1 << 40, 7);
    let Ok(Cdb::WriteSame(ws)) = decode(&cdb) else {
        panic!("not a write same: {:?}", decode(&cdb));
    };
    assert_eq!((ws.lba, ws.blocks, ws.protect), (1 << 40, 7, 1));
    assert!(ws.ndob && !ws.unmap);
    // ANCHOR is not supported: the bit is pointed at.
    let sense = decode(&[0x41, 0x18, 0, 0, 0, 0, 0, 0, 1, 0])
        .unwrap_err()
        .sense();
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    let pointer = sense.field_pointer.expect("pointer");
    assert_eq!((pointer.byte, pointer.bit), (1, Some(4)));
}

#[test]
fn unmap_and_get_lba_status() {
    let cdb = [0x42, 0, 0, 0, 0, 0, 0x02, 0x00, 0x18, 0];
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::Unmap {
            group: 2,
            param_len: 24
        })
    );
    // ANCHOR (byte 1 bit 0) is refused.
    assert!(decode(&[0x42, 1, 0, 0, 0, 0, 0, 0, 0x18, 0]).is_err());
    let cdb = cdb16(0x9e, 0x12, 99, 24);
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::GetLbaStatus {
            lba: 99,
            alloc_len: 24
        })
    );
}

#[test]
fn compare_and_write_orwrite_write_atomic() {
    let mut cdb = cdb16(0x89, 0x18, 5, 0);
    cdb[13] = 3;
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::CompareAndWrite(CompareAndWriteCdb {
            lba: 5,
            blocks: 3,
            protect: 0,
            dpo: true,
            fua: true,
            group: 0,
        }))
    );
    // Bytes 10..12 of COMPARE AND WRITE are reserved.
    cdb[11] = 1;
    assert!(decode(&cdb).is_err());

    let cdb = cdb16(0x8b, 0x08, 8, 300);
    let Ok(Cdb::OrWrite(rw)) = decode(&cdb) else {
        panic!("not an orwrite");
    };
    assert_eq!((rw.lba, rw.blocks, rw.fua), (8, 300, true));

    let mut cdb = cdb16(0x9c, 0x10, 16, 0);
    cdb[12..14].copy_from_slice(&9u16.to_be_bytes());
    let Ok(Cdb::WriteAtomic(rw)) = decode(&cdb) else {
        panic!("not a write atomic");
    };
    assert_eq!((rw.lba, rw.blocks, rw.dpo), (16, 9, true));
    // ATOMIC BOUNDARY is not supported.
    cdb[10] = 1;
    assert!(decode(&cdb).is_err());
}

#[test]
fn persistent_reserve_in_and_out() {
    let cdb = [0x5e, 0x03, 0, 0, 0, 0, 0, 0x10, 0x00, 0];
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::PersistentReserveIn {
            service_action: 3,
            alloc_len: 4096
        })
    );
    let bad = [0x5e, 0x04, 0, 0, 0, 0, 0, 0x10, 0x00, 0];
    assert_eq!(
        decode(&bad),
        Err(CdbError::UnsupportedServiceAction {
            opcode: 0x5e,
            service_action: 4
        })
    );
    let cdb = [0x5f, 0x01, 0x03, 0, 0, 0, 0, 0, 24, 0];
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::PersistentReserveOut {
            service_action: 1,
            scope: 0,
            pr_type: 3,
            param_len: 24
        })
    );
    let moved = [0x5f, 0x07, 0x21, 0, 0, 0, 0, 1, 0, 0];
    let Ok(Cdb::PersistentReserveOut {
        service_action,
        scope,
        pr_type,
        param_len,
    }) = decode(&moved)
    else {
        panic!("not a PR OUT");
    };
    assert_eq!((service_action, scope, pr_type, param_len), (7, 2, 1, 256));
}

#[test]
fn reserve_and_release() {
    assert_eq!(
        decode(&[0x16, 0, 0, 0, 0, 0]),
        Ok(Cdb::Reserve { size: CdbSize::Six })
    );
    assert_eq!(
        decode(&[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Ok(Cdb::Release { size: CdbSize::Ten })
    );
    // Third-party reservations are not supported.
    assert!(decode(&[0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    assert!(decode(&[0x16, 0x02, 0, 0, 0, 0]).is_err());
}

#[test]
fn extended_copy_and_receive_copy_results() {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&76u32.to_be_bytes());
    assert_eq!(decode(&cdb), Ok(Cdb::ExtendedCopy { param_len: 76 }));
    cdb[1] = 0x01; // LID4: not supported
    assert!(decode(&cdb).is_err());
    let mut cdb = [0u8; 16];
    cdb[0] = 0x84;
    cdb[1] = 0x03;
    cdb[2] = 7;
    cdb[10..14].copy_from_slice(&1024u32.to_be_bytes());
    assert_eq!(
        decode(&cdb),
        Ok(Cdb::ReceiveCopyResults {
            service_action: 3,
            list_id: 7,
            alloc_len: 1024
        })
    );
    cdb[1] = 0x04; // RECEIVE ROD TOKEN INFORMATION: not supported
    assert!(decode(&cdb).is_err());
}
