//! The one way to build the machine a platform table describes, used by the seL4 root task,
//! the benchmarks, the fuzz targets and the tests alike (Firecracker's `builder.rs` is the
//! model): the emulated GICv3, then every device of the table's [`Platform::devices`] list in
//! its order (the PL011; the PCI host bridge with its virtio functions in slot order), on one
//! MMIO bus, into a [`vmm::Vm`] over the back-end and guest RAM the caller gives.
//!
//! What differs between its users is only what lies behind the devices ([`Backends`]): where
//! console output goes, where console input comes from, the disk, the network; and the
//! hypervisor back-end (seL4 capabilities, or a test double).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use console::{ConsoleSink, LineWriter};
use guest_mem::{GuestMemory, GuestRange};
use hypervisor::Hypervisor;
use mmio_bus::{BusError, DevicePoll, MmioBus};
use pl011::{Pl011, SharedPl011};
use virtio_devices::InputQueue;
use virtio_devices::VirtioDevice;
use virtio_devices::blk::VirtioBlk;
use virtio_devices::console::VirtioConsole;
use virtio_devices::net::{NetBackend, VirtioNet};
use virtio_pci::{PciBus, PciError, SharedPciBus};
use vmm_platform::{Device, PciHost, Platform, VirtioKind};

pub use vgic::Vgic;

/// The VM every user of the builder runs: the emulated GICv3 as interrupt controller.
pub type Vm<'m, H> = vmm::Vm<'m, H, Vgic>;

/// What the devices are backed by. Each backend serves one device: a table listing a kind of
/// virtio device twice is refused ([`BuildError::BackendUsed`]).
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

/// The built machine: the VM and the handles its user keeps.
pub struct Machine<'m, H, S> {
    /// The VM.
    pub vm: Vm<'m, H>,
    /// The PCI host bridge, where the table has one (tests inspect device state through it;
    /// the VM polls it).
    pub pci: Option<SharedPciBus>,
    /// The PL011, where the table has one (to flush partial lines at the end).
    pub uart: Option<SharedPl011<LineWriter<S>>>,
    /// The virtio devices in slot order, as the table lists them.
    pub functions: &'static [VirtioKind],
}

/// Why the machine could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// A device's window was refused by the bus (overlap, empty).
    Bus(BusError),
    /// The PCI bus refused a device.
    Pci {
        /// The device.
        kind: VirtioKind,
        /// Why.
        cause: PciError,
    },
    /// The table lists a kind of virtio device more often than there are backends for it.
    BackendUsed {
        /// The device.
        kind: VirtioKind,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Bus(e) => write!(f, "MMIO bus: {e}"),
            BuildError::Pci { kind, cause } => {
                write!(f, "PCI bus refused {}: {cause:?}", kind.name())
            }
            BuildError::BackendUsed { kind } => write!(
                f,
                "{} is listed twice, and its backend serves one device",
                kind.name()
            ),
        }
    }
}

/// The backends not yet given to a device.
struct Unused<S, N> {
    sink: S,
    hvc_input: Option<InputQueue>,
    disk: Option<(Vec<u8>, &'static str)>,
    net: Option<([u8; 6], N)>,
}

impl<S: ConsoleSink + Clone + 'static, N: NetBackend + 'static> Unused<S, N> {
    fn device(&mut self, kind: VirtioKind) -> Result<Box<dyn VirtioDevice>, BuildError> {
        let used = BuildError::BackendUsed { kind };
        Ok(match kind {
            VirtioKind::Console => {
                let input = self.hvc_input.take().ok_or(used)?;
                Box::new(VirtioConsole::new(
                    LineWriter::guest("hvc0", self.sink.clone()),
                    input,
                ))
            }
            VirtioKind::Block => {
                let (disk, id) = self.disk.take().ok_or(used)?;
                Box::new(VirtioBlk::new(disk, id))
            }
            VirtioKind::Net => {
                let (mac, net) = self.net.take().ok_or(used)?;
                Box::new(VirtioNet::new(mac, net))
            }
        })
    }
}

/// Builds the machine of `p` over `backends`, with `hyp` as back-end and `mem` as guest RAM.
/// Pass-through interrupts are named in the VM's exit counts.
pub fn build<'m, H, S, N>(
    p: &Platform,
    backends: Backends<S, N>,
    hyp: H,
    mem: GuestMemory<'m>,
) -> Result<Machine<'m, H, S>, BuildError>
where
    H: Hypervisor,
    S: ConsoleSink + Clone + 'static,
    N: NetBackend + 'static,
{
    let gic = Vgic::new(p);
    let mut bus = MmioBus::new();
    let mut pollers: Vec<Box<dyn DevicePoll>> = Vec::new();
    let mut uart = None;
    let mut pci = None;
    let mut functions: &'static [VirtioKind] = &[];
    let mut unused = Unused {
        sink: backends.sink,
        hvc_input: Some(backends.hvc_input),
        disk: Some((backends.disk, backends.disk_id)),
        net: Some((backends.mac, backends.net)),
    };
    for device in p.devices {
        match device {
            Device::Pl011(u) => {
                let dev = SharedPl011::new(Pl011::new(
                    u.spi.intid(),
                    LineWriter::guest("ttyAMA0", unused.sink.clone()),
                ));
                let range = GuestRange::new(u.base.0, pl011::REGION_SIZE);
                bus.add("pl011", range, dev.device())
                    .map_err(BuildError::Bus)?;
                uart = Some(dev);
            }
            Device::Pci(host) => {
                let bridge = pci_bridge(host, p.ram.range, &mut unused)?;
                attach_pci(&mut bus, host, &bridge).map_err(BuildError::Bus)?;
                pollers.push(Box::new(bridge.clone()));
                pci = Some(bridge);
                functions = host.functions;
            }
        }
    }
    let mut vm = vmm::Vm::new(hyp, gic, bus, pollers, mem, p.vcpus);
    vm.name_irqs(p.passthrough_irqs.iter().map(|i| (i.spi.intid(), i.name)));
    Ok(Machine {
        vm,
        pci,
        uart,
        functions,
    })
}

/// The bridge of `host` with its functions in slot order.
fn pci_bridge<S, N>(
    host: &PciHost,
    ram: GuestRange,
    unused: &mut Unused<S, N>,
) -> Result<SharedPciBus, BuildError>
where
    S: ConsoleSink + Clone + 'static,
    N: NetBackend + 'static,
{
    let bridge = SharedPciBus::new(PciBus::new(host.layout, ram));
    for &kind in host.functions {
        let dev = unused.device(kind)?;
        bridge
            .add(dev)
            .map_err(|cause| BuildError::Pci { kind, cause })?;
    }
    Ok(bridge)
}

/// Puts the bridge's two windows (ECAM, BARs) on `bus` where `host` says. Rigs that drive a
/// bridge without a whole VM (the virtio-pci tests) wire it with this too.
pub fn attach_pci(
    bus: &mut MmioBus,
    host: &PciHost,
    bridge: &SharedPciBus,
) -> Result<(), BusError> {
    bus.add("pci-ecam", host.layout.ecam, bridge.ecam_device())?;
    bus.add("pci-mmio", host.layout.mmio, bridge.mmio_device())?;
    Ok(())
}

/// The PCI slot of the first `kind` device in `functions` (the table's order).
pub fn slot_of(functions: &[VirtioKind], kind: VirtioKind) -> Option<u8> {
    functions
        .iter()
        .position(|&k| k == kind)
        .and_then(|i| u8::try_from(i).ok())
}
