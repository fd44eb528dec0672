#!/usr/bin/env bash
# Builds fio with the libiscsi engine, once, from Debian's fio source package, and prints the path
# of the binary. Debian's own fio package is built without that engine.
#
#   scripts/fio-libiscsi.sh            build if needed, print the binary's path
#   scripts/fio-libiscsi.sh --rebuild  build again even if a usable binary is cached
#
# The binary lands in $LUNAR_FIO_DIR (default ~/.cache/lunar/fio) as bin/fio; a later run that
# finds it working (libiscsi and io_uring engines present) builds nothing. What it does:
#   1. enables a deb-src entry for the Debian mirror apt is already configured with
#      (/etc/apt/sources.list.d/lunar-deb-src.sources), then `apt-get update`;
#   2. installs the compilers and the libraries the engines need: build-essential, pkg-config,
#      libiscsi-dev, zlib1g-dev, libaio-dev (not the whole of `apt-get build-dep fio`, whose
#      optional engines pull in Ceph and GlusterFS);
#   3. `apt-get source fio`, `./configure --enable-libiscsi`, make.
# Progress goes to stderr; stdout carries only the path, so `fio=$(scripts/fio-libiscsi.sh)`.
set -euo pipefail

cache_dir="${LUNAR_FIO_DIR:-${HOME:-/root}/.cache/lunar/fio}"
fio_bin="$cache_dir/bin/fio"
deb_src_file=/etc/apt/sources.list.d/lunar-deb-src.sources
rebuild=0

for arg in "$@"; do
    case "$arg" in
        --rebuild) rebuild=1 ;;
        -h | --help)
            sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "fio-libiscsi: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

log() { echo "fio-libiscsi: $*" >&2; }

# A cached binary is usable when it runs and knows both engines the benchmark uses.
usable() {
    [[ -x "$fio_bin" ]] || return 1
    local engines
    engines=$("$fio_bin" --enghelp 2>/dev/null) || return 1
    grep -qw libiscsi <<<"$engines" && grep -qw io_uring <<<"$engines"
}

if [[ "$rebuild" -eq 0 ]] && usable; then
    echo "$fio_bin"
    exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# Writes a deb822 deb-src entry mirroring the first configured Debian "deb" entry (same URIs,
# suites, components and key), unless a deb-src entry is already enabled somewhere.
enable_deb_src() {
    if grep -rqsE '^[[:space:]]*(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    local uris="" suites="" components="" signed_by=""
    local sources=/etc/apt/sources.list.d/debian.sources
    if [[ -f "$sources" ]]; then
        # First stanza only: the main archive (the security archive has no fio updates of its own).
        uris=$(awk '/^$/{exit} /^URIs:/{sub(/^URIs:[ \t]*/,""); print}' "$sources")
        suites=$(awk '/^$/{exit} /^Suites:/{sub(/^Suites:[ \t]*/,""); print}' "$sources")
        components=$(awk '/^$/{exit} /^Components:/{sub(/^Components:[ \t]*/,""); print}' "$sources")
        signed_by=$(awk '/^$/{exit} /^Signed-By:/{sub(/^Signed-By:[ \t]*/,""); print}' "$sources")
    elif [[ -f /etc/apt/sources.list ]]; then
        local line
        line=$(grep -m1 -E '^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://' /etc/apt/sources.list || true)
        line=$(sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' <<<"$line")
        uris=$(awk '{print $1}' <<<"$line")
        suites=$(awk '{print $2}' <<<"$line")
        components=$(awk '{for (i = 3; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : "")}' <<<"$line")
    fi
    if [[ -z "$uris" || -z "$suites" ]]; then
        log "cannot find a configured Debian mirror to take source packages from"
        exit 1
    fi
    log "enabling deb-src for $uris ($suites) in $deb_src_file"
    {
        echo "Types: deb-src"
        echo "URIs: $uris"
        echo "Suites: $suites"
        echo "Components: ${components:-main}"
        if [[ -n "$signed_by" ]]; then
            echo "Signed-By: $signed_by"
        fi
    } | "${sudo[@]}" tee "$deb_src_file" >/dev/null
}

enable_deb_src
log "apt-get update"
"${sudo[@]}" apt-get update -q >&2
log "installing build dependencies"
"${sudo[@]}" apt-get install -y -q --no-install-recommends \
    build-essential pkg-config dpkg-dev libiscsi-dev zlib1g-dev libaio-dev >&2

work_dir=$(mktemp -d)
trap 'rm -rf "$work_dir"' EXIT
log "fetching Debian's fio source package into $work_dir"
(cd "$work_dir" && apt-get source -q fio >&2)
src_dir=$(find "$work_dir" -mindepth 1 -maxdepth 1 -type d -name 'fio-*' | head -n1)
if [[ -z "$src_dir" ]]; then
    log "apt-get source fio produced no source tree"
    exit 1
fi

log "building $(basename "$src_dir") with --enable-libiscsi"
(
    cd "$src_dir"
    ./configure --prefix="$cache_dir" --enable-libiscsi >&2
    make -j"$(nproc)" >&2
)
mkdir -p "$cache_dir/bin"
install -m 0755 "$src_dir/fio" "$fio_bin"
echo "$(basename "$src_dir")" >"$cache_dir/SOURCE"

if ! usable; then
    log "the built fio lacks the libiscsi or the io_uring engine"
    exit 1
fi
log "built $fio_bin"
echo "$fio_bin"
