//! A device tree read into memory (with the `fdt` crate, after the bounds-checked walk of
//! [`crate::DtbError`]), with the lookups the builder needs: paths, phandles, `#*-cells`,
//! interrupt parents and `reg` translated through `ranges`. Public so that other readers of
//! firmware and board trees (the boot loader's `boot-plan`) use the same checked reader.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use fdt::helpers::UnalignedFallibleNode;
use fdt::nodes::AsNode;

use crate::Error;
use crate::blob::{self, MAX_DEPTH};

/// One node.
#[derive(Debug)]
pub struct Node<'a> {
    /// Full name (`hsp@3c00000`); empty for the root.
    pub name: String,
    /// Index of the parent node (`None` for the root).
    pub parent: Option<usize>,
    /// Indices of the child nodes, in tree order.
    pub children: Vec<usize>,
    /// Properties: name and raw value, in tree order.
    pub props: Vec<(&'a str, &'a [u8])>,
}

/// A whole tree; node 0 is the root.
#[derive(Debug)]
pub struct Tree<'a> {
    /// Every node, parents before their children.
    pub nodes: Vec<Node<'a>>,
    phandles: BTreeMap<u32, usize>,
    /// The largest phandle in use (0 if none).
    pub max_phandle: u32,
}

/// Big-endian cells of a property value, if its length is a multiple of 4.
pub fn cells(value: &[u8]) -> Option<Vec<u32>> {
    if !value.len().is_multiple_of(4) {
        return None;
    }
    Some(
        value
            .chunks_exact(4)
            .map(|c| c.try_into().map(u32::from_be_bytes).unwrap_or(0))
            .collect(),
    )
}

/// Bytes of big-endian cells.
pub(crate) fn to_bytes(cells: &[u32]) -> Vec<u8> {
    cells.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// A number of up to four cells.
pub(crate) fn number(cells: &[u32]) -> Option<u128> {
    if cells.len() > 4 {
        return None;
    }
    Some(
        cells
            .iter()
            .fold(0u128, |acc, &c| (acc << 32) | u128::from(c)),
    )
}

/// The strings of a string-list property, if it is one.
pub fn strings(value: &[u8]) -> Option<Vec<&str>> {
    let body = value.strip_suffix(&[0])?;
    body.split(|&b| b == 0)
        .map(|s| core::str::from_utf8(s).ok())
        .collect()
}

fn fdt_err(e: fdt::FdtError) -> Error {
    Error::Malformed(blob::DtbError::Structure {
        offset: 0,
        what: match e {
            fdt::FdtError::BadMagic => "bad magic",
            fdt::FdtError::SliceTooSmall => "truncated",
            _ => "the fdt reader refused it",
        },
    })
}

impl<'a> Tree<'a> {
    /// Checks `data` (see [`blob::check`]) and reads it.
    pub fn read(data: &'a [u8]) -> Result<Self, Error> {
        let counts = blob::check(data).map_err(Error::Malformed)?;
        let fdt = fdt::Fdt::new_unaligned_fallible(data).map_err(fdt_err)?;
        let root = fdt.root().map_err(fdt_err)?;
        let mut tree = Tree {
            nodes: Vec::with_capacity(counts.nodes),
            phandles: BTreeMap::new(),
            max_phandle: 0,
        };
        tree.add(root.as_node(), None, 0)?;
        let props: usize = tree.nodes.iter().map(|n| n.props.len()).sum();
        if tree.nodes.len() != counts.nodes || props != counts.props {
            // The fdt crate read something other than what the structure block holds.
            return Err(Error::Malformed(blob::DtbError::Structure {
                offset: 0,
                what: "the fdt reader saw a different tree than the structure block holds",
            }));
        }
        tree.index_phandles()?;
        Ok(tree)
    }

    fn add(
        &mut self,
        node: UnalignedFallibleNode<'a>,
        parent: Option<usize>,
        depth: usize,
    ) -> Result<usize, Error> {
        if depth > MAX_DEPTH {
            return Err(fdt_err(fdt::FdtError::InvalidNodeName));
        }
        let name = if parent.is_none() {
            String::new()
        } else {
            let n = node.name().map_err(fdt_err)?;
            match n.unit_address {
                Some(unit) => format!("{}@{}", n.name, unit),
                None => n.name.to_string(),
            }
        };
        let mut props = Vec::new();
        for p in node.properties().map_err(fdt_err)?.iter() {
            let p = p.map_err(fdt_err)?;
            props.push((p.name, p.value));
        }
        let index = self.nodes.len();
        self.nodes.push(Node {
            name,
            parent,
            children: Vec::new(),
            props,
        });
        for child in node.children().map_err(fdt_err)?.iter() {
            let child = child.map_err(fdt_err)?;
            let c = self.add(child, Some(index), depth.saturating_add(1))?;
            if let Some(n) = self.nodes.get_mut(index) {
                n.children.push(c);
            }
        }
        Ok(index)
    }

    fn index_phandles(&mut self) -> Result<(), Error> {
        for i in 0..self.nodes.len() {
            let ph = self.prop_u32(i, "phandle");
            let linux = self.prop_u32(i, "linux,phandle");
            let value = match (ph, linux) {
                (Some(Ok(a)), Some(Ok(b))) if a != b => {
                    return Err(Error::BadProperty {
                        node: self.path(i),
                        property: "phandle".into(),
                        why: format!("phandle {a:#x} and linux,phandle {b:#x} differ"),
                    });
                }
                (Some(v), _) | (None, Some(v)) => v.map_err(|why| Error::BadProperty {
                    node: self.path(i),
                    property: "phandle".into(),
                    why,
                })?,
                (None, None) => continue,
            };
            if value == 0 || value == u32::MAX {
                return Err(Error::BadProperty {
                    node: self.path(i),
                    property: "phandle".into(),
                    why: format!("{value:#x} is not a valid phandle"),
                });
            }
            if let Some(&first) = self.phandles.get(&value) {
                return Err(Error::DuplicatePhandle {
                    phandle: value,
                    first: self.path(first),
                    second: self.path(i),
                });
            }
            self.phandles.insert(value, i);
            self.max_phandle = self.max_phandle.max(value);
        }
        Ok(())
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> Option<&Node<'a>> {
        self.nodes.get(i)
    }

    /// The parent of node `i`.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.node(i).and_then(|n| n.parent)
    }

    /// The node's full path.
    pub fn path(&self, i: usize) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            match self.node(c) {
                Some(n) if n.parent.is_some() => parts.push(n.name.as_str()),
                _ => break,
            }
            cur = self.parent(c);
        }
        if parts.is_empty() {
            return "/".into();
        }
        parts.iter().rev().fold(String::new(), |mut s, p| {
            s.push('/');
            s.push_str(p);
            s
        })
    }

    /// The node at exactly `path` (every component with its unit address, if it has one).
    pub fn find(&self, path: &str) -> Option<usize> {
        let rest = path.strip_prefix('/')?;
        let mut cur = 0usize;
        for part in rest.split('/').filter(|p| !p.is_empty()) {
            let node = self.node(cur)?;
            cur = *node
                .children
                .iter()
                .find(|&&c| self.node(c).is_some_and(|n| n.name == part))?;
        }
        Some(cur)
    }

    /// The node with `phandle`.
    pub fn by_phandle(&self, phandle: u32) -> Option<usize> {
        self.phandles.get(&phandle).copied()
    }

    /// The node's phandle, if it has one.
    pub fn phandle_of(&self, i: usize) -> Option<u32> {
        self.phandles
            .iter()
            .find(|&(_, &n)| n == i)
            .map(|(&p, _)| p)
    }

    /// Node `i`'s property `name`, raw.
    pub fn prop(&self, i: usize, name: &str) -> Option<&'a [u8]> {
        self.node(i)?
            .props
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }

    /// A one-cell property: `None` when absent, `Some(Err)` when not one cell.
    pub fn prop_u32(&self, i: usize, name: &str) -> Option<Result<u32, String>> {
        let v = self.prop(i, name)?;
        Some(match v {
            [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => Err(format!("{} bytes, expected one cell", v.len())),
        })
    }

    /// A one-cell property as a plain value (`None` when absent or malformed).
    pub fn cell(&self, i: usize, name: &str) -> Option<u32> {
        self.prop_u32(i, name).and_then(Result::ok)
    }

    /// `#address-cells` of `i` (the cells of its children's addresses), default 2.
    pub fn addr_cells(&self, i: usize) -> u32 {
        self.cell(i, "#address-cells").unwrap_or(2)
    }

    /// `#size-cells` of `i`, default 1.
    pub fn size_cells(&self, i: usize) -> u32 {
        self.cell(i, "#size-cells").unwrap_or(1)
    }

    /// Whether node `i` has property `name`.
    pub fn has(&self, i: usize, name: &str) -> bool {
        self.prop(i, name).is_some()
    }

    /// Node `i`'s `compatible` strings.
    pub fn compatible(&self, i: usize) -> Vec<&'a str> {
        self.prop(i, "compatible")
            .and_then(strings)
            .unwrap_or_default()
    }

    /// True when `a` is `b` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(b);
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            cur = self.parent(c);
        }
        false
    }

    /// The interrupt parent of `i` as Linux finds it (`of_irq_find_parent`): follow
    /// `interrupt-parent`, else the tree parent, until a node with `#interrupt-cells`.
    /// `Ok(None)` when there is none; `Err(phandle)` when an `interrupt-parent` dangles.
    pub fn interrupt_parent(&self, i: usize) -> Result<Option<usize>, (usize, u32)> {
        let mut child = i;
        for _ in 0..=self.nodes.len() {
            let next = match self.cell(child, "interrupt-parent") {
                Some(ph) => Some(self.by_phandle(ph).ok_or((child, ph))?),
                None => self.parent(child),
            };
            match next {
                None => return Ok(None),
                Some(p) if self.has(p, "#interrupt-cells") => return Ok(Some(p)),
                Some(p) => child = p,
            }
        }
        // A cycle of interrupt-parent links.
        Ok(None)
    }

    /// The CPU-physical regions of `i`'s `reg`, translated through every parent's `ranges`.
    /// `Ok(None)` when some parent has no `ranges` (the addresses are not memory-mapped, e.g.
    /// I2C addresses) or `i` has no `reg`.
    pub fn regions(&self, i: usize) -> Result<Option<Vec<(u128, u128)>>, String> {
        let Some(reg) = self.prop(i, "reg") else {
            return Ok(None);
        };
        let Some(parent) = self.parent(i) else {
            return Ok(None);
        };
        let ac = self.addr_cells(parent) as usize;
        let sc = self.size_cells(parent) as usize;
        if ac > 4 || sc > 4 || ac == 0 {
            return Err(format!(
                "its parent's #address-cells {ac} / #size-cells {sc} are not supported"
            ));
        }
        let cells = cells(reg).ok_or("reg is not whole cells")?;
        // ac, sc <= 4 (checked above).
        let width = ac.saturating_add(sc);
        if !cells.len().is_multiple_of(width) {
            return Err(format!(
                "reg has {} cells, not a multiple of #address-cells {ac} + #size-cells {sc}",
                cells.len()
            ));
        }
        let mut out = Vec::new();
        for entry in cells.chunks_exact(width) {
            let (a, s) = entry.split_at(ac);
            let (Some(addr), Some(size)) = (number(a), number(s)) else {
                return Err("reg entry too wide".into());
            };
            match self.translate(parent, addr, size)? {
                Some(phys) => out.push((phys, size)),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Translates `[addr, addr + size)` in the address space `bus` gives its children up to
    /// the root's. `Ok(None)` when a bus on the way has no `ranges`.
    fn translate(&self, bus: usize, addr: u128, size: u128) -> Result<Option<u128>, String> {
        let mut bus = bus;
        let mut addr = addr;
        for _ in 0..=self.nodes.len() {
            let Some(up) = self.parent(bus) else {
                return Ok(Some(addr));
            };
            let Some(ranges) = self.prop(bus, "ranges") else {
                return Ok(None);
            };
            if ranges.is_empty() {
                bus = up;
                continue;
            }
            let ca = self.addr_cells(bus) as usize;
            let pa = self.addr_cells(up) as usize;
            let cs = self.size_cells(bus) as usize;
            let width = ca.saturating_add(pa).saturating_add(cs);
            let cells = cells(ranges).ok_or("ranges is not whole cells")?;
            if ca > 4 || pa > 4 || cs > 4 || width == 0 || !cells.len().is_multiple_of(width) {
                return Err(format!(
                    "ranges of {} does not fit its #address-cells/#size-cells",
                    self.path(bus)
                ));
            }
            let mut found = None;
            for e in cells.chunks_exact(width) {
                let (child, rest) = e.split_at(ca);
                let (parent, len) = rest.split_at(pa);
                let (Some(child), Some(parent), Some(len)) =
                    (number(child), number(parent), number(len))
                else {
                    continue;
                };
                let end = addr.checked_add(size);
                let range_end = child.checked_add(len);
                if let (Some(end), Some(range_end)) = (end, range_end)
                    && addr >= child
                    && end <= range_end
                {
                    found = parent.checked_add(addr.wrapping_sub(child)); // addr >= child
                    break;
                }
            }
            match found {
                Some(a) => addr = a,
                None => {
                    return Err(format!(
                        "{addr:#x}+{size:#x} lies outside the ranges of {}",
                        self.path(bus)
                    ));
                }
            }
            bus = up;
        }
        Err("cyclic tree".into())
    }
}
