//! Test helpers: the real board DTBs, `dtc`, and an independent reader of the output (the
//! `fdt` crate directly, none of `guest-dtb`'s own code) with its own phandle checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

pub const ORIN_DTB: &str = "tegra234-p3737-0000+p3701-0000.dtb";
pub const QEMU_DTB: &str = "qemu-virt-gicv3-smp4-2g.dtb";

/// A board DTB from `platform/testdata/`.
pub fn board(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../platform/testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `dtb` with the one node named `name` (the whole name, unit address included) and its
/// subtree blanked out with FDT_NOP tokens: the same board without that node.
pub fn without_node(dtb: &[u8], name: &str) -> Vec<u8> {
    const BEGIN: u32 = 1;
    const END: u32 = 2;
    const PROP: u32 = 3;
    const NOP: u32 = 4;
    let word = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let pad = |n: usize| n.div_ceil(4) * 4;
    let (start, size) = (word(dtb, 8) as usize, word(dtb, 36) as usize);
    let mut out = dtb.to_vec();
    let mut at = start;
    let mut found = None;
    let mut depth = 0usize;
    while at < start + size {
        let token = word(dtb, at);
        let next = match token {
            BEGIN => {
                let n = dtb[at + 4..].iter().position(|&b| b == 0).unwrap();
                if found.is_none() && &dtb[at + 4..at + 4 + n] == name.as_bytes() {
                    found = Some((at, depth));
                }
                depth += 1;
                at + 4 + pad(n + 1)
            }
            END => {
                depth -= 1;
                let next = at + 4;
                if let Some((from, d)) = found
                    && d == depth
                {
                    for w in (from..next).step_by(4) {
                        out[w..w + 4].copy_from_slice(&NOP.to_be_bytes());
                    }
                    let count = dtb[start..start + size]
                        .windows(name.len() + 5)
                        .filter(|w| {
                            w[..4] == BEGIN.to_be_bytes()
                                && &w[4..4 + name.len()] == name.as_bytes()
                                && w[4 + name.len()] == 0
                        })
                        .count();
                    assert_eq!(count, 1, "more than one node is named {name}");
                    return out;
                }
                next
            }
            PROP => at + 12 + pad(word(dtb, at + 4) as usize),
            NOP => at + 4,
            _ => break,
        };
        at = next;
    }
    panic!("no node named {name}");
}

/// `dtc -I dtb -O dts` of `dtb`: `Some((dts, stderr))`, or `None` (with a message) when dtc
/// is not installed.
pub fn dtc(dtb: &[u8], tag: &str) -> Option<(String, String)> {
    if Command::new("dtc").arg("--version").output().is_err() {
        println!("SKIPPED the dtc check of {tag}: dtc is not installed (CI installs it)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("guest-dtb-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{tag}.dtb"));
    std::fs::write(&file, dtb).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-o", "-"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "dtc failed on {tag}");
    Some((
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    ))
}

/// Requires `dtc` to decompile `dtb` without a single warning.
pub fn dtc_clean(dtb: &[u8], tag: &str) {
    if let Some((_, stderr)) = dtc(dtb, tag) {
        assert!(stderr.trim().is_empty(), "dtc warns about {tag}:\n{stderr}");
    }
}

/// A device tree read with the `fdt` crate: every node by path, its properties in order.
pub struct Dt {
    pub nodes: BTreeMap<String, Vec<(String, Vec<u8>)>>,
}

type FdtNode<'a> = fdt::nodes::Node<
    'a,
    (
        fdt::parsing::unaligned::UnalignedParser<'a>,
        fdt::parsing::Panic,
    ),
>;

fn walk(node: FdtNode<'_>, path: String, out: &mut BTreeMap<String, Vec<(String, Vec<u8>)>>) {
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
    assert!(
        out.insert(path.clone(), props).is_none(),
        "two nodes at {path}"
    );
}

pub fn cells(v: &[u8]) -> Vec<u32> {
    assert_eq!(v.len() % 4, 0);
    v.chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

pub fn strs(v: &[u8]) -> Vec<String> {
    let v = v
        .strip_suffix(&[0])
        .expect("a string property ends with NUL");
    v.split(|&b| b == 0)
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

impl Dt {
    pub fn read(dtb: &[u8]) -> Dt {
        use fdt::nodes::AsNode;
        let fdt = fdt::Fdt::new_unaligned(dtb).unwrap();
        let mut nodes = BTreeMap::new();
        walk(fdt.root().as_node(), "/".into(), &mut nodes);
        Dt { nodes }
    }

    pub fn has_node(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    pub fn props(&self, path: &str) -> &[(String, Vec<u8>)] {
        self.nodes
            .get(path)
            .unwrap_or_else(|| panic!("no node {path}"))
    }

    pub fn prop(&self, path: &str, name: &str) -> Option<&[u8]> {
        self.props(path)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn has(&self, path: &str, name: &str) -> bool {
        self.prop(path, name).is_some()
    }

    pub fn cells(&self, path: &str, name: &str) -> Vec<u32> {
        cells(
            self.prop(path, name)
                .unwrap_or_else(|| panic!("{path} has no {name}")),
        )
    }

    pub fn u32(&self, path: &str, name: &str) -> u32 {
        let c = self.cells(path, name);
        assert_eq!(c.len(), 1, "{path} {name}");
        c[0]
    }

    pub fn u64(&self, path: &str, name: &str) -> u64 {
        let c = self.cells(path, name);
        c.iter().fold(0u64, |a, &x| (a << 32) | u64::from(x))
    }

    pub fn strs(&self, path: &str, name: &str) -> Vec<String> {
        strs(
            self.prop(path, name)
                .unwrap_or_else(|| panic!("{path} has no {name}")),
        )
    }

    pub fn str(&self, path: &str, name: &str) -> String {
        let s = self.strs(path, name);
        assert_eq!(s.len(), 1, "{path} {name}: {s:?}");
        s[0].clone()
    }

    pub fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .keys()
            .filter(|k| k.starts_with(&prefix) && k.len() > prefix.len())
            .filter(|k| !k[prefix.len()..].contains('/'))
            .cloned()
            .collect()
    }

    /// Every phandle with the nodes that have it.
    pub fn phandles(&self) -> BTreeMap<u32, Vec<String>> {
        let mut m: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (path, props) in &self.nodes {
            for (n, v) in props {
                if n == "phandle" || n == "linux,phandle" {
                    let c = cells(v);
                    assert_eq!(c.len(), 1);
                    m.entry(c[0]).or_default().push(path.clone());
                }
            }
        }
        m
    }

    /// The node with `phandle`; asserts there is exactly one.
    pub fn resolve(&self, phandle: u32, what: &str) -> String {
        let m = self.phandles();
        let nodes = m
            .get(&phandle)
            .unwrap_or_else(|| panic!("{what}: phandle {phandle:#x} resolves to no node"));
        assert_eq!(nodes.len(), 1, "{what}: phandle {phandle:#x} is {nodes:?}");
        nodes[0].clone()
    }

    fn parent_of(path: &str) -> Option<String> {
        if path == "/" {
            return None;
        }
        let (p, _) = path.rsplit_once('/').unwrap();
        Some(if p.is_empty() { "/".into() } else { p.into() })
    }

    /// The interrupt parent of `path` (Linux's `of_irq_find_parent`).
    pub fn interrupt_parent(&self, path: &str) -> String {
        let mut child = path.to_string();
        loop {
            let next = match self.prop(&child, "interrupt-parent") {
                Some(v) => self.resolve(cells(v)[0], &format!("{child} interrupt-parent")),
                None => Dt::parent_of(&child).unwrap_or_else(|| panic!("{path}: no irq parent")),
            };
            if self.has(&next, "#interrupt-cells") {
                return next;
            }
            child = next;
        }
    }

    /// Checks every phandle reference of the whole tree resolves to exactly one node with the
    /// cells its entry needs; returns how many references it followed. Its own list of
    /// phandle properties (the ones these trees use), and `interrupts` / `interrupt-map`.
    pub fn check_references(&self) -> usize {
        let spec = |n: &str| -> Option<&'static str> {
            Some(match n {
                "clocks" | "assigned-clocks" | "assigned-clock-parents" => "#clock-cells",
                "resets" => "#reset-cells",
                "power-domains" => "#power-domain-cells",
                "mboxes" => "#mbox-cells",
                "iommus" => "#iommu-cells",
                "interconnects" => "#interconnect-cells",
                "dmas" => "#dma-cells",
                "phys" => "#phy-cells",
                "interrupts-extended" => "#interrupt-cells",
                _ => return None,
            })
        };
        let bare = [
            "interrupt-parent",
            "shmem",
            "memory-region",
            "nvidia,bpmp",
            "next-level-cache",
            "remote-endpoint",
        ];
        let mut count = 0;
        for m in self.phandles().values() {
            assert_eq!(m.len(), 1, "phandle shared by {m:?}");
        }
        for (path, props) in &self.nodes {
            for (name, value) in props {
                let what = format!("{path} {name}");
                if bare.contains(&name.as_str()) {
                    for ph in cells(value) {
                        self.resolve(ph, &what);
                        count += 1;
                    }
                } else if let Some(cells_name) = spec(name) {
                    let c = cells(value);
                    let mut i = 0;
                    while i < c.len() {
                        if c[i] == 0 {
                            i += 1;
                            continue;
                        }
                        let target = self.resolve(c[i], &what);
                        let n = self.u32(&target, cells_name) as usize;
                        i += 1 + n;
                        assert!(i <= c.len(), "{what}: entry cut short");
                        count += 1;
                    }
                } else if name == "interrupts" {
                    let parent = self.interrupt_parent(path);
                    let ic = self.u32(&parent, "#interrupt-cells") as usize;
                    assert_eq!(cells(value).len() % ic, 0, "{what}");
                    count += 1;
                } else if name == "interrupt-map" {
                    let c = cells(value);
                    let child = self.u32(path, "#address-cells") as usize
                        + self.u32(path, "#interrupt-cells") as usize;
                    let mut i = 0;
                    while i < c.len() {
                        let parent = self.resolve(c[i + child], &what);
                        let pa = self
                            .prop(&parent, "#address-cells")
                            .map_or(0, |v| cells(v)[0] as usize);
                        let pi = self.u32(&parent, "#interrupt-cells") as usize;
                        i += child + 1 + pa + pi;
                        assert!(i <= c.len(), "{what}: entry cut short");
                        count += 1;
                    }
                }
            }
        }
        count
    }

    /// Where Linux's `of_irq_parse_raw` sends INTx `pin` of PCI device `slot` on bus 0 of the
    /// host bridge `pci`: (parent node, parent specifier).
    pub fn pci_intx(&self, pci: &str, slot: u32, pin: u32) -> (String, Vec<u32>) {
        let mask = self.cells(pci, "interrupt-map-mask");
        let map = self.cells(pci, "interrupt-map");
        let key = [slot << 11, 0, 0, pin];
        let mut i = 0;
        while i < map.len() {
            let entry_key = &map[i..i + 4];
            let parent = self.resolve(map[i + 4], "interrupt-map");
            let pa = self
                .prop(&parent, "#address-cells")
                .map_or(0, |v| cells(v)[0] as usize);
            let pi = self.u32(&parent, "#interrupt-cells") as usize;
            let spec = map[i + 5 + pa..i + 5 + pa + pi].to_vec();
            if (0..4).all(|k| (key[k] ^ entry_key[k]) & mask[k] == 0) {
                return (parent, spec);
            }
            i += 5 + pa + pi;
        }
        panic!("slot {slot} pin {pin}: no interrupt-map entry");
    }
}
