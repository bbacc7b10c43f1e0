//! The builder: which board nodes the guest gets, their properties rewritten, and the nodes
//! of what the VMM emulates.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use vmm_platform::{Device, GICD_SIZE, GuestRange, PciHost, Platform, Spi, UartLayout};

use crate::refs::{self, Layout, Policy, RefError};
use crate::tree::{self, Tree};
use crate::writer::ONode;
use crate::{Error, Initrd, Output};

/// `#interrupt-cells` of the emulated GIC.
const GIC_CELLS: u32 = 3;
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// IRQ_TYPE_LEVEL_HIGH: the flags of every emulated interrupt, the timer's PPIs included
/// (QEMU's GICv3 tree does the same; the GICv2 CPU-mask bits of `0xf08` mean nothing to a
/// GICv3, and Linux's GICv3 driver configures any level type as level).
const LEVEL_HIGH: u32 = 4;
/// The architected timer's PPIs: secure physical, non-secure physical, virtual, hypervisor.
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// The GICv3 maintenance interrupt.
const MAINTENANCE_PPI: u32 = 9;
/// PCI address space code of 32-bit, non-prefetchable memory.
const PCI_MEM32: u32 = 0x0200_0000;
/// Device-number bits of a PCI unit address; the mask keeps the low two, all the swizzle needs.
const PCI_SLOT_MASK: u32 = 0x1800;
/// The PL011's clock (QEMU's `apb-pclk`).
const UART_CLOCK_HZ: u32 = 24_000_000;

/// Compatibles of board interrupt controllers the emulated GIC replaces.
const GIC_COMPATIBLES: &[&str] = &[
    "arm,gic-v3",
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
];

/// A node's properties as the guest gets them.
type Props = Vec<(String, Vec<u8>)>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Keep {
    /// A node the platform names, or a descendant of one: copied whole.
    Full,
    /// An ancestor of such a node: its properties (the address translation and binding its
    /// children need) and only the children that are kept.
    Skeleton,
}

/// An interrupt parent in the guest: a board node copied as is, or the emulated GIC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Parent {
    Board(usize),
    EmulatedGic,
}

struct Builder<'p, 'a> {
    p: &'p Platform,
    board: Tree<'a>,
    kept: Vec<Option<Keep>>,
    gic: Vec<bool>,
    gic_phandle: u32,
    clock_phandle: u32,
    root_ac: u32,
    root_sc: u32,
    /// SPIs of the table found on nodes the guest gets.
    found: BTreeSet<u32>,
    notes: Vec<String>,
}

fn ref_error(tree: &Tree<'_>, node: usize, property: &str, e: RefError) -> Error {
    match e {
        RefError::Dangling(phandle) => Error::DanglingPhandle {
            node: tree.path(node),
            property: property.to_string(),
            phandle,
        },
        RefError::MissingCells { target, cells } => Error::BadProperty {
            node: tree.path(target),
            property: cells.to_string(),
            why: format!("missing, and {} {property} needs it", tree.path(node)),
        },
        RefError::Shape(why) => Error::BadProperty {
            node: tree.path(node),
            property: property.to_string(),
            why,
        },
    }
}

fn hex(v: u64) -> String {
    format!("{v:x}")
}

/// Root-level node names the VMM writes itself.
fn emulated_names(p: &Platform) -> Vec<String> {
    let mut v = vec![
        "chosen".to_string(),
        "aliases".to_string(),
        format!("memory@{}", hex(p.ram.range.base.0)),
        "cpus".to_string(),
        "psci".to_string(),
        "timer".to_string(),
        format!("intc@{}", hex(p.gic.dist.0)),
    ];
    for d in p.devices {
        match d {
            Device::Pl011(u) => {
                v.push("apb-pclk".to_string());
                v.push(format!("pl011@{}", hex(u.base.0)));
            }
            Device::Pci(h) => v.push(format!("pcie@{}", hex(h.layout.ecam.base.0))),
        }
    }
    v
}

pub(crate) fn build(
    p: &Platform,
    data: &[u8],
    initrd: Option<Initrd>,
    extra: &[&str],
) -> Result<Output, Error> {
    p.validate()?;
    if let Some(i) = initrd {
        let region = p.initrd.range();
        let ok =
            i.start.0 < i.end.0 && region.contains_range(i.start, i.end.0.wrapping_sub(i.start.0));
        if !ok {
            return Err(Error::Initrd {
                start: i.start.0,
                end: i.end.0,
                region,
            });
        }
    }
    if let Some(h) = p.pci()
        && h.layout.mmio.end() > 1 << 32
    {
        return Err(Error::PciWindow {
            window: h.layout.mmio,
        });
    }
    let board = Tree::read(data)?;
    let n = board.nodes.len();
    let gic = (0..n)
        .map(|i| {
            board.has(i, "interrupt-controller")
                && board
                    .compatible(i)
                    .iter()
                    .any(|c| GIC_COMPATIBLES.contains(c))
        })
        .collect();
    let gic_phandle = board.max_phandle.checked_add(1);
    let clock_phandle = board.max_phandle.checked_add(2);
    let (Some(gic_phandle), Some(clock_phandle)) = (gic_phandle, clock_phandle) else {
        return Err(Error::BadProperty {
            node: "/".into(),
            property: "phandle".into(),
            why: "no phandle values left for the emulated nodes".into(),
        });
    };
    if clock_phandle == u32::MAX {
        return Err(Error::BadProperty {
            node: "/".into(),
            property: "phandle".into(),
            why: "no phandle values left for the emulated nodes".into(),
        });
    }
    let root_ac = board.cell(0, "#address-cells").unwrap_or(2);
    let root_sc = board.cell(0, "#size-cells").unwrap_or(1);
    let mut b = Builder {
        p,
        board,
        kept: vec![None; n],
        gic,
        gic_phandle,
        clock_phandle,
        root_ac,
        root_sc,
        found: BTreeSet::new(),
        notes: Vec::new(),
    };
    let listed = b.listed(extra)?;
    for &(i, _) in &listed {
        b.keep(i);
    }
    b.check_regs()?;
    let mut props: Vec<Option<Props>> = vec![None; n];
    for (i, slot) in props.iter_mut().enumerate() {
        if b.kept.get(i).copied().flatten().is_some() {
            *slot = Some(b.transform(i)?);
        }
    }
    for irq in p.passthrough_irqs {
        if !b.found.contains(&irq.spi.0) {
            return Err(Error::IrqNotInGuest {
                irq: irq.name,
                spi: irq.spi.0,
            });
        }
    }
    let root = b.guest_root(&mut props, initrd)?;
    let dtb = crate::writer::flatten(&root)?;
    if dtb.len() as u64 > p.dtb.max_size {
        return Err(Error::TooLarge {
            size: dtb.len(),
            max: p.dtb.max_size,
        });
    }
    crate::verify::verify(&dtb).map_err(|e| Error::Internal(format!("{e}")))?;
    let nodes = listed.iter().map(|&(i, _)| b.board.path(i)).collect();
    Ok(Output {
        dtb,
        nodes,
        notes: b.notes,
    })
}

impl<'a> Builder<'_, 'a> {
    fn is_kept(&self, i: usize) -> bool {
        self.kept.get(i).copied().flatten().is_some()
    }

    fn is_gic(&self, i: usize) -> bool {
        self.gic.get(i).copied().unwrap_or(false)
    }

    /// The board nodes the platform names: pass-through regions, `board_nodes`, the
    /// `stdout-path` node if it is a board node, and `extra`. Each with who names it.
    fn listed(&mut self, extra: &[&str]) -> Result<Vec<(usize, String)>, Error> {
        let mut out: Vec<(usize, String)> = Vec::new();
        let mut add = |i: usize, by: String| {
            if !out.iter().any(|&(j, _)| j == i) {
                out.push((i, by));
            }
        };
        for e in self.p.passthrough {
            let by = format!("pass-through region {}", e.name);
            let i = self
                .board
                .find(e.dt_path)
                .ok_or_else(|| Error::MissingNode {
                    path: e.dt_path.to_string(),
                    named_by: by.clone(),
                })?;
            add(i, by);
        }
        for n in self.p.board_nodes {
            let by = format!("board node {} of the platform table", n.name);
            let i = self
                .board
                .find(n.dt_path)
                .ok_or_else(|| Error::MissingNode {
                    path: n.dt_path.to_string(),
                    named_by: by.clone(),
                })?;
            add(i, by);
        }
        if let Some(i) = self.stdout_board_node()? {
            add(i, "stdout-path".into());
        }
        for &x in extra {
            let i = self.board.find(x).ok_or_else(|| Error::MissingNode {
                path: x.to_string(),
                named_by: "extra node".into(),
            })?;
            add(i, "extra node".into());
        }
        let emulated = emulated_names(self.p);
        for &(i, _) in &out {
            let path = self.board.path(i);
            if i == 0 {
                return Err(Error::NotPassable {
                    path,
                    why: "the root is the guest's own",
                });
            }
            let gic = (0..self.board.nodes.len()).filter(|&g| self.is_gic(g));
            for g in gic {
                if self.board.is_ancestor_or_self(i, g) || self.board.is_ancestor_or_self(g, i) {
                    return Err(Error::NotPassable {
                        path,
                        why: "the board's GIC is replaced by the emulated one",
                    });
                }
            }
            let top = path.split('/').nth(1).unwrap_or_default();
            if emulated.iter().any(|e| e == top) || top == "__symbols__" {
                return Err(Error::NotPassable {
                    path,
                    why: "the VMM writes that node of the guest tree itself",
                });
            }
        }
        Ok(out)
    }

    /// The board node `stdout-path` names, unless it names an emulated one.
    fn stdout_board_node(&self) -> Result<Option<usize>, Error> {
        let sp = self.p.stdout_path;
        let path = sp.split(':').next().unwrap_or_default();
        if let Some(rest) = path.strip_prefix('/') {
            if emulated_names(self.p).iter().any(|e| e == rest) {
                return Ok(None);
            }
            return self
                .board
                .find(path)
                .map(Some)
                .ok_or_else(|| Error::MissingNode {
                    path: path.to_string(),
                    named_by: "stdout-path".into(),
                });
        }
        if self.p.pl011().is_some() && path == "serial0" {
            return Ok(None);
        }
        let target = self
            .board
            .find("/aliases")
            .and_then(|a| self.board.prop(a, path))
            .and_then(tree::strings)
            .and_then(|v| v.first().copied())
            .and_then(|t| self.board.find(t));
        target.map(Some).ok_or(Error::StdoutPath { path: sp })
    }

    fn keep(&mut self, i: usize) {
        // The subtree.
        let mut stack = vec![i];
        while let Some(c) = stack.pop() {
            if let Some(k) = self.kept.get_mut(c) {
                *k = Some(Keep::Full);
            }
            if let Some(node) = self.board.node(c) {
                stack.extend(node.children.iter().copied());
            }
        }
        // The ancestors, the root excepted.
        let mut cur = self.board.parent(i);
        while let Some(c) = cur {
            if c == 0 {
                break;
            }
            if let Some(k) = self.kept.get_mut(c)
                && k.is_none()
            {
                *k = Some(Keep::Skeleton);
            }
            cur = self.board.parent(c);
        }
    }

    fn regions(&self, i: usize) -> Result<Option<Vec<GuestRange>>, Error> {
        let bad = |why: String| Error::BadReg {
            node: self.board.path(i),
            why,
        };
        let Some(rs) = self.board.regions(i).map_err(bad)? else {
            return Ok(None);
        };
        rs.iter()
            .map(|&(a, s)| match (u64::try_from(a), u64::try_from(s)) {
                (Ok(a), Ok(s)) => Ok(GuestRange::new(a, s)),
                _ => Err(bad(format!("{a:#x}+{s:#x} is beyond 64 bits"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Every pass-through region is a `reg` region of its node, and every `reg` region of a
    /// node the guest gets whole lies in a pass-through region.
    fn check_regs(&self) -> Result<(), Error> {
        for e in self.p.passthrough {
            let Some(i) = self.board.find(e.dt_path) else {
                continue;
            };
            let board = match self.regions(i)? {
                Some(r) => r,
                None if self.board.has(i, "reg") => {
                    return Err(Error::BadReg {
                        node: self.board.path(i),
                        why: "not memory-mapped (a parent has no ranges)".into(),
                    });
                }
                None => Vec::new(),
            };
            // The region is what stage 2 maps (whole pages); it holds one of the node's reg
            // entries (equal to it where the device fills its pages, as on Orin).
            if !board.iter().any(|r| e.range.contains_range(r.base, r.size)) {
                return Err(Error::RegMismatch {
                    node: self.board.path(i),
                    region: e.name,
                    table: e.range,
                    board,
                });
            }
        }
        for i in 0..self.board.nodes.len() {
            if self.kept.get(i).copied().flatten() != Some(Keep::Full) {
                continue;
            }
            for r in self.regions(i)?.unwrap_or_default() {
                let covered = self
                    .p
                    .passthrough
                    .iter()
                    .any(|e| e.range.contains_range(r.base, r.size));
                if !covered {
                    return Err(Error::RegNotPassedThrough {
                        node: self.board.path(i),
                        range: r,
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether board node `i` is QEMU's `/apb-pclk` fixed clock while the VMM writes its own
    /// (with the emulated PL011): a passed-through PrimeCell's `clocks` then point at the
    /// VMM's, the same 24 MHz fixed clock.
    fn is_emulated_clock(&self, i: usize) -> bool {
        self.p.pl011().is_some()
            && self.board.path(i) == "/apb-pclk"
            && self.board.compatible(i).contains(&"fixed-clock")
    }

    fn unkept(&self, node: usize, property: &str, target: usize) -> Error {
        Error::UnkeptReference {
            node: self.board.path(node),
            property: property.to_string(),
            target: self.board.path(target),
            phandle: self.board.phandle_of(target).unwrap_or(0),
        }
    }

    /// Whether a GIC specifier of node `i` is passed through (and so stays in the guest's
    /// tree): an SPI of the table with the table's trigger. Other SPIs are left out.
    fn gic_spec(&mut self, i: usize, property: &str, spec: &[u32]) -> Result<bool, Error> {
        let bad = |why: String| Error::BadInterrupt {
            node: self.board.path(i),
            property: property.to_string(),
            why,
        };
        let &[kind, num, flags] = spec else {
            return Err(bad(format!(
                "{} cells for the GIC, which takes {GIC_CELLS}",
                spec.len()
            )));
        };
        match kind {
            GIC_SPI if num <= Spi::MAX => {
                match self.p.passthrough_irqs.iter().find(|q| q.spi.0 == num) {
                    Some(q) if flags & 0xf == q.trigger.dt_flags() => {
                        self.found.insert(num);
                        Ok(true)
                    }
                    Some(q) => Err(Error::IrqMismatch {
                        node: self.board.path(i),
                        spi: num,
                        board_flags: flags,
                        irq: q.name,
                        table: q.trigger,
                    }),
                    None => {
                        self.notes.push(format!(
                            "{}: {property}: SPI {num} left out (not a pass-through interrupt)",
                            self.board.path(i)
                        ));
                        Ok(false)
                    }
                }
            }
            GIC_SPI => Err(bad(format!(
                "SPI {num} is above the GIC's last ({})",
                Spi::MAX
            ))),
            GIC_PPI => Err(bad(format!(
                "PPI {num}: a per-CPU interrupt cannot be passed through"
            ))),
            _ => Err(bad(format!(
                "interrupt type {kind} (not an SPI) cannot be passed through"
            ))),
        }
    }

    /// `interrupts` of node `i`: the kept specifiers and which were kept.
    fn interrupts(&mut self, i: usize, value: &[u8]) -> Result<(Vec<u32>, Vec<bool>), Error> {
        let bad = |why: String| Error::BadInterrupt {
            node: self.board.path(i),
            property: "interrupts".into(),
            why,
        };
        let parent = match self.board.interrupt_parent(i) {
            Err((n, phandle)) => {
                return Err(Error::DanglingPhandle {
                    node: self.board.path(n),
                    property: "interrupt-parent".into(),
                    phandle,
                });
            }
            Ok(None) => return Err(bad("no interrupt parent".into())),
            Ok(Some(p)) => p,
        };
        let ic = self.board.cell(parent, "#interrupt-cells").unwrap_or(0) as usize;
        let cells = tree::cells(value).ok_or_else(|| bad("not whole cells".into()))?;
        if ic == 0 || !cells.len().is_multiple_of(ic) {
            return Err(bad(format!(
                "{} cells, not a multiple of {}'s #interrupt-cells {ic}",
                cells.len(),
                self.board.path(parent)
            )));
        }
        if self.is_gic(parent) {
            let mut out = Vec::new();
            let mut mask = Vec::new();
            for spec in cells.chunks_exact(ic) {
                let keep = self.gic_spec(i, "interrupts", spec)?;
                if keep {
                    out.extend_from_slice(spec);
                }
                mask.push(keep);
            }
            Ok((out, mask))
        } else if self.is_kept(parent) {
            // ic != 0 (checked above).
            let count = cells.len().checked_div(ic).unwrap_or(0);
            Ok((cells, vec![true; count]))
        } else {
            Err(self.unkept(i, "interrupts", parent))
        }
    }

    /// `interrupts-extended` of node `i`.
    fn interrupts_extended(
        &mut self,
        i: usize,
        value: &[u8],
    ) -> Result<(Vec<u32>, Vec<bool>), Error> {
        let name = "interrupts-extended";
        let layout = Layout::Specifier {
            cells: "#interrupt-cells",
            optional: false,
        };
        let (cells, refs) = refs::walk(&self.board, layout, value)
            .map_err(|e| ref_error(&self.board, i, name, e))?;
        let mut out = Vec::new();
        let mut mask = Vec::new();
        for r in refs {
            // refs::walk checked that the arguments lie inside `cells`.
            let from = r.at.saturating_add(1);
            let args = cells
                .get(from..from.saturating_add(r.args))
                .unwrap_or_default();
            if self.is_gic(r.target) {
                let keep = self.gic_spec(i, name, args)?;
                if keep {
                    out.push(self.gic_phandle);
                    out.extend_from_slice(args);
                }
                mask.push(keep);
            } else if self.is_kept(r.target) {
                out.push(r.phandle);
                out.extend_from_slice(args);
                mask.push(true);
            } else {
                return Err(self.unkept(i, name, r.target));
            }
        }
        Ok((out, mask))
    }

    /// `interrupt-map` of node `i`, its GIC entries pointed at the emulated GIC.
    fn interrupt_map(&mut self, i: usize) -> Result<Vec<u32>, Error> {
        let name = "interrupt-map";
        let entries =
            refs::interrupt_map(&self.board, i).map_err(|e| ref_error(&self.board, i, name, e))?;
        let mut out = Vec::new();
        for e in entries {
            if self.is_gic(e.parent) {
                if self.gic_spec(i, name, &e.parent_spec)? {
                    out.extend_from_slice(&e.child);
                    out.push(self.gic_phandle);
                    // The emulated GIC has #address-cells = 0.
                    out.extend_from_slice(&e.parent_spec);
                }
            } else if self.is_kept(e.parent) {
                out.extend_from_slice(&e.child);
                out.push(e.phandle);
                out.extend_from_slice(&e.parent_addr);
                out.extend_from_slice(&e.parent_spec);
            } else {
                return Err(self.unkept(i, name, e.parent));
            }
        }
        Ok(out)
    }

    /// The interrupt parent node `i` gets in the guest by inheritance alone (with
    /// `interrupt-parent` of kept nodes rewritten and the guest root's pointing at the
    /// emulated GIC), following Linux's `of_irq_find_parent`.
    fn inherited_parent(&self, i: usize) -> Parent {
        let mut child = i;
        for _ in 0..=self.board.nodes.len() {
            let next = if child == 0 {
                return Parent::EmulatedGic;
            } else {
                match self.board.cell(child, "interrupt-parent") {
                    Some(ph) => match self.board.by_phandle(ph) {
                        Some(t) if self.is_gic(t) => return Parent::EmulatedGic,
                        Some(t) => t,
                        None => return Parent::EmulatedGic,
                    },
                    None => match self.board.parent(child) {
                        Some(p) => p,
                        None => return Parent::EmulatedGic,
                    },
                }
            };
            if next != 0 && self.board.has(next, "#interrupt-cells") {
                return Parent::Board(next);
            }
            child = next;
        }
        Parent::EmulatedGic
    }

    /// Node `i`'s properties as the guest gets them.
    fn transform(&mut self, i: usize) -> Result<Props, Error> {
        let props = self
            .board
            .node(i)
            .map(|n| n.props.clone())
            .unwrap_or_default();
        let path = self.board.path(i);

        // Properties left out with their companions: references to providers the guest has
        // no counterpart of.
        let mut dropped: BTreeSet<&str> = BTreeSet::new();
        for &(name, value) in &props {
            if let Some((layout, Policy::Drop(companions))) = refs::classify(name) {
                let (_, rs) = refs::walk(&self.board, layout, value)
                    .map_err(|e| ref_error(&self.board, i, name, e))?;
                let gone: BTreeSet<String> = rs
                    .iter()
                    .filter(|r| !self.is_kept(r.target))
                    .map(|r| self.board.path(r.target))
                    .collect();
                if !gone.is_empty() {
                    dropped.insert(name);
                    dropped.extend(companions.iter().copied());
                    self.notes.push(format!(
                        "{path}: {name} left out (refers to {}, which the guest does not get)",
                        gone.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }

        // Interrupts first: interrupt-names follows what they keep.
        let mut irqs = None;
        let mut irqs_ext = None;
        for &(name, value) in &props {
            match name {
                "interrupts" => irqs = Some(self.interrupts(i, value)?),
                "interrupts-extended" => irqs_ext = Some(self.interrupts_extended(i, value)?),
                _ => {}
            }
        }
        let mask = irqs_ext.as_ref().or(irqs.as_ref()).map(|(_, m)| m.clone());

        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for &(name, value) in &props {
            if dropped.contains(name) {
                continue;
            }
            let v = match name {
                "interrupts" | "interrupts-extended" => {
                    let kept = if name == "interrupts" {
                        &irqs
                    } else {
                        &irqs_ext
                    };
                    match kept {
                        Some((cells, _)) if !cells.is_empty() => tree::to_bytes(cells),
                        _ => continue,
                    }
                }
                "interrupt-names" => match &mask {
                    Some(m) if m.iter().any(|k| !k) => {
                        let names = tree::strings(value)
                            .filter(|n| n.len() == m.len())
                            .ok_or_else(|| Error::BadProperty {
                                node: path.clone(),
                                property: name.into(),
                                why: format!("does not name each of the {} interrupts", m.len()),
                            })?;
                        let kept: Vec<&str> = names
                            .iter()
                            .zip(m)
                            .filter(|&(_, &k)| k)
                            .map(|(n, _)| *n)
                            .collect();
                        if kept.is_empty() {
                            continue;
                        }
                        let mut v = Vec::new();
                        for n in kept {
                            v.extend_from_slice(n.as_bytes());
                            v.push(0);
                        }
                        v
                    }
                    _ => value.to_vec(),
                },
                "interrupt-map" => {
                    let cells = self.interrupt_map(i)?;
                    if cells.is_empty() {
                        continue;
                    }
                    tree::to_bytes(&cells)
                }
                _ => match refs::classify(name) {
                    Some((layout, policy)) => {
                        let (mut cells, rs) = refs::walk(&self.board, layout, value)
                            .map_err(|e| ref_error(&self.board, i, name, e))?;
                        for r in rs {
                            if self.is_kept(r.target) {
                                continue;
                            }
                            if policy == Policy::Interrupt && self.is_gic(r.target) {
                                if let Some(c) = cells.get_mut(r.at) {
                                    *c = self.gic_phandle;
                                }
                                continue;
                            }
                            if self.is_emulated_clock(r.target) {
                                if let Some(c) = cells.get_mut(r.at) {
                                    *c = self.clock_phandle;
                                }
                                continue;
                            }
                            return Err(self.unkept(i, name, r.target));
                        }
                        tree::to_bytes(&cells)
                    }
                    None => value.to_vec(),
                },
            };
            out.push((name.to_string(), v));
        }

        // A node whose interrupts would reach another parent in the guest by inheritance
        // than on the board gets its interrupt-parent spelled out.
        let has_irqs = out.iter().any(|(n, _)| n == "interrupts");
        if has_irqs && !self.board.has(i, "interrupt-parent") {
            let want = match self.board.interrupt_parent(i) {
                Ok(Some(p)) if self.is_gic(p) => Parent::EmulatedGic,
                Ok(Some(p)) => Parent::Board(p),
                _ => Parent::EmulatedGic,
            };
            if self.inherited_parent(i) != want {
                let ph = match want {
                    Parent::EmulatedGic => self.gic_phandle,
                    Parent::Board(p) => self.board.phandle_of(p).unwrap_or(0),
                };
                out.push(("interrupt-parent".into(), tree::to_bytes(&[ph])));
            }
        }
        Ok(out)
    }

    /// `value` in `cells` cells.
    fn enc(&self, what: &'static str, value: u64, cells: u32) -> Result<Vec<u32>, Error> {
        let too_wide = Error::TooWide { what, value, cells };
        match cells {
            1 => u32::try_from(value).map(|v| vec![v]).map_err(|_| too_wide),
            2..=4 => {
                // cells is 2..=4.
                let mut v = vec![0; (cells as usize).saturating_sub(2)];
                v.push((value >> 32) as u32);
                v.push(value as u32);
                Ok(v)
            }
            _ => Err(too_wide),
        }
    }

    fn reg(&self, what: &'static str, ranges: &[GuestRange]) -> Result<Vec<u32>, Error> {
        let mut v = Vec::new();
        for r in ranges {
            v.extend(self.enc(what, r.base.0, self.root_ac)?);
            v.extend(self.enc(what, r.size, self.root_sc)?);
        }
        Ok(v)
    }

    fn emit(&self, i: usize, props: &mut [Option<Props>]) -> ONode {
        let mut node = ONode::new(
            self.board
                .node(i)
                .map(|n| n.name.clone())
                .unwrap_or_default(),
        );
        node.props = props.get_mut(i).and_then(Option::take).unwrap_or_default();
        let children = self
            .board
            .node(i)
            .map(|n| n.children.clone())
            .unwrap_or_default();
        for c in children {
            if self.is_kept(c) {
                node.children.push(self.emit(c, props));
            }
        }
        node
    }

    /// The virtio PCI host bridge's node.
    fn pci_node(&self, h: &PciHost) -> Result<ONode, Error> {
        let mut pci = ONode::new(format!("pcie@{}", hex(h.layout.ecam.base.0)));
        let mut ranges = vec![
            PCI_MEM32,
            (h.layout.mmio.base.0 >> 32) as u32,
            h.layout.mmio.base.0 as u32,
        ];
        ranges.extend(self.enc("PCI window", h.layout.mmio.base.0, self.root_ac)?);
        ranges.extend([(h.layout.mmio.size >> 32) as u32, h.layout.mmio.size as u32]);
        let mut map = Vec::new();
        // The mask keeps the low two bits of the device number: four slots of entries route
        // all 32 (the swizzle depends on the slot modulo 4 only).
        for slot in 0..4u32 {
            for pin in 1..=4u32 {
                let spi = h
                    .layout
                    .intx
                    // slot < 4, pin in 1..=4.
                    .get((slot.wrapping_add(pin).wrapping_sub(1) % 4) as usize)
                    .map_or(0, |s| s.0);
                map.extend([
                    slot << 11,
                    0,
                    0,
                    pin,
                    self.gic_phandle,
                    GIC_SPI,
                    spi,
                    LEVEL_HIGH,
                ]);
            }
        }
        pci.string("compatible", "pci-host-ecam-generic")
            .string("device_type", "pci")
            .cells("reg", &self.reg("PCI ECAM", &[h.layout.ecam])?)
            .cells("#address-cells", &[3])
            .cells("#size-cells", &[2])
            .cells("ranges", &ranges)
            .cells("bus-range", &[0, 0])
            .cells("#interrupt-cells", &[1])
            .cells("interrupt-map-mask", &[PCI_SLOT_MASK, 0, 0, 7])
            .cells("interrupt-map", &map)
            .empty("dma-coherent");
        Ok(pci)
    }

    /// The emulated PL011's node and its clock's.
    fn pl011_nodes(&self, u: &UartLayout) -> Result<(ONode, ONode), Error> {
        let mut clk = ONode::new("apb-pclk");
        clk.string("compatible", "fixed-clock")
            .cells("#clock-cells", &[0])
            .cells("clock-frequency", &[UART_CLOCK_HZ])
            .string("clock-output-names", "clk24mhz")
            .cells("phandle", &[self.clock_phandle]);
        let mut uart = ONode::new(format!("pl011@{}", hex(u.base.0)));
        uart.strings("compatible", &["arm,pl011", "arm,primecell"])
            .cells(
                "reg",
                &self.reg("UART", &[GuestRange::new(u.base.0, vmm_platform::PAGE_4K)])?,
            )
            .cells("interrupts", &[GIC_SPI, u.spi.0, LEVEL_HIGH])
            .cells("clocks", &[self.clock_phandle, self.clock_phandle])
            .strings("clock-names", &["uartclk", "apb_pclk"]);
        Ok((clk, uart))
    }

    fn guest_root(
        &mut self,
        props: &mut [Option<Props>],
        initrd: Option<Initrd>,
    ) -> Result<ONode, Error> {
        let p = self.p;
        let mut root = ONode::new("");
        match self.board.prop(0, "compatible") {
            Some(c) => root.bytes("compatible", c.to_vec()),
            None => root.string("compatible", "linux,dummy-virt"),
        };
        if let Some(m) = self.board.prop(0, "model") {
            root.bytes("model", m.to_vec());
        }
        root.cells("#address-cells", &[self.root_ac])
            .cells("#size-cells", &[self.root_sc])
            .cells("interrupt-parent", &[self.gic_phandle]);

        // /chosen
        let mut chosen = ONode::new("chosen");
        chosen
            .string("bootargs", p.bootargs)
            .string("stdout-path", p.stdout_path);
        if let Some(i) = initrd {
            chosen
                .u64("linux,initrd-start", i.start.0)
                .u64("linux,initrd-end", i.end.0);
        }
        root.child(chosen);

        // /aliases: the emulated UART, then the board's aliases of nodes the guest gets.
        let mut aliases = ONode::new("aliases");
        let mut taken = BTreeSet::new();
        if let Some(u) = p.pl011() {
            aliases.string("serial0", &format!("/pl011@{}", hex(u.base.0)));
            taken.insert("serial0".to_string());
        }
        if let Some(a) = self.board.find("/aliases") {
            let entries = self
                .board
                .node(a)
                .map(|n| n.props.clone())
                .unwrap_or_default();
            for (name, value) in entries {
                let target = tree::strings(value)
                    .filter(|v| v.len() == 1)
                    .and_then(|v| v.first().and_then(|t| self.board.find(t)));
                if let Some(t) = target
                    && self.is_kept(t)
                    && taken.insert(name.to_string())
                {
                    aliases.bytes(name, value.to_vec());
                }
            }
        }
        if !aliases.props.is_empty() {
            root.child(aliases);
        }

        // /memory
        let mut memory = ONode::new(format!("memory@{}", hex(p.ram.range.base.0)));
        memory
            .string("device_type", "memory")
            .cells("reg", &self.reg("RAM", &[p.ram.range])?);
        root.child(memory);

        // /cpus
        let mut cpus = ONode::new("cpus");
        cpus.cells("#address-cells", &[1])
            .cells("#size-cells", &[0]);
        for n in 0..p.vcpus {
            let mpidr = Platform::mpidr(n);
            let reg = u32::try_from(mpidr).map_err(|_| Error::TooWide {
                what: "MPIDR",
                value: mpidr,
                cells: 1,
            })?;
            let mut cpu = ONode::new(format!("cpu@{}", hex(mpidr)));
            cpu.string("device_type", "cpu")
                .string("compatible", "arm,armv8")
                .cells("reg", &[reg])
                .string("enable-method", "psci");
            cpus.child(cpu);
        }
        root.child(cpus);

        // /psci
        let mut psci = ONode::new("psci");
        psci.strings("compatible", &["arm,psci-1.0", "arm,psci-0.2"])
            // seL4 takes a guest HVC as one of its own system calls and traps SMC to the VMM.
            .string("method", "smc");
        root.child(psci);

        // /timer
        let mut timer = ONode::new("timer");
        let mut ppis = Vec::new();
        for ppi in TIMER_PPIS {
            ppis.extend([GIC_PPI, ppi, LEVEL_HIGH]);
        }
        timer
            .string("compatible", "arm,armv8-timer")
            .cells("interrupts", &ppis);
        root.child(timer);

        // The emulated GICv3.
        let mut gic = ONode::new(format!("intc@{}", hex(p.gic.dist.0)));
        gic.string("compatible", "arm,gic-v3")
            .cells("#interrupt-cells", &[GIC_CELLS])
            .cells("#address-cells", &[0])
            .empty("interrupt-controller")
            .cells("#redistributor-regions", &[1])
            .cells(
                "reg",
                &self.reg(
                    "GIC",
                    &[GuestRange::new(p.gic.dist.0, GICD_SIZE), p.gicr_range()],
                )?,
            )
            .cells("interrupts", &[GIC_PPI, MAINTENANCE_PPI, LEVEL_HIGH])
            .cells("phandle", &[self.gic_phandle]);
        root.child(gic);

        // The emulated devices, in the table's order.
        for d in p.devices {
            match d {
                Device::Pci(h) => {
                    root.child(self.pci_node(h)?);
                }
                Device::Pl011(u) => {
                    let (clock, uart) = self.pl011_nodes(u)?;
                    root.child(clock);
                    root.child(uart);
                }
            }
        }

        // The board's nodes.
        let names: BTreeMap<String, ()> =
            root.children.iter().map(|c| (c.name.clone(), ())).collect();
        let top = self
            .board
            .node(0)
            .map(|n| n.children.clone())
            .unwrap_or_default();
        for c in top {
            if self.is_kept(c) {
                let node = self.emit(c, props);
                if names.contains_key(&node.name) {
                    return Err(Error::NotPassable {
                        path: format!("/{}", node.name),
                        why: "the VMM writes that node of the guest tree itself",
                    });
                }
                root.child(node);
            }
        }
        Ok(root)
    }
}
