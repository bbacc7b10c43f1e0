//! The `orin-agx` table held against the devkit's real device tree
//! (`testdata/tegra234-p3737-0000+p3701-0000.dtb`, see `testdata/PROVENANCE.md`): every
//! pass-through region is a `reg` region of its node (translated through the parents'
//! `ranges`), every pass-through interrupt is an SPI of a pass-through node with the table's
//! trigger, and the emulated windows and INTx SPIs are free on the board.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use fdt::nodes::AsNode;
use vmm_platform::{GuestRange, ORIN_AGX, Platform};

const BOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/tegra234-p3737-0000+p3701-0000.dtb"
);

type Props = Vec<(String, Vec<u8>)>;

/// The board's tree: every node by path with its properties.
struct Board {
    nodes: BTreeMap<String, Props>,
}

type FdtNode<'a> = fdt::nodes::Node<
    'a,
    (
        fdt::parsing::unaligned::UnalignedParser<'a>,
        fdt::parsing::Panic,
    ),
>;

fn walk(node: FdtNode<'_>, path: String, out: &mut BTreeMap<String, Props>) {
    let props = node
        .properties()
        .iter()
        .map(|p| (p.name.to_string(), p.value.to_vec()))
        .collect();
    for c in node.children().iter() {
        let n = c.name();
        let name = match n.unit_address {
            Some(u) => format!("{}@{u}", n.name),
            None => n.name.to_string(),
        };
        let child = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        walk(c, child, out);
    }
    out.insert(path, props);
}

fn cells(v: &[u8]) -> Vec<u32> {
    assert_eq!(v.len() % 4, 0);
    v.chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn number(c: &[u32]) -> u64 {
    c.iter().fold(0, |a, &x| (a << 32) | u64::from(x))
}

fn parent(path: &str) -> Option<&str> {
    match path.rsplit_once('/') {
        Some(("", _)) if path != "/" => Some("/"),
        Some((p, _)) if path != "/" => Some(p),
        _ => None,
    }
}

impl Board {
    fn read() -> Board {
        let data = std::fs::read(BOARD).unwrap();
        let fdt = fdt::Fdt::new_unaligned(&data).unwrap();
        let mut nodes = BTreeMap::new();
        walk(fdt.root().as_node(), "/".into(), &mut nodes);
        Board { nodes }
    }

    fn prop(&self, path: &str, name: &str) -> Option<&[u8]> {
        self.nodes
            .get(path)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn cell(&self, path: &str, name: &str) -> Option<u32> {
        self.prop(path, name).map(|v| cells(v)[0])
    }

    fn by_phandle(&self, phandle: u32) -> String {
        self.nodes
            .keys()
            .find(|p| self.cell(p, "phandle") == Some(phandle))
            .unwrap_or_else(|| panic!("no node has phandle {phandle:#x}"))
            .clone()
    }

    /// `[addr, addr + size)` of the address space `bus` gives its children, as a CPU address;
    /// `None` when a bus on the way has no `ranges` or no range holds it.
    fn translate(&self, bus: &str, addr: u64, size: u64) -> Option<u64> {
        let Some(up) = parent(bus) else {
            return Some(addr);
        };
        let ranges = cells(self.prop(bus, "ranges")?);
        if ranges.is_empty() {
            return self.translate(up, addr, size);
        }
        let ca = self.cell(bus, "#address-cells").unwrap_or(2) as usize;
        let pa = self.cell(up, "#address-cells").unwrap_or(2) as usize;
        let cs = self.cell(bus, "#size-cells").unwrap_or(1) as usize;
        for e in ranges.chunks(ca + pa + cs) {
            let (child, p, len) = (
                number(&e[..ca]),
                number(&e[ca..ca + pa]),
                number(&e[ca + pa..]),
            );
            if addr >= child && addr + size <= child + len {
                return self.translate(up, p + (addr - child), size);
            }
        }
        // Outside every range (Linux 6.1's memory-controller@2c00000 `ranges` miscounts its
        // cells, so its EMC child does not translate): not a CPU address.
        None
    }

    /// The node's `reg` as CPU-physical regions.
    fn regions(&self, path: &str) -> Vec<GuestRange> {
        let Some(reg) = self.prop(path, "reg") else {
            return Vec::new();
        };
        let bus = parent(path).unwrap();
        let ac = self.cell(bus, "#address-cells").unwrap_or(2) as usize;
        let sc = self.cell(bus, "#size-cells").unwrap_or(1) as usize;
        if sc == 0 {
            return Vec::new();
        }
        cells(reg)
            .chunks(ac + sc)
            .filter_map(|e| {
                let (a, s) = (number(&e[..ac]), number(&e[ac..]));
                self.translate(bus, a, s).map(|a| GuestRange::new(a, s))
            })
            .collect()
    }

    /// The interrupt parent of `path` (Linux's `of_irq_find_parent`).
    fn interrupt_parent(&self, path: &str) -> String {
        let mut child = path.to_string();
        loop {
            let next = match self.cell(&child, "interrupt-parent") {
                Some(ph) => self.by_phandle(ph),
                None => parent(&child).unwrap().to_string(),
            };
            if self.prop(&next, "#interrupt-cells").is_some() {
                return next;
            }
            child = next;
        }
    }

    fn is_gic(&self, path: &str) -> bool {
        self.prop(path, "compatible")
            .is_some_and(|c| c.split(|&b| b == 0).any(|s| s == b"arm,gic-v3"))
    }

    /// Every GIC SPI of `path`'s `interrupts`: (SPI, flags, interrupt-name).
    fn spis(&self, path: &str) -> Vec<(u32, u32, Option<String>)> {
        let Some(v) = self.prop(path, "interrupts") else {
            return Vec::new();
        };
        let ip = self.interrupt_parent(path);
        if !self.is_gic(&ip) {
            return Vec::new();
        }
        let names: Vec<String> = self
            .prop(path, "interrupt-names")
            .map(|n| {
                n.strip_suffix(&[0])
                    .unwrap()
                    .split(|&b| b == 0)
                    .map(|s| String::from_utf8(s.to_vec()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        cells(v)
            .chunks(3)
            .enumerate()
            .filter(|(_, s)| s[0] == 0)
            .map(|(i, s)| (s[1], s[2], names.get(i).cloned()))
            .collect()
    }
}

#[test]
fn every_pass_through_region_is_a_reg_region_of_its_node() {
    let board = Board::read();
    for p in ORIN_AGX.passthrough {
        assert!(
            board.nodes.contains_key(p.dt_path),
            "{}: {} is not in the board DTB",
            p.name,
            p.dt_path
        );
        let regions = board.regions(p.dt_path);
        assert!(
            regions.contains(&p.range),
            "{}: table {:#x}+{:#x}, board {} reg {:x?}",
            p.name,
            p.range.base.0,
            p.range.size,
            p.dt_path,
            regions
                .iter()
                .map(|r| (r.base.0, r.size))
                .collect::<Vec<_>>()
        );
        // And the node has no registers the guest would not get.
        for r in &regions {
            assert!(
                ORIN_AGX
                    .passthrough
                    .iter()
                    .any(|q| q.range.contains_range(r.base, r.size)),
                "{}: reg {:#x}+{:#x} is in no pass-through region",
                p.dt_path,
                r.base.0,
                r.size
            );
        }
    }
}

#[test]
fn every_pass_through_interrupt_is_an_spi_of_a_pass_through_node_with_its_trigger() {
    let board = Board::read();
    for irq in ORIN_AGX.passthrough_irqs {
        let owners: Vec<(&str, u32, Option<String>)> = ORIN_AGX
            .passthrough
            .iter()
            .flat_map(|p| {
                board
                    .spis(p.dt_path)
                    .into_iter()
                    .filter(|&(spi, _, _)| spi == irq.spi.0)
                    .map(|(_, flags, name)| (p.dt_path, flags, name))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            !owners.is_empty(),
            "{}: SPI {} is not an interrupt of any pass-through node",
            irq.name,
            irq.spi.0
        );
        for (node, flags, _) in &owners {
            assert_eq!(
                flags & 0xf,
                irq.trigger.dt_flags(),
                "{}: SPI {} on {node} has flags {flags:#x}, the table says {:?}",
                irq.name,
                irq.spi.0,
                irq.trigger
            );
        }
        // Where the name is `<region>-<interrupt-name>`, it names this very interrupt.
        for p in ORIN_AGX.passthrough {
            if let Some(iname) = irq
                .name
                .strip_prefix(p.name)
                .and_then(|r| r.strip_prefix('-'))
            {
                let named: Vec<u32> = board
                    .spis(p.dt_path)
                    .into_iter()
                    .filter(|(_, _, n)| n.as_deref() == Some(iname))
                    .map(|(spi, _, _)| spi)
                    .collect();
                assert_eq!(
                    named,
                    [irq.spi.0],
                    "{}: {} calls SPI {:?} {iname:?}",
                    irq.name,
                    p.dt_path,
                    named
                );
            }
        }
    }
}

fn emulated(p: &Platform) -> Vec<(&'static str, GuestRange)> {
    vec![("pci-ecam", p.pci.ecam), ("pci-mmio", p.pci.mmio)]
}

#[test]
fn the_emulated_windows_and_intx_spis_are_free_on_the_board() {
    let board = Board::read();
    let mut used = Vec::new();
    for path in board.nodes.keys() {
        for r in board.regions(path) {
            used.push((path.clone(), r));
        }
        // PCIe controllers' apertures.
        if board.prop(path, "device_type") == Some(b"pci\0") {
            let ranges = cells(board.prop(path, "ranges").unwrap());
            let pa = board.cell(parent(path).unwrap(), "#address-cells").unwrap() as usize;
            for e in ranges.chunks(3 + pa + 2) {
                let base = number(&e[3..3 + pa]);
                used.push((path.clone(), GuestRange::new(base, number(&e[3 + pa..]))));
            }
        }
    }
    for (name, w) in emulated(&ORIN_AGX) {
        for (path, r) in &used {
            assert!(
                !w.overlaps(r),
                "{name} {:#x}+{:#x} overlaps {path} {:#x}+{:#x}",
                w.base.0,
                w.size,
                r.base.0,
                r.size
            );
        }
    }
    let all_spis: Vec<u32> = board
        .nodes
        .keys()
        .flat_map(|p| board.spis(p).into_iter().map(|(s, _, _)| s))
        .collect();
    for spi in ORIN_AGX.pci.intx {
        assert!(
            !all_spis.contains(&spi.0),
            "INTx SPI {} is used on the board",
            spi.0
        );
    }
    // The emulated GIC sits exactly where the board's is.
    let gic = "/bus@0/interrupt-controller@f400000";
    assert!(board.is_gic(gic));
    let regions = board.regions(gic);
    assert_eq!(regions[0], ORIN_AGX.gicd_range());
    assert!(regions[1].contains_range(ORIN_AGX.gicr_range().base, ORIN_AGX.gicr_range().size));
}
