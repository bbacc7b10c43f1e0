#!/usr/bin/env bash
# shellcheck disable=SC2054  # commas inside QEMU option values are not array separators
# QEMU runner for the qemu-virt self-test guest (images/qemu-virt).
#
# Usage: support/qemu/run.sh [--timeout SECS] [--log FILE] [--bare KERNEL INITRD DISK]
#                            [--efi EFI-APP | IMAGE] [-- QEMU-ARGS...]
#
#   IMAGE   seL4 bootable image (the ELF made by rust-sel4's kernel loader; default
#           build/out/image.elf), booted with
#           -machine virt,virtualization=on,gic-version=3 -cpu cortex-a57 -smp 4 -m 2048
#           and no QEMU virtio devices (the VMM emulates them).
#   --efi EFI-APP
#           boot through UEFI as on Orin: the edk2 firmware of Debian's qemu-efi-aarch64
#           (/usr/share/AAVMF) finds EFI-APP as EFI/BOOT/BOOTAA64.EFI on a FAT ESP disk image
#           and runs it (LoadImage/StartImage); same machine as IMAGE.
#   --bare KERNEL INITRD DISK
#           boot the guest kernel directly under QEMU (no seL4): the comparison baseline, with
#           virtio-blk-pci (DISK), virtio-net-pci (user net, host 10.0.2.2), virtio-serial/hvc0.
#   --timeout SECS   give up after SECS seconds (default 1200)
#   --log FILE       serial log (default images/qemu-virt/out/serial.log)
#   --append STR     bare mode: extra kernel command line words (e.g. selftest.noping)
#   --expect STR     pass when the log holds STR and QEMU ended by itself, instead of the
#                    self-test verdict (support/qemu/efi-smoke.sh)
#   -- QEMU-ARGS     passed to QEMU as they are
#
# Exit status: 0 if the log has "SELFTEST: PASS" and the guest powered off (bare: QEMU exited by
# itself; seL4: the VMM logged "guest ended (PowerOff)" and "vmm: halted", then the runner
# stopped QEMU), 124 on timeout, 1 otherwise (self-test failed, QEMU error, no verdict).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
timeout_s=1200
log=$repo/images/qemu-virt/out/serial.log
bare=0
kernel="" initrd="" disk="" image="" append_extra="" efi="" expect=""
qemu_extra=()

usage() { sed -n '3,29s/^# \{0,1\}//p' "$0"; }
while (($#)); do
    case $1 in
        --timeout) timeout_s=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --bare)
            (($# >= 4)) || { echo "run.sh: --bare needs KERNEL INITRD DISK" >&2; exit 2; }
            bare=1 kernel=$2 initrd=$3 disk=$4; shift 4 ;;
        --append) append_extra=$2; shift 2 ;;
        --efi) efi=$2; shift 2 ;;
        --expect) expect=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; qemu_extra=("$@"); break ;;
        -*) echo "run.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
        *) [[ -z $image ]] || { echo "run.sh: more than one IMAGE" >&2; exit 2; }
           image=$1; shift ;;
    esac
done

qemu=${QEMU:-qemu-system-aarch64}
if ! command -v "$qemu" >/dev/null; then
    echo "run.sh: $qemu not found; installing qemu-system-arm"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi

mkdir -p "$(dirname "$log")"
: >"$log"

if ((bare)); then
    [[ -z $image ]] || { echo "run.sh: IMAGE and --bare are exclusive" >&2; exit 2; }
    for f in "$kernel" "$initrd" "$disk"; do
        [[ -f $f ]] || { echo "run.sh: no such file: $f" >&2; exit 2; }
    done
    hvc_log=${log%.log}.hvc0.log
    [[ $hvc_log != "$log" ]] || hvc_log=$log.hvc0
    : >"$hvc_log"
    # selftest.cpus=4: /init fails unless 4 CPUs are online; panic=-1 + -no-reboot: a panic ends QEMU
    append="console=ttyAMA0 rdinit=/init selftest.cpus=4 panic=-1${append_extra:+ $append_extra}"
    cmd=("$qemu" -machine virt,gic-version=3 -cpu cortex-a57 -smp 4 -m 512
        -nographic -serial mon:stdio -no-reboot
        -kernel "$kernel" -initrd "$initrd" -append "$append"
        # the disk is opened read-only: the guest only reads the pattern
        -drive "file=$disk,if=none,id=disk0,format=raw,readonly=on"
        -device virtio-blk-pci,drive=disk0
        # restrict=on: slirp answers the guest (ARP, ICMP echo to 10.0.2.2) but routes nothing out
        -netdev user,id=n0,net=10.0.2.0/24,host=10.0.2.2,restrict=on
        -device virtio-net-pci,netdev=n0
        -device virtio-serial-pci
        -chardev "file,id=hvc0,path=$hvc_log"
        -device virtconsole,chardev=hvc0
        "${qemu_extra[@]}")
    mode="bare QEMU"
elif [[ -n $efi ]]; then
    [[ -z $image ]] || { echo "run.sh: IMAGE and --efi are exclusive" >&2; exit 2; }
    [[ -f $efi ]] || { echo "run.sh: no such EFI application: $efi" >&2; exit 2; }
    code=/usr/share/AAVMF/AAVMF_CODE.fd vars=/usr/share/AAVMF/AAVMF_VARS.fd
    if [[ ! -f $code ]] || ! command -v mcopy >/dev/null; then
        echo "run.sh: installing qemu-efi-aarch64 (edk2) and mtools"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-efi-aarch64 mtools >/dev/null
    fi
    # The ESP: a FAT disk with the application where firmware looks on removable media.
    work=$(dirname "$log")/efi
    mkdir -p "$work"
    esp=$work/esp.img
    size_mb=$(( $(stat -c %s "$efi") / 1048576 + 16 ))
    rm -f "$esp"
    truncate -s "${size_mb}M" "$esp"
    mformat -i "$esp" -v ESP ::
    mmd -i "$esp" ::/EFI ::/EFI/BOOT
    mcopy -i "$esp" "$efi" ::/EFI/BOOT/BOOTAA64.EFI
    cp "$vars" "$work/vars.fd"
    # acpi=off: without ACPI tables from QEMU, edk2 hands its operating system the device tree
    # (EFI_DTB_TABLE_GUID), as Orin's firmware does; the machine is otherwise the same.
    cmd=("$qemu" -machine virt,virtualization=on,gic-version=3,acpi=off -cpu cortex-a57 -smp 4 -m 2048
        -nographic -serial mon:stdio -no-reboot
        -drive "if=pflash,format=raw,readonly=on,file=$code"
        -drive "if=pflash,format=raw,file=$work/vars.fd"
        -drive "file=$esp,if=none,id=esp,format=raw"
        -device virtio-blk-pci,drive=esp
        "${qemu_extra[@]}")
    mode="UEFI (edk2) + EFI loader + seL4 + VMM"
else
    image=${image:-$repo/build/out/image.elf}
    [[ -f $image ]] || { echo "run.sh: no such IMAGE: $image (build it, or use --bare)" >&2; exit 2; }
    cmd=("$qemu" -machine virt,virtualization=on,gic-version=3 -cpu cortex-a57 -smp 4 -m 2048
        -nographic -serial mon:stdio -no-reboot
        -kernel "$image"
        "${qemu_extra[@]}")
    mode="seL4 + VMM"
fi

echo "=== run.sh: $mode, timeout ${timeout_s} s, log $log"
printf '=== '; printf '%q ' "${cmd[@]}"; echo
start=$(date +%s.%N)
set +e
if ((!bare)); then
    # seL4 cannot power the machine off: the root task prints "vmm: halted" when the guest has
    # ended (PSCI SYSTEM_OFF, or a crash), and the runner stops QEMU then.
    "${cmd[@]}" </dev/null >"$log" 2>&1 &
    qpid=$!
    tail -f --pid=$qpid "$log" 2>/dev/null &
    tpid=$!
    # The VMM's own lines start a line; everything the guest prints through the VMM carries a
    # "[guest ...]" prefix, so a guest cannot print the verdict lines below. The limit is
    # elapsed time, not a count of sleeps.
    qrc=124
    deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if ! kill -0 $qpid 2>/dev/null; then wait $qpid; qrc=$?; break; fi
        if grep -aq '^vmm: halted' "$log"; then qrc=0; kill $qpid; wait $qpid 2>/dev/null; break; fi
        sleep 0.1
    done
    if ((qrc == 124)); then kill $qpid 2>/dev/null; wait $qpid 2>/dev/null; fi
    sleep 0.2; kill $tpid 2>/dev/null; wait $tpid 2>/dev/null
    if [[ -z $expect ]] && ((qrc == 0)) && ! grep -aq '^\[vmm INFO \] vmm: guest ended (PowerOff)' "$log"; then
        qrc=1
    fi
# --foreground: QEMU may use the terminal (mon:stdio); -k: SIGKILL if SIGTERM is not enough.
elif [[ -t 0 ]]; then
    timeout --foreground -k 10 "$timeout_s" "${cmd[@]}" 2>&1 | tee "$log"
    qrc=${PIPESTATUS[0]}
else
    timeout --foreground -k 10 "$timeout_s" "${cmd[@]}" </dev/null 2>&1 | tee "$log"
    qrc=${PIPESTATUS[0]}
fi
set -e
end=$(date +%s.%N)
if [[ -t 0 ]]; then stty sane 2>/dev/null || true; fi  # in case QEMU was killed in raw mode

echo
echo "=== run.sh: QEMU exit status $qrc after $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s (wall clock)"
clean=$(tr -d '\r' <"$log")
echo "=== SELFTEST lines:"
grep -a 'SELFTEST:' <<<"$clean" | sed 's/^.*\(SELFTEST:\)/  \1/' || echo "  (none)"
if ((bare)); then
    echo "=== hvc0 ($hvc_log):"
    tr -d '\r' <"$hvc_log" | sed 's/^/  /'
    grep -q 'SELFTEST: hello from hvc0' "$hvc_log" || echo "  (no 'SELFTEST: hello from hvc0' on hvc0)"
fi
init_up=$(grep -a -o 'SELFTEST: init reached, uptime [0-9.]*' <<<"$clean" | head -1 | awk '{print $NF}' || true)
if [[ -n $init_up ]]; then
    echo "=== boot time to init: ${init_up} s (guest uptime at /init)"
else
    echo "=== boot time to init: unknown (no 'SELFTEST: init reached' line)"
fi

if [[ -n $expect ]]; then
    if grep -aqF -- "$expect" <<<"$clean" && ((qrc == 0)); then
        echo "=== result: PASS ($expect)"
        exit 0
    fi
    echo "=== result: FAIL (no \"$expect\" in the log, or QEMU exit status $qrc)"
    exit 1
fi
if ((qrc == 124 || qrc == 137)); then
    echo "=== result: TIMEOUT after ${timeout_s} s"
    exit 124
fi
if grep -aq 'SELFTEST: PASS' <<<"$clean"; then
    if ((qrc == 0)); then
        echo "=== result: PASS"
        exit 0
    fi
    echo "=== result: FAIL (self-test passed but QEMU exited with status $qrc)"
    exit 1
fi
if grep -aq 'SELFTEST: FAIL' <<<"$clean"; then
    echo "=== result: FAIL ($(grep -a -o 'SELFTEST: FAIL.*' <<<"$clean" | tail -1 || true))"
else
    echo "=== result: FAIL (no SELFTEST verdict; QEMU exit status $qrc)"
fi
exit 1
