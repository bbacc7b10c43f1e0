#!/usr/bin/env bash
# A hostile guest under seL4 + the VMM (QEMU virt): support/qemu/hostile-guest/guest.S, booted
# as the guest's kernel, makes every HVC it can: seL4's debug system calls and each endpoint
# call on its fault endpoint (cptr 1). Passes when every call returned to the guest (none
# halted, printed or stole anything), the VMM logged the refusals, and the VM ended by the
# guest's own PSCI SYSTEM_OFF. Needs what build/build.sh needs (support/sel4/README.md).
#
# Usage: support/qemu/hostile-guest.sh [build.sh options, e.g. --efi]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$repo/build/out/hostile
mkdir -p "$work"
for tool in aarch64-linux-gnu-as aarch64-linux-gnu-ld aarch64-linux-gnu-objcopy; do
    command -v $tool >/dev/null || { echo "hostile-guest.sh: $tool missing (binutils-aarch64-linux-gnu)" >&2; exit 2; }
done
aarch64-linux-gnu-as -o "$work/guest.o" "$repo/support/qemu/hostile-guest/guest.S"
aarch64-linux-gnu-ld --no-warn-rwx-segments -Ttext=0x40000000 -e _head -o "$work/guest.elf" "$work/guest.o"
aarch64-linux-gnu-objcopy -O binary "$work/guest.elf" "$work/Image"
set +e
"$repo/build/build.sh" "$@" --guest-kernel "$work/Image" >"$work/build.log" 2>&1
rc=$?
set -e
((rc == 0)) || { tail -20 "$work/build.log"; echo "hostile-guest.sh: build failed"; exit 1; }
# build.sh without --run: boot here with the verdict this test wants.
image=$repo/build/out/image.elf efi=()
if [[ " $* " == *" --efi "* ]]; then efi=(--efi "$repo/build/out/sel4-vmm.efi"); image=""; fi
set +e
"$repo/support/qemu/run.sh" --timeout 900 --log "$work/serial.log" --expect "HOSTILE: done" "${efi[@]}" $image
rc=$?
set -e
log=$(tr -d '\r' <"$work/serial.log")
fail=0
check() { # description pattern
    if grep -aqE -- "$2" <<<"$log"; then echo "ok   $1"; else echo "FAIL $1 (no /$2/)"; fail=1; fi
}
for call in 'seL4_DebugPutChar' 'seL4_DebugDumpScheduler' 'seL4_DebugSnapshot' 'seL4_DebugSendIPI' \
    'seL4_DebugCapIdentify' 'seL4_DebugNameThread' 'seL4_Recv\(fault endpoint\)' \
    'seL4_NBRecv\(fault endpoint\)' 'seL4_Yield' 'seL4_Send\(fault endpoint' \
    'seL4_NBSend\(fault endpoint' 'seL4_Call\(fault endpoint' 'seL4_DebugHalt'; do
    check "$call returned to the guest" "^\[guest ttyAMA0\] HOSTILE: hvc $call.*: returned"
done
check "the VMM logged the refused receive" "^\[vmm WARN \] \[vcpu0\] an HVC taken as an seL4 system call on a capability the vCPU may not use"
check "the VMM logged the guest's own messages" "^\[vmm WARN \] \[vcpu0\] a message with label 0 through its fault endpoint"
check "the VM ended by the guest's SYSTEM_OFF" "^\[vmm INFO \] vmm: guest ended \(PowerOff\)"
# Nothing but the VMM's lines and prefixed guest lines after the loader (a debug kernel would
# have printed the guest's 'F' or its scheduler dump raw).
raw=$(sed -n '/vmm: platform/,$p' <<<"$log" | grep -avE '^(\[vmm |\[guest |vmm: |exits |  |gic |mmio |psci |wfi |sgi |sysreg |vppi |maintenance |irq |unhandled |fatal |qemu-system-aarch64: terminating|$)' || true)
if [[ -z $raw ]]; then echo "ok   no unprefixed output"; else echo "FAIL unprefixed output:"; echo "$raw" | head; fail=1; fi
((rc == 0 && fail == 0)) && { echo "hostile-guest: PASS"; exit 0; }
echo "hostile-guest: FAIL (runner status $rc)"; exit 1
