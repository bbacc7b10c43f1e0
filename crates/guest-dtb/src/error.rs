//! What can go wrong, each error naming the node, property and value at fault.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vmm_platform::{GuestRange, PlatformError, Trigger};

use crate::blob::DtbError;

/// Why no guest device tree was built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The platform table fails its own validation.
    Platform(PlatformError),
    /// The board DTB (or, from [`crate::verify`], any DTB) is not a well-formed flattened
    /// device tree.
    Malformed(DtbError),
    /// The initrd range is empty, inverted or outside the platform's initrd load region.
    Initrd {
        /// Start of the initrd.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// The platform's initrd load region.
        region: GuestRange,
    },
    /// A path the platform names is not a node of the board DTB.
    MissingNode {
        /// The path.
        path: String,
        /// Who names it: a pass-through region, a board node of the table, `stdout-path` or
        /// `extra node`.
        named_by: String,
    },
    /// A node the platform names cannot be passed through (the root, the board's GIC, a node
    /// under or named like one the VMM emulates).
    NotPassable {
        /// The path.
        path: String,
        /// Why.
        why: &'static str,
    },
    /// A pass-through region of the table is not a `reg` region of its node.
    RegMismatch {
        /// The node.
        node: String,
        /// The table's region name.
        region: &'static str,
        /// The table's range.
        table: GuestRange,
        /// The node's `reg`, translated to CPU addresses (empty: none or not translatable).
        board: Vec<GuestRange>,
    },
    /// A `reg` region of a node the guest gets is outside every pass-through region: the guest
    /// would be told of registers it cannot reach.
    RegNotPassedThrough {
        /// The node.
        node: String,
        /// The region (CPU address).
        range: GuestRange,
    },
    /// A node's `reg` cannot be read or translated through its parents' `ranges`.
    BadReg {
        /// The node.
        node: String,
        /// Why.
        why: String,
    },
    /// A pass-through SPI has another trigger on the board than in the table.
    IrqMismatch {
        /// The node whose interrupt it is.
        node: String,
        /// The SPI.
        spi: u32,
        /// The board's flags cell.
        board_flags: u32,
        /// The table's interrupt name.
        irq: &'static str,
        /// The table's trigger.
        table: Trigger,
    },
    /// A pass-through interrupt of the table is not an interrupt of any node the guest gets.
    IrqNotInGuest {
        /// The table's interrupt name.
        irq: &'static str,
        /// Its SPI.
        spi: u32,
    },
    /// An interrupt of a node the guest gets cannot be passed through (a PPI, an extended
    /// range, a malformed specifier, no interrupt parent).
    BadInterrupt {
        /// The node.
        node: String,
        /// The property.
        property: String,
        /// Why.
        why: String,
    },
    /// A phandle that no node of the board has.
    DanglingPhandle {
        /// The node holding the reference.
        node: String,
        /// The property.
        property: String,
        /// The phandle.
        phandle: u32,
    },
    /// A reference to a node that is neither passed through nor replaced by an emulated one:
    /// pass the target through too, or leave the referring node out.
    UnkeptReference {
        /// The node holding the reference.
        node: String,
        /// The property.
        property: String,
        /// The node it refers to.
        target: String,
        /// The phandle.
        phandle: u32,
    },
    /// Two nodes of the board share a phandle.
    DuplicatePhandle {
        /// The phandle.
        phandle: u32,
        /// The first node.
        first: String,
        /// The second node.
        second: String,
    },
    /// A property's value has the wrong shape.
    BadProperty {
        /// The node.
        node: String,
        /// The property.
        property: String,
        /// Why.
        why: String,
    },
    /// A value does not fit the cells the tree gives it.
    TooWide {
        /// What value.
        what: &'static str,
        /// The value.
        value: u64,
        /// The cells available.
        cells: u32,
    },
    /// The PCI memory window must lie below 4 GiB (it is described as 32-bit memory).
    PciWindow {
        /// The window.
        window: GuestRange,
    },
    /// `stdout-path` names no node of the guest device tree.
    StdoutPath {
        /// The platform's `stdout-path`.
        path: &'static str,
    },
    /// The guest device tree is larger than the platform's DTB load region.
    TooLarge {
        /// Its size.
        size: usize,
        /// The load region's size.
        max: u64,
    },
    /// The device tree writer refused a node or property.
    Write {
        /// Where.
        at: String,
        /// The writer's complaint.
        why: String,
    },
    /// The written tree failed the builder's own re-check (a bug in this crate).
    Internal(String),
}

fn ranges(f: &mut fmt::Formatter<'_>, rs: &[GuestRange]) -> fmt::Result {
    if rs.is_empty() {
        return write!(f, "none");
    }
    for (i, r) in rs.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{:#x}+{:#x}", r.base.0, r.size)?;
    }
    Ok(())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Platform(e) => write!(f, "invalid platform table: {e}"),
            Error::Malformed(e) => write!(f, "malformed DTB: {e}"),
            Error::Initrd { start, end, region } => write!(
                f,
                "initrd {start:#x}..{end:#x} is empty or outside the initrd load region \
                 {:#x}+{:#x}",
                region.base.0, region.size
            ),
            Error::MissingNode { path, named_by } => {
                write!(f, "{path} (named by {named_by}) is not in the board DTB")
            }
            Error::NotPassable { path, why } => write!(f, "{path} cannot be passed through: {why}"),
            Error::RegMismatch {
                node,
                region,
                table,
                board,
            } => {
                write!(
                    f,
                    "{node}: pass-through region {region} is {:#x}+{:#x} in the table, the \
                     board's reg is ",
                    table.base.0, table.size
                )?;
                ranges(f, board)
            }
            Error::RegNotPassedThrough { node, range } => write!(
                f,
                "{node}: reg {:#x}+{:#x} is in no pass-through region of the table",
                range.base.0, range.size
            ),
            Error::BadReg { node, why } => write!(f, "{node}: reg: {why}"),
            Error::IrqMismatch {
                node,
                spi,
                board_flags,
                irq,
                table,
            } => write!(
                f,
                "{node}: SPI {spi} has flags {board_flags:#x} on the board, the table's {irq} \
                 says {table:?} ({:#x})",
                table.dt_flags()
            ),
            Error::IrqNotInGuest { irq, spi } => write!(
                f,
                "pass-through interrupt {irq} (SPI {spi}) is not an interrupt of any node the \
                 guest gets"
            ),
            Error::BadInterrupt {
                node,
                property,
                why,
            } => write!(f, "{node}: {property}: {why}"),
            Error::DanglingPhandle {
                node,
                property,
                phandle,
            } => write!(
                f,
                "{node}: {property} refers to phandle {phandle:#x}, which no node has"
            ),
            Error::UnkeptReference {
                node,
                property,
                target,
                phandle,
            } => write!(
                f,
                "{node}: {property} refers to {target} (phandle {phandle:#x}), which the guest \
                 does not get: add it to the platform's pass-through list, or leave {node} out"
            ),
            Error::DuplicatePhandle {
                phandle,
                first,
                second,
            } => write!(f, "{first} and {second} share phandle {phandle:#x}"),
            Error::BadProperty {
                node,
                property,
                why,
            } => write!(f, "{node}: {property}: {why}"),
            Error::TooWide { what, value, cells } => {
                write!(f, "{what} {value:#x} does not fit in {cells} cell(s)")
            }
            Error::PciWindow { window } => write!(
                f,
                "PCI memory window {:#x}+{:#x} is not below 4 GiB",
                window.base.0, window.size
            ),
            Error::StdoutPath { path } => {
                write!(
                    f,
                    "stdout-path {path:?} names no node of the guest device tree"
                )
            }
            Error::TooLarge { size, max } => write!(
                f,
                "the guest DTB is {size} bytes, the platform's DTB region holds {max}"
            ),
            Error::Write { at, why } => write!(f, "writing {at}: {why}"),
            Error::Internal(why) => write!(f, "internal error (guest DTB re-check): {why}"),
        }
    }
}

impl From<PlatformError> for Error {
    fn from(e: PlatformError) -> Self {
        Error::Platform(e)
    }
}
