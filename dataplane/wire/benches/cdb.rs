//! CDB decoding: the READ/WRITE commands every I/O carries, and the slower paths (INQUIRY, an
//! unknown operation code) for comparison.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lunar_wire::scsi::decode;

fn cdbs() -> [(&'static str, Vec<u8>); 6] {
    [
        ("read_10", vec![0x28, 0, 0, 0, 0x10, 0, 0, 0, 8, 0]),
        ("write_10", vec![0x2a, 0x08, 0, 0, 0x10, 0, 0, 0, 8, 0]),
        (
            "read_16",
            vec![0x88, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 0],
        ),
        (
            "write_16",
            vec![0x8a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 0],
        ),
        ("inquiry_vpd", vec![0x12, 0x01, 0x83, 0x00, 0xff, 0x00]),
        ("unknown_opcode", vec![0xc7, 0, 0, 0, 0, 0]),
    ]
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("cdb");
    group.throughput(Throughput::Elements(1));
    for (name, cdb) in cdbs() {
        group.bench_function(name, |b| b.iter(|| decode(black_box(&cdb)).is_ok()));
    }
    group.finish();
}

criterion_group!(benches, decoding);
criterion_main!(benches);
