//! The kernel's initial EL2 translation: what seL4's `_start` expects to run on.
//!
//! seL4 (AArch64, hypervisor mode) is entered with the MMU on, `TCR_EL2` equal to its
//! `TCR_EL2_DEFAULT` (it checks, `checkTCR_EL2`, and stops otherwise), `MAIR_EL2` laid out as
//! its `enum mair_types`, and `TTBR0_EL2` mapping its ELF's virtual addresses to where the
//! loader put it. Until it switches to its own tables, the loader's code (identity) runs on
//! these too, so they also map:
//!
//! * the low 512 GiB identity as Device-nGnRnE, execute-never (the UART, the GIC);
//! * every RAM range identity as Normal write-back, inner shareable (the loader, its stacks);
//! * the kernel's image at its virtual addresses as Normal write-back.
//!
//! Built as a tree of [`Table`]s in host memory with blocks of the largest size alignment
//! allows (1 GiB, 2 MiB, 4 KiB); a later mapping refines an earlier one (a block is split
//! into a table when a smaller range overlays it). [`Tables::encode`] writes the descriptors
//! for the physical address the tables will live at; [`walk`] reads them back, which is how
//! the tests (and the loader's own self-check) know the encoding is right.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::{PAGE, PhysRange};

/// Entries per table.
pub const ENTRIES: usize = 512;
/// Bytes per table.
pub const TABLE_BYTES: u64 = 4096;
/// The identity map covers `[0, IDENTITY_END)`: one level-0 entry, below seL4's kernel
/// window (its `PPTR_BASE`, 0x80_0000_0000 in hypervisor mode).
pub const IDENTITY_END: u64 = 1 << 39;
const VA_BITS: u32 = 48;

/// `MAIR_EL2` as seL4 numbers its memory types (`src/arch/arm/64/kernel/vspace.c`):
/// 0 Device-nGnRnE, 1 Device-nGnRE, 2 Device-GRE, 3 Normal non-cacheable, 4 Normal
/// write-back, 5 Normal write-through.
pub const MAIR_EL2: u64 = 0x00_00_aa_ff_44_0c_04_00;
/// `MAIR_EL2` index of Device-nGnRnE.
pub const ATTR_DEVICE: u8 = 0;
/// `MAIR_EL2` index of Normal write-back.
pub const ATTR_NORMAL: u8 = 4;

/// seL4's `TCR_EL2_DEFAULT` for a kernel built for `pa_bits` physical address bits (40 gives
/// stage 2 from level 1 and a 1 TiB PS, anything larger 16 TiB), or `None` for a width seL4
/// has no setting for.
pub const fn tcr_el2(pa_bits: u8) -> Option<u64> {
    let ps = match pa_bits {
        40 => 2,
        44 => 4,
        _ => return None,
    };
    // T0SZ 16, IRGN0/ORGN0 write-back write-allocate, inner shareable, 4 KiB granule, RES1.
    Some(16 | (1 << 8) | (1 << 10) | (3 << 12) | (ps << 16) | (1 << 23) | (1 << 31))
}

/// Memory attributes of a mapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Attrs {
    /// `MAIR_EL2` index.
    pub index: u8,
    /// Execute-never.
    pub xn: bool,
}

impl Attrs {
    /// Device-nGnRnE, execute-never.
    pub const DEVICE: Attrs = Attrs {
        index: ATTR_DEVICE,
        xn: true,
    };
    /// Normal write-back, inner shareable, executable.
    pub const NORMAL: Attrs = Attrs {
        index: ATTR_NORMAL,
        xn: false,
    };

    fn bits(self) -> u64 {
        let sh = if self.index == ATTR_NORMAL { 3 } else { 0 };
        (u64::from(self.index & 7) << 2) | (sh << 8) | (1 << 10) | (u64::from(self.xn) << 54)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Entry {
    Invalid,
    Table(usize),
    Leaf { pa: u64, attrs: Attrs },
}

// One 4 KiB table, before encoding.
type Table = [Entry; ENTRIES];

/// Why a mapping cannot be made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapError {
    /// Not 4 KiB aligned (virtual, physical or size).
    Unaligned {
        /// Virtual start.
        va: u64,
        /// Physical start.
        pa: u64,
        /// Size.
        size: u64,
    },
    /// The virtual range passes 2^48.
    OutOfRange {
        /// Virtual start.
        va: u64,
        /// Size.
        size: u64,
    },
    /// More tables than the bound given.
    TooManyTables(usize),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Unaligned { va, pa, size } => {
                write!(
                    f,
                    "mapping {va:#x} -> {pa:#x} + {size:#x} is not 4 KiB aligned"
                )
            }
            MapError::OutOfRange { va, size } => {
                write!(
                    f,
                    "mapping {va:#x} + {size:#x} passes the 48-bit address space"
                )
            }
            MapError::TooManyTables(n) => write!(f, "more than {n} page tables needed"),
        }
    }
}

/// A translation tree: table 0 is the level-0 root.
#[derive(Clone, Debug)]
pub struct Tables {
    tables: Vec<Table>,
    limit: usize,
}

const fn level_shift(level: usize) -> u32 {
    39 - 9 * level as u32
}

impl Tables {
    /// An empty tree that may grow to `limit` tables.
    pub fn new(limit: usize) -> Self {
        Tables {
            tables: vec![[Entry::Invalid; ENTRIES]],
            limit,
        }
    }

    /// Tables in the tree.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether the tree is only its empty root.
    pub fn is_empty(&self) -> bool {
        self.tables.len() == 1 && self.tables.iter().flatten().all(|e| *e == Entry::Invalid)
    }

    /// Bytes the encoded tree takes.
    pub fn bytes(&self) -> u64 {
        self.tables.len() as u64 * TABLE_BYTES
    }

    fn alloc(&mut self, init: Table) -> Result<usize, MapError> {
        if self.tables.len() >= self.limit {
            return Err(MapError::TooManyTables(self.limit));
        }
        self.tables.push(init);
        Ok(self.tables.len() - 1)
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with `attrs`, replacing what was there.
    pub fn map(&mut self, va: u64, pa: u64, size: u64, attrs: Attrs) -> Result<(), MapError> {
        if (va | pa | size) & (PAGE - 1) != 0 {
            return Err(MapError::Unaligned { va, pa, size });
        }
        if va.checked_add(size).is_none_or(|end| end > 1 << VA_BITS)
            || pa.checked_add(size).is_none()
        {
            return Err(MapError::OutOfRange { va, size });
        }
        let mut done = 0;
        while done < size {
            let step = self.map_one(0, 0, va + done, pa + done, size - done, attrs)?;
            done += step;
        }
        Ok(())
    }

    /// Maps the largest block that fits at `va`; returns its size.
    fn map_one(
        &mut self,
        table: usize,
        level: usize,
        va: u64,
        pa: u64,
        left: u64,
        attrs: Attrs,
    ) -> Result<u64, MapError> {
        let shift = level_shift(level);
        let block = 1u64 << shift;
        let index = ((va >> shift) & (ENTRIES as u64 - 1)) as usize;
        let entry = self
            .tables
            .get(table)
            .and_then(|t| t.get(index))
            .copied()
            .unwrap_or(Entry::Invalid);
        let fits = level >= 1 && (va | pa) & (block - 1) == 0 && left >= block;
        if fits {
            self.set(table, index, Entry::Leaf { pa, attrs });
            return Ok(block);
        }
        let child = match entry {
            Entry::Table(child) => child,
            Entry::Invalid => {
                let child = self.alloc([Entry::Invalid; ENTRIES])?;
                self.set(table, index, Entry::Table(child));
                child
            }
            Entry::Leaf {
                pa: base,
                attrs: old,
            } => {
                // Split the block: the same mapping one level down, then refine it.
                let sub = block >> 9;
                let mut init = [Entry::Invalid; ENTRIES];
                for (i, e) in init.iter_mut().enumerate() {
                    *e = Entry::Leaf {
                        pa: base + i as u64 * sub,
                        attrs: old,
                    };
                }
                let child = self.alloc(init)?;
                self.set(table, index, Entry::Table(child));
                child
            }
        };
        self.map_one(child, level + 1, va, pa, left, attrs)
    }

    fn set(&mut self, table: usize, index: usize, e: Entry) {
        if let Some(slot) = self.tables.get_mut(table).and_then(|t| t.get_mut(index)) {
            *slot = e;
        }
    }

    /// The descriptors, table after table, for a tree placed at physical address `base`
    /// (4 KiB aligned); `TTBR0_EL2` = `base`.
    pub fn encode(&self, base: u64) -> impl Iterator<Item = u64> + '_ {
        let depth = self.depths();
        self.tables.iter().enumerate().flat_map(move |(t, table)| {
            let level = depth.get(t).copied().unwrap_or(0);
            table.iter().map(move |e| match *e {
                Entry::Invalid => 0,
                Entry::Table(child) => (base + child as u64 * TABLE_BYTES) | 0b11,
                Entry::Leaf { pa, attrs } => {
                    pa | attrs.bits() | if level == 3 { 0b11 } else { 0b01 }
                }
            })
        })
    }

    fn depths(&self) -> Vec<usize> {
        let mut depth = vec![0usize; self.tables.len()];
        // Children are always allocated after their parent.
        for t in 0..self.tables.len() {
            let d = depth.get(t).copied().unwrap_or(0);
            for e in self.tables.get(t).iter().flat_map(|t| t.iter()) {
                if let Entry::Table(c) = *e
                    && let Some(slot) = depth.get_mut(c)
                {
                    *slot = d + 1;
                }
            }
        }
        depth
    }
}

/// What a virtual address translates to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Translation {
    /// Physical address.
    pub pa: u64,
    /// `MAIR_EL2` index.
    pub index: u8,
    /// Shareability field (3: inner shareable).
    pub sh: u8,
    /// Access flag.
    pub af: bool,
    /// Execute-never.
    pub xn: bool,
    /// Level of the leaf (1: 1 GiB block, 2: 2 MiB block, 3: 4 KiB page).
    pub level: usize,
}

/// Walks encoded tables as the MMU would: `read(pa)` gives the descriptor at `pa`; `root` is
/// `TTBR0_EL2`. `None` for a translation fault.
pub fn walk(read: impl Fn(u64) -> Option<u64>, root: u64, va: u64) -> Option<Translation> {
    if va >> VA_BITS != 0 {
        return None;
    }
    let mut table = root;
    for level in 0..4 {
        let shift = level_shift(level);
        let index = (va >> shift) & (ENTRIES as u64 - 1);
        let d = read(table + index * 8)?;
        let addr = d & 0x0000_ffff_ffff_f000;
        match (d & 0b11, level) {
            (0b11, 0..=2) => table = addr,
            (0b01, 1..=2) | (0b11, 3) => {
                let block = 1u64 << shift;
                return Some(Translation {
                    pa: (addr & !(block - 1)) | (va & (block - 1)),
                    index: ((d >> 2) & 7) as u8,
                    sh: ((d >> 8) & 3) as u8,
                    af: d & (1 << 10) != 0,
                    xn: d & (1 << 54) != 0,
                    level,
                });
            }
            _ => return None,
        }
    }
    None
}

/// Where the kernel's image goes: its virtual span and the physical address of its start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KernelWindow {
    /// The kernel ELF's virtual span.
    pub virt: PhysRange,
    /// Physical address of `virt.start`.
    pub phys: u64,
}

/// Tables no boot map needs more of: a root, an identity L1, a kernel L1 and L2, and room to
/// refine many RAM ranges that are not 1 GiB aligned.
pub const MAX_TABLES: usize = 64;

/// The initial translation seL4 is entered with (see the module docs).
pub fn boot_map(ram: &[PhysRange], kernel: KernelWindow) -> Result<Tables, MapError> {
    let mut t = Tables::new(MAX_TABLES);
    t.map(0, 0, IDENTITY_END, Attrs::DEVICE)?;
    // A firmware's memory map lists RAM in many adjacent pieces (each type its own entry, at
    // 4 KiB boundaries): merged first, only the real edges of RAM need small pages.
    let mut merged: Vec<PhysRange> = ram.to_vec();
    merged.sort();
    let mut runs: Vec<PhysRange> = Vec::new();
    for r in merged {
        match runs.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => runs.push(r),
        }
    }
    for r in &runs {
        let r = r.intersect(&PhysRange::new(0, IDENTITY_END));
        // Normal only on whole pages of RAM.
        let start = r.start.next_multiple_of(PAGE);
        let end = r.end & !(PAGE - 1);
        if end > start {
            t.map(start, start, end - start, Attrs::NORMAL)?;
        }
    }
    // The image in 2 MiB granules where it can (its start is as aligned as seL4 links it).
    let vstart = kernel.virt.start & !(PAGE - 1);
    let offset = kernel.virt.start - vstart;
    let pstart = kernel.phys.checked_sub(offset).ok_or(MapError::Unaligned {
        va: kernel.virt.start,
        pa: kernel.phys,
        size: kernel.virt.len(),
    })?;
    let vend = kernel.virt.end.next_multiple_of(0x20_0000);
    t.map(vstart, pstart, vend - vstart, Attrs::NORMAL)?;
    Ok(t)
}
