#!/usr/bin/env bash
# Installs what the tests need, with apt-get, non-interactively; does nothing if all is there.
#   libiscsi-bin  iscsi-test-cu, iscsi-ls, iscsi-inq, iscsi-readcapacity16 (the iSCSI clients)
#   util-linux    losetup (loop devices)
#   coreutils     timeout (scripts)
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

for tool in iscsi-test-cu iscsi-ls iscsi-inq iscsi-readcapacity16 losetup timeout; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" && ! -x "/sbin/$tool" ]]; then
        echo "install-deps: $tool is still missing" >&2
        exit 1
    fi
done
echo "install-deps: all test dependencies present"
