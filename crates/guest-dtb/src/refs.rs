//! Which properties hold phandles, and how to walk them.
//!
//! A device tree blob does not say which property values are phandles: the bindings do. This
//! is the list the builder knows (dtc's own phandle checks, the common Linux bindings, and every
//! phandle-valued property of the Tegra234 devkit tree); a property outside it is copied byte
//! for byte. The builder checks, and after writing re-checks, every reference it knows.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::tree::{Tree, cells};

/// How a property's cells hold phandles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Every cell is a phandle (0: an empty slot).
    Phandles,
    /// Each entry is a phandle and as many argument cells as the target's `cells` property
    /// says (0 when it lacks it and `optional`). A 0 phandle is an empty one-cell entry.
    Specifier { cells: &'static str, optional: bool },
    /// A phandle and a fixed number of argument cells.
    Fixed(usize),
    /// `iommu-map` / `msi-map`: (id-base, phandle, target's `cells` cells, length).
    Map { cells: &'static str },
}

/// What happens to a reference whose target the guest does not get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// The target must be in the guest; otherwise the build fails.
    Keep,
    /// An interrupt reference: the board's GIC is replaced by the emulated one.
    Interrupt,
    /// The property (and these companions) is left out: the guest has no such provider.
    Drop(&'static [&'static str]),
}

const fn spec(cells: &'static str) -> Layout {
    Layout::Specifier {
        cells,
        optional: false,
    }
}

/// The layout and policy of a phandle-holding property, or `None` for any other property.
/// `interrupts` and `interrupt-map` are handled on their own (their cells depend on the
/// interrupt parent).
pub(crate) fn classify(name: &str) -> Option<(Layout, Policy)> {
    use Layout::Phandles;
    use Policy::{Drop, Interrupt, Keep};
    Some(match name {
        "interrupt-parent" => (Phandles, Interrupt),
        "interrupts-extended" => (spec("#interrupt-cells"), Interrupt),
        "clocks" | "assigned-clocks" | "assigned-clock-parents" => (spec("#clock-cells"), Keep),
        "resets" => (spec("#reset-cells"), Keep),
        "power-domains" => (spec("#power-domain-cells"), Keep),
        "mboxes" => (spec("#mbox-cells"), Keep),
        "dmas" => (spec("#dma-cells"), Keep),
        "phys" => (spec("#phy-cells"), Keep),
        "pwms" => (spec("#pwm-cells"), Keep),
        "io-channels" => (spec("#io-channel-cells"), Keep),
        "thermal-sensors" => (spec("#thermal-sensor-cells"), Keep),
        "hwlocks" => (spec("#hwlock-cells"), Keep),
        "mux-controls" => (spec("#mux-control-cells"), Keep),
        "mux-states" => (spec("#mux-state-cells"), Keep),
        "sound-dai" => (spec("#sound-dai-cells"), Keep),
        "cooling-device" => (spec("#cooling-cells"), Keep),
        "access-controllers" => (spec("#access-controller-cells"), Keep),
        "nvmem-cells" => (Phandles, Keep),
        "msi-parent" => (
            Layout::Specifier {
                cells: "#msi-cells",
                optional: true,
            },
            Keep,
        ),
        "msi-map" => (
            Layout::Map {
                cells: "#msi-cells",
            },
            Keep,
        ),
        // The guest has no SMMU and no memory controller or interconnect provider: stage 2
        // isolates it, and its DMA addresses are the identity-mapped physical ones.
        "iommus" => (spec("#iommu-cells"), Drop(&[])),
        "iommu-map" => (
            Layout::Map {
                cells: "#iommu-cells",
            },
            Drop(&["iommu-map-mask"]),
        ),
        "interconnects" => (spec("#interconnect-cells"), Drop(&["interconnect-names"])),
        "gpio-ranges" => (Layout::Fixed(3), Keep),
        "shmem"
        | "memory-region"
        | "next-level-cache"
        | "operating-points-v2"
        | "cpu-idle-states"
        | "remote-endpoint"
        | "phy-handle"
        | "cpu"
        | "dais"
        | "nvidia,bpmp"
        | "nvidia,memory-controller"
        | "nvidia,pmc" => (Phandles, Keep),
        "gpios" | "gpio" => (spec("#gpio-cells"), Keep),
        _ if name.ends_with("-gpios") || name.ends_with("-gpio") => (spec("#gpio-cells"), Keep),
        _ if name.ends_with("-supply") => (Phandles, Keep),
        _ if name
            .strip_prefix("pinctrl-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            (Phandles, Keep)
        }
        _ => return None,
    })
}

/// One phandle found in a property.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ref {
    /// Index of the phandle cell.
    pub at: usize,
    pub phandle: u32,
    /// The node it resolves to.
    pub target: usize,
    /// Argument cells after it.
    pub args: usize,
}

/// Why a reference property cannot be walked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefError {
    /// Not a whole number of cells, or an entry cut short.
    Shape(String),
    /// A phandle no node has.
    Dangling(u32),
    /// The target lacks the `#*-cells` property the layout needs.
    MissingCells { target: usize, cells: &'static str },
}

/// The phandles in `value` (a property of layout `layout`), resolved in `tree`.
pub(crate) fn walk(
    tree: &Tree<'_>,
    layout: Layout,
    value: &[u8],
) -> Result<(Vec<u32>, Vec<Ref>), RefError> {
    let cells = cells(value).ok_or_else(|| {
        RefError::Shape(format!(
            "{} bytes is not a whole number of cells",
            value.len()
        ))
    })?;
    let mut refs = Vec::new();
    let mut at = 0usize;
    while let Some(&first) = cells.get(at) {
        let (ph_at, prefix) = match layout {
            Layout::Map { .. } => (at.saturating_add(1), 1usize),
            _ => (at, 0),
        };
        let phandle = if prefix == 0 {
            first
        } else {
            *cells
                .get(ph_at)
                .ok_or_else(|| RefError::Shape("map entry cut short".into()))?
        };
        if phandle == 0 && matches!(layout, Layout::Phandles | Layout::Specifier { .. }) {
            at = at.saturating_add(1);
            continue;
        }
        let target = tree
            .by_phandle(phandle)
            .ok_or(RefError::Dangling(phandle))?;
        let args = match layout {
            Layout::Phandles => 0,
            Layout::Fixed(n) => n,
            Layout::Specifier { cells, optional } => match tree.cell(target, cells) {
                Some(n) => n as usize,
                None if optional => 0,
                None => return Err(RefError::MissingCells { target, cells }),
            },
            Layout::Map { cells } => {
                tree.cell(target, cells)
                    .ok_or(RefError::MissingCells { target, cells })? as usize
            }
        };
        // A map entry ends with one length cell.
        let tail = usize::from(matches!(layout, Layout::Map { .. }));
        // Cell counts come from the DTB: a sum that would wrap is an entry cut short.
        let end = ph_at
            .saturating_add(1)
            .saturating_add(args)
            .saturating_add(tail);
        if end > cells.len() {
            return Err(RefError::Shape(format!(
                "the entry for phandle {phandle:#x} needs {} cells, {} are left",
                end.saturating_sub(at),
                cells.len().saturating_sub(at)
            )));
        }
        refs.push(Ref {
            at: ph_at,
            phandle,
            target,
            args,
        });
        at = end;
    }
    Ok((cells, refs))
}

/// One `interrupt-map` entry, split into its parts.
#[derive(Clone, Debug)]
pub(crate) struct MapEntry {
    /// Child unit address and child interrupt specifier.
    pub child: Vec<u32>,
    pub phandle: u32,
    pub parent: usize,
    /// Parent unit address cells.
    pub parent_addr: Vec<u32>,
    /// Parent interrupt specifier.
    pub parent_spec: Vec<u32>,
}

/// The entries of node `node`'s `interrupt-map`.
pub(crate) fn interrupt_map(tree: &Tree<'_>, node: usize) -> Result<Vec<MapEntry>, RefError> {
    let value = tree.prop(node, "interrupt-map").unwrap_or_default();
    let cells = cells(value).ok_or_else(|| RefError::Shape("not whole cells".into()))?;
    // Cell counts come from the DTB: sums saturate, and a saturated range is "cut short".
    let child_width = (tree.addr_cells(node) as usize)
        .saturating_add(tree.cell(node, "#interrupt-cells").unwrap_or(0) as usize);
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < cells.len() {
        let child = cells
            .get(at..at.saturating_add(child_width))
            .ok_or_else(|| RefError::Shape("entry cut short".into()))?
            .to_vec();
        let phandle = *cells
            .get(at.saturating_add(child_width))
            .ok_or_else(|| RefError::Shape("entry cut short".into()))?;
        let parent = tree
            .by_phandle(phandle)
            .ok_or(RefError::Dangling(phandle))?;
        let pa = tree.cell(parent, "#address-cells").unwrap_or(0) as usize;
        let pi = tree
            .cell(parent, "#interrupt-cells")
            .ok_or(RefError::MissingCells {
                target: parent,
                cells: "#interrupt-cells",
            })? as usize;
        let start = at.saturating_add(child_width).saturating_add(1);
        let spec = start.saturating_add(pa);
        let parent_addr = cells
            .get(start..spec)
            .ok_or_else(|| RefError::Shape("entry cut short".into()))?
            .to_vec();
        let parent_spec = cells
            .get(spec..spec.saturating_add(pi))
            .ok_or_else(|| RefError::Shape("entry cut short".into()))?
            .to_vec();
        out.push(MapEntry {
            child,
            phandle,
            parent,
            parent_addr,
            parent_spec,
        });
        at = spec.saturating_add(pi);
    }
    Ok(out)
}
