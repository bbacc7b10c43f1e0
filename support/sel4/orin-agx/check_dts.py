#!/usr/bin/env python3
"""Holds the seL4 Orin device tree (orinagx.dts + overlay-orinagx.dts, compiled) against the
board's own DTB. Called by check.sh; prints one line per check and exits 1 on any mismatch.

  check_dts.py SEL4.dtb BOARD.dtb
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "orin"))
import dtb_survey as fdt  # noqa: E402  (support/orin/dtb_survey.py: a dependency-free FDT reader)

# Properties compared verbatim (phandle-valued ones by the path they point at).
COMPARED = [
    "compatible", "reg", "ranges", "interrupts", "interrupt-names", "#address-cells",
    "#size-cells", "#interrupt-cells", "#mbox-cells", "#redistributor-regions",
    "interrupt-controller", "mboxes", "mbox-names", "shmem", "no-memory-wc", "pool", "label",
    "method", "enable-method", "device_type", "always-on", "#clock-cells", "#reset-cells",
    "#power-domain-cells", "status",
]
# What the overlay changes on purpose, with the value it must have.
OVERLAY = {
    ("/bus@0/serial@3100000", "compatible"): ["nvidia,tegra234-uart", "nvidia,tegra20-uart"],
}
# seL4-only nodes: not on the board (the board's /chosen, /aliases say other things).
SEL4_ONLY = {"/chosen", "/aliases", "/memory@80000000"}

failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL " + msg)


def ok(msg):
    print("ok   " + msg)


def value(node, prop, ph):
    """A comparable value: strings, or cells with phandles replaced by target paths."""
    raw = node.props[prop]
    if prop in ("compatible", "interrupt-names", "mbox-names", "label", "method",
                "enable-method", "device_type", "status"):
        return node.strings(prop)
    cells = node.u32s(prop) if len(raw) % 4 == 0 else list(raw)
    if prop == "mboxes":
        out, i = [], 0
        while i < len(cells):
            target = ph.get(cells[i])
            n = target.cells("#mbox-cells", 0) if target else 0
            out.append((target.path if target else "?%#x" % cells[i], tuple(cells[i + 1:i + 1 + n])))
            i += 1 + n
        return out
    if prop == "shmem":
        return [ph[c].path if c in ph else "?%#x" % c for c in cells]
    return cells


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    ours = fdt.parse(open(sys.argv[1], "rb").read())
    board = fdt.parse(open(sys.argv[2], "rb").read())
    ours_ph, board_ph = fdt.phandles(ours), fdt.phandles(board)
    board_nodes = {n.path: n for n in fdt.walk(board)}

    for n in fdt.walk(ours):
        if n.path == "/" or n.path in SEL4_ONLY:
            continue
        b = board_nodes.get(n.path)
        if b is None:
            fail("%s: not a node of the board" % n.path)
            continue
        for prop in COMPARED:
            if prop not in n.props:
                continue
            mine = value(n, prop, ours_ph)
            if (n.path, prop) in OVERLAY:
                want = OVERLAY[(n.path, prop)]
                if mine == want:
                    ok("%s %s = %s (overlay; board: %s)" % (
                        n.path, prop, mine, value(b, prop, board_ph) if prop in b.props else None))
                else:
                    fail("%s %s = %s, overlay should make it %s" % (n.path, prop, mine, want))
                continue
            if prop not in b.props:
                fail("%s %s: the board's node has no such property" % (n.path, prop))
                continue
            theirs = value(b, prop, board_ph)
            if mine == theirs:
                ok("%s %s" % (n.path, prop))
            else:
                fail("%s %s = %s, board has %s" % (n.path, prop, mine, theirs))
        # Translated register ranges: the same physical addresses.
        if fdt.regs(n) != fdt.regs(b):
            fail("%s: physical ranges %s, board %s" % (n.path, fdt.regs(n), fdt.regs(b)))

    # Every CPU of the board, none more.
    ours_cpus = sorted(c.path for c in fdt.walk(ours) if c.string("device_type") == "cpu")
    board_cpus = sorted(c.path for c in fdt.walk(board) if c.string("device_type") == "cpu")
    if ours_cpus == board_cpus and len(ours_cpus) == 12:
        ok("12 CPUs, MPIDRs %s" % ", ".join(p.split("@")[1] for p in ours_cpus))
    else:
        fail("CPUs %s, board %s" % (ours_cpus, board_cpus))

    # Memory: inside DRAM (which starts at 0x8000_0000) and clear of every board device.
    used = []
    for b in fdt.walk(board):
        used += [(s, l, b.path) for s, l in fdt.regs(b)] + [(s, l, b.path) for s, l in fdt.windows(b)]
    mem = board_nodes.get("/memory@80000000")
    regs = fdt.regs(next(n for n in fdt.walk(ours) if n.path == "/memory@80000000"))
    ras = (0xBE00_0000, 0x0400_0000)
    for s, l in regs:
        hits = [p for us, ul, p in used if us < s + l and s < us + ul]
        if s >= 0x8000_0000 and not hits:
            ok("memory %#x..%#x: in DRAM, no board device there" % (s, s + l))
        else:
            fail("memory %#x..%#x collides with %s" % (s, s + l, hits or "below DRAM"))
        if s < ras[0] + ras[1] and ras[0] < s + l:
            fail("memory %#x..%#x holds the RAS-error region 0xbe000000..0xc2000000" % (s, s + l))
    if any(s <= 0x9000_0000 and 0xA000_0000 <= s + l for s, l in regs):
        ok("memory holds the VMM's identity-mapped guest RAM 0x90000000..0xa0000000")
    else:
        fail("memory does not hold the guest RAM 0x90000000..0xa0000000")
    if not any(s < ras[0] + ras[1] and ras[0] < s + l for s, l in regs):
        ok("memory leaves out the RAS-error region 0xbe000000..0xc2000000")
    if mem is not None:
        print("note the board DTB has a /memory@80000000 node: %s" % fdt.regs(mem))

    # The kernel's devices: the UART binds seL4's driver, the GIC's GICR holds 12 redistributors.
    chosen = next(n for n in fdt.walk(ours) if n.path == "/chosen")
    aliases = next(n for n in fdt.walk(ours) if n.path == "/aliases")
    kdev = chosen.props["seL4,kernel-devices"]
    first = kdev.split(b"\0")[0].decode()
    uart_path = aliases.string(first) if first in aliases.props else None
    if uart_path == "/bus@0/serial@3100000":
        ok("kernel console %s -> %s" % (first, uart_path))
    else:
        fail("kernel console %s -> %s, expected UARTA" % (first, uart_path))
    gic = next(n for n in fdt.walk(ours) if n.path == "/bus@0/interrupt-controller@f400000")
    (_, _), (gicr, gicr_len) = fdt.regs(gic)
    if gicr_len >= 12 * 0x2_0000:
        ok("GICR %#x + %#x holds 12 redistributors of 128 KiB" % (gicr, gicr_len))
    else:
        fail("GICR too small for 12 cores")
    return 1 if failures else 0


if __name__ == "__main__":
    rc = main()
    print("%d failure(s)" % failures)
    sys.exit(rc)
