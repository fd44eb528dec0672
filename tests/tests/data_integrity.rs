//! Known data through iSCSI: written with the harness's initiator, read back through iSCSI, then
//! compared with the bytes of the backing store at the volume's offset; the bytes around the
//! volume must stay untouched. On a sparse file (512- and 4096-byte blocks) and a loop device.

use lunar_tests::initiator::scsi::Sense;
use lunar_tests::initiator::{pattern, BlockClient, InitiatorError};
use lunar_tests::{Backing, Export, VolumeSpec};

const BACKING_LEN_BYTES: u64 = 64 << 20;
const VOLUME_OFFSET_BYTES: u64 = 4 << 20;
const VOLUME_LEN_BYTES: u64 = 32 << 20;
/// Sense key ILLEGAL REQUEST.
const SENSE_KEY_ILLEGAL_REQUEST: u8 = 0x05;
/// ASC LOGICAL BLOCK ADDRESS OUT OF RANGE.
const ASC_LBA_OUT_OF_RANGE: u8 = 0x21;

fn export(backing: Backing, tag: &str, block_size: Option<u32>) -> Export {
    let spec = VolumeSpec {
        offset_bytes: VOLUME_OFFSET_BYTES,
        size_bytes: VOLUME_LEN_BYTES,
        block_size,
        ..VolumeSpec::whole(tag, BACKING_LEN_BYTES)
    };
    Export::start(backing, spec)
}

/// (first LBA, blocks, FUA) of each write, for a volume of `num_blocks`.
fn writes(num_blocks: u64, block_len: u32) -> Vec<(u64, u32, bool)> {
    let mib_blocks = (1 << 20) / block_len;
    vec![
        (0, 1, false),
        (7, 9, true),
        (num_blocks / 2 - 3, mib_blocks, false),
        (num_blocks / 3, 3 * mib_blocks + 1, true),
        (num_blocks - 1, 1, true),
    ]
}

fn round_trip(export: &Export, expected_block_len: u32) {
    let fail = |what: &str, err: &dyn std::fmt::Display| -> ! {
        panic!("{}", export.failure(&format!("{what}: {err}")))
    };
    let mut client = BlockClient::connect(export.daemon.iscsi_addr(), &export.spec.iqn, 0)
        .unwrap_or_else(|err| fail("login and READ CAPACITY", &err));
    assert_eq!(
        (client.capacity_bytes(), client.block_len),
        (VOLUME_LEN_BYTES, expected_block_len),
        "{}",
        export.failure("capacity")
    );
    let block_len = client.block_len;
    let plan = writes(client.num_blocks, block_len);

    // A region never written reads as zeros (the backing file is sparse).
    let untouched = client
        .read(client.num_blocks / 4, 8)
        .unwrap_or_else(|err| fail("read of an unwritten region", &err));
    assert!(
        untouched.iter().all(|b| *b == 0),
        "{}",
        export.failure("unwritten blocks are not zero")
    );

    for (seed, (lba, blocks, fua)) in (1u64..).zip(plan.iter().copied()) {
        let data = pattern(seed, lba, blocks, block_len);
        client
            .write(lba, &data, fua)
            .unwrap_or_else(|err| fail(&format!("write of {blocks} blocks at LBA {lba}"), &err));
    }
    for (seed, (lba, blocks, _)) in (1u64..).zip(plan.iter().copied()) {
        let back = client
            .read(lba, blocks)
            .unwrap_or_else(|err| fail(&format!("read of {blocks} blocks at LBA {lba}"), &err));
        assert!(
            back == pattern(seed, lba, blocks, block_len),
            "{}",
            export.failure(&format!(
                "data read back at LBA {lba} ({blocks} blocks) differs from what was written"
            ))
        );
    }

    // Out of range: refused with ILLEGAL REQUEST / LBA OUT OF RANGE, nothing written.
    let beyond = pattern(99, client.num_blocks, 1, block_len);
    match client.write(client.num_blocks, &beyond, false) {
        Err(InitiatorError::Status {
            sense: Some(Sense { key, asc, .. }),
            ..
        }) if key == SENSE_KEY_ILLEGAL_REQUEST && asc == ASC_LBA_OUT_OF_RANGE => {}
        other => panic!(
            "{}",
            export.failure(&format!(
                "a write past the end must get LBA OUT OF RANGE, got {other:?}"
            ))
        ),
    }
    client
        .flush()
        .unwrap_or_else(|err| fail("SYNCHRONIZE CACHE", &err));
    client.logout().unwrap_or_else(|err| fail("logout", &err));

    // The backing store holds each block at volume offset + LBA * block length.
    for (seed, (lba, blocks, _)) in (1u64..).zip(plan.iter().copied()) {
        let at = VOLUME_OFFSET_BYTES + lba * u64::from(block_len);
        let on_disk = export
            .backing
            .read_at(at, blocks as usize * block_len as usize);
        assert!(
            on_disk == pattern(seed, lba, blocks, block_len),
            "{}",
            export.failure(&format!(
                "backing bytes at {at} differ from what was written at LBA {lba} ({blocks} blocks)"
            ))
        );
    }
    // Nothing leaked outside the volume's extent.
    let before = export.backing.read_at(0, VOLUME_OFFSET_BYTES as usize);
    let after = export.backing.read_at(
        VOLUME_OFFSET_BYTES + VOLUME_LEN_BYTES,
        (BACKING_LEN_BYTES - VOLUME_OFFSET_BYTES - VOLUME_LEN_BYTES) as usize,
    );
    assert!(
        before.iter().chain(after.iter()).all(|b| *b == 0),
        "{}",
        export.failure("bytes outside the volume's extent were modified")
    );
}

#[test]
fn data_round_trips_on_a_sparse_file() {
    let export = export(Backing::sparse_file(BACKING_LEN_BYTES), "data-file", None);
    round_trip(&export, 512);
}

#[test]
fn data_round_trips_on_a_sparse_file_with_4k_blocks() {
    let export = export(
        Backing::sparse_file(BACKING_LEN_BYTES),
        "data-file-4k",
        Some(4096),
    );
    round_trip(&export, 4096);
}

#[test]
fn data_round_trips_on_a_loop_device() {
    let Some(backing) = Backing::loop_device(BACKING_LEN_BYTES) else {
        return;
    };
    let export = export(backing, "data-loop", None);
    round_trip(&export, 512);
}
