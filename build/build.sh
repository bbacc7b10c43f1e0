#!/usr/bin/env bash
# Assembles the bootable image: guest images -> guest DTB -> root task (guest images embedded)
# -> a loader that starts seL4 with the root task:
#   --efi (and always for orin-agx): our EFI application, build/out/sel4-vmm.efi, which UEFI
#         runs (L4TLauncher on Orin, edk2 under QEMU);
#   otherwise: rust-sel4's kernel loader ELF, build/out/image.elf, which QEMU's -kernel runs.
#
# Usage: build/build.sh [--platform qemu-virt|qemu-virt-pt|orin-agx] [--efi] [--run] [--log LEVEL]
#                       [--guest-kernel IMAGE]   (QEMU: another arm64 Image than Debian's)
#
# Needs (see support/sel4/README.md; nothing here fetches or builds seL4 or rust-sel4):
#   SEL4_PREFIX         seL4 16.0.0 install prefix built for the platform
#                       (support/sel4/qemu-arm-virt.cmake or support/sel4/orin-agx/)
#   RUST_SEL4           a checkout of rust-sel4 5.0.0 (for its target specs)
#   SEL4_KERNEL_LOADER  the sel4-kernel-loader ELF built against SEL4_PREFIX (ELF image only)
#   SEL4_ADD_PAYLOAD    the sel4-kernel-loader-add-payload program (ELF image only)
#   orin-agx: the guest's images from images/orin-agx (Yocto): VMM_GUEST_KERNEL,
#             VMM_GUEST_INITRD, VMM_GUEST_DISK
# Output in build/out/: guest.dtb, and sel4-vmm.efi or image.elf. With --run, boots it under
# QEMU with support/qemu/run.sh (qemu-virt only) and exits with the runner's status.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
platform=qemu-virt run=0 efi=0 log_level=info guest_kernel=""
while (($#)); do
    case $1 in
        --platform) platform=$2; shift 2 ;;
        --efi) efi=1; shift ;;
        --run) run=1; shift ;;
        --log) log_level=$2; shift 2 ;;
        --guest-kernel) guest_kernel=$2; shift 2 ;;
        -h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
step() { printf '\n=== build: %s\n' "$*"; }
die() { echo "build.sh: $*" >&2; exit 2; }
need() {
    local var=$1 test=$2 what=$3
    [[ -n ${!var:-} ]] || die "$var is not set: $what (see support/sel4/README.md)"
    test "$test" "${!var}" || die "$var=${!var}: $what not found"
}

# The platform decides the seL4 build it needs, the guest, the loader and the vCPU cores.
case $platform in
    qemu-virt|qemu-virt-pt)
        sel4_plat=qemu-arm-virt
        board=$repo/platform/testdata/qemu-virt-gicv3-smp4-2g.dtb
        # QEMU runs each seL4 core as a host thread: with fewer host CPUs than guest vCPUs, the
        # vCPUs share this machine's CPU count of seL4 cores (see support/sel4/README.md).
        cores=${VMM_CORES:-$(($(nproc) < 4 ? $(nproc) : 4))} ;;
    orin-agx)
        sel4_plat=orinagx efi=1
        board=$repo/platform/testdata/tegra234-p3737-0000+p3701-0000.dtb
        # A core of its own for each of the 4 vCPUs (seL4 runs on 12; the others sleep).
        cores=${VMM_CORES:-4}
        ((!run)) || die "--run boots QEMU; an orin-agx image goes on the board (support/orin/flash.sh)" ;;
    *) die "unknown platform $platform (qemu-virt, qemu-virt-pt, orin-agx)" ;;
esac

need SEL4_PREFIX -d "seL4 install prefix"
[[ -f $SEL4_PREFIX/bin/kernel.elf ]] || die "$SEL4_PREFIX/bin/kernel.elf missing"
config=$SEL4_PREFIX/libsel4/include/kernel/gen_config.json
built_for=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("PLAT", "?"))' "$config")
[[ $built_for == "$sel4_plat" ]] ||
    die "SEL4_PREFIX=$SEL4_PREFIX is seL4 for $built_for; platform $platform needs $sel4_plat"
need RUST_SEL4 -d "rust-sel4 5.0.0 checkout"
if ((!efi)); then
    need SEL4_KERNEL_LOADER -f "sel4-kernel-loader ELF"
    need SEL4_ADD_PAYLOAD -x "sel4-kernel-loader-add-payload program"
fi

out=$repo/build/out
mkdir -p "$out"
# The QEMU devices a platform passes through (its table names them; run.sh adds them).
qemu_devices=()
[[ $platform != qemu-virt-pt ]] || qemu_devices=(-device virtio-rng-device)
case $platform in
    qemu-virt|qemu-virt-pt)
        step "guest images (images/qemu-virt/build.sh)"
        "$repo/images/qemu-virt/build.sh" --out "$repo/images/qemu-virt/out"
        img=$repo/images/qemu-virt/out
        export VMM_GUEST_KERNEL=${guest_kernel:-$img/Image} VMM_GUEST_INITRD=$img/initramfs.cpio.gz VMM_GUEST_DISK=$img/disk.img ;;
    orin-agx)
        step "guest images (images/orin-agx, built with Yocto)"
        for var in VMM_GUEST_KERNEL VMM_GUEST_INITRD VMM_GUEST_DISK; do
            need $var -f "the Orin guest's image (images/orin-agx/README.md: Image, rootfs.cpio.gz, .ext4)"
            echo "$var=${!var}"
        done ;;
esac

step "guest device tree (vmmctl dtb)"
(cd "$repo" && cargo run -q --release -p vmmctl -- dtb "$platform" --board "$board" --initrd "$VMM_GUEST_INITRD" -o "$out/guest.dtb")
dtc -I dtb -O dts -o /dev/null "$out/guest.dtb"

step "root task ($platform, VMM_CORES=$cores)"
target_dir=$repo/crates/root-task/target
[[ $platform == qemu-virt ]] || target_dir=$target_dir/$platform
(
    cd "$repo/crates/root-task"
    export VMM_GUEST_DTB=$out/guest.dtb VMM_LOG=$log_level VMM_CORES=$cores
    echo "VMM_CORES=$VMM_CORES (vCPUs spread over this many seL4 cores)"
    export RUST_TARGET_PATH=$RUST_SEL4/support/targets RUSTFLAGS="-Zunstable-options"
    cargo build --release --no-default-features --features "$platform" --target-dir "$target_dir" \
        -Z build-std=core,alloc,compiler_builtins -Z build-std-features=compiler-builtins-mem \
        --target aarch64-sel4-roottask
)
app=$target_dir/aarch64-sel4-roottask/release/vmm-root-task.elf

if ((efi)); then
    step "EFI application (crates/efi-loader: seL4 kernel + root task)"
    # The loader needs the root task's loadable segments only.
    stripped=$out/root-task.$platform.elf
    if command -v aarch64-linux-gnu-strip >/dev/null; then
        aarch64-linux-gnu-strip -o "$stripped" "$app"
    else
        cp "$app" "$stripped"
    fi
    (
        cd "$repo/crates/efi-loader"
        export SEL4_VMM_ROOT_TASK=$stripped SEL4_VMM_PLATFORM=$platform
        cargo build --release --target aarch64-unknown-uefi \
            -Z build-std=core,alloc,compiler_builtins -Z build-std-features=compiler-builtins-mem
    )
    cp "$repo/crates/efi-loader/target/aarch64-unknown-uefi/release/efi-loader.efi" "$out/sel4-vmm.efi"
    kind=$(file -b "$out/sel4-vmm.efi")
    echo "sel4-vmm.efi: $kind"
    [[ $kind == *"PE32+ executable (EFI application) Aarch64"* ]] || die "sel4-vmm.efi is not an AArch64 EFI application"
    step "layout check (vmmctl boot-layout: where the loader puts everything)"
    (cd "$repo" && cargo run -q --release -p vmmctl -- boot-layout "$platform" --sel4-prefix "$SEL4_PREFIX" --root-task "$stripped")
    ls -l "$out/sel4-vmm.efi"
else
    step "bootable image (kernel loader + kernel + root task)"
    "$SEL4_ADD_PAYLOAD" --sel4-prefix "$SEL4_PREFIX" --loader "$SEL4_KERNEL_LOADER" --app "$app" -o "$out/image.elf"
    ls -l "$out/image.elf"
fi

if ((run)); then
    step "boot under QEMU (support/qemu/run.sh)"
    if ((efi)); then
        exec "$repo/support/qemu/run.sh" --log "$out/serial.log" --efi "$out/sel4-vmm.efi" -- "${qemu_devices[@]}"
    fi
    exec "$repo/support/qemu/run.sh" --log "$out/serial.log" "$out/image.elf" -- "${qemu_devices[@]}"
fi
