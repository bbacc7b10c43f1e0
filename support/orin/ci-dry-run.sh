#!/usr/bin/env bash
# CI check of support/orin/flash.sh without a board or an L4T BSP: builds a fake
# Linux_for_Tegra and fake images in a temporary directory, runs flash.sh --dry-run, and checks
# that it prints every step with the exact commands, changes nothing, and refuses bad inputs.
#
# Usage: support/orin/ci-dry-run.sh [REAL.efi]   (exit 0: all checks passed)
#   REAL.efi  a real EFI application from crates/efi-loader (CI passes the one
#             support/qemu/efi-smoke.sh built and booted); without it, a synthetic PE header.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
flash=$here/flash.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
pass() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failures=$((failures + 1)); }

# A fake BSP: just the files flash.sh looks at. Its flash.sh records any call (must not happen).
bsp=$work/Linux_for_Tegra
mkdir -p "$bsp/kernel" "$bsp/bootloader/generic/cfg" "$bsp/tools/kernel_flash" "$bsp/rootfs/etc"
printf '#!/bin/sh\necho called >"%s/flash-called"\n' "$work" >"$bsp/flash.sh"
printf '#!/bin/sh\n# usage: l4t_initrd_flash.sh [-k <partition>] <board> <rootdev>\necho called >"%s/initrd-called"\n' \
    "$work" >"$bsp/tools/kernel_flash/l4t_initrd_flash.sh"
chmod +x "$bsp/flash.sh" "$bsp/tools/kernel_flash/l4t_initrd_flash.sh"
echo 'BOARD=fake' >"$bsp/jetson-agx-orin-devkit.conf"
echo 'the BSP kernel' >"$bsp/kernel/Image"
echo '# R36 (release), REVISION: 4.3 (fake)' >"$bsp/rootfs/etc/nv_tegra_release"
cat >"$bsp/bootloader/generic/cfg/flash_t234_qspi_sdmmc.xml" <<'EOF'
<partition_layout>
  <device type="sdmmc_user" instance="3">
    <partition name="A_kernel" type="data"><allocation_policy> sequential </allocation_policy>
      <size> 134217728 </size></partition>
    <partition name="B_kernel" type="data"><size> 134217728 </size></partition>
  </device>
</partition_layout>
EOF
(cd "$bsp" && find . -type f -exec sha256sum {} + | sort) >"$work/before"

# Images: a minimal PE32+ AArch64 EFI application header, an x86-64 one, an ELF, junk.
real=${1:-}
if [[ -n $real ]]; then
    [[ -f $real ]] || { echo "ci-dry-run: $real: no such file" >&2; exit 2; }
    echo "ci-dry-run: the image is $real ($(stat -c %s "$real") bytes)"
fi
python3 - "$work" "$real" <<'EOF'
import struct, sys
d = sys.argv[1]
def pe(machine, subsystem):
    b = bytearray(4096)
    b[0:2] = b"MZ"
    struct.pack_into("<I", b, 0x3c, 0x40)
    b[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HH", b, 0x44, machine, 1)        # Machine, NumberOfSections
    struct.pack_into("<H", b, 0x54, 0xf0)                # SizeOfOptionalHeader
    struct.pack_into("<H", b, 0x58, 0x20b)               # PE32+
    struct.pack_into("<H", b, 0x58 + 68, subsystem)      # Subsystem
    return bytes(b)
if len(sys.argv) > 2 and sys.argv[2]:
    open(d + "/sel4-vmm.efi", "wb").write(open(sys.argv[2], "rb").read())
else:
    open(d + "/sel4-vmm.efi", "wb").write(pe(0xaa64, 10))
open(d + "/x64.efi", "wb").write(pe(0x8664, 10))
open(d + "/driver.efi", "wb").write(pe(0xaa64, 11))
open(d + "/image.elf", "wb").write(b"\x7fELF\x02\x01\x01" + bytes(4089))
open(d + "/junk.bin", "wb").write(b"hello" * 100)
with open(d + "/huge.efi", "wb") as f:  # sparse: as large as the fake A_kernel
    f.write(pe(0xaa64, 10))
    f.truncate(134217728)
EOF

expect_in() { # name output-file pattern...
    local name=$1 out=$2; shift 2
    local p
    for p in "$@"; do
        if grep -qF -- "$p" "$out"; then pass "$name: prints '$p'"; else bad "$name: missing '$p'"; fi
    done
}

# 1. The default dry run: exit 0, every step and command, nothing changed or called.
out=$work/out-flash
if "$flash" --dry-run --bsp-dir "$bsp" "$work/sel4-vmm.efi" >"$out" 2>&1; then
    pass "dry run (flash.sh method) exits 0"
else
    bad "dry run (flash.sh method) failed:"; cat "$out"
fi
expect_in "flash method" "$out" \
    "PE32+ EFI application, AArch64" \
    "board config jetson-agx-orin-devkit.conf, target internal, partition A_kernel" \
    "L4T: # R36 (release), REVISION: 4.3 (fake)" \
    "A_kernel: 134217728 bytes (flash_t234_qspi_sdmmc.xml)" \
    "\$ cp -p kernel/Image kernel/Image.l4t" \
    "\$ cp $work/sel4-vmm.efi kernel/Image" \
    "\$ lsusb -d 0955:" \
    "\$ sudo ./flash.sh -k A_kernel jetson-agx-orin-devkit internal" \
    "\$ cp -p kernel/Image.l4t kernel/Image" \
    "L4T Boot Mode = Kernel Partition" \
    "== step 6:" \
    "dry run done: 6 steps, nothing changed"

# 2. The initrd method, slot B.
out=$work/out-initrd
if "$flash" --dry-run --bsp-dir "$bsp" --method initrd --slot B "$work/sel4-vmm.efi" >"$out" 2>&1; then
    pass "dry run (initrd method, slot B) exits 0"
else
    bad "dry run (initrd method) failed:"; cat "$out"
fi
expect_in "initrd method" "$out" \
    "\$ sudo ./tools/kernel_flash/l4t_initrd_flash.sh -k B_kernel jetson-agx-orin-devkit internal"

# 3. L4T_BSP_DIR instead of --bsp-dir.
if L4T_BSP_DIR=$bsp "$flash" --dry-run "$work/sel4-vmm.efi" >/dev/null 2>&1; then
    pass "L4T_BSP_DIR is honoured"
else
    bad "L4T_BSP_DIR not honoured"
fi

# Nothing in the fake BSP changed, and neither flash tool ran.
(cd "$bsp" && find . -type f -exec sha256sum {} + | sort) >"$work/after"
if cmp -s "$work/before" "$work/after"; then pass "dry runs changed nothing in the BSP"; else bad "the BSP changed"; fi
if [[ -e $work/flash-called || -e $work/initrd-called ]]; then bad "a flash tool was run"; else pass "no flash tool ran"; fi

# 4. Refusals: exit 1 with a reason (2 for bad arguments).
refuse() { # name expected-status pattern args...
    local name=$1 want=$2 pattern=$3; shift 3
    local got=0
    "$flash" "$@" >"$work/out-refuse" 2>&1 || got=$?
    if [[ $got == "$want" ]] && grep -qF -- "$pattern" "$work/out-refuse"; then
        pass "refuses $name (exit $got)"
    else
        bad "$name: exit $got, want $want with '$pattern':"; cat "$work/out-refuse"
    fi
}
refuse "a missing image" 1 "no such file" --dry-run --bsp-dir "$bsp" "$work/nothing.efi"
refuse "an ELF" 1 "is an ELF" --dry-run --bsp-dir "$bsp" "$work/image.elf"
refuse "an x86-64 EFI file" 1 "not an AArch64 EFI application" --dry-run --bsp-dir "$bsp" "$work/x64.efi"
refuse "an EFI driver" 1 "not an AArch64 EFI application" --dry-run --bsp-dir "$bsp" "$work/driver.efi"
refuse "junk" 1 "not a PE/COFF EFI application" --dry-run --bsp-dir "$bsp" "$work/junk.bin"
refuse "an image larger than A_kernel" 1 "does not fit A_kernel" --dry-run --bsp-dir "$bsp" "$work/huge.efi"
refuse "a missing BSP" 1 "no L4T BSP directory" --dry-run --bsp-dir "$work/none" "$work/sel4-vmm.efi"
refuse "an unknown board config" 1 "no such board config" --dry-run --bsp-dir "$bsp" --board jetson-agx-xavier-devkit "$work/sel4-vmm.efi"
refuse "a bad slot" 2 "--slot must be A or B" --dry-run --bsp-dir "$bsp" --slot C "$work/sel4-vmm.efi"
refuse "no image" 2 "no IMAGE given" --dry-run --bsp-dir "$bsp"
mv "$bsp/flash.sh" "$bsp/flash.sh.away"
refuse "a BSP without flash.sh" 1 "flash.sh: missing" --dry-run --bsp-dir "$bsp" "$work/sel4-vmm.efi"
mv "$bsp/flash.sh.away" "$bsp/flash.sh"
printf '#!/bin/sh\nexit 0\n' >"$bsp/tools/kernel_flash/l4t_initrd_flash.sh"
refuse "an initrd flash without -k" 1 "has no -k option" --dry-run --bsp-dir "$bsp" --method initrd "$work/sel4-vmm.efi"

echo
if ((failures)); then
    echo "ci-dry-run: $failures check(s) failed"
    exit 1
fi
echo "ci-dry-run: all checks passed"
