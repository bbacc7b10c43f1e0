//! The checks every platform table passes, at compile time and at run time.

use crate::{DTB_MAX, Device, GICD_SIZE, MAX_VCPUS, PAGE_2M, PAGE_4K, Platform, Spi};
use core::fmt;
use guest_mem::{GuestPhysAddr, GuestRange};

/// What is wrong with a platform table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PlatformError {
    /// A region has no bytes.
    Empty {
        /// The region.
        region: &'static str,
    },
    /// A region's end does not fit in 64 bits.
    Wraps {
        /// The region.
        region: &'static str,
        /// Its range.
        range: GuestRange,
    },
    /// A region's base or size is not a multiple of what its mapping needs.
    Misaligned {
        /// The region.
        region: &'static str,
        /// The offending base or size.
        value: u64,
        /// The alignment needed.
        align: u64,
    },
    /// Two regions share addresses.
    Overlap {
        /// The first region.
        a: &'static str,
        /// Its range.
        a_range: GuestRange,
        /// The second region.
        b: &'static str,
        /// Its range.
        b_range: GuestRange,
    },
    /// A load region is not entirely inside guest RAM.
    OutsideRam {
        /// The region.
        region: &'static str,
        /// Its range.
        range: GuestRange,
        /// Guest RAM.
        ram: GuestRange,
    },
    /// A region is larger than its format allows.
    TooLarge {
        /// The region.
        region: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The vCPU count is 0 or above [`MAX_VCPUS`].
    VcpuCount {
        /// The count.
        count: u8,
    },
    /// An SPI number is above [`Spi::MAX`].
    SpiOutOfRange {
        /// Whose interrupt.
        name: &'static str,
        /// The SPI.
        spi: Spi,
    },
    /// Two interrupt users share an SPI.
    DuplicateSpi {
        /// The first user.
        a: &'static str,
        /// The second user.
        b: &'static str,
        /// The SPI.
        spi: Spi,
    },
    /// A device-tree path that is not absolute.
    BadDtPath {
        /// The pass-through region or board node.
        region: &'static str,
        /// The path.
        path: &'static str,
    },
    /// The device list names a kind of device twice (the machine has one of each).
    DuplicateDevice {
        /// The kind.
        kind: &'static str,
    },
    /// No kernel command line or stdout path.
    MissingBootarg {
        /// Which field.
        field: &'static str,
    },
}

impl PlatformError {
    /// A fixed sentence for the error kind (what a failed compile-time check prints).
    pub const fn summary(&self) -> &'static str {
        match self {
            PlatformError::Empty { .. } => "a region has size 0",
            PlatformError::Wraps { .. } => "a region wraps past the end of the address space",
            PlatformError::Misaligned { .. } => "a region's base or size is misaligned",
            PlatformError::Overlap { .. } => "two regions overlap",
            PlatformError::OutsideRam { .. } => "a load region is not inside guest RAM",
            PlatformError::TooLarge { .. } => "a region is larger than allowed",
            PlatformError::VcpuCount { .. } => "vCPU count must be 1..=16",
            PlatformError::SpiOutOfRange { .. } => "an SPI is above 987",
            PlatformError::DuplicateSpi { .. } => "two interrupt users share an SPI",
            PlatformError::BadDtPath { .. } => "a device-tree path is not absolute",
            PlatformError::DuplicateDevice { .. } => "a kind of emulated device is listed twice",
            PlatformError::MissingBootarg { .. } => "bootargs or stdout-path is empty",
        }
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |r: &GuestRange| (r.base.0, r.end());
        match self {
            PlatformError::Empty { region } => write!(f, "{region}: size is 0"),
            PlatformError::Wraps { region, range } => {
                write!(
                    f,
                    "{region}: {:#x}+{:#x} wraps past 2^64",
                    range.base.0, range.size
                )
            }
            PlatformError::Misaligned {
                region,
                value,
                align,
            } => {
                write!(f, "{region}: {value:#x} is not a multiple of {align:#x}")
            }
            PlatformError::Overlap {
                a,
                a_range,
                b,
                b_range,
            } => {
                let (a0, a1) = r(a_range);
                let (b0, b1) = r(b_range);
                write!(f, "{a} [{a0:#x}, {a1:#x}) overlaps {b} [{b0:#x}, {b1:#x})")
            }
            PlatformError::OutsideRam { region, range, ram } => {
                let (a0, a1) = r(range);
                let (m0, m1) = r(ram);
                write!(
                    f,
                    "{region} [{a0:#x}, {a1:#x}) is not inside guest RAM [{m0:#x}, {m1:#x})"
                )
            }
            PlatformError::TooLarge { region, size, max } => {
                write!(
                    f,
                    "{region}: {size:#x} bytes is more than the {max:#x} allowed"
                )
            }
            PlatformError::VcpuCount { count } => {
                write!(f, "{count} vCPUs: must be 1..={MAX_VCPUS}")
            }
            PlatformError::SpiOutOfRange { name, spi } => {
                write!(f, "{name}: SPI {} is above {}", spi.0, Spi::MAX)
            }
            PlatformError::DuplicateSpi { a, b, spi } => {
                write!(
                    f,
                    "{a} and {b} both use SPI {} (INTID {})",
                    spi.0,
                    spi.intid()
                )
            }
            PlatformError::BadDtPath { region, path } => {
                write!(
                    f,
                    "{region}: device-tree path {path:?} does not start with '/'"
                )
            }
            PlatformError::DuplicateDevice { kind } => {
                write!(f, "devices: {kind} is listed twice (one of each kind)")
            }
            PlatformError::MissingBootarg { field } => write!(f, "{field} is empty"),
        }
    }
}

/// Fails the build when `p` is invalid: `const _: () = assert_valid(&TABLE);`.
#[allow(clippy::panic)] // a compile-time check: the panic is the build error
pub const fn assert_valid(p: &Platform) {
    if let Err(e) = p.validate() {
        panic!("{}", e.summary());
    }
}

const fn check_range(region: &'static str, r: GuestRange, align: u64) -> Result<(), PlatformError> {
    if r.size == 0 {
        return Err(PlatformError::Empty { region });
    }
    if r.base.0.checked_add(r.size).is_none() {
        return Err(PlatformError::Wraps { region, range: r });
    }
    if !r.base.0.is_multiple_of(align) {
        return Err(PlatformError::Misaligned {
            region,
            value: r.base.0,
            align,
        });
    }
    if !r.size.is_multiple_of(align) {
        return Err(PlatformError::Misaligned {
            region,
            value: r.size,
            align,
        });
    }
    Ok(())
}

const fn check_dt_path(region: &'static str, path: &'static str) -> Result<(), PlatformError> {
    let bytes = path.as_bytes();
    if bytes.is_empty() || bytes[0] != b'/' {
        return Err(PlatformError::BadDtPath { region, path });
    }
    Ok(())
}

/// `?` for const fns.
macro_rules! tri {
    ($e:expr) => {
        if let Err(e) = $e {
            return Err(e);
        }
    };
}

impl Platform {
    /// The number of emulated devices' windows.
    const fn window_count(&self) -> usize {
        let mut n = 0;
        let mut d = 0;
        while d < self.devices.len() {
            let mut w = 0;
            while self.devices[d].window(w).is_some() {
                w += 1;
            }
            n += w;
            d += 1;
        }
        n
    }

    /// Emulated window `k` of all devices' windows, in list order.
    const fn device_window(&self, mut k: usize) -> Option<crate::Window> {
        let mut d = 0;
        while d < self.devices.len() {
            let mut w = 0;
            while let Some(win) = self.devices[d].window(w) {
                if k == 0 {
                    return Some(win);
                }
                k -= 1;
                w += 1;
            }
            d += 1;
        }
        None
    }

    /// The number of address regions [`Platform::region`] enumerates.
    pub const fn region_count(&self) -> usize {
        3 + self.window_count() + self.passthrough.len()
    }

    /// Address region `i`, with its name: RAM, the interrupt controller, each emulated
    /// device's windows (in the list's order), then the pass-through regions.
    pub const fn region(&self, i: usize) -> Option<(&'static str, GuestRange)> {
        match i {
            0 => Some(("ram", self.ram.range)),
            1 => Some(("gicd", self.gicd_range())),
            2 => Some(("gicr", self.gicr_range())),
            _ => {
                let k = i - 3;
                let w = self.window_count();
                if k < w {
                    match self.device_window(k) {
                        Some(win) => Some((win.name, win.range)),
                        None => None,
                    }
                } else if k - w < self.passthrough.len() {
                    let p = &self.passthrough[k - w];
                    Some((p.name, p.range))
                } else {
                    None
                }
            }
        }
    }

    /// The number of interrupt users [`Platform::irq`] enumerates.
    const fn irq_count(&self) -> usize {
        let mut n = self.passthrough_irqs.len();
        let mut d = 0;
        while d < self.devices.len() {
            let mut s = 0;
            while self.devices[d].spi(s).is_some() {
                s += 1;
            }
            n += s;
            d += 1;
        }
        n
    }

    /// Interrupt user `i`: pass-through IRQs, then each emulated device's (in list order).
    const fn irq(&self, i: usize) -> Option<(&'static str, Spi)> {
        let n = self.passthrough_irqs.len();
        if i < n {
            let p = &self.passthrough_irqs[i];
            return Some((p.name, p.spi));
        }
        let mut k = i - n;
        let mut d = 0;
        while d < self.devices.len() {
            let mut s = 0;
            while let Some(user) = self.devices[d].spi(s) {
                if k == 0 {
                    return Some(user);
                }
                k -= 1;
                s += 1;
            }
            d += 1;
        }
        None
    }

    /// Checks the table; the first problem found is returned.
    pub const fn validate(&self) -> Result<(), PlatformError> {
        if self.vcpus == 0 || self.vcpus > MAX_VCPUS {
            return Err(PlatformError::VcpuCount { count: self.vcpus });
        }
        if self.bootargs.is_empty() {
            return Err(PlatformError::MissingBootarg { field: "bootargs" });
        }
        if self.stdout_path.is_empty() {
            return Err(PlatformError::MissingBootarg {
                field: "stdout-path",
            });
        }

        // Each region on its own.
        tri!(check_range("ram", self.ram.range, PAGE_4K));
        tri!(check_range("gicd", self.gicd_range(), GICD_SIZE));
        tri!(check_range("gicr", self.gicr_range(), GICD_SIZE));
        let mut d = 0;
        while d < self.devices.len() {
            let dev = &self.devices[d];
            let mut e = d + 1;
            while e < self.devices.len() {
                if matches!(
                    (dev, &self.devices[e]),
                    (Device::Pl011(_), Device::Pl011(_)) | (Device::Pci(_), Device::Pci(_))
                ) {
                    return Err(PlatformError::DuplicateDevice { kind: dev.kind() });
                }
                e += 1;
            }
            let mut w = 0;
            while let Some(win) = dev.window(w) {
                tri!(check_range(win.name, win.range, win.align));
                w += 1;
            }
            d += 1;
        }
        let mut i = 0;
        while i < self.passthrough.len() {
            let p = &self.passthrough[i];
            tri!(check_range(p.name, p.range, PAGE_4K));
            tri!(check_dt_path(p.name, p.dt_path));
            i += 1;
        }
        let mut i = 0;
        while i < self.board_nodes.len() {
            let n = &self.board_nodes[i];
            tri!(check_dt_path(n.name, n.dt_path));
            i += 1;
        }

        // No two address regions share a byte.
        let n = self.region_count();
        let mut a = 0;
        while a < n {
            if let Some((an, ar)) = self.region(a) {
                let mut b = a + 1;
                while b < n {
                    if let Some((bn, br)) = self.region(b)
                        && ar.overlaps(&br)
                    {
                        return Err(PlatformError::Overlap {
                            a: an,
                            a_range: ar,
                            b: bn,
                            b_range: br,
                        });
                    }
                    b += 1;
                }
            }
            a += 1;
        }

        // Load regions: aligned, inside RAM, apart.
        let loads = [
            ("kernel", self.kernel.range(), PAGE_2M),
            ("initrd", self.initrd.range(), PAGE_4K),
            ("dtb", self.dtb.range(), 8),
        ];
        let mut i = 0;
        while i < loads.len() {
            let (name, r, align) = loads[i];
            if r.size == 0 {
                return Err(PlatformError::Empty { region: name });
            }
            if r.base.0 % align != 0 {
                return Err(PlatformError::Misaligned {
                    region: name,
                    value: r.base.0,
                    align,
                });
            }
            if !self.ram.range.contains_range(r.base, r.size) {
                return Err(PlatformError::OutsideRam {
                    region: name,
                    range: r,
                    ram: self.ram.range,
                });
            }
            let mut j = i + 1;
            while j < loads.len() {
                let (other, o, _) = loads[j];
                if r.overlaps(&o) {
                    return Err(PlatformError::Overlap {
                        a: name,
                        a_range: r,
                        b: other,
                        b_range: o,
                    });
                }
                j += 1;
            }
            i += 1;
        }
        if self.dtb.max_size > DTB_MAX {
            return Err(PlatformError::TooLarge {
                region: "dtb",
                size: self.dtb.max_size,
                max: DTB_MAX,
            });
        }

        // Interrupts: in range and distinct.
        let m = self.irq_count();
        let mut a = 0;
        while a < m {
            if let Some((an, aspi)) = self.irq(a) {
                if aspi.0 > Spi::MAX {
                    return Err(PlatformError::SpiOutOfRange {
                        name: an,
                        spi: aspi,
                    });
                }
                let mut b = a + 1;
                while b < m {
                    if let Some((bn, bspi)) = self.irq(b)
                        && aspi.0 == bspi.0
                    {
                        return Err(PlatformError::DuplicateSpi {
                            a: an,
                            b: bn,
                            spi: aspi,
                        });
                    }
                    b += 1;
                }
            }
            a += 1;
        }
        Ok(())
    }

    /// The largest SPI the guest's GIC must implement.
    pub fn max_spi(&self) -> Spi {
        (0..self.irq_count())
            .filter_map(|i| self.irq(i))
            .map(|(_, s)| s)
            .max()
            .unwrap_or(Spi(0))
    }

    /// The guest address of the last byte of RAM plus one.
    pub const fn ram_end(&self) -> GuestPhysAddr {
        GuestPhysAddr(self.ram.range.end())
    }
}
