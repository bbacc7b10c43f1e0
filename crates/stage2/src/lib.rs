//! The stage-2 plan: from a [`Platform`], the exact list of mappings the hypervisor back-end
//! makes for the guest, and the guest's memory map as a person reads it.
//!
//! RAM is mapped with 2 MiB blocks wherever guest address and backing allow, 4 KiB pages at
//! unaligned edges only: public reports of the CAmkES Orin port measured image loading with
//! 4 KiB pages about 470 times slower. Emulated windows are deliberately *not* mapped, so every
//! guest access there faults to the VMM.
#![no_std]
#![forbid(unsafe_code)]
// No value overflows silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;
use guest_mem::{GuestPhysAddr, GuestRange, HostPhysAddr};
use vmm_platform::{Access, MemAttrs, PAGE_2M, PAGE_4K, Platform};

/// A stage-2 page size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PageSize {
    /// 4 KiB page (level-3 entry).
    Small,
    /// 2 MiB block (level-2 entry).
    Large,
}

impl PageSize {
    /// Bytes per page.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Small => PAGE_4K,
            PageSize::Large => PAGE_2M,
        }
    }
}

/// What backs a mapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    /// Guest RAM from any free host RAM, at this offset into guest RAM (the back-end picks
    /// frames; 2 MiB blocks need 2 MiB-aligned frames).
    AnyRam {
        /// Offset of the run's first byte into guest RAM.
        ram_offset: u64,
    },
    /// The host physical frames at this address (pass-through devices, identity RAM).
    Physical(HostPhysAddr),
}

/// What a region of the guest's address space is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RegionKind {
    /// Guest RAM.
    Ram,
    /// A part of RAM reserved for a boot image (kernel, initrd, DTB).
    Load,
    /// A board device the guest accesses directly.
    Passthrough,
    /// A window the VMM emulates (not mapped: accesses fault).
    Emulated,
}

impl RegionKind {
    /// Lower-case name for tables and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            RegionKind::Ram => "ram",
            RegionKind::Load => "load",
            RegionKind::Passthrough => "passthrough",
            RegionKind::Emulated => "emulated",
        }
    }
}

/// The set-up side of a hypervisor back-end: making the stage-2 mappings a [`Plan`] lists,
/// once, before any vCPU runs. A trait of its own, apart from the exit-time
/// `hypervisor::Hypervisor` the VMM's event loop drives, so the code that handles a guest's
/// exits cannot change stage 2.
pub trait MapStage2 {
    /// Why a mapping failed.
    type Error;

    /// Makes one mapping run.
    fn map(&mut self, mapping: &Mapping) -> Result<(), Self::Error>;
}

/// One run of equally sized pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mapping {
    /// The region the run belongs to.
    pub name: &'static str,
    /// First guest address.
    pub guest: GuestPhysAddr,
    /// What backs it.
    pub source: Source,
    /// Bytes (a multiple of the page size).
    pub size: u64,
    /// Page size of every page in the run.
    pub page: PageSize,
    /// Memory attributes.
    pub attrs: MemAttrs,
    /// Permissions: a read-only run is mapped without write rights, so guest stores fault.
    pub access: Access,
}

impl Mapping {
    /// Number of pages in the run.
    pub const fn pages(&self) -> u64 {
        // A page size is never zero.
        match self.size.checked_div(self.page.bytes()) {
            Some(n) => n,
            None => 0,
        }
    }
}

/// A region of the guest's memory map.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Region {
    /// Name.
    pub name: &'static str,
    /// What it is.
    pub kind: RegionKind,
    /// Guest range.
    pub range: GuestRange,
    /// Attributes, for mapped regions.
    pub attrs: Option<MemAttrs>,
    /// Permissions, for mapped regions.
    pub access: Option<Access>,
}

/// The whole plan.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The guest's memory map, sorted by address (load regions follow the RAM they lie in).
    pub regions: Vec<Region>,
    /// The mappings to make, sorted by guest address.
    pub mappings: Vec<Mapping>,
}

impl Plan {
    /// Plans the stage-2 address space of `platform` (which must be valid: tables are checked
    /// when they are compiled).
    pub fn new(platform: &Platform) -> Self {
        let mut regions = Vec::new();
        let mut mappings = Vec::new();
        let ram = platform.ram.range;
        regions.push(Region {
            name: "ram",
            kind: RegionKind::Ram,
            range: ram,
            attrs: Some(MemAttrs::NormalCacheable),
            access: Some(Access::ReadWrite),
        });
        for (name, load) in [
            ("kernel", platform.kernel),
            ("initrd", platform.initrd),
            ("dtb", platform.dtb),
        ] {
            regions.push(Region {
                name,
                kind: RegionKind::Load,
                range: load.range(),
                attrs: None,
                access: None,
            });
        }
        let ram_source = |guest: u64| {
            let off = guest.saturating_sub(ram.base.0);
            if platform.ram.identity {
                Source::Physical(HostPhysAddr(guest))
            } else {
                Source::AnyRam { ram_offset: off }
            }
        };
        split(
            "ram",
            ram,
            (MemAttrs::NormalCacheable, Access::ReadWrite),
            true,
            ram_source,
            &mut mappings,
        );

        for p in platform.passthrough {
            regions.push(Region {
                name: p.name,
                kind: RegionKind::Passthrough,
                range: p.range,
                attrs: Some(p.attrs),
                access: Some(p.access),
            });
            // Devices use 4 KiB pages: their frames are device untypeds of arbitrary
            // alignment, and the regions are small.
            split(
                p.name,
                p.range,
                (p.attrs, p.access),
                false,
                |g| Source::Physical(HostPhysAddr(g)),
                &mut mappings,
            );
        }
        for (name, range) in platform.emulated_windows() {
            regions.push(Region {
                name,
                kind: RegionKind::Emulated,
                range,
                attrs: None,
                access: None,
            });
        }
        regions.sort_by_key(|r| (r.range.base, r.kind != RegionKind::Ram));
        mappings.sort_by_key(|m| m.guest);
        Plan { regions, mappings }
    }

    /// Total bytes mapped with each page size: (4 KiB, 2 MiB).
    pub fn bytes_by_page_size(&self) -> (u64, u64) {
        self.mappings.iter().fold((0, 0), |(s, l), m| match m.page {
            PageSize::Small => (s.saturating_add(m.size), l),
            PageSize::Large => (s, l.saturating_add(m.size)),
        })
    }
}

/// Splits `range` into a 4 KiB head up to the first 2 MiB boundary, 2 MiB blocks, and a 4 KiB
/// tail (only 4 KiB pages when `large` is false).
fn split(
    name: &'static str,
    range: GuestRange,
    (attrs, access): (MemAttrs, Access),
    large: bool,
    source: impl Fn(u64) -> Source,
    out: &mut Vec<Mapping>,
) {
    let start = range.base.0;
    let end = range.end();
    let mut push = |from: u64, to: u64, page: PageSize| {
        if to > from {
            out.push(Mapping {
                name,
                guest: GuestPhysAddr(from),
                source: source(from),
                size: to.wrapping_sub(from), // to > from
                page,
                attrs,
                access,
            });
        }
    };
    let big_start = start.next_multiple_of(PAGE_2M);
    let big_end = end.wrapping_sub(end.wrapping_rem(PAGE_2M)); // end % PAGE_2M <= end
    if large && big_start < big_end {
        push(start, big_start, PageSize::Small);
        push(big_start, big_end, PageSize::Large);
        push(big_end, end, PageSize::Small);
    } else {
        push(start, end, PageSize::Small);
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<20} {:<12} {:>18} {:>18} {:>12}  attrs",
            "region", "kind", "start", "end", "size"
        )?;
        for r in &self.regions {
            writeln!(
                f,
                "{:<20} {:<12} {:>#18x} {:>#18x} {:>12}  {}{}",
                r.name,
                r.kind.name(),
                r.range.base.0,
                r.range.end(),
                human(r.range.size),
                match (r.attrs, r.kind) {
                    (Some(a), _) => a.name(),
                    (None, RegionKind::Load) => "(in ram)",
                    (None, _) => "trap",
                },
                read_only(r.access),
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<20} {:>18} {:>12} {:>6} {:>8}  source",
            "mapping", "guest", "size", "page", "count"
        )?;
        for m in &self.mappings {
            let src = match m.source {
                Source::AnyRam { ram_offset } => alloc::format!("ram+{ram_offset:#x}"),
                Source::Physical(p) => alloc::format!("phys {:#x}", p.0),
            };
            writeln!(
                f,
                "{:<20} {:>#18x} {:>12} {:>6} {:>8}  {} {}{}",
                m.name,
                m.guest.0,
                human(m.size),
                if m.page == PageSize::Large {
                    "2M"
                } else {
                    "4K"
                },
                m.pages(),
                src,
                m.attrs.name(),
                read_only(Some(m.access)),
            )?;
        }
        let (small, large) = self.bytes_by_page_size();
        write!(
            f,
            "\n{} in 2 MiB blocks, {} in 4 KiB pages",
            human(large),
            human(small)
        )
    }
}

/// The attributes column's suffix: `, read-only` for a read-only mapping, nothing otherwise.
fn read_only(access: Option<Access>) -> &'static str {
    match access {
        Some(Access::ReadOnly) => ", read-only",
        _ => "",
    }
}

/// `256 MiB`, `640 KiB`, `24 B`.
fn human(bytes: u64) -> alloc::string::String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return alloc::format!("{} {name}", bytes.checked_div(unit).unwrap_or(0));
        }
    }
    alloc::format!("{bytes:#x} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm_platform::{GuestRange, ORIN_AGX, QEMU_VIRT};

    #[test]
    fn qemu_virt_plan() {
        let plan = Plan::new(&QEMU_VIRT);
        // 512 MiB of RAM at 0x4000_0000: 256 blocks of 2 MiB, nothing else mapped.
        assert_eq!(
            plan.mappings,
            [Mapping {
                name: "ram",
                guest: GuestPhysAddr(0x4000_0000),
                source: Source::AnyRam { ram_offset: 0 },
                size: 0x2000_0000,
                page: PageSize::Large,
                attrs: MemAttrs::NormalCacheable,
                access: Access::ReadWrite,
            }]
        );
        assert_eq!(plan.mappings[0].pages(), 256);
        let emulated: Vec<_> = plan
            .regions
            .iter()
            .filter(|r| r.kind == RegionKind::Emulated)
            .map(|r| (r.name, r.range))
            .collect();
        assert_eq!(
            emulated,
            [
                ("gicd", GuestRange::new(0x0800_0000, 0x1_0000)),
                ("gicr", GuestRange::new(0x080a_0000, 0x8_0000)),
                ("pl011", GuestRange::new(0x0900_0000, 0x1000)),
                ("pci-mmio", GuestRange::new(0x1000_0000, 0x2eff_0000)),
                ("pci-ecam", GuestRange::new(0x3f00_0000, 0x10_0000)),
            ]
        );
    }

    #[test]
    fn orin_plan() {
        let plan = Plan::new(&ORIN_AGX);
        let m: Vec<_> = plan
            .mappings
            .iter()
            .map(|m| (m.name, m.guest.0, m.size, m.page, m.source, m.attrs))
            .collect();
        use MemAttrs::*;
        use PageSize::*;
        assert_eq!(
            m,
            [
                (
                    "apb-misc",
                    0x0010_0000,
                    0xf000,
                    Small,
                    Source::Physical(HostPhysAddr(0x0010_0000)),
                    DeviceNGnRE
                ),
                (
                    "apb-misc-straps",
                    0x0010_f000,
                    0x1000,
                    Small,
                    Source::Physical(HostPhysAddr(0x0010_f000)),
                    DeviceNGnRE
                ),
                (
                    "hsp-top0",
                    0x03c0_0000,
                    0xa_0000,
                    Small,
                    Source::Physical(HostPhysAddr(0x03c0_0000)),
                    DeviceNGnRE
                ),
                (
                    "hsp-aon",
                    0x0c15_0000,
                    0x9_0000,
                    Small,
                    Source::Physical(HostPhysAddr(0x0c15_0000)),
                    DeviceNGnRE
                ),
                (
                    "sram-bpmp-tx",
                    0x4007_0000,
                    0x1000,
                    Small,
                    Source::Physical(HostPhysAddr(0x4007_0000)),
                    DeviceNGnRE
                ),
                (
                    "sram-bpmp-rx",
                    0x4007_1000,
                    0x1000,
                    Small,
                    Source::Physical(HostPhysAddr(0x4007_1000)),
                    DeviceNGnRE
                ),
                (
                    "ram",
                    0x9000_0000,
                    0x1000_0000,
                    Large,
                    Source::Physical(HostPhysAddr(0x9000_0000)),
                    NormalCacheable
                ),
            ]
        );
        // 64 KiB (APB MISC) + 640 KiB + 576 KiB + 2 x 4 KiB of device pages; all of RAM in
        // blocks.
        assert_eq!(plan.bytes_by_page_size(), (0x14_2000, 0x1000_0000));
        // APB MISC is the only read-only mapping.
        let ro: Vec<_> = plan
            .mappings
            .iter()
            .filter(|m| m.access == Access::ReadOnly)
            .map(|m| m.name)
            .collect();
        assert_eq!(ro, ["apb-misc", "apb-misc-straps"]);
        let ro: Vec<_> = plan
            .regions
            .iter()
            .filter(|r| r.access == Some(Access::ReadOnly))
            .map(|r| r.name)
            .collect();
        assert_eq!(ro, ["apb-misc", "apb-misc-straps"]);
    }

    #[test]
    fn read_only_regions_keep_their_access_in_every_page_run() {
        use vmm_platform::{Passthrough, Platform};
        static PT: [Passthrough; 2] = [
            Passthrough {
                name: "ro",
                dt_path: "/ro",
                range: GuestRange::new(0x0900_0000 + 0x10_0000, 0x3000),
                attrs: MemAttrs::DeviceNGnRE,
                access: Access::ReadOnly,
            },
            Passthrough {
                name: "rw",
                dt_path: "/rw",
                range: GuestRange::new(0x0900_0000 + 0x20_0000, 0x1000),
                attrs: MemAttrs::DeviceNGnRE,
                access: Access::ReadWrite,
            },
        ];
        let p = Platform {
            passthrough: &PT,
            ..QEMU_VIRT
        };
        assert_eq!(p.validate(), Ok(()));
        let plan = Plan::new(&p);
        let m: Vec<_> = plan
            .mappings
            .iter()
            .map(|m| (m.name, m.pages(), m.access))
            .collect();
        assert_eq!(
            m,
            [
                ("ro", 3, Access::ReadOnly),
                ("rw", 1, Access::ReadWrite),
                ("ram", 256, Access::ReadWrite),
            ]
        );
        let text = alloc::format!("{plan}");
        let line = |name: &str| {
            text.lines()
                .filter(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
                .map(alloc::string::ToString::to_string)
                .collect::<Vec<_>>()
        };
        for l in line("ro") {
            assert!(l.ends_with("device-nGnRE, read-only"), "{l}");
        }
        for l in line("rw").iter().chain(&line("ram")) {
            assert!(!l.contains("read-only"), "{l}");
        }
        assert_eq!(line("ro").len(), 2, "{text}");
    }

    #[test]
    fn unaligned_ram_gets_small_pages_only_at_the_edges() {
        let mut p = QEMU_VIRT;
        p.ram.range = GuestRange::new(0x4000_1000, 0x0060_0000);
        let plan = Plan::new(&p);
        let m: Vec<_> = plan
            .mappings
            .iter()
            .map(|m| (m.guest.0, m.size, m.page))
            .collect();
        assert_eq!(
            m,
            [
                (0x4000_1000, 0x1f_f000, PageSize::Small),
                (0x4020_0000, 0x40_0000, PageSize::Large),
                (0x4060_0000, 0x1000, PageSize::Small),
            ]
        );
        assert_eq!(plan.mappings[0].source, Source::AnyRam { ram_offset: 0 });
        assert_eq!(
            plan.mappings[1].source,
            Source::AnyRam {
                ram_offset: 0x1f_f000
            }
        );
    }

    #[test]
    fn table_lists_every_region() {
        let text = alloc::format!("{}", Plan::new(&ORIN_AGX));
        for name in [
            "ram",
            "kernel",
            "initrd",
            "dtb",
            "hsp-top0",
            "hsp-aon",
            "sram-bpmp-tx",
            "apb-misc",
            "gicd",
            "gicr",
            "pci-ecam",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!(text.contains("256 MiB in 2 MiB blocks"), "{text}");
    }
}
