#!/usr/bin/env bash
# The EFI loader end to end without seL4: edk2 (Debian's qemu-efi-aarch64) runs
# crates/efi-loader from a FAT ESP on QEMU virt (virtualization=on, GICv3, 4 cores, 2 GiB),
# carrying a stand-in kernel and root task (efi-smoke/*.S, assembled here) built where seL4
# for QEMU virt is. The stand-in checks on every core what seL4's _start relies on (EL2,
# TPIDR_EL1, the MMU on the loader's tables with seL4's TCR/MAIR, x0..x5, the root task's bytes
# and the DTB where the arguments say) and powers off with "fake-sel4: PASS". CI runs it.
#
# Usage: support/qemu/efi-smoke.sh [WORK-DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/support/qemu/efi-smoke
work=$(realpath -m "${1:-$repo/build/out/efi-smoke}")
mkdir -p "$work/prefix/bin" "$work/prefix/libsel4/include/kernel" "$work/prefix/support"

for tool in aarch64-linux-gnu-as aarch64-linux-gnu-ld; do
    command -v $tool >/dev/null || { echo "efi-smoke.sh: $tool missing (apt-get install binutils-aarch64-linux-gnu)" >&2; exit 2; }
done
echo "=== efi-smoke: stand-in kernel and root task"
aarch64-linux-gnu-as -o "$work/kernel.o" "$here/kernel.S"
aarch64-linux-gnu-ld --no-warn-rwx-segments -z max-page-size=4096 -T "$here/kernel.ld" -o "$work/prefix/bin/kernel.elf" "$work/kernel.o"
aarch64-linux-gnu-as -o "$work/root-task.o" "$here/root-task.S"
aarch64-linux-gnu-ld --no-warn-rwx-segments -z max-page-size=4096 -T "$here/root-task.ld" -o "$work/root-task.elf" "$work/root-task.o"
# What seL4 16's build for QEMU virt (support/sel4/qemu-arm-virt.cmake, -m 2048) says of itself.
cat >"$work/prefix/libsel4/include/kernel/gen_config.json" <<'JSON'
{"PLAT": "qemu-arm-virt", "MAX_NUM_NODES": "4", "ARM_HYPERVISOR_SUPPORT": true,
 "ARM_PA_SIZE_BITS_40": false, "ARM_PA_SIZE_BITS_44": true}
JSON
echo '{"memory": [{"start": 1610612736, "end": 3221225472}]}' >"$work/prefix/support/platform_gen.json"

echo "=== efi-smoke: crates/efi-loader"
(
    cd "$repo/crates/efi-loader"
    export SEL4_PREFIX=$work/prefix SEL4_VMM_ROOT_TASK=$work/root-task.elf SEL4_VMM_PLATFORM=qemu-virt
    cargo build --release --target aarch64-unknown-uefi \
        -Z build-std=core,alloc,compiler_builtins -Z build-std-features=compiler-builtins-mem
)
cp "$repo/crates/efi-loader/target/aarch64-unknown-uefi/release/efi-loader.efi" "$work/smoke.efi"
file -b "$work/smoke.efi" | grep -q 'PE32+ executable (EFI application) Aarch64' ||
    { echo "efi-smoke.sh: not an AArch64 EFI application: $(file -b "$work/smoke.efi")" >&2; exit 1; }

echo "=== efi-smoke: boot"
exec "$repo/support/qemu/run.sh" --timeout "${EFI_SMOKE_TIMEOUT:-600}" --log "$work/serial.log" \
    --efi "$work/smoke.efi" --expect "fake-sel4: PASS"
