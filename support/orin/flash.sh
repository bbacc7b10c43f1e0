#!/usr/bin/env bash
# Puts the seL4 VMM boot image on a Jetson AGX Orin devkit's A_kernel (or B_kernel) partition
# with NVIDIA's tegraflash tools, the way support/orin/BOOT-IMAGE.md describes.
#
# Usage: support/orin/flash.sh [options] IMAGE
#
#   IMAGE              the boot image: a PE32+ EFI application for AArch64 (sel4-vmm.efi).
#                      An ELF (rust-sel4's kernel loader output) is refused: UEFI's L4TLauncher
#                      starts kernels with LoadImage/StartImage, which takes PE/COFF only.
#   --bsp-dir DIR      the L4T BSP's Linux_for_Tegra directory (default: $L4T_BSP_DIR, else
#                      ./Linux_for_Tegra)
#   --method M         flash (default): Linux_for_Tegra/flash.sh -k <slot>_kernel
#                      initrd: tools/kernel_flash/l4t_initrd_flash.sh -k <slot>_kernel
#   --slot A|B         boot chain whose kernel partition is written (default A)
#   --board NAME       board config (default jetson-agx-orin-devkit; NAME.conf must exist)
#   --target DEV       root device argument of flash.sh (default internal: the devkit's eMMC)
#   --dry-run          check everything and print every step without running any (CI runs
#                      this against a fake BSP: support/orin/ci-dry-run.sh)
#   -h, --help
#
# Steps (each printed before it runs):
#   1. check IMAGE, the BSP directory, the board config and the A/B_kernel partition size;
#   2. keep the BSP's kernel/Image as kernel/Image.l4t (once), put IMAGE in its place: flash.sh
#      packs kernel/Image into the Android-style boot.img L4TLauncher reads from <slot>_kernel;
#   3. check the devkit is in recovery mode (USB 0955:7023 or 0955:7223, AGX Orin in RCM);
#   4. sudo ./flash.sh -k A_kernel jetson-agx-orin-devkit internal  (or l4t_initrd_flash.sh);
#   5. put the BSP's own kernel/Image back;
#   6. print what to set in UEFI (L4T Boot Mode: Kernel Partition) and where to watch.
# Exit status: 0 done (or dry run passed), 1 a check failed, 2 bad arguments.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'; }

bsp_dir=${L4T_BSP_DIR:-./Linux_for_Tegra}
method=flash
slot=A
board=jetson-agx-orin-devkit
target=internal
dry_run=0
image=""

while (($#)); do
    case $1 in
        --bsp-dir) bsp_dir=${2:?--bsp-dir needs a directory}; shift 2 ;;
        --method) method=${2:?--method needs flash or initrd}; shift 2 ;;
        --slot) slot=${2:?--slot needs A or B}; shift 2 ;;
        --board) board=${2:?--board needs a name}; shift 2 ;;
        --target) target=${2:?--target needs a device}; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "flash.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) [[ -z $image ]] || { echo "flash.sh: more than one IMAGE" >&2; exit 2; }
           image=$1; shift ;;
    esac
done
[[ -n $image ]] || { echo "flash.sh: no IMAGE given" >&2; usage >&2; exit 2; }
case $method in flash|initrd) ;; *) echo "flash.sh: --method must be flash or initrd" >&2; exit 2 ;; esac
case $slot in A|B) ;; *) echo "flash.sh: --slot must be A or B" >&2; exit 2 ;; esac
partition=${slot}_kernel

fail() { echo "flash.sh: $*" >&2; exit 1; }
step_no=0
step() { step_no=$((step_no + 1)); echo; echo "== step $step_no: $*"; }
# Prints a command, then runs it unless this is a dry run. $run_dir is where it runs.
run_dir=.
run() {
    echo "   (in $run_dir) \$ $*"
    if ((dry_run)); then
        echo "   dry run: not run"
    else
        (cd "$run_dir" && "$@")
    fi
}

((dry_run)) && echo "flash.sh: dry run: checking and printing, changing nothing"

# --- 1. inputs -------------------------------------------------------------------------------
step "check the image, the BSP and the board config"
[[ -f $image ]] || fail "$image: no such file"
[[ -s $image ]] || fail "$image: empty"
image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
command -v python3 >/dev/null || fail "python3 is needed to check the image format"
# PE32+ EFI application for AArch64: "MZ", e_lfanew -> "PE\0\0", Machine 0xAA64,
# optional header magic 0x20b (PE32+), Subsystem 10 (EFI_APPLICATION).
kind=$(python3 - "$image" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read(4096)
if b[:4] == b"\x7fELF":
    print("elf")
elif b[:2] != b"MZ" or len(b) < 0x40:
    print("unknown")
else:
    pe = struct.unpack_from("<I", b, 0x3c)[0]
    if pe + 0x5c + 2 > len(b) or b[pe:pe + 4] != b"PE\0\0":
        print("mz-without-pe")
    else:
        machine = struct.unpack_from("<H", b, pe + 4)[0]
        magic = struct.unpack_from("<H", b, pe + 24)[0]
        subsystem = struct.unpack_from("<H", b, pe + 24 + 68)[0]
        print("pe machine=%#x magic=%#x subsystem=%d" % (machine, magic, subsystem))
PY
)
case $kind in
    "pe machine=0xaa64 magic=0x20b subsystem=10")
        echo "   $image: PE32+ EFI application, AArch64 ($(stat -c %s "$image") bytes)" ;;
    elf)
        fail "$image is an ELF (rust-sel4's kernel loader?). UEFI starts PE/COFF EFI applications only: build sel4-vmm.efi with build/build.sh --platform orin-agx." ;;
    pe*)
        fail "$image: PE file but not an AArch64 EFI application ($kind; want machine=0xaa64 magic=0x20b subsystem=10)" ;;
    *)
        fail "$image: not a PE/COFF EFI application ($kind)" ;;
esac

[[ -d $bsp_dir ]] || fail "$bsp_dir: no L4T BSP directory (use --bsp-dir or L4T_BSP_DIR)"
bsp_dir=$(cd "$bsp_dir" && pwd)
run_dir=$bsp_dir
[[ -x $bsp_dir/flash.sh ]] || fail "$bsp_dir/flash.sh: missing or not executable (is this Linux_for_Tegra?)"
[[ -f $bsp_dir/$board.conf ]] || fail "$bsp_dir/$board.conf: no such board config"
[[ -d $bsp_dir/bootloader ]] || fail "$bsp_dir/bootloader: missing (run apply_binaries.sh?)"
[[ -f $bsp_dir/kernel/Image ]] || fail "$bsp_dir/kernel/Image: missing (the BSP's kernel, restored after flashing)"
initrd_flash=$bsp_dir/tools/kernel_flash/l4t_initrd_flash.sh
if [[ $method == initrd ]]; then
    [[ -x $initrd_flash ]] || fail "$initrd_flash: missing or not executable"
    grep -q -- '-k' "$initrd_flash" \
        || fail "$initrd_flash has no -k option: flash one partition with --method flash instead"
fi
echo "   BSP $bsp_dir, board config $board.conf, target $target, partition $partition"
for rel in rootfs/etc/nv_tegra_release nv_tegra/nv_tegra_release; do
    if [[ -f $bsp_dir/$rel ]]; then
        echo "   L4T: $(head -n 1 "$bsp_dir/$rel")"
        break
    fi
done

# The kernel partition's size, from the partition layout the BSP flashes the devkit with.
layout=""
for f in "$bsp_dir"/bootloader/generic/cfg/flash_t234_qspi_sdmmc.xml \
         "$bsp_dir"/bootloader/t186ref/cfg/flash_t234_qspi_sdmmc.xml; do
    [[ -f $f ]] && { layout=$f; break; }
done
if [[ -n $layout ]]; then
    part_size=$(python3 - "$layout" "$partition" <<'PY'
import re, sys
xml = open(sys.argv[1]).read()
m = re.search(r'<partition[^>]*name="%s"[^>]*>(.*?)</partition>' % re.escape(sys.argv[2]), xml, re.S)
s = m and re.search(r"<size>\s*(\d+)\s*</size>", m.group(1))
print(s.group(1) if s else "")
PY
)
    if [[ -n $part_size ]]; then
        img_size=$(stat -c %s "$image")
        # boot.img adds a page-aligned header, and signing adds a header of its own: 1 MiB slack.
        ((img_size + 1048576 <= part_size)) \
            || fail "$image ($img_size bytes) does not fit $partition ($part_size bytes in $(basename "$layout"))"
        echo "   $partition: $part_size bytes ($(basename "$layout")); the image takes $img_size"
    else
        echo "   $partition: not found in $(basename "$layout"); size not checked"
    fi
else
    echo "   no flash_t234_qspi_sdmmc.xml under bootloader/: partition size not checked"
fi

# --- 2. image into the BSP -------------------------------------------------------------------
step "put the image where flash.sh packs the kernel partition from (kernel/Image)"
if [[ -f $bsp_dir/kernel/Image.l4t ]]; then
    echo "   kernel/Image.l4t exists: the BSP's own kernel is already kept"
else
    run cp -p kernel/Image kernel/Image.l4t
fi
run cp "$image" kernel/Image

# --- 3. recovery mode ------------------------------------------------------------------------
step "the devkit must be in recovery mode (hold Force Recovery, press and release Reset)"
echo "   the host then lists NVIDIA's APX device: 0955:7023 or 0955:7223 for the AGX Orin modules"
if ((dry_run)); then
    echo "   (in $run_dir) \$ lsusb -d 0955:"
    echo "   dry run: not run"
elif command -v lsusb >/dev/null; then
    lsusb -d 0955: | grep -Eq '0955:7[02]23' \
        || fail "no Jetson AGX Orin in recovery mode on USB (lsusb -d 0955:)"
    echo "   found: $(lsusb -d 0955: | grep -E '0955:7[02]23')"
else
    echo "   lsusb not found: not checked"
fi

# --- 4. flash --------------------------------------------------------------------------------
if [[ $method == flash ]]; then
    step "write $partition (flash.sh builds boot.img from kernel/Image and writes only that partition)"
    run sudo ./flash.sh -k "$partition" "$board" "$target"
else
    step "write $partition through the initrd flash (USB mass storage from a RAM-booted Linux)"
    run sudo ./tools/kernel_flash/l4t_initrd_flash.sh -k "$partition" "$board" "$target"
fi

# --- 5. restore ------------------------------------------------------------------------------
step "put the BSP's kernel back, so a later full flash installs Linux again"
run cp -p kernel/Image.l4t kernel/Image

# --- 6. what next ----------------------------------------------------------------------------
step "boot it (once per board: L4TLauncher must boot the kernel partition, not extlinux.conf)"
cat <<EOF
   In UEFI (press ESC on the serial console at "Press ESCAPE for boot options"):
     Device Manager > NVIDIA Configuration > L4T Configuration > L4T Boot Mode = Kernel Partition
   (the L4TDefaultBootMode variable = 2; ExtLinux (1) boots L4T from the eMMC root file system
   instead, and is how to go back). Then reset. Serial consoles (BRINGUP.md):
     TCU (the devkit's debug USB): MB1, MB2, UEFI, L4TLauncher, then the guest's ttyTCU0
     UARTA (40-pin header pins 8/10, 115200 8N1): the seL4 kernel and the VMM's log
EOF
echo
if ((dry_run)); then
    echo "flash.sh: dry run done: $step_no steps, nothing changed"
else
    echo "flash.sh: done"
fi
