//! Platform tables.
//!
//! A [`Platform`] says everything the VMM needs to build one board's guest: its RAM, where the
//! kernel, initrd and device tree go, how many vCPUs it has, which devices of the board it gets
//! direct access to (with their interrupts), and where the emulated devices sit.
//!
//! Tables are `const` data checked at compile time: each table module ends with
//! `const _: () = assert_valid(&TABLE);`, so a table with an overlap, a misaligned region or a
//! load region outside RAM does not build. [`Platform::validate`] runs the same checks at run
//! time and returns a [`PlatformError`] that names the regions and addresses at fault.
#![no_std]
#![forbid(unsafe_code)]

mod host;
mod orin_agx;
mod qemu_virt;
mod qemu_virt_pt;
mod validate;

pub use guest_mem::{GuestPhysAddr, GuestRange};
pub use host::{Host, HostReserved, HostUart};
pub use orin_agx::ORIN_AGX;
pub use qemu_virt::QEMU_VIRT;
pub use qemu_virt_pt::QEMU_VIRT_PT;
pub use validate::{PlatformError, assert_valid};

/// Every platform this build knows, by name. The fuzz targets pick one by index (their first
/// input byte): new tables go at the end, so that the corpus keeps its meaning.
pub const PLATFORMS: &[&Platform] = &[&QEMU_VIRT, &ORIN_AGX, &QEMU_VIRT_PT];

/// The platform called `name`, if there is one.
pub fn by_name(name: &str) -> Option<&'static Platform> {
    PLATFORMS.iter().copied().find(|p| p.name == name)
}

/// 4 KiB, the smallest stage-2 page.
pub const PAGE_4K: u64 = 0x1000;
/// 2 MiB, the stage-2 block size the VMM prefers for RAM.
pub const PAGE_2M: u64 = 0x20_0000;
/// Size of one GICv3 redistributor (RD_base + SGI_base frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// Size of the GICv3 distributor frame.
pub const GICD_SIZE: u64 = 0x1_0000;
/// The arm64 boot protocol's limit on the device tree blob.
pub const DTB_MAX: u64 = 0x20_0000;
/// vCPUs a platform may have: each needs an Aff0 below 16 to be named in an SGI target list.
pub const MAX_VCPUS: u8 = 16;

/// A shared peripheral interrupt by its SPI number (the number a device tree's GIC_SPI cell
/// holds), not by INTID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct Spi(pub u32);

impl Spi {
    /// The largest SPI number GICv3 allows (INTID 1019).
    pub const MAX: u32 = 987;

    /// The interrupt ID the GIC uses: SPI number + 32.
    pub const fn intid(self) -> u32 {
        self.0 + 32
    }

    /// The SPI with interrupt ID `intid`, if it is one.
    pub const fn from_intid(intid: u32) -> Option<Spi> {
        if intid >= 32 && intid <= Spi::MAX + 32 {
            Some(Spi(intid - 32))
        } else {
            None
        }
    }
}

/// How an interrupt line signals (device-tree trigger flags 1 and 4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Trigger {
    /// Edge, rising (IRQ_TYPE_EDGE_RISING = 1).
    Edge,
    /// Level, active high (IRQ_TYPE_LEVEL_HIGH = 4).
    Level,
}

impl Trigger {
    /// The flags cell a device tree uses for it.
    pub const fn dt_flags(self) -> u32 {
        match self {
            Trigger::Edge => 1,
            Trigger::Level => 4,
        }
    }
}

/// Stage-2 memory attributes of a mapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemAttrs {
    /// Device-nGnRE: registers of a peripheral (HSP mailboxes, UARTs).
    DeviceNGnRE,
    /// Normal, non-cacheable: memory shared with a non-coherent agent (the BPMP's SRAM
    /// buffers; mapped cacheable, the CPU never sees the BPMP's replies).
    NormalNonCacheable,
    /// Normal, write-back cacheable: guest RAM.
    NormalCacheable,
}

impl MemAttrs {
    /// The name `vmmctl` and the docs use.
    pub const fn name(self) -> &'static str {
        match self {
            MemAttrs::DeviceNGnRE => "device-nGnRE",
            MemAttrs::NormalNonCacheable => "normal-nc",
            MemAttrs::NormalCacheable => "normal-wb",
        }
    }
}

/// What the guest may do to a pass-through region.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// Loads and stores.
    ReadWrite,
    /// Loads only: mapped without write permission in stage 2 (the root task maps the frames
    /// with read-only rights), so a guest store there is a stage-2 permission fault that
    /// reaches the VMM, which ignores it as it ignores any store no device emulates (logged
    /// once per address). For registers the guest must see but has no business changing.
    ReadOnly,
}

impl Access {
    /// The name `vmmctl` and the docs use.
    pub const fn name(self) -> &'static str {
        match self {
            Access::ReadWrite => "read-write",
            Access::ReadOnly => "read-only",
        }
    }

    /// Whether the guest may store to the region.
    pub const fn writable(self) -> bool {
        matches!(self, Access::ReadWrite)
    }
}

/// Guest RAM.
#[derive(Clone, Copy, Debug)]
pub struct Ram {
    /// Guest-physical range.
    pub range: GuestRange,
    /// Backed by the host RAM at the same physical address (needed when the guest programs a
    /// DMA master that bypasses stage 2, as on Orin); otherwise backed by any free RAM.
    pub identity: bool,
}

/// Where one boot image goes in guest RAM, and how large it may be.
#[derive(Clone, Copy, Debug)]
pub struct LoadRegion {
    /// Load address.
    pub addr: GuestPhysAddr,
    /// The largest image that fits; the loader refuses larger ones.
    pub max_size: u64,
}

impl LoadRegion {
    /// The range the region reserves.
    pub const fn range(&self) -> GuestRange {
        GuestRange {
            base: self.addr,
            size: self.max_size,
        }
    }
}

/// A region of the board the guest accesses directly, mapped identity (guest address =
/// physical address) so the board's device-tree node can be passed on unchanged.
#[derive(Clone, Copy, Debug)]
pub struct Passthrough {
    /// Short name, used in logs and errors.
    pub name: &'static str,
    /// The node of the board's device tree that describes it; the guest DTB copies it.
    pub dt_path: &'static str,
    /// Physical (and guest-physical) range.
    pub range: GuestRange,
    /// Stage-2 attributes.
    pub attrs: MemAttrs,
    /// Stage-2 permissions.
    pub access: Access,
}

/// A node of the board's device tree the guest gets that has no registers, so no
/// [`Passthrough`] range can name it (a firmware interface such as the Orin's `/bpmp`, a
/// console reached through mailboxes such as its `/serial`). The guest device tree copies it
/// with its subtree; a board tree without it is an error, not a silent omission.
#[derive(Clone, Copy, Debug)]
pub struct BoardNode {
    /// Short name, used in logs and errors.
    pub name: &'static str,
    /// Its path in the board's device tree.
    pub dt_path: &'static str,
}

/// A physical interrupt delivered to the guest.
#[derive(Clone, Copy, Debug)]
pub struct PassthroughIrq {
    /// Which device it belongs to, for logs.
    pub name: &'static str,
    /// The SPI (same number for the guest).
    pub spi: Spi,
    /// How it signals.
    pub trigger: Trigger,
}

/// The emulated GICv3.
#[derive(Clone, Copy, Debug)]
pub struct GicLayout {
    /// Distributor base (64 KiB frame).
    pub dist: GuestPhysAddr,
    /// Base of the redistributor region: one 128 KiB redistributor per vCPU.
    pub redist: GuestPhysAddr,
}

/// The emulated PCI host bridge of the virtio devices.
#[derive(Clone, Copy, Debug)]
pub struct PciLayout {
    /// ECAM configuration space (bus 0 only: 1 MiB).
    pub ecam: GuestRange,
    /// 32-bit memory window the BARs are placed in.
    pub mmio: GuestRange,
    /// SPIs of INTA..INTD, routed by the device tree's interrupt-map.
    pub intx: [Spi; 4],
}

/// An emulated PL011 UART.
#[derive(Clone, Copy, Debug)]
pub struct UartLayout {
    /// 4 KiB register frame.
    pub base: GuestPhysAddr,
    /// Its interrupt.
    pub spi: Spi,
}

/// A virtio device behind the emulated PCI host bridge, by what it does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VirtioKind {
    /// virtio-console: the guest's `hvc0`.
    Console,
    /// virtio-blk: a disk.
    Block,
    /// virtio-net: a network interface.
    Net,
}

impl VirtioKind {
    /// The name logs and the docs use.
    pub const fn name(self) -> &'static str {
        match self {
            VirtioKind::Console => "virtio-console",
            VirtioKind::Block => "virtio-blk",
            VirtioKind::Net => "virtio-net",
        }
    }
}

/// The emulated PCI host bridge and the virtio functions on it.
#[derive(Clone, Copy, Debug)]
pub struct PciHost {
    /// Where its windows and interrupts are.
    pub layout: PciLayout,
    /// The virtio devices on bus 0, in slot order: `functions[n]` is in slot n.
    pub functions: &'static [VirtioKind],
}

/// An emulated device: the list [`Platform::devices`] holds, which the validation, the
/// stage-2 plan, the guest device tree and the VM builder all iterate. (The interrupt
/// controller is not in it: every machine has exactly one, [`Platform::gic`].)
#[derive(Clone, Copy, Debug)]
pub enum Device {
    /// A PL011 UART, the guest's `ttyAMA0` (and `serial0`).
    Pl011(UartLayout),
    /// The PCI host bridge with virtio devices.
    Pci(PciHost),
}

/// An address window of an emulated device: the guest's accesses there trap to the VMM.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Its name in logs, errors and the VMM's bus (`pl011`, `pci-ecam`, `pci-mmio`).
    pub name: &'static str,
    /// Guest-physical range.
    pub range: GuestRange,
    /// The alignment its base and size need.
    pub align: u64,
}

impl Device {
    /// The most windows a device has.
    pub const MAX_WINDOWS: usize = 2;
    /// The most SPIs a device uses.
    pub const MAX_SPIS: usize = 4;

    /// The device's kind, as logs and errors name it.
    pub const fn kind(&self) -> &'static str {
        match self {
            Device::Pl011(_) => "pl011",
            Device::Pci(_) => "pci",
        }
    }

    /// Window `i` of the device (`None` past its last).
    pub const fn window(&self, i: usize) -> Option<Window> {
        match (self, i) {
            (Device::Pl011(u), 0) => Some(Window {
                name: "pl011",
                range: GuestRange {
                    base: u.base,
                    size: PAGE_4K,
                },
                align: PAGE_4K,
            }),
            // ECAM: 4 KiB per function, 32 devices x 8 functions a bus, whole buses.
            (Device::Pci(h), 0) => Some(Window {
                name: "pci-ecam",
                range: h.layout.ecam,
                align: 0x10_0000,
            }),
            (Device::Pci(h), 1) => Some(Window {
                name: "pci-mmio",
                range: h.layout.mmio,
                align: PAGE_4K,
            }),
            _ => None,
        }
    }

    /// Interrupt `i` of the device, with the name of its user (`None` past its last).
    pub const fn spi(&self, i: usize) -> Option<(&'static str, Spi)> {
        const INTX: [&str; 4] = ["pci-inta", "pci-intb", "pci-intc", "pci-intd"];
        match self {
            Device::Pl011(u) if i == 0 => Some(("pl011", u.spi)),
            Device::Pci(h) if i < 4 => Some((INTX[i], h.layout.intx[i])),
            _ => None,
        }
    }

    /// Its windows.
    pub fn windows(&self) -> impl Iterator<Item = Window> + '_ {
        (0..Device::MAX_WINDOWS).map_while(|i| self.window(i))
    }

    /// Its interrupts, with their users' names.
    pub fn spis(&self) -> impl Iterator<Item = (&'static str, Spi)> + '_ {
        (0..Device::MAX_SPIS).map_while(|i| self.spi(i))
    }
}

/// One board's guest.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    /// Name used on the command line (`vmmctl plan <name>`).
    pub name: &'static str,
    /// Guest RAM.
    pub ram: Ram,
    /// Kernel Image: the address must be 2 MiB aligned (the Image's text_offset is added).
    pub kernel: LoadRegion,
    /// Initial ramdisk.
    pub initrd: LoadRegion,
    /// Device tree blob.
    pub dtb: LoadRegion,
    /// Number of vCPUs; vCPU n has MPIDR Aff0 = n.
    pub vcpus: u8,
    /// Kernel command line.
    pub bootargs: &'static str,
    /// `/chosen/stdout-path`.
    pub stdout_path: &'static str,
    /// Board regions the guest accesses directly.
    pub passthrough: &'static [Passthrough],
    /// Board device-tree nodes without registers the guest gets.
    pub board_nodes: &'static [BoardNode],
    /// Board interrupts delivered to the guest.
    pub passthrough_irqs: &'static [PassthroughIrq],
    /// The emulated GIC.
    pub gic: GicLayout,
    /// The emulated devices (at most one of each kind).
    pub devices: &'static [Device],
    /// The host side: the boot loader's UART and the memory it must keep clear of.
    pub host: Host,
}

impl Platform {
    /// The distributor's range.
    pub const fn gicd_range(&self) -> GuestRange {
        GuestRange {
            base: self.gic.dist,
            size: GICD_SIZE,
        }
    }

    /// The redistributor region: one frame pair per vCPU.
    pub const fn gicr_range(&self) -> GuestRange {
        GuestRange {
            base: self.gic.redist,
            size: GICR_STRIDE * self.vcpus as u64,
        }
    }

    /// The emulated PL011, if the table lists one.
    pub const fn pl011(&self) -> Option<UartLayout> {
        let mut i = 0;
        while i < self.devices.len() {
            if let Device::Pl011(u) = self.devices[i] {
                return Some(u);
            }
            i += 1;
        }
        None
    }

    /// The emulated PCI host bridge, if the table lists one.
    pub const fn pci(&self) -> Option<PciHost> {
        let mut i = 0;
        while i < self.devices.len() {
            if let Device::Pci(h) = self.devices[i] {
                return Some(h);
            }
            i += 1;
        }
        None
    }

    /// MPIDR (affinity fields) of vCPU `n`.
    pub const fn mpidr(n: u8) -> u64 {
        n as u64
    }

    /// Every emulated window with its name, the interrupt controller's first: the guest's
    /// accesses there trap to the VMM.
    pub fn emulated_windows(&self) -> impl Iterator<Item = (&'static str, GuestRange)> + '_ {
        [("gicd", self.gicd_range()), ("gicr", self.gicr_range())]
            .into_iter()
            .chain(
                self.devices
                    .iter()
                    .flat_map(|d| d.windows().map(|w| (w.name, w.range))),
            )
    }
}
