//! The one way to build the machine a platform table describes, used by the seL4 root task,
//! the benchmarks and the fuzz targets alike (Firecracker's `builder.rs` is the model): the
//! emulated GICv3, the MMIO bus with the PL011 where the table has one, and the PCI host bridge
//! with the virtio devices in fixed slots ([`SLOT_CONSOLE`], [`SLOT_BLK`], [`SLOT_NET`]).
//!
//! What differs between its users is only what lies behind the devices: where console output
//! goes ([`Backends::sink`]), where console input comes from, the disk, the network.
#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use console::{ConsoleSink, LineWriter};
use guest_mem::GuestRange;
use mmio_bus::{BusError, MmioBus};
use pl011::{Pl011, SharedPl011};
use virtio_devices::InputQueue;
use virtio_devices::blk::VirtioBlk;
use virtio_devices::console::VirtioConsole;
use virtio_devices::net::{NetBackend, VirtioNet};
use virtio_pci::{PciBus, PciError, SharedPciBus};
use vmm_platform::Platform;

/// PCI slot of virtio-console (the guest's `hvc0`).
pub const SLOT_CONSOLE: u8 = 0;
/// PCI slot of virtio-blk.
pub const SLOT_BLK: u8 = 1;
/// PCI slot of virtio-net.
pub const SLOT_NET: u8 = 2;

/// What the devices are backed by.
pub struct Backends<S, N> {
    /// Where the guest's console lines go (each line prefixed `[guest ttyAMA0]` or
    /// `[guest hvc0]`).
    pub sink: S,
    /// Input for `hvc0` (a clone stays with the caller, who pushes bytes in).
    pub hvc_input: InputQueue,
    /// The disk behind virtio-blk.
    pub disk: Vec<u8>,
    /// virtio-blk's ID string.
    pub disk_id: &'static str,
    /// The guest's MAC address.
    pub mac: [u8; 6],
    /// The network behind virtio-net.
    pub net: N,
}

/// The built machine: what `vmm::Vm::new` takes (GIC, bus) and the handles its user keeps.
pub struct Machine<S> {
    /// The emulated GICv3.
    pub gic: vgic::Vgic,
    /// The MMIO bus with every device but the GIC on it.
    pub bus: MmioBus,
    /// The PCI host bridge (for polls, and for tests that drive it directly).
    pub pci: SharedPciBus,
    /// The PL011, where the platform has one (to flush partial lines at the end).
    pub uart: Option<SharedPl011<LineWriter<S>>>,
}

/// Why the machine could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// A device's window was refused by the bus (overlap, empty).
    Bus(BusError),
    /// The PCI bus refused a device.
    Pci(PciError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Bus(e) => write!(f, "MMIO bus: {e:?}"),
            BuildError::Pci(e) => write!(f, "PCI bus: {e:?}"),
        }
    }
}

/// Builds the machine of `p` over `b`.
pub fn build<S, N>(p: &Platform, b: Backends<S, N>) -> Result<Machine<S>, BuildError>
where
    S: ConsoleSink + Clone + 'static,
    N: NetBackend + 'static,
{
    let gic = vgic::Vgic::new(p);
    let mut bus = MmioBus::new();
    let mut uart = None;
    if let Some(u) = p.uart {
        let dev = SharedPl011::new(Pl011::new(
            u.spi.intid(),
            LineWriter::guest("ttyAMA0", b.sink.clone()),
        ));
        bus.add(
            "pl011",
            GuestRange::new(u.base.0, pl011::REGION_SIZE),
            dev.device(),
        )
        .map_err(BuildError::Bus)?;
        uart = Some(dev);
    }
    let pci = SharedPciBus::new(PciBus::new(p.pci, p.ram.range));
    // Slot order is the order of these adds (SLOT_CONSOLE, SLOT_BLK, SLOT_NET).
    pci.add(Box::new(VirtioConsole::new(
        LineWriter::guest("hvc0", b.sink),
        b.hvc_input,
    )))
    .map_err(BuildError::Pci)?;
    pci.add(Box::new(VirtioBlk::new(b.disk, b.disk_id)))
        .map_err(BuildError::Pci)?;
    pci.add(Box::new(VirtioNet::new(b.mac, b.net)))
        .map_err(BuildError::Pci)?;
    bus.add("pci-ecam", p.pci.ecam, pci.ecam_device())
        .map_err(BuildError::Bus)?;
    bus.add("pci-mmio", p.pci.mmio, pci.mmio_device())
        .map_err(BuildError::Bus)?;
    Ok(Machine {
        gic,
        bus,
        pci,
        uart,
    })
}
