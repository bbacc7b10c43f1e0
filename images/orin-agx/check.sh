#!/usr/bin/env bash
# Checks the Orin guest layer (images/orin-agx/meta-sel4-vmm) without BitBake:
#  (a) every CONFIG_ symbol in the kernel config fragment (virtio.cfg) is defined by a
#      `config NAME` or `menuconfig NAME` in a Linux tree's Kconfig files;
#  (b) every .conf, .bb, .bbappend and .inc file of the layer parses with bbcheck.py (a small
#      BitBake syntax checker: assignments, quoted values with continuations, include/require/
#      inherit, comments, shell and python function blocks; anything else fails).
#
#   images/orin-agx/check.sh [LINUX_TREE]
#
# LINUX_TREE defaults to $LINUX_TREE, else /work/ext/linux-src/linux-source-6.1 (Debian's
# linux-source-6.1, unpacked). Without a tree, (a) is skipped with a message; (b) always runs.
# Exit status: 0 all checks run passed, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
layer=$here/meta-sel4-vmm
fragment=$layer/recipes-kernel/linux/files/virtio.cfg
tree=${1:-${LINUX_TREE:-/work/ext/linux-src/linux-source-6.1}}
status=0

echo "== (a) kernel config fragment symbols: $fragment"
if [[ ! -f $tree/Kconfig ]]; then
    echo "   skipped: no Linux tree at $tree (pass one as the argument, or apt-get install"
    echo "   linux-source-6.1 and untar /usr/src/linux-source-6.1.tar.xz)"
else
    echo "   Linux tree $tree ($(sed -n 's/^VERSION = //p;s/^PATCHLEVEL = //p;s/^SUBLEVEL = //p' "$tree/Makefile" | paste -sd.))"
    # Every symbol the kernel defines, once.
    symbols=$(mktemp)
    trap 'rm -f "$symbols"' EXIT
    find "$tree" -name 'Kconfig*' -type f -print0 \
        | xargs -0 sed -n 's/^[[:space:]]*\(menu\)\{0,1\}config[[:space:]]\{1,\}\([A-Za-z0-9_]\{1,\}\)[[:space:]]*$/\2/p' \
        | sort -u >"$symbols"
    checked=0
    while IFS= read -r line; do
        case $line in
            CONFIG_*=*) name=${line%%=*}; value=${line#*=} ;;
            "# CONFIG_"*" is not set") name=${line#\# }; name=${name%% *}; value=n ;;
            ""|"#"*) continue ;;
            *) echo "   FAIL not a config line: $line"; status=1; continue ;;
        esac
        sym=${name#CONFIG_}
        checked=$((checked + 1))
        if grep -qx -- "$sym" "$symbols"; then
            echo "   ok   $name=$value"
        else
            echo "   FAIL $name: no 'config $sym' in any Kconfig of $tree"
            status=1
        fi
    done <"$fragment"
    echo "   $checked symbols checked"
fi

echo "== (b) BitBake syntax of the layer"
mapfile -t files < <(find "$layer" -type f \( -name '*.conf' -o -name '*.bb' -o -name '*.bbappend' -o -name '*.inc' \) | sort)
if ((${#files[@]} == 0)); then
    echo "   FAIL no layer files under $layer"
    status=1
elif ! python3 "$here/bbcheck.py" "${files[@]}" | sed 's/^/   /'; then   # pipefail: bbcheck's status
    status=1
fi

echo
if ((status)); then echo "check.sh: FAILED"; else echo "check.sh: all checks passed"; fi
exit "$status"
