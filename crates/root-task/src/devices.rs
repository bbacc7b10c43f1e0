//! The guest's emulated devices for this platform: the vGIC, the PL011 (where the platform
//! has one) and the virtio-pci bus with its console, block and net devices.

use alloc::boxed::Box;
use alloc::vec::Vec;

use console::{ConsoleSink, LineWriter};
use guest_mem::GuestRange;
use mmio_bus::MmioBus;
use pl011::{Pl011, SharedPl011};
use virtio_devices::InputQueue;
use virtio_devices::blk::VirtioBlk;
use virtio_devices::console::VirtioConsole;
use virtio_devices::net::{ArpIcmpResponder, VirtioNet};
use virtio_pci::{PciBus, SharedPciBus};
use vmm_platform::Platform;

/// The interrupt controller type the VM runs with.
pub type Gic = vgic::Vgic;

/// The guest's virtio-net MAC (QEMU's default, so guest images behave the same bare).
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The VMM's own address on the guest's network: it answers ARP and ICMP echo there.
const VMM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
const VMM_IP: [u8; 4] = [10, 0, 2, 2];

/// Guest console output on the VMM's UART.
pub struct DebugOut;

impl ConsoleSink for DebugOut {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            crate::uart::putc(b);
        }
    }

    fn flush(&mut self) {}
}

/// Everything the event loop needs besides the VM itself.
pub struct Devices {
    uart: Option<SharedPl011<LineWriter<DebugOut>>>,
    pci: SharedPciBus,
}

/// Why the devices could not be set up (printed with `Debug` in the setup error).
#[derive(Debug)]
#[allow(dead_code)]
pub enum DeviceError {
    /// Two devices' windows overlap.
    Bus(mmio_bus::BusError),
    /// The PCI bus refused a device.
    Pci(virtio_pci::PciError),
}

impl Devices {
    /// The devices of platform `p`, with `disk` behind virtio-blk: the interrupt controller,
    /// the bus with every other device on it, and the handles the event loop keeps.
    pub fn build(p: &Platform, disk: &[u8]) -> Result<(Gic, MmioBus, Self), DeviceError> {
        let gic = Gic::new(p);
        let mut bus = MmioBus::new();
        let mut uart = None;
        if let Some(u) = p.uart {
            let dev = SharedPl011::new(Pl011::new(
                u.spi.intid(),
                LineWriter::guest("ttyAMA0", DebugOut),
            ));
            bus.add(
                "pl011",
                GuestRange::new(u.base.0, pl011::REGION_SIZE),
                dev.device(),
            )
            .map_err(DeviceError::Bus)?;
            uart = Some(dev);
        }

        let pci = SharedPciBus::new(PciBus::new(p.pci, p.ram.range));
        // Console input for hvc0: seL4 has no debug input, so on QEMU nothing feeds it yet.
        let hvc_input = InputQueue::new(4096);
        pci.add(Box::new(VirtioConsole::new(
            LineWriter::guest("hvc0", DebugOut),
            hvc_input.clone(),
        )))
        .map_err(DeviceError::Pci)?;
        pci.add(Box::new(VirtioBlk::new(Vec::from(disk), "vmm-disk0")))
            .map_err(DeviceError::Pci)?;
        pci.add(Box::new(VirtioNet::new(
            GUEST_MAC,
            ArpIcmpResponder::new(VMM_MAC, VMM_IP),
        )))
        .map_err(DeviceError::Pci)?;
        bus.add("pci-ecam", p.pci.ecam, pci.ecam_device())
            .map_err(DeviceError::Bus)?;
        bus.add("pci-mmio", p.pci.mmio, pci.mmio_device())
            .map_err(DeviceError::Bus)?;
        Ok((gic, bus, Devices { uart, pci }))
    }

    /// Emits partial console lines (before the VM's exit report).
    pub fn flush_console(&mut self) {
        if let Some(u) = &self.uart {
            u.flush();
        }
    }

    /// Gives devices a chance to do work no guest access triggered (queued chains past a
    /// notify's budget, frames the network backend has for the guest, console input).
    pub fn poll<H: hypervisor::Hypervisor>(&mut self, vm: &mut vmm::Vm<'_, H, Gic>) {
        let pci = &self.pci;
        vm.with_device_ctx(|ctx| pci.poll(ctx));
    }
}
