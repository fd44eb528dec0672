#!/usr/bin/env bash
# lunar against tgt on the same backing device, in one run (see bench/README.md).
#
#   bench/run.sh            the full matrix, about 10 minutes on a 2-core machine
#   bench/run.sh --quick    a smoke run of every cell, about 2 minutes
#   bench/run.sh --help     every option
#
# Needs root (loop devices, tgtd). Installs what is missing: tgt, libiscsi-bin (iscsi-perf),
# util-linux (losetup, taskset); builds fio with the libiscsi engine once
# (scripts/fio-libiscsi.sh); keeps matplotlib for the chart in a virtualenv under
# ~/.cache/lunar/bench-venv. Results go to bench/results/<UTC time>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    sudo=(sudo)
fi

missing=()
for pair in tgt:tgtd libiscsi-bin:iscsi-perf util-linux:losetup util-linux:taskset; do
    package=${pair%%:*}
    tool=${pair##*:}
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" && ! -x "/sbin/$tool" ]]; then
        missing+=("$package")
    fi
done
if ((${#missing[@]} > 0)); then
    echo "bench: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" apt-get install -y -q --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >&2
fi

python=python3
if ! python3 -c 'import matplotlib' 2>/dev/null; then
    venv="${HOME:-/root}/.cache/lunar/bench-venv"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
        echo "bench: installing matplotlib into $venv" >&2
        if ! python3 -m venv "$venv" >&2; then
            "${sudo[@]}" apt-get install -y -q --no-install-recommends python3-venv >&2
            python3 -m venv "$venv" >&2
        fi
        "$venv/bin/python" -m pip install -q matplotlib >&2 ||
            echo "bench: matplotlib could not be installed; the run will have no chart" >&2
    fi
    python="$venv/bin/python"
fi

exec "$python" bench/run.py "$@"
