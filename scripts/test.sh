#!/usr/bin/env bash
# The test command: installs the test dependencies if missing (scripts/install-deps.sh), builds
# the whole workspace (every target) and runs every test.
# Arguments are passed to `cargo test` (e.g. `scripts/test.sh -p lunar-tests --test demo`).
# Loop-device tests need root; without it set LUNAR_SKIP_LOOP=1 to skip them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cargo build --workspace --all-targets
cargo test --workspace "$@"
