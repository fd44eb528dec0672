#!/usr/bin/env bash
# Installs what the tests need, with apt-get, non-interactively; does nothing if all is there.
#   libiscsi-bin  iscsi-test-cu, iscsi-ls, iscsi-inq, iscsi-readcapacity16 (the iSCSI clients)
#   util-linux    losetup (loop devices)
#   coreutils     timeout (scripts)
#   qemu-utils and qemu-block-extra (of the same version)  qemu-img and qemu-io with QEMU's
#                 iSCSI driver (block-iscsi), the second real client of the tests
# The Rust toolchain is taken from rust-toolchain.toml by rustup and is not installed here.
set -euo pipefail

packages=(libiscsi-bin util-linux coreutils)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# QEMU's iSCSI driver is a loadable module of qemu-block-extra, which must match qemu-utils
# exactly (a mismatched one would replace qemu-utils): take the version qemu-utils has, from
# the distribution's backports if that is where it came from.
qemu_iscsi_module() {
    compgen -G "/usr/lib/*/qemu/block-iscsi.so" >/dev/null
}
if ! command -v qemu-img >/dev/null 2>&1 || ! qemu_iscsi_module; then
    sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    version=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    if [[ -z "$version" ]]; then
        echo "install-deps: installing qemu-utils qemu-block-extra"
        "${sudo[@]}" apt-get update -q
        "${sudo[@]}" apt-get install -y -q --no-install-recommends qemu-utils qemu-block-extra
    else
        # `apt-cache show PKG=VERSION` exits 0 even when no source has that version: ask
        # madison, which lists the versions the sources have.
        if ! apt-cache madison qemu-block-extra | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
            grep -qxF "$version"; then
            codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
            if [[ "$version" == *bpo* ]]; then
                echo "deb http://deb.debian.org/debian ${codename}-backports main" |
                    "${sudo[@]}" tee /etc/apt/sources.list.d/lunar-backports.list >/dev/null
            fi
            "${sudo[@]}" apt-get update -q
        fi
        echo "install-deps: installing qemu-block-extra=$version"
        "${sudo[@]}" apt-get install -y -q --no-install-recommends "qemu-block-extra=$version"
    fi
fi

for tool in iscsi-test-cu iscsi-ls iscsi-inq iscsi-readcapacity16 losetup timeout qemu-img qemu-io; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" && ! -x "/sbin/$tool" ]]; then
        echo "install-deps: $tool is still missing" >&2
        exit 1
    fi
done
if ! qemu_iscsi_module; then
    echo "install-deps: QEMU's iSCSI driver (block-iscsi.so) is still missing" >&2
    exit 1
fi
echo "install-deps: all test dependencies present"
