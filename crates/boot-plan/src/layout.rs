//! Where every byte the loader writes goes.
//!
//! The kernel's segments go where its ELF says (`p_paddr`: seL4 is linked for one physical
//! address). Everything else is placed by [`plan`], first fit, upwards from the end of the
//! kernel: the device tree's copy, the root task's image (a contiguous copy of its ELF's
//! virtual span, which seL4 maps back to those virtual addresses with `pv_offset`), the boot
//! page tables and the secondary cores' stacks. The first two in that order: seL4 reserves
//! kernel, DTB and user image as an ascending list.
//!
//! Low, next to the kernel, on purpose: seL4 puts the root task's objects at the *top* of
//! its highest free memory region, and its secondary cores still run on the boot page tables
//! until the boot core has built them; firmware allocates top-down, so the firmware's own
//! choice of address for the tables would be exactly there.
//!
//! Every range is checked to be inside seL4's memory (the kernel reaches the user image and
//! the DTB through its window over that memory), clear of every forbidden range (guest RAM
//! that the VMM maps identity and that must reach the root task as free untyped memory;
//! firmware carve-outs) and, when the firmware's memory map is given, free there.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::elf::Elf;
use crate::{PAGE, PhysRange};

/// Stack of each secondary core until it enters the kernel.
pub const STACK_BYTES: u64 = 16 * 1024;

/// A range nothing may be written to, with the reason.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Forbidden {
    /// What it is ("guest RAM (identity-mapped)", a carve-out's name).
    pub name: String,
    /// Where.
    pub range: PhysRange,
}

/// One entry of the firmware's memory map.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MapEntry {
    /// Where.
    pub range: PhysRange,
    /// Free for the loader to claim (UEFI: `EfiConventionalMemory`).
    pub free: bool,
    /// The firmware's name for its type, for errors.
    pub kind: &'static str,
}

/// What to place.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// seL4's kernel.
    pub kernel: &'a Elf<'a>,
    /// The root task.
    pub user: &'a Elf<'a>,
    /// Bytes of the device tree the kernel is handed.
    pub dtb_bytes: u64,
    /// Bytes of the boot page tables.
    pub table_bytes: u64,
    /// Cores the kernel is built for (each but the first gets a stack).
    pub cores: usize,
    /// The physical memory seL4 was built to use (its device tree's `/memory`).
    pub sel4_memory: &'a [PhysRange],
    /// Ranges nothing may touch.
    pub forbidden: &'a [Forbidden],
    /// The firmware's memory map; `None` checks the plan against seL4's memory alone (the
    /// check that runs without a board).
    pub firmware: Option<&'a [MapEntry]>,
}

/// What goes where.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Plan {
    /// The kernel's segments' physical span.
    pub kernel: PhysRange,
    /// Kernel entry (virtual).
    pub kernel_entry: u64,
    /// The kernel's virtual span.
    pub kernel_virt: PhysRange,
    /// The root task's image: physical range.
    pub user: PhysRange,
    /// Its virtual span (page aligned); `user.start` holds `user_virt.start`.
    pub user_virt: PhysRange,
    /// Its entry (virtual).
    pub user_entry: u64,
    /// The device tree's copy.
    pub dtb: PhysRange,
    /// The boot page tables.
    pub tables: PhysRange,
    /// The secondary cores' stacks.
    pub stacks: PhysRange,
}

impl Plan {
    /// seL4's `pv_offset`: the user image's physical minus virtual address.
    pub fn pv_offset(&self) -> u64 {
        self.user.start.wrapping_sub(self.user_virt.start)
    }

    /// Every range the loader writes, by name.
    pub fn regions(&self) -> [(&'static str, PhysRange); 5] {
        [
            ("seL4 kernel", self.kernel),
            ("device tree", self.dtb),
            ("root task", self.user),
            ("boot page tables", self.tables),
            ("core stacks", self.stacks),
        ]
    }

    /// The top of core `n`'s stack (n >= 1).
    pub fn stack_top(&self, n: usize) -> u64 {
        self.stacks.start + n as u64 * STACK_BYTES
    }
}

/// Why no plan.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LayoutError {
    /// A kernel segment lies outside seL4's memory.
    OutsideMemory {
        /// What.
        what: &'static str,
        /// Where.
        range: PhysRange,
    },
    /// A range overlaps a forbidden one.
    Forbidden {
        /// What.
        what: &'static str,
        /// Where.
        range: PhysRange,
        /// The forbidden range.
        forbidden: Forbidden,
    },
    /// A range is not free in the firmware's memory map.
    FirmwareOwned {
        /// What.
        what: &'static str,
        /// Where.
        range: PhysRange,
        /// The map entry in the way.
        entry: MapEntry,
    },
    /// The kernel, the DTB and the root task are not in ascending order (seL4 needs them so).
    Order {
        /// The kernel.
        kernel: PhysRange,
        /// The DTB.
        dtb: PhysRange,
        /// The root task.
        user: PhysRange,
    },
    /// Nowhere to put it.
    NoRoom {
        /// What.
        what: &'static str,
        /// Bytes.
        size: u64,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::OutsideMemory { what, range } => {
                write!(f, "{what} at {range} is outside seL4's memory")
            }
            LayoutError::Forbidden {
                what,
                range,
                forbidden,
            } => write!(
                f,
                "{what} at {range} overlaps {} at {}",
                forbidden.name, forbidden.range
            ),
            LayoutError::FirmwareOwned { what, range, entry } => write!(
                f,
                "{what} at {range} overlaps firmware memory {} ({})",
                entry.range, entry.kind
            ),
            LayoutError::Order { kernel, dtb, user } => write!(
                f,
                "seL4 needs the kernel ({kernel}), the DTB ({dtb}) and the root task ({user}) in ascending order"
            ),
            LayoutError::NoRoom { what, size } => write!(
                f,
                "no room for {what} ({size:#x} bytes) in seL4's free memory above the kernel"
            ),
        }
    }
}

fn check_fixed(req: &Request<'_>, what: &'static str, range: PhysRange) -> Result<(), LayoutError> {
    if !req.sel4_memory.iter().any(|m| m.contains_range(&range)) {
        return Err(LayoutError::OutsideMemory { what, range });
    }
    if let Some(f) = req.forbidden.iter().find(|f| f.range.overlaps(&range)) {
        return Err(LayoutError::Forbidden {
            what,
            range,
            forbidden: f.clone(),
        });
    }
    if let Some(map) = req.firmware {
        if let Some(e) = map.iter().find(|e| !e.free && e.range.overlaps(&range)) {
            return Err(LayoutError::FirmwareOwned {
                what,
                range,
                entry: e.clone(),
            });
        }
        // Every byte must be covered by free entries (a hole in the map is not free).
        let mut at = range.start;
        let mut guard = 0usize;
        while at < range.end && guard <= map.len() {
            match map.iter().find(|e| e.free && e.range.contains(at)) {
                Some(e) => at = e.range.end,
                None => {
                    return Err(LayoutError::FirmwareOwned {
                        what,
                        range,
                        entry: MapEntry {
                            range: PhysRange::new(at, at.saturating_add(1)),
                            free: false,
                            kind: "not in the memory map",
                        },
                    });
                }
            }
            guard += 1;
        }
    }
    Ok(())
}

/// Free ranges: seL4's memory, minus the forbidden and taken ranges, intersected with the
/// firmware's free entries; ascending.
fn free_ranges(req: &Request<'_>, taken: &[PhysRange]) -> Vec<PhysRange> {
    let mut free: Vec<PhysRange> = match req.firmware {
        Some(map) => req
            .sel4_memory
            .iter()
            .flat_map(|m| {
                map.iter()
                    .filter(|e| e.free)
                    .map(move |e| e.range.intersect(m))
            })
            .filter(|r| !r.is_empty())
            .collect(),
        None => req.sel4_memory.to_vec(),
    };
    let cuts = req
        .forbidden
        .iter()
        .map(|f| f.range)
        .chain(taken.iter().copied());
    for cut in cuts {
        free = free
            .into_iter()
            .flat_map(|r| {
                [
                    PhysRange::new(r.start, r.end.min(cut.start)),
                    PhysRange::new(r.start.max(cut.end), r.end),
                ]
            })
            .filter(|r| !r.is_empty())
            .collect();
    }
    free.sort();
    free
}

fn place(
    req: &Request<'_>,
    taken: &mut Vec<PhysRange>,
    above: u64,
    what: &'static str,
    size: u64,
) -> Result<PhysRange, LayoutError> {
    let size = size.max(1).next_multiple_of(PAGE);
    let free = free_ranges(req, taken);
    let fit = |min: u64| {
        free.iter().find_map(|r| {
            let start = r.start.max(min).next_multiple_of(PAGE);
            PhysRange::sized(start, size).filter(|c| r.contains_range(c))
        })
    };
    let range = fit(above)
        .or_else(|| fit(0))
        .ok_or(LayoutError::NoRoom { what, size })?;
    taken.push(range);
    Ok(range)
}

/// Places everything (see the module docs).
pub fn plan(req: &Request<'_>) -> Result<Plan, LayoutError> {
    for s in req.kernel.segments() {
        check_fixed(req, "seL4 kernel segment", s.phys())?;
    }
    let kernel = req.kernel.phys_span();
    let kernel_page = kernel.align_out(PAGE);
    let mut taken = Vec::from([kernel_page]);
    let user_virt = req.user.virt_span().align_out(PAGE);
    // seL4 reserves the kernel, the DTB and the user image in that order and refuses
    // regions out of order ("reserved region 2 in wrong order"): the DTB goes first.
    let dtb = place(
        req,
        &mut taken,
        kernel_page.end,
        "device tree",
        req.dtb_bytes,
    )?;
    let user = place(req, &mut taken, dtb.end, "root task", user_virt.len())?;
    if !(kernel.end <= dtb.start && dtb.end <= user.start) {
        return Err(LayoutError::Order { kernel, dtb, user });
    }
    let tables = place(
        req,
        &mut taken,
        kernel_page.end,
        "boot page tables",
        req.table_bytes,
    )?;
    let stack_bytes = STACK_BYTES * req.cores.max(1) as u64;
    let stacks = place(req, &mut taken, kernel_page.end, "core stacks", stack_bytes)?;
    Ok(Plan {
        kernel,
        kernel_entry: req.kernel.entry(),
        kernel_virt: req.kernel.virt_span(),
        user,
        user_virt,
        user_entry: req.user.entry(),
        dtb,
        tables,
        stacks,
    })
}

/// The ranges a platform table forbids: its guest RAM when identity-mapped (it must reach the
/// root task as free untyped memory at exactly those addresses) and its host carve-outs.
pub fn platform_forbidden(p: &vmm_platform::Platform) -> Vec<Forbidden> {
    let range =
        |r: vmm_platform::GuestRange| PhysRange::new(r.base.0, r.base.0.saturating_add(r.size));
    let mut v = Vec::new();
    if p.ram.identity {
        v.push(Forbidden {
            name: String::from("guest RAM (identity-mapped)"),
            range: range(p.ram.range),
        });
    }
    for r in p.host.reserved {
        v.push(Forbidden {
            name: String::from(r.name),
            range: range(r.range),
        });
    }
    v
}
