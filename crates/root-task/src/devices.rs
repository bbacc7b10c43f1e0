//! The guest's emulated devices for this platform, built by vm-builder (the same machine the
//! benchmarks and fuzzers run): the vGIC, the PL011 (where the platform has one) and the
//! virtio-pci bus with its console, block and net devices.

use alloc::vec::Vec;

use console::{ConsoleSink, LineWriter};
use mmio_bus::MmioBus;
use pl011::SharedPl011;
use virtio_devices::InputQueue;
use virtio_devices::net::ArpIcmpResponder;
use virtio_pci::SharedPciBus;
use vmm_platform::Platform;

/// The interrupt controller type the VM runs with.
pub type Gic = vgic::Vgic;

/// The guest's virtio-net MAC (QEMU's default, so guest images behave the same bare).
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The VMM's own address on the guest's network: it answers ARP and ICMP echo there.
const VMM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
const VMM_IP: [u8; 4] = [10, 0, 2, 2];

/// Guest console output on the VMM's UART.
#[derive(Clone, Copy)]
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

impl Devices {
    /// The machine of platform `p` (vm-builder, as the benchmarks and fuzzers build it), with
    /// `disk` behind virtio-blk: the interrupt controller, the bus with every other device
    /// on it, and the handles the event loop keeps.
    pub fn build(
        p: &Platform,
        disk: &[u8],
    ) -> Result<(Gic, MmioBus, Self), vm_builder::BuildError> {
        let m = vm_builder::build(
            p,
            vm_builder::Backends {
                sink: DebugOut,
                // Console input for hvc0: nothing feeds it yet.
                hvc_input: InputQueue::new(4096),
                disk: Vec::from(disk),
                disk_id: "vmm-disk0",
                mac: GUEST_MAC,
                net: ArpIcmpResponder::new(VMM_MAC, VMM_IP),
            },
        )?;
        let devices = Devices {
            uart: m.uart,
            pci: m.pci,
        };
        Ok((m.gic, m.bus, devices))
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
