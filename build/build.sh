#!/usr/bin/env bash
# Assembles the bootable image: guest images -> guest DTB -> root task (guest images embedded)
# -> rust-sel4's kernel loader with the seL4 kernel and the root task as its payload.
#
# Usage: build/build.sh [--platform qemu-virt] [--run] [--release-log LEVEL]
#
# Needs (see support/sel4/README.md; nothing here fetches or builds seL4 or rust-sel4):
#   SEL4_PREFIX         seL4 16.0.0 install prefix built with support/sel4/<platform>.cmake
#   RUST_SEL4           a checkout of rust-sel4 5.0.0 (for its target specs)
#   SEL4_KERNEL_LOADER  the sel4-kernel-loader ELF built against SEL4_PREFIX
#   SEL4_ADD_PAYLOAD    the sel4-kernel-loader-add-payload program
# Output: build/out/image.elf (and build/out/guest.dtb). With --run, boots it with
# support/qemu/run.sh and exits with the runner's status.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
platform=qemu-virt run=0 log_level=info
while (($#)); do
    case $1 in
        --platform) platform=$2; shift 2 ;;
        --run) run=1; shift ;;
        --log) log_level=$2; shift 2 ;;
        -h|--help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
step() { printf '\n=== build: %s\n' "$*"; }
need() {
    local var=$1 test=$2 what=$3
    [[ -n ${!var:-} ]] || { echo "build.sh: $var is not set: $what (see support/sel4/README.md)" >&2; exit 2; }
    test "$test" "${!var}" || { echo "build.sh: $var=${!var}: $what not found" >&2; exit 2; }
}
need SEL4_PREFIX -d "seL4 install prefix"
[[ -f $SEL4_PREFIX/bin/kernel.elf ]] || { echo "build.sh: $SEL4_PREFIX/bin/kernel.elf missing" >&2; exit 2; }
need RUST_SEL4 -d "rust-sel4 5.0.0 checkout"
need SEL4_KERNEL_LOADER -f "sel4-kernel-loader ELF"
need SEL4_ADD_PAYLOAD -x "sel4-kernel-loader-add-payload program"

out=$repo/build/out
mkdir -p "$out"
case $platform in
    qemu-virt)
        step "guest images (images/qemu-virt/build.sh)"
        "$repo/images/qemu-virt/build.sh" --out "$repo/images/qemu-virt/out"
        img=$repo/images/qemu-virt/out
        board=$repo/platform/testdata/qemu-virt-gicv3-smp4-2g.dtb
        feature=qemu-virt ;;
    *) echo "build.sh: platform $platform: only qemu-virt is assembled here (Orin: support/orin/)" >&2; exit 2 ;;
esac

step "guest device tree (vmmctl dtb)"
(cd "$repo" && cargo run -q --release -p vmmctl -- dtb "$platform" --board "$board" --initrd "$img/initramfs.cpio.gz" -o "$out/guest.dtb")
dtc -I dtb -O dts -o /dev/null "$out/guest.dtb"

step "root task"
(
    cd "$repo/crates/root-task"
    export VMM_GUEST_KERNEL=$img/Image VMM_GUEST_INITRD=$img/initramfs.cpio.gz
    export VMM_GUEST_DTB=$out/guest.dtb VMM_GUEST_DISK=$img/disk.img VMM_LOG=$log_level
    # QEMU runs each seL4 core as a host thread: with fewer host CPUs than guest vCPUs, the
    # vCPUs share this machine's CPU count of seL4 cores (see support/sel4/README.md).
    export VMM_CORES=${VMM_CORES:-$(($(nproc) < 4 ? $(nproc) : 4))}
    echo "VMM_CORES=$VMM_CORES (vCPUs spread over this many seL4 cores)"
    export RUST_TARGET_PATH=$RUST_SEL4/support/targets RUSTFLAGS="-Zunstable-options"
    cargo build --release --no-default-features --features "$feature" \
        -Z build-std=core,alloc,compiler_builtins -Z build-std-features=compiler-builtins-mem \
        --target aarch64-sel4-roottask
)
app=$repo/crates/root-task/target/aarch64-sel4-roottask/release/vmm-root-task.elf

step "bootable image (kernel loader + kernel + root task)"
"$SEL4_ADD_PAYLOAD" --sel4-prefix "$SEL4_PREFIX" --loader "$SEL4_KERNEL_LOADER" --app "$app" -o "$out/image.elf"
ls -l "$out/image.elf"

if ((run)); then
    step "boot under QEMU (support/qemu/run.sh)"
    exec "$repo/support/qemu/run.sh" --log "$out/serial.log" "$out/image.elf"
fi
