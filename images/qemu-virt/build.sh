#!/usr/bin/env bash
# Build the qemu-virt self-test guest from Debian's arm64 packages:
#   out/Image               uncompressed arm64 Linux Image (Debian bookworm linux-image-*-arm64)
#   out/initramfs.cpio.gz   busybox + virtio modules + /init self-test (newc cpio, gzip)
#   out/disk.img            1 MiB test disk with a known pattern in its first 4 KiB
#   out/VERSIONS            the Debian package versions used
#
# Usage: images/qemu-virt/build.sh [--out DIR] [--kernel-package NAME]
#
# Needs root (apt-get) on a Debian host; downloads only from the Debian archive.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/out
kpkg=""

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }
while (($#)); do
    case $1 in
        --out) out=$2; shift 2 ;;
        --kernel-package) kpkg=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

step() { printf '\n=== %s\n' "$*"; }
die() { echo "build.sh: error: $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# apt may be busy (another job running apt-get update): retry while its lock is held.
apt_retry() {
    local i
    for i in $(seq 1 60); do
        if "$@"; then return 0; fi
        if fuser /var/lib/apt/lists/lock /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock \
            /var/cache/apt/archives/lock >/dev/null 2>&1; then
            echo "apt is locked by another process; retrying in 5 s ($i/60)"
            sleep 5
        else
            return 1
        fi
    done
    return 1
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/work
rm -rf "$work"
mkdir -p "$work/debs" "$work/kernel" "$work/busybox" "$work/root"

step "host tools (dpkg-deb, cpio, gzip, depmod, fuser)"
need=()
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
command -v depmod >/dev/null || [[ -x /usr/sbin/depmod ]] || [[ -x /sbin/depmod ]] || need+=(kmod)
command -v fuser >/dev/null || need+=(psmisc)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    apt_retry apt-get update -qq
    apt_retry apt-get install -y -qq "${need[@]}" >/dev/null
fi
depmod=$(command -v depmod || echo /usr/sbin/depmod)
for t in dpkg-deb cpio gzip "$depmod"; do
    command -v "$t" >/dev/null || [[ -x $t ]] || die "missing tool: $t"
    echo "  $t: $(command -v "$t" || echo "$t")"
done

step "apt: arm64 architecture and package lists"
if ! dpkg --print-foreign-architectures | grep -qx arm64 && [[ $(dpkg --print-architecture) != arm64 ]]; then
    echo "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
fi
apt_retry apt-get update -qq
echo "package lists updated"

step "pick the kernel package"
if [[ -z $kpkg ]]; then
    # The meta-package linux-image-arm64 always depends on the current
    # linux-image-<abi>-arm64, so this keeps working as Debian updates.
    kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -1)
    if [[ -z $kpkg ]]; then
        # Fallback: the highest linux-image-<abi>-arm64 that apt knows of.
        kpkg=$(apt-cache search --names-only '^linux-image-[0-9][0-9.]*-[0-9]+-arm64$' |
            awk '{print $1}' | sort -V | tail -1)
    fi
fi
[[ -n $kpkg ]] || die "could not find a linux-image-*-arm64 package (is arm64 enabled in apt?)"
kver_pkg=$(apt-cache policy "$kpkg:arm64" | sed -n 's/^ *Candidate: //p')
[[ -n $kver_pkg && $kver_pkg != "(none)" ]] || die "no candidate for $kpkg:arm64"
bb_ver=$(apt-cache policy busybox-static:arm64 | sed -n 's/^ *Candidate: //p')
[[ -n $bb_ver && $bb_ver != "(none)" ]] || die "no candidate for busybox-static:arm64"
echo "kernel:  $kpkg $kver_pkg"
echo "busybox: busybox-static $bb_ver"

step "apt-get download"
(cd "$work/debs" && apt_retry apt-get download "$kpkg:arm64" busybox-static:arm64) 2>&1 |
    grep -v 'Download is performed unsandboxed' || true
kdeb=$(ls "$work"/debs/"$kpkg"_*_arm64.deb 2>/dev/null | head -1)
bbdeb=$(ls "$work"/debs/busybox-static_*_arm64.deb 2>/dev/null | head -1)
[[ -f $kdeb ]] || die "download of $kpkg failed"
[[ -f $bbdeb ]] || die "download of busybox-static failed"
ls -l "$work"/debs

step "dpkg-deb -x"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bbdeb" "$work/busybox"
kver=$(basename "$(ls -d "$work"/kernel/lib/modules/*/ | head -1)")
[[ -n $kver ]] || die "no lib/modules/<version> in $kdeb"
echo "kernel release: $kver"
vmlinuz=$work/kernel/boot/vmlinuz-$kver
kconfig=$work/kernel/boot/config-$kver
[[ -f $vmlinuz && -f $kconfig ]] || die "missing vmlinuz or config in $kdeb"

step "out/Image (uncompressed arm64 Image)"
magic2=$(od -An -tx1 -N2 "$vmlinuz" | tr -d ' \n')
if [[ $magic2 == 1f8b ]]; then
    echo "vmlinuz is gzip-compressed: decompressing"
    gzip -dc <"$vmlinuz" >"$out/Image.tmp"
else
    # Debian's signed bookworm arm64 vmlinuz is already an uncompressed (EFI stub) Image.
    echo "vmlinuz is not gzip-compressed (magic $magic2): copying as is"
    cp "$vmlinuz" "$out/Image.tmp"
fi
le64() { od -An -tu8 -j "$2" -N8 --endian=little "$1" | tr -d ' '; }
img_magic=$(dd if="$out/Image.tmp" bs=1 skip=56 count=4 status=none)
[[ $img_magic == $'ARM\x64' ]] || die "bad arm64 Image magic at offset 56: $(od -An -c -j56 -N4 "$out/Image.tmp")"
text_offset=$(le64 "$out/Image.tmp" 8)
image_size=$(le64 "$out/Image.tmp" 16)
flags=$(le64 "$out/Image.tmp" 24)
mv "$out/Image.tmp" "$out/Image"
printf 'magic "ARM\\x64" ok; text_offset=0x%x image_size=0x%x (%d MiB) flags=0x%x; file size %d\n' \
    "$text_offset" "$image_size" $((image_size >> 20)) "$flags" "$(stat -c %s "$out/Image")"
cp "$kconfig" "$out/config-$kver"

step "kernel modules for virtio-pci, virtio-blk, virtio-net, virtio-console, virtio-mmio, virtio-rng"
kmods=$work/kernel/lib/modules/$kver
"$depmod" -b "$work/kernel" "$kver"
# module name -> CONFIG symbol, to say why a module is not needed
# virtio_mmio and virtio_rng: the pass-through variant's QEMU virtio-rng-device (platform
# qemu-virt-pt); loading them where no virtio-mmio node exists does nothing.
declare -A cfg=([virtio_pci]=VIRTIO_PCI [virtio_blk]=VIRTIO_BLK [virtio_net]=VIRTIO_NET
    [virtio_console]=VIRTIO_CONSOLE [virtio_mmio]=VIRTIO_MMIO [virtio_rng]=HW_RANDOM_VIRTIO)
wanted=(virtio_pci virtio_blk virtio_net virtio_console virtio_mmio virtio_rng)
declare -A modpath=() seen=()
while IFS=: read -r path _; do
    n=$(basename "$path"); n=${n%%.ko*}; modpath[${n//-/_}]=$path
done <"$kmods/modules.dep"
order=()
visit() { # depth-first: dependencies first
    local m=${1//-/_} dep d
    [[ -n ${seen[$m]:-} ]] && return 0
    seen[$m]=1
    local path=${modpath[$m]:-}
    [[ -n $path ]] || die "module $m not in modules.dep"
    dep=$(grep -m1 "^$path:" "$kmods/modules.dep" | cut -d: -f2)
    for d in $dep; do
        d=$(basename "$d"); visit "${d%%.ko*}"
    done
    order+=("$m")
}
for m in "${wanted[@]}"; do
    c=$(grep -E "^CONFIG_${cfg[$m]}=" "$kconfig" | cut -d= -f2 || true)
    echo "  CONFIG_${cfg[$m]}=${c:-unset}"
    case $c in
        y) echo "    built in: no module needed" ;;
        m) visit "$m" ;;
        *) die "CONFIG_${cfg[$m]} is not enabled in $kver" ;;
    esac
done
for m in "${order[@]}"; do echo "  load: $m  (${modpath[$m]})"; done

step "initramfs tree"
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,root,lib/modules/"$kver"}
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
: >"$root/etc/modules.load"
for m in "${order[@]}"; do
    p=${modpath[$m]}
    mkdir -p "$root/lib/modules/$kver/$(dirname "$p")"
    case $p in
        *.ko) cp "$kmods/$p" "$root/lib/modules/$kver/$p" ;;
        *.ko.xz) xz -dc "$kmods/$p" >"$root/lib/modules/$kver/${p%.xz}"; p=${p%.xz} ;;
        *.ko.zst) zstd -qdc "$kmods/$p" >"$root/lib/modules/$kver/${p%.zst}"; p=${p%.zst} ;;
        *.ko.gz) gzip -dc "$kmods/$p" >"$root/lib/modules/$kver/${p%.gz}"; p=${p%.gz} ;;
        *) die "unknown module file type: $p" ;;
    esac
    echo "/lib/modules/$kver/$p" >>"$root/etc/modules.load"
done
cp "$here/init" "$root/init"
chmod 0755 "$root/init"
{
    echo "kernel_package=$kpkg"
    echo "kernel_package_version=$kver_pkg"
    echo "kernel_release=$kver"
    echo "busybox_static_version=$bb_ver"
    echo "modules=${order[*]}"
} >"$root/etc/selftest-versions"

step "out/initramfs.cpio.gz (newc)"
# fixed owner (-R 0:0), inode numbers (--reproducible), mtimes and order: same inputs, same bytes
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n >"$out/initramfs.cpio.gz"
echo "$(stat -c %s "$out/initramfs.cpio.gz") bytes; contents:"
gzip -dc "$out/initramfs.cpio.gz" | cpio -t --quiet | sed 's/^/  /'

step "out/disk.img (1 MiB, pattern in the first 4 KiB)"
pattern=SEL4-VMM-DISK-PATTERN-v1
fmt=""
for ((i = ${#pattern}; i < 4096; i++)); do fmt+=$(printf '\\%03o' $((i % 251))); done
# shellcheck disable=SC2059  # $fmt is a format of \ooo escapes, made above
{ printf '%s' "$pattern"; printf "$fmt"; } >"$out/disk.img.tmp"
truncate -s 1M "$out/disk.img.tmp"
[[ $(head -c 24 "$out/disk.img.tmp") == "$pattern" ]] || die "disk pattern"
[[ $(od -An -tx1 -j 4088 -N 8 "$out/disk.img.tmp" | tr -d ' \n') == 48494a4b4c4d4e4f ]] ||
    die "disk pattern tail"
mv "$out/disk.img.tmp" "$out/disk.img"
od -Ax -tx1z -N 48 "$out/disk.img" | sed 's/^/  /'

step "out/VERSIONS"
{
    echo "# images/qemu-virt/build.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cat "$root/etc/selftest-versions"
    echo "image_text_offset=$(printf '0x%x' "$text_offset")"
    echo "image_size=$(printf '0x%x' "$image_size")"
    echo "image_sha256=$(sha256sum "$out/Image" | cut -d' ' -f1)"
    echo "initramfs_sha256=$(sha256sum "$out/initramfs.cpio.gz" | cut -d' ' -f1)"
    echo "disk_sha256=$(sha256sum "$out/disk.img" | cut -d' ' -f1)"
} >"$out/VERSIONS"
cat "$out/VERSIONS"

rm -rf "$work"
step "done: $out"
ls -l "$out"
