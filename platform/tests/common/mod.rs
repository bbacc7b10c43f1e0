//! The devkit's device tree (`testdata/tegra234-p3737-0000+p3701-0000.dtb`), read with the
//! `fdt` crate: every node by path with its properties, `reg` translated to CPU addresses,
//! interrupts and phandles resolved. Shared by `orin_board.rs` and `orin_design_doc.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use fdt::nodes::AsNode;
use vmm_platform::GuestRange;

pub const BOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/tegra234-p3737-0000+p3701-0000.dtb"
);

pub type Props = Vec<(String, Vec<u8>)>;

/// The board's tree: every node by path with its properties.
pub struct Board {
    pub nodes: BTreeMap<String, Props>,
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

pub fn cells(v: &[u8]) -> Vec<u32> {
    assert_eq!(v.len() % 4, 0);
    v.chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn number(c: &[u32]) -> u64 {
    c.iter().fold(0, |a, &x| (a << 32) | u64::from(x))
}

pub fn parent(path: &str) -> Option<&str> {
    match path.rsplit_once('/') {
        Some(("", _)) if path != "/" => Some("/"),
        Some((p, _)) if path != "/" => Some(p),
        _ => None,
    }
}

impl Board {
    pub fn read() -> Board {
        let data = std::fs::read(BOARD).unwrap();
        let fdt = fdt::Fdt::new_unaligned(&data).unwrap();
        let mut nodes = BTreeMap::new();
        walk(fdt.root().as_node(), "/".into(), &mut nodes);
        Board { nodes }
    }

    pub fn prop(&self, path: &str, name: &str) -> Option<&[u8]> {
        self.nodes
            .get(path)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn cell(&self, path: &str, name: &str) -> Option<u32> {
        self.prop(path, name).map(|v| cells(v)[0])
    }

    pub fn by_phandle(&self, phandle: u32) -> String {
        self.nodes
            .keys()
            .find(|p| self.cell(p, "phandle") == Some(phandle))
            .unwrap_or_else(|| panic!("no node has phandle {phandle:#x}"))
            .clone()
    }

    /// `[addr, addr + size)` of the address space `bus` gives its children, as a CPU address;
    /// `None` when a bus on the way has no `ranges` or no range holds it.
    pub fn translate(&self, bus: &str, addr: u64, size: u64) -> Option<u64> {
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
    pub fn regions(&self, path: &str) -> Vec<GuestRange> {
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
    pub fn interrupt_parent(&self, path: &str) -> String {
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

    pub fn is_gic(&self, path: &str) -> bool {
        self.prop(path, "compatible")
            .is_some_and(|c| c.split(|&b| b == 0).any(|s| s == b"arm,gic-v3"))
    }

    /// Every GIC SPI of `path`'s `interrupts`: (SPI, flags, interrupt-name).
    pub fn spis(&self, path: &str) -> Vec<(u32, u32, Option<String>)> {
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

impl Board {
    /// The strings of a string-list property.
    pub fn strs(&self, path: &str, name: &str) -> Vec<String> {
        self.prop(path, name)
            .map(|v| {
                v.strip_suffix(&[0])
                    .unwrap()
                    .split(|&b| b == 0)
                    .map(|s| String::from_utf8(s.to_vec()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The cells of a property.
    pub fn cells(&self, path: &str, name: &str) -> Vec<u32> {
        cells(
            self.prop(path, name)
                .unwrap_or_else(|| panic!("{path} has no {name}")),
        )
    }
}
