#!/usr/bin/env bash
# Runs the Criterion micro-benchmarks of the hot pure parts, then prints them as markdown:
#   lunar-wire     benches/framing.rs  PDU framing, Data-In encoding, login text parsing
#                  benches/cdb.rs      CDB decoding
#   lunar-volume   benches/lookup.rs   mapping lookup per layout, volume sizes 1 GiB .. 64 TiB
#   lunar-reactor  benches/spsc.rs     the mailbox ring (crossbeam ArrayQueue, one producer,
#                                      one consumer)
#
#   scripts/bench-micro.sh                 every benchmark, Criterion's default timing
#   scripts/bench-micro.sh --quick         shorter warm-up and measurement (a smoke run)
#   scripts/bench-micro.sh --quick plan_   only the benchmarks whose id contains "plan_"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

timing=()
if [[ "${1:-}" == "--quick" ]]; then
    timing=(--warm-up-time 0.5 --measurement-time 1)
    shift
fi
cargo bench -p lunar-wire -p lunar-volume -p lunar-reactor \
    --bench framing --bench cdb --bench lookup --bench spsc -- "${timing[@]}" "$@"
PYTHONPATH=bench python3 -m lunarbench.criterion "${CARGO_TARGET_DIR:-target}/criterion"
