//! PDU framing and encoding on the hot path: finding whole PDUs in received bytes (a lone SCSI
//! Command, a 4 KiB Data-Out, a burst of 32 commands as one read returns them), appending a
//! Data-In with status to a send buffer, and parsing a login key set.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lunar_wire::iscsi::initiator::{DataOutHeader, ScsiCommandHeader};
use lunar_wire::iscsi::target::{DataInHeader, DataInStatus, Residual, StatusSeq};
use lunar_wire::iscsi::{next_frame, push_pdu, text, FrameLimits, FrameStatus, Opcode};
use zerocopy::FromZeros;

/// Our MaxRecvDataSegmentLength in these benchmarks.
const MAX_DATA_SEGMENT_LEN_BYTES: u32 = 256 * 1024;
const IO_BYTES: usize = 4096;
const BURST_PDUS: usize = 32;

fn limits() -> FrameLimits {
    FrameLimits {
        max_data_segment_len_bytes: MAX_DATA_SEGMENT_LEN_BYTES,
        ..FrameLimits::LOGIN
    }
}

fn read_command(itt: u32) -> Vec<u8> {
    let mut header = ScsiCommandHeader::new_zeroed();
    header.opcode = Opcode::ScsiCommand as u8;
    header.flags = ScsiCommandHeader::FLAG_FINAL | ScsiCommandHeader::FLAG_READ | 1;
    header.initiator_task_tag.set(itt);
    header.expected_data_transfer_len.set(IO_BYTES as u32);
    header.cmd_sn.set(itt);
    header.cdb[..10].copy_from_slice(&[0x28, 0, 0, 0, 0x10, 0, 0, 0, 8, 0]);
    let mut out = Vec::new();
    push_pdu(&mut out, &header, &[]).expect("empty data segment fits");
    out
}

fn data_out() -> Vec<u8> {
    let mut header = DataOutHeader::new_zeroed();
    header.opcode = Opcode::DataOut as u8;
    header.flags = 0x80;
    header.initiator_task_tag.set(7);
    header.target_transfer_tag.set(9);
    let mut out = Vec::new();
    push_pdu(&mut out, &header, &[0x5a; IO_BYTES]).expect("4 KiB fits");
    out
}

/// Frames every PDU in `bytes`, returning how many there were.
fn frame_all(bytes: &[u8], limits: &FrameLimits) -> usize {
    let mut rest = bytes;
    let mut count = 0;
    while let Ok(FrameStatus::Complete(frame)) = next_frame(rest, limits) {
        black_box(frame.bhs().itt());
        rest = &rest[frame.len_bytes..];
        count += 1;
    }
    count
}

fn framing(c: &mut Criterion) {
    let limits = limits();
    let mut group = c.benchmark_group("frame");
    let command = read_command(1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("scsi_command", |b| {
        b.iter(|| frame_all(black_box(&command), &limits))
    });
    let data = data_out();
    group.bench_function("data_out_4KiB", |b| {
        b.iter(|| frame_all(black_box(&data), &limits))
    });
    let burst: Vec<u8> = (0..BURST_PDUS as u32).flat_map(read_command).collect();
    assert_eq!(frame_all(&burst, &limits), BURST_PDUS);
    group.throughput(Throughput::Elements(BURST_PDUS as u64));
    group.bench_function("burst_32_commands", |b| {
        b.iter(|| frame_all(black_box(&burst), &limits))
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    let payload = vec![0xa5u8; IO_BYTES];
    let mut out = Vec::with_capacity(2 * IO_BYTES);
    let seq = StatusSeq {
        stat_sn: 10,
        exp_cmd_sn: 11,
        max_cmd_sn: 74,
    };
    group.bench_function("data_in_4KiB_with_status", |b| {
        b.iter(|| {
            out.clear();
            let status = DataInStatus {
                status: 0,
                residual: Residual::None,
                stat_sn: seq.stat_sn,
            };
            let header = DataInHeader::new([0; 8], 7, 0, 0, true, Some(status), seq);
            push_pdu(&mut out, black_box(&header), black_box(&payload)).expect("fits");
            black_box(out.len())
        })
    });
    group.finish();
}

fn login_text(c: &mut Criterion) {
    let mut keys = Vec::new();
    for (key, value) in [
        ("InitiatorName", "iqn.2026-11.dev.lunar:lunar-load"),
        ("TargetName", "iqn.2026-11.dev.lunar:bench"),
        ("SessionType", "Normal"),
        ("HeaderDigest", "None"),
        ("DataDigest", "None"),
        ("MaxRecvDataSegmentLength", "262144"),
        ("InitialR2T", "No"),
        ("ImmediateData", "Yes"),
        ("MaxBurstLength", "1048576"),
        ("FirstBurstLength", "262144"),
        ("MaxOutstandingR2T", "1"),
        ("ErrorRecoveryLevel", "0"),
    ] {
        text::push_pair(&mut keys, key, value);
    }
    c.bench_function("text/parse_login_keys", |b| {
        b.iter(|| text::parse(black_box(&keys)).map(|pairs| pairs.len()))
    });
}

criterion_group!(benches, framing, encoding, login_text);
criterion_main!(benches);
