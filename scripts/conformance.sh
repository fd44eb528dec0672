#!/usr/bin/env bash
# Runs every iscsi-test-cu ALL.* suite (but ALL.Sanitize), one at a time under a timeout, and
# prints a per-suite table (pass / fail / skipped) with totals; a test that logged [SKIPPED] is
# counted as skipped, not passed. Exits non-zero on any problem.
#
#   scripts/conformance.sh                 start a lunard of its own: a writable 1 GiB volume
#                                          (destructive tests included), a read-only LUN for
#                                          ALL.ReadOnly, a second portal for ALL.MultipathIO
#                                          (when lunard has portal_add; otherwise one path)
#   scripts/conformance.sh URL             test iscsi://host:port/iqn/lun, read-only tests only
#   scripts/conformance.sh --dataloss URL  ... destructive tests included (overwrites the LUN!)
#
# Options: --timeout SECS (per suite, default 60), --suite ALL.Name (repeatable), --verbose,
#          --readonly-url URL (LUN for ALL.ReadOnly), --multipath-url URL (second path to URL's
#          LUN for ALL.MultipathIO).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build -q -p lunar-daemon -p lunar-tests --bins
exec "${CARGO_TARGET_DIR:-target}/debug/lunar-conformance" "$@"
