#!/usr/bin/env bash
# Compiles the seL4 Orin device tree the way seL4 16.0.0 does (tools/dts/orinagx.dts with
# src/plat/orinagx/overlay-orinagx.dts appended, then dtc) and holds every address, interrupt,
# compatible and mailbox in it against the board's own DTB.
#
#   support/sel4/orin-agx/check.sh [BOARD.dtb]
#
# BOARD.dtb defaults to platform/testdata/tegra234-p3737-0000+p3701-0000.dtb (the devkit's DTB,
# Linux 6.1 tegra234-p3737-0000+p3701-0000.dts).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
board=${1:-$top/platform/testdata/tegra234-p3737-0000+p3701-0000.dtb}
if [ ! -f "$board" ]; then
    echo "check.sh: no board DTB at $board" >&2
    exit 1
fi
command -v dtc >/dev/null || { echo "check.sh: dtc not found (apt-get install device-tree-compiler)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat "$here/orinagx.dts" "$here/overlay-orinagx.dts" > "$work/kernel.dts"
echo "dtc -I dts -O dtb -o kernel.dtb orinagx.dts+overlay-orinagx.dts"
dtc -q -I dts -O dtb -o "$work/kernel.dtb" "$work/kernel.dts"
python3 "$here/check_dts.py" "$work/kernel.dtb" "$board"
