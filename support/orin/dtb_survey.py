#!/usr/bin/env python3
"""Survey a flattened device tree: every node's translated `reg` ranges, every GIC SPI in use,
and whether given address ranges or SPIs collide with any of them.

No dependencies beyond the Python standard library (no libfdt here).

  dtb_survey.py BOARD.dtb                       # list regions and SPIs
  dtb_survey.py BOARD.dtb --node /bus@0/hsp@3c00000   # one node: reg, interrupts, status
  dtb_survey.py BOARD.dtb --free 0x20000000:0x10000000 --free-spi 416 ...
        # exit 1 if any range overlaps a node's reg (or a bus's ranges window) or any SPI is in use

Addresses are CPU physical: each node's `reg` is translated through its parents' `ranges`.
PCIe controllers' `ranges` (their outbound windows) count as used address space too.
"""
import struct
import sys

FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


class Node:
    def __init__(self, name, parent):
        self.name = name
        self.parent = parent
        self.props = {}
        self.children = []

    @property
    def path(self):
        if self.parent is None:
            return "/"
        pp = self.parent.path
        return (pp if pp != "/" else "") + "/" + self.name

    def cells(self, name, default):
        v = self.props.get(name)
        return struct.unpack(">I", v)[0] if v is not None and len(v) == 4 else default

    def u32s(self, name):
        v = self.props.get(name, b"")
        return list(struct.unpack(">%dI" % (len(v) // 4), v))

    def string(self, name):
        v = self.props.get(name)
        return None if v is None else v.rstrip(b"\0").decode(errors="replace")

    def strings(self, name):
        v = self.props.get(name)
        return [] if v is None else [s.decode(errors="replace") for s in v.rstrip(b"\0").split(b"\0")]


def parse(blob):
    magic, _tot, off_struct, off_strings = struct.unpack(">IIII", blob[:16])
    if magic != 0xD00DFEED:
        raise SystemExit("not a flattened device tree (bad magic %#x)" % magic)
    pos = off_struct
    root, cur = None, None
    while True:
        (tok,) = struct.unpack(">I", blob[pos : pos + 4])
        pos += 4
        if tok == FDT_BEGIN_NODE:
            end = blob.index(b"\0", pos)
            name = blob[pos:end].decode()
            pos = (end + 4) & ~3
            n = Node(name, cur)
            if cur is None:
                root = n
            else:
                cur.children.append(n)
            cur = n
        elif tok == FDT_END_NODE:
            cur = cur.parent
        elif tok == FDT_PROP:
            ln, nameoff = struct.unpack(">II", blob[pos : pos + 8])
            pos += 8
            pname = blob[off_strings + nameoff : blob.index(b"\0", off_strings + nameoff)].decode()
            cur.props[pname] = blob[pos : pos + ln]
            pos = (pos + ln + 3) & ~3
        elif tok == FDT_NOP:
            continue
        elif tok == FDT_END:
            return root
        else:
            raise SystemExit("bad token %d" % tok)


def walk(n):
    yield n
    for c in n.children:
        yield from walk(c)


def num(cells):
    v = 0
    for c in cells:
        v = (v << 32) | c
    return v


def translate(node, addr):
    """Translates a child address of `node`'s children into a CPU address (None if unmapped)."""
    while node.parent is not None:
        if "ranges" not in node.props:
            return None
        r = node.u32s("ranges")
        if not r:  # empty ranges: identity
            node = node.parent
            continue
        ca = node.cells("#address-cells", 2)
        pa = node.parent.cells("#address-cells", 2)
        sz = node.cells("#size-cells", 1)
        step = ca + pa + sz
        for i in range(0, len(r) - step + 1, step):
            cbase = num(r[i : i + ca])
            pbase = num(r[i + ca : i + ca + pa])
            size = num(r[i + ca + pa : i + step])
            # PCI child addresses carry a phys.hi cell: compare only the low 64 bits.
            if ca == 3:
                cbase &= (1 << 64) - 1
            if cbase <= addr < cbase + size:
                addr = pbase + (addr - cbase)
                break
        else:
            return None
        node = node.parent
    return addr


def regs(node):
    """The node's `reg` entries as CPU (base, size) pairs."""
    if node.parent is None or "reg" not in node.props:
        return []
    ac = node.parent.cells("#address-cells", 2)
    sc = node.parent.cells("#size-cells", 1)
    r = node.u32s("reg")
    out = []
    if ac + sc == 0:
        return out
    for i in range(0, len(r) - (ac + sc) + 1, ac + sc):
        a = num(r[i : i + ac])
        s = num(r[i + ac : i + ac + sc])
        t = translate(node.parent, a)
        if t is not None and s:
            out.append((t, s))
    return out


def windows(node):
    """A PCI host bridge's outbound windows (ranges) as CPU (base, size) pairs."""
    if node.string("device_type") != "pci" or "ranges" not in node.props:
        return []
    r = node.u32s("ranges")
    ca, pa, sz = 3, node.parent.cells("#address-cells", 2), node.cells("#size-cells", 2)
    step = ca + pa + sz
    out = []
    for i in range(0, len(r) - step + 1, step):
        pbase = num(r[i + ca : i + ca + pa])
        size = num(r[i + ca + pa : i + step])
        t = translate(node.parent, pbase) if node.parent.parent is not None else pbase
        out.append((t if t is not None else pbase, size))
    return out


def phandles(root):
    return {n.cells("phandle", None): n for n in walk(root) if "phandle" in n.props}


def interrupt_parent(node, ph):
    n = node
    while n is not None:
        if "interrupt-parent" in n.props:
            return ph.get(n.cells("interrupt-parent", None))
        n = n.parent
    return None


def spis(node, ph, gic):
    """(spi, flags) of the node's GIC SPIs, from `interrupts` and `interrupts-extended`."""
    out = []
    if "interrupts" in node.props:
        if interrupt_parent(node, ph) is gic:
            c = node.u32s("interrupts")
            for i in range(0, len(c) - 2, 3):
                if c[i] == 0:
                    out.append((c[i + 1], c[i + 2]))
    if "interrupts-extended" in node.props:
        c = node.u32s("interrupts-extended")
        i = 0
        while i < len(c):
            p = ph.get(c[i])
            n = p.cells("#interrupt-cells", 1) if p else 1
            if p is gic and n == 3 and c[i + 1] == 0:
                out.append((c[i + 2], c[i + 3]))
            i += 1 + n
    if "interrupt-map" in node.props:  # PCI INTx routing of the board's own root ports
        m = node.u32s("interrupt-map")
        ac = node.cells("#address-cells", 3)
        ic = node.cells("#interrupt-cells", 1)
        i = 0
        while i < len(m):
            p = ph.get(m[i + ac + ic])
            pac = p.cells("#address-cells", 0) if p else 0
            pic = p.cells("#interrupt-cells", 3) if p else 3
            j = i + ac + ic + 1 + pac
            if p is gic and pic == 3 and m[j] == 0:
                out.append((m[j + 1], m[j + 2]))
            i = j + pic
    return out


def find_gic(root):
    for n in walk(root):
        if "interrupt-controller" in n.props and any(
            c.startswith("arm,gic") for c in n.strings("compatible")
        ):
            return n
    return None


def parse_range(s):
    a, b = s.split(":")
    return int(a, 0), int(b, 0)


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    root = parse(open(argv[1], "rb").read())
    ph = phandles(root)
    gic = find_gic(root)
    args = argv[2:]
    by_path = {n.path: n for n in walk(root)}
    if args and args[0] == "--node":
        n = by_path.get(args[1])
        if n is None:
            print("no node %s" % args[1])
            return 1
        print("path %s" % n.path)
        print("status %s" % (n.string("status") or "okay (no status)"))
        print("compatible %s" % " ".join(n.strings("compatible")))
        for b, s in regs(n):
            print("reg %#x %#x" % (b, s))
        for spi, fl in spis(n, ph, gic):
            print("spi %d %d" % (spi, fl))
        if "interrupt-names" in n.props:
            print("interrupt-names %s" % " ".join(n.strings("interrupt-names")))
        for c in n.children:
            print("child %s" % c.name)
        return 0
    used = []  # (base, size, path, what)
    irqs = {}  # spi -> [(path, flags)]
    for n in walk(root):
        for b, s in regs(n):
            used.append((b, s, n.path, "reg"))
        for b, s in windows(n):
            used.append((b, s, n.path, "pci-window"))
        for spi, fl in spis(n, ph, gic):
            irqs.setdefault(spi, []).append((n.path, fl))
    if not args:
        for b, s, p, w in sorted(used):
            print("%#014x %#012x %-10s %s" % (b, s, w, p))
        for spi in sorted(irqs):
            print("spi %4d %s" % (spi, ", ".join("%s(%d)" % u for u in irqs[spi])))
        return 0
    bad = 0
    i = 0
    while i < len(args):
        if args[i] == "--free":
            b, s = parse_range(args[i + 1])
            hits = [u for u in used if u[0] < b + s and b < u[0] + u[1]]
            for hb, hs, hp, hw in hits:
                print("COLLIDES %#x+%#x with %s %s [%#x, %#x)" % (b, s, hp, hw, hb, hb + hs))
            if not hits:
                print("free %#x+%#x" % (b, s))
            bad += bool(hits)
        elif args[i] == "--free-spi":
            spi = int(args[i + 1], 0)
            if spi in irqs:
                print("COLLIDES SPI %d with %s" % (spi, ", ".join(p for p, _ in irqs[spi])))
                bad += 1
            else:
                print("free SPI %d" % spi)
        else:
            print("unknown argument %s" % args[i])
            return 2
        i += 2
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
