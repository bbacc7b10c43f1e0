#!/usr/bin/env bash
# Guest boot time to /init: the qemu-virt self-test guest under seL4 + the VMM against the same
# kernel and initramfs booted bare on the same QEMU, runs interleaved (bare, vmm, bare, ...).
# Writes crates/vmm-bench/boot.json (folded into crates/vmm-bench/results.md by
# crates/vmm-bench/run.sh) and prints a summary.
#
# Usage: crates/vmm-bench/boot.sh [--runs N] [--timeout SECS] [--out FILE] [IMAGE]
#
#   IMAGE   the seL4 bootable image (ELF from rust-sel4's kernel loader), run with
#           support/qemu/run.sh IMAGE. Without one (or if the file does not exist) only the bare
#           side is measured, and boot.json says so.
#   --runs N        runs per side (default 3)
#   --timeout SECS  per run (default 900)
#   --out FILE      where the JSON goes (default crates/vmm-bench/boot.json)
#
# Bare side, two variants per run:
#   bare          support/qemu/run.sh --bare Image initramfs disk   (the baseline command as is)
#   bare-matched  the same with the VMM guest's console arguments appended
#                 ("earlycon=pl011,mmio32,0x09000000 quiet", from platform/src/qemu_virt.rs), so
#                 that the kernel prints as much as it does under the VMM.
# The figure is the guest's own uptime when /init starts ("SELFTEST: init reached, uptime X s"),
# which run.sh reports as "boot time to init"; wall clock is recorded too. Under the VMM the
# last run's VMM exit statistics (printed at the end) are kept as the boot's exits by class.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

runs=3 timeout_s=900 image="" dest=$repo/crates/vmm-bench/boot.json
while (($#)); do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --out) dest=$(realpath -m "$2"); shift 2 ;;
        -h|--help) sed -n '2,23s/^# \{0,1\}//p' "$0"; exit 0 ;;
        -*) echo "boot.sh: unknown option $1" >&2; exit 2 ;;
        *) image=$1; shift ;;
    esac
done

out=images/qemu-virt/out
if [[ ! -f $out/Image || ! -f $out/initramfs.cpio.gz || ! -f $out/disk.img ]]; then
    echo "boot.sh: guest images missing; building them (images/qemu-virt/build.sh)"
    images/qemu-virt/build.sh
fi
note=""
if [[ -z $image ]]; then
    note="No seL4 image was given: only the bare side was measured."
elif [[ ! -f $image ]]; then
    note="The seL4 image $image does not exist: only the bare side was measured."
    image=""
fi

logs=$(mktemp -d /tmp/vmm-boot.XXXXXX)
matched_append="earlycon=pl011,mmio32,0x09000000 quiet"
results=$logs/results.tsv
: >"$results"

one() { # side label log args...
    local side=$1 label=$2 log=$3; shift 3
    local rc=0
    support/qemu/run.sh --timeout "$timeout_s" --log "$log" "$@" >"$log.run" 2>&1 || rc=$?
    local init wall verdict
    init=$(sed -n 's/^=== boot time to init: \([0-9.]*\) s.*/\1/p' "$log.run" | head -1)
    wall=$(sed -n 's/^=== run.sh: QEMU exit status .* after \([0-9.]*\) s.*/\1/p' "$log.run" | head -1)
    verdict=$(sed -n 's/^=== result: //p' "$log.run" | head -1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$side" "$label" "${init:--}" "${wall:--}" "${verdict:-rc $rc}" "$log" >>"$results"
    echo "boot.sh: $label run: init ${init:-?} s, wall ${wall:-?} s, ${verdict:-rc $rc}"
}

for ((i = 1; i <= runs; i++)); do
    one bare bare "$logs/bare$i.log" --bare $out/Image $out/initramfs.cpio.gz $out/disk.img
    one bare_matched bare-matched "$logs/matched$i.log" --append "$matched_append" \
        --bare $out/Image $out/initramfs.cpio.gz $out/disk.img
    if [[ -n $image ]]; then
        one vmm "seL4 + VMM" "$logs/vmm$i.log" "$image"
    fi
done

qemu_version=$(${QEMU:-qemu-system-aarch64} --version | head -1 | sed 's/^QEMU emulator version //')
kernel=$(sed -n 's/^kernel_release=//p' $out/VERSIONS 2>/dev/null || echo unknown)
python3 - "$results" "$dest" "$note" "$qemu_version" "$kernel" "${image:-}" <<'EOF'
import json, re, statistics, subprocess, sys, time
rows, dest, note, qemu, kernel, image = sys.argv[1:7]
sides = {}
for line in open(rows):
    side, label, init, wall, verdict, log = line.rstrip("\n").split("\t")
    s = sides.setdefault(side, {"label": label, "init_s": [], "wall_s": [], "results": [], "logs": []})
    s["init_s"].append(float(init) if init != "-" else None)
    s["wall_s"].append(float(wall) if wall != "-" else None)
    s["results"].append(verdict)
    s["logs"].append(log)
for s in sides.values():
    got = [v for v in s["init_s"] if v is not None]
    s["init_median_s"] = statistics.median(got) if got else None
exits = None
if "vmm" in sides:
    for log in reversed(sides["vmm"]["logs"]):
        text = open(log, errors="replace").read().replace("\r", "")
        m = re.search(r"vmm: exit statistics\n(.*?)(?:\n[^\n]*vmm: (?:guest ended|halted)|\Z)", text, re.S)
        if m:
            exits = m.group(1).rstrip()
            break
for s in sides.values():
    del s["logs"]
host = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
doc = {
    "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    "host": f"{host} ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores)",
    "qemu": qemu,
    "kernel": kernel,
    "image": image or None,
    "bare": sides.get("bare"),
    "bare_matched": sides.get("bare_matched"),
    "vmm": sides.get("vmm"),
    "vmm_exits": exits,
    "note": note or None,
}
json.dump(doc, open(dest, "w"), indent=2)
open(dest, "a").write("\n")
print(json.dumps({k: v for k, v in doc.items() if k != "vmm_exits"}, indent=2))
if exits:
    print(exits)
EOF
echo "boot.sh: logs in $logs; wrote $dest"
