//! Tests of MODE SENSE (6)/(10): headers, block descriptors and pages for every page control.

use lunar_wire::scsi::{opcode, Asc};

use crate::model::LogicalUnit;
use crate::test_support::*;

const PC_CURRENT: u8 = 0;
const PC_CHANGEABLE: u8 = 1;
const PC_DEFAULT: u8 = 2;
const PC_SAVED: u8 = 3;

fn sense6(dbd: bool, pc: u8, page: u8, subpage: u8, alloc_len: u8) -> [u8; 6] {
    [
        opcode::MODE_SENSE_6,
        if dbd { 0x08 } else { 0 },
        pc << 6 | page,
        subpage,
        alloc_len,
        0,
    ]
}

fn sense10(dbd: bool, llbaa: bool, pc: u8, page: u8, alloc_len: u16) -> [u8; 10] {
    let len = alloc_len.to_be_bytes();
    let mut flags = 0;
    if dbd {
        flags |= 0x08;
    }
    if llbaa {
        flags |= 0x10;
    }
    [
        opcode::MODE_SENSE_10,
        flags,
        pc << 6 | page,
        0,
        0,
        0,
        0,
        len[0],
        len[1],
        0,
    ]
}

/// Mode pages as (page code, page body).
type Pages = Vec<(u8, Vec<u8>)>;

/// Split MODE SENSE (6) data into header, block descriptor and pages.
fn parse6(data: &[u8]) -> ([u8; 4], Vec<u8>, Pages) {
    assert_eq!(usize::from(data[0]) + 1, data.len(), "mode data length");
    let header = [data[0], data[1], data[2], data[3]];
    let descriptor_len = usize::from(data[3]);
    let descriptor = data[4..4 + descriptor_len].to_vec();
    (header, descriptor, parse_pages(&data[4 + descriptor_len..]))
}

fn parse_pages(mut rest: &[u8]) -> Pages {
    let mut pages = Vec::new();
    while !rest.is_empty() {
        assert_eq!(rest[0] & 0x40, 0, "no subpage format");
        let len = usize::from(rest[1]);
        pages.push((rest[0] & 0x3f, rest[2..2 + len].to_vec()));
        rest = &rest[2 + len..];
    }
    pages
}

#[test]
fn all_pages_current() {
    let data = data_of(run(&lu(), &sense6(false, PC_CURRENT, 0x3f, 0, 255), 255));
    let (header, descriptor, pages) = parse6(&data);
    assert_eq!(header[2], 0x10, "DPOFUA, not write protected");
    assert_eq!(descriptor.len(), 8);
    assert_eq!(&descriptor[0..4], &(NUM_BLOCKS as u32).to_be_bytes());
    assert_eq!(&descriptor[5..8], &BLOCK_SIZE.to_be_bytes()[1..]);
    let codes: Vec<u8> = pages.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, vec![0x08, 0x0a]);
    assert_eq!(pages[0].1.len(), 0x12);
    assert_eq!(pages[0].1[0] & 0x04, 0x04, "WCE");
    assert_eq!(pages[0].1[0] & 0x01, 0, "read cache enabled");
    let control = &pages[1].1;
    assert_eq!(control.len(), 0x0a);
    assert_eq!(control[0] & 0x04, 0, "D_SENSE clear: fixed format sense");
    assert_eq!(control[0] >> 5, 0, "TST 0");
    assert_eq!(control[2] & 0x08, 0, "SWP clear");
    assert_ne!(
        u16::from_be_bytes([control[6], control[7]]),
        0,
        "busy timeout"
    );
}

#[test]
fn single_pages_match_all_pages() {
    let all = data_of(run(&lu(), &sense6(true, PC_CURRENT, 0x3f, 0, 255), 255));
    let (_, _, all_pages) = parse6(&all);
    for (code, body) in all_pages {
        let one = data_of(run(&lu(), &sense6(true, PC_CURRENT, code, 0, 255), 255));
        let (_, descriptor, pages) = parse6(&one);
        assert!(descriptor.is_empty(), "DBD");
        assert_eq!(pages, vec![(code, body)]);
    }
}

#[test]
fn changeable_default_and_saved() {
    let changeable = data_of(run(&lu(), &sense6(true, PC_CHANGEABLE, 0x3f, 0, 255), 255));
    let (_, _, pages) = parse6(&changeable);
    assert_eq!(pages.len(), 2);
    assert!(pages.iter().all(|(_, body)| body.iter().all(|b| *b == 0)));
    let current = data_of(run(&lu(), &sense6(false, PC_CURRENT, 0x3f, 0, 255), 255));
    for pc in [PC_DEFAULT, PC_SAVED] {
        let data = data_of(run(&lu(), &sense6(false, pc, 0x3f, 0, 255), 255));
        assert_eq!(data, current);
    }
}

#[test]
fn write_protect_and_cache_bits_follow_the_lu() {
    let lu = LogicalUnit {
        read_only: true,
        write_cache: false,
        ..lu()
    };
    let data = data_of(run(&lu, &sense6(true, PC_CURRENT, 0x08, 0, 255), 255));
    let (header, _, pages) = parse6(&data);
    assert_eq!(header[2] & 0x80, 0x80, "WP");
    assert_eq!(pages[0].1[0] & 0x04, 0, "no WCE");
}

#[test]
fn mode_sense_10_long_descriptor() {
    let lu = LogicalUnit {
        num_blocks: 1 << 33,
        ..lu()
    };
    let data = data_of(run(&lu, &sense10(false, true, PC_CURRENT, 0x0a, 512), 512));
    assert_eq!(
        usize::from(u16::from_be_bytes([data[0], data[1]])) + 2,
        data.len()
    );
    assert_eq!(data[4] & 0x01, 0x01, "LONGLBA");
    assert_eq!(u16::from_be_bytes([data[6], data[7]]), 16);
    assert_eq!(&data[8..16], &(1u64 << 33).to_be_bytes());
    assert_eq!(&data[20..24], &BLOCK_SIZE.to_be_bytes());
    assert_eq!(parse_pages(&data[24..]).len(), 1);

    // Short descriptor saturates the block count.
    let data = data_of(run(&lu, &sense10(false, false, PC_CURRENT, 0x0a, 512), 512));
    assert_eq!(data[4], 0);
    assert_eq!(u16::from_be_bytes([data[6], data[7]]), 8);
    assert_eq!(&data[8..12], &[0xff; 4]);
}

#[test]
fn allocation_length_truncates() {
    let reply = reply_of(run(&lu(), &sense6(false, PC_CURRENT, 0x3f, 0, 4), 4));
    assert_eq!(reply.data_in.len(), 4);
    assert_eq!(reply.transfer_len_bytes, 4);
    let reply = reply_of(run(&lu(), &sense6(false, PC_CURRENT, 0x3f, 0, 255), 255));
    assert!(reply.data_in.len() < 255);
    assert_eq!(reply.transfer_len_bytes, 255);
}

#[test]
fn unknown_pages_and_subpages() {
    let sense = sense_of(run(&lu(), &sense6(false, PC_CURRENT, 0x1c, 0, 255), 255));
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(
        sense.field_pointer.map(|p| (p.byte, p.bit)),
        Some((2, Some(5)))
    );
    let sense = sense_of(run(&lu(), &sense6(false, PC_CURRENT, 0x0a, 1, 255), 255));
    assert_eq!(sense.field_pointer.map(|p| p.byte), Some(3));
    // All pages and subpages is all pages.
    let a = data_of(run(&lu(), &sense6(false, PC_CURRENT, 0x3f, 0xff, 255), 255));
    let b = data_of(run(&lu(), &sense6(false, PC_CURRENT, 0x3f, 0, 255), 255));
    assert_eq!(a, b);
}

#[test]
fn llbaa_is_not_a_mode_sense_6_bit() {
    let mut cdb = sense6(false, PC_CURRENT, 0x3f, 0, 255);
    cdb[1] |= 0x10;
    let sense = sense_of(run(&lu(), &cdb, 255));
    assert_eq!(
        sense.field_pointer.map(|p| (p.byte, p.bit)),
        Some((1, Some(4)))
    );
}
