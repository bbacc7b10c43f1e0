#!/usr/bin/env bash
# Copies the Orin AGX platform into a seL4 16.0.0 source tree and applies the two changes seL4
# 16.0.0 needs to run on all 12 Tegra234 cores (see patch-sel4-16.py). Fetches nothing, builds
# nothing. Idempotent: running it twice leaves the same tree.
#
#   support/sel4/orin-agx/install.sh /path/to/seL4        # the kernel repository, tag 16.0.0
#   support/sel4/orin-agx/install.sh --no-smp-fix /path/to/seL4   # files only (then build with
#                                                                  # -DKernelMaxNumNodes=4)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
smp_fix=1
if [ "${1:-}" = "--no-smp-fix" ]; then
    smp_fix=0
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--no-smp-fix] SEL4_SOURCE_DIR" >&2
    exit 2
fi
tree=$1
if [ ! -f "$tree/VERSION" ] || [ ! -f "$tree/configs/seL4Config.cmake" ]; then
    echo "$tree: not a seL4 kernel source tree (no VERSION or configs/seL4Config.cmake)" >&2
    exit 1
fi
version=$(cat "$tree/VERSION")
if [ "$version" != "16.0.0" ]; then
    echo "$tree is seL4 $version; these files are written for 16.0.0" >&2
    exit 1
fi

install_file() {
    mkdir -p "$(dirname "$tree/$2")"
    cp "$here/$1" "$tree/$2"
    echo "installed $2"
}
install_file config.cmake src/plat/orinagx/config.cmake
install_file overlay-orinagx.dts src/plat/orinagx/overlay-orinagx.dts
install_file orinagx.dts tools/dts/orinagx.dts
install_file constants.h libsel4/sel4_plat_include/orinagx/sel4/plat/api/constants.h

if [ "$smp_fix" = 1 ]; then
    python3 "$here/patch-sel4-16.py" "$tree"
else
    echo "not patched: build with -DKernelMaxNumNodes=4 (cluster 0 only)"
fi
