#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (framer, login_text, cdb, connection) for SECONDS each
# (default 60), one after the other, with the nightly toolchain. Each target's corpus grows in
# fuzz/corpus/<target>/ from the committed seeds in fuzz/seeds/<target>/. A crash is saved in
# fuzz/artifacts/<target>/ (reproduce with `cargo +nightly fuzz run <target> <file>`); the
# script goes on with the other targets and exits non-zero at the end.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs: the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s =="
    mkdir -p "corpus/$target"
    seeds=()
    [[ -d "seeds/$target" ]] && seeds=("seeds/$target")
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a run over 2 GiB is a leak.
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashes found by: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crash in ${targets[*]} (${seconds}s each)"
