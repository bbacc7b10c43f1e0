//! The guest's side of the PCI host bridge and the virtio 1.2 PCI transport, as Linux's
//! `pci-host-generic`, PCI core and `virtio_pci_modern` drive them: every step one trapped
//! load or store through an [`MmioPort`] (a whole VM's exit path, or a bare MMIO bus).

use arm_fault::AccessSize;
use vmm_platform::PciLayout;

use crate::queue::GuestQueue;
pub use virtio_pci::status;

/// Loads and stores of the guest, wherever they land.
pub trait MmioPort {
    /// A load of `size` at `addr`.
    fn read(&mut self, addr: u64, size: AccessSize) -> u64;
    /// A store of `size` at `addr`.
    fn write(&mut self, addr: u64, size: AccessSize, value: u64);
}

/// Common configuration register offsets (§4.1.4.3).
pub mod common {
    /// device_feature_select
    pub const DFSELECT: u64 = 0x00;
    /// device_feature
    pub const DF: u64 = 0x04;
    /// driver_feature_select
    pub const GFSELECT: u64 = 0x08;
    /// driver_feature
    pub const GF: u64 = 0x0c;
    /// num_queues
    pub const NUM_QUEUES: u64 = 0x12;
    /// device_status
    pub const STATUS: u64 = 0x14;
    /// queue_select
    pub const Q_SELECT: u64 = 0x16;
    /// queue_size
    pub const Q_SIZE: u64 = 0x18;
    /// queue_enable
    pub const Q_ENABLE: u64 = 0x1c;
    /// queue_notify_off
    pub const Q_NOFF: u64 = 0x1e;
    /// queue_desc
    pub const Q_DESC: u64 = 0x20;
    /// queue_driver
    pub const Q_AVAIL: u64 = 0x28;
    /// queue_device
    pub const Q_USED: u64 = 0x30;
}

/// ISR offset in the BAR.
pub const ISR: u64 = 0x1000;
/// Device configuration offset in the BAR.
pub const DEVICE_CFG: u64 = 0x2000;
/// Notification offset in the BAR.
pub const NOTIFY: u64 = 0x3000;

/// ECAM address of `bus`/`slot`/`func`'s configuration register `reg`.
pub fn ecam(layout: &PciLayout, bus: u64, slot: u64, func: u64, reg: u64) -> u64 {
    layout.ecam.base.0 + (bus << 20 | slot << 15 | func << 12 | reg)
}

/// Where [`enumerate`] places `slot`'s BAR 0: the window's start, one BAR after the other.
pub fn bar(layout: &PciLayout, slot: u8) -> u64 {
    layout.mmio.base.0 + u64::from(slot) * virtio_pci::BAR_SIZE
}

/// Configuration read of bus 0, function 0.
pub fn cfg_read(
    port: &mut impl MmioPort,
    l: &PciLayout,
    slot: u8,
    reg: u64,
    size: AccessSize,
) -> u64 {
    port.read(ecam(l, 0, u64::from(slot), 0, reg), size)
}

/// Configuration write of bus 0, function 0.
pub fn cfg_write(
    port: &mut impl MmioPort,
    l: &PciLayout,
    slot: u8,
    reg: u64,
    size: AccessSize,
    v: u64,
) {
    port.write(ecam(l, 0, u64::from(slot), 0, reg), size, v);
}

/// What the PCI core does for slots `0..slots` of bus 0: reads the IDs (each must be a virtio
/// device) and header type, sizes the 64-bit BAR 0 and places it at [`bar`], reads the
/// interrupt pin, enables memory decoding and bus mastering. Returns each slot's driver.
pub fn enumerate(port: &mut impl MmioPort, l: &PciLayout, slots: u8) -> Vec<VirtioPci> {
    use AccessSize::{Half, Word};
    (0..slots)
        .map(|slot| {
            let id = cfg_read(port, l, slot, 0, Word);
            assert_eq!(id & 0xffff, 0x1af4, "slot {slot} is a virtio device");
            let _hdr = cfg_read(port, l, slot, 0xc, Word);
            cfg_write(port, l, slot, 0x10, Word, 0xffff_ffff);
            let lo = cfg_read(port, l, slot, 0x10, Word);
            cfg_write(port, l, slot, 0x14, Word, 0xffff_ffff);
            let _hi = cfg_read(port, l, slot, 0x14, Word);
            assert_eq!(
                u64::from(!(lo as u32 & !0xf)) + 1,
                virtio_pci::BAR_SIZE,
                "slot {slot}'s BAR size"
            );
            let at = bar(l, slot);
            cfg_write(port, l, slot, 0x10, Word, at & 0xffff_ffff);
            cfg_write(port, l, slot, 0x14, Word, at >> 32);
            let _pin = cfg_read(port, l, slot, 0x3c, Word);
            // Memory Space | Bus Master.
            cfg_write(port, l, slot, 0x4, Half, 0x6);
            VirtioPci { slot, bar: at }
        })
        .collect()
}

/// The queues Linux's driver of each kind sets up.
pub fn queues_of(kind: vmm_platform::VirtioKind) -> &'static [u16] {
    match kind {
        // receiveq, transmitq of port 0 (no MULTIPORT).
        vmm_platform::VirtioKind::Console => &[0, 1],
        vmm_platform::VirtioKind::Block => &[0],
        // receiveq1, transmitq1 (no control queue negotiated).
        vmm_platform::VirtioKind::Net => &[0, 1],
    }
}

/// One virtio-pci function, driven through its BAR 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioPci {
    /// PCI slot.
    pub slot: u8,
    /// BAR 0's address.
    pub bar: u64,
}

impl VirtioPci {
    /// The device status.
    pub fn status(&self, port: &mut impl MmioPort) -> u8 {
        port.read(self.bar + common::STATUS, AccessSize::Byte) as u8
    }

    /// Writes the device status.
    pub fn set_status(&self, port: &mut impl MmioPort, s: u8) {
        port.write(self.bar + common::STATUS, AccessSize::Byte, u64::from(s));
    }

    /// The device's offered features (both words).
    pub fn device_features(&self, port: &mut impl MmioPort) -> u64 {
        port.write(self.bar + common::DFSELECT, AccessSize::Word, 0);
        let lo = port.read(self.bar + common::DF, AccessSize::Word);
        port.write(self.bar + common::DFSELECT, AccessSize::Word, 1);
        let hi = port.read(self.bar + common::DF, AccessSize::Word);
        lo | hi << 32
    }

    /// Writes the driver's features (both words).
    pub fn write_features(&self, port: &mut impl MmioPort, f: u64) {
        port.write(self.bar + common::GFSELECT, AccessSize::Word, 0);
        port.write(self.bar + common::GF, AccessSize::Word, f & 0xffff_ffff);
        port.write(self.bar + common::GFSELECT, AccessSize::Word, 1);
        port.write(self.bar + common::GF, AccessSize::Word, f >> 32);
    }

    /// Reset, ACKNOWLEDGE, DRIVER, `features` (all offered ones when `None`, as Linux, which
    /// knows them all, accepts), FEATURES_OK; returns the status read back.
    pub fn negotiate(&self, port: &mut impl MmioPort, features: Option<u64>) -> u8 {
        self.set_status(port, 0);
        self.set_status(port, status::ACKNOWLEDGE);
        self.set_status(port, status::ACKNOWLEDGE | status::DRIVER);
        let f = match features {
            Some(f) => f,
            None => self.device_features(port),
        };
        self.write_features(port, f);
        self.set_status(
            port,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        self.status(port)
    }

    /// Selects queue `index`, programs rings of `size` entries (the device's maximum when
    /// `None`) that `alloc(len, align)` places in guest RAM; the queue is not enabled.
    pub fn queue_config(
        &self,
        port: &mut impl MmioPort,
        index: u16,
        size: Option<u16>,
        alloc: &mut dyn FnMut(u64, u64) -> u64,
    ) -> GuestQueue {
        use AccessSize::{Half, Word};
        port.write(self.bar + common::Q_SELECT, Half, u64::from(index));
        let size = match size {
            Some(s) => {
                port.write(self.bar + common::Q_SIZE, Half, u64::from(s));
                s
            }
            None => port.read(self.bar + common::Q_SIZE, Half) as u16,
        };
        let notify_off = port.read(self.bar + common::Q_NOFF, Half);
        let (d, a, u) = GuestQueue::ring_bytes(size);
        let desc = alloc(d, 4096);
        let avail = alloc(a, 2);
        let used = alloc(u, 4096);
        // vp_iowrite64_twopart: low word, then high word.
        for (off, a) in [
            (common::Q_DESC, desc),
            (common::Q_AVAIL, avail),
            (common::Q_USED, used),
        ] {
            port.write(self.bar + off, Word, a & 0xffff_ffff);
            port.write(self.bar + off + 4, Word, a >> 32);
        }
        GuestQueue {
            slot: self.slot,
            index,
            size,
            desc,
            avail,
            used,
            notify: self.bar + NOTIFY + 4 * notify_off,
            avail_idx: 0,
            last_used: 0,
        }
    }

    /// Enables queue `index`; returns `queue_enable` read back.
    pub fn enable(&self, port: &mut impl MmioPort, index: u16) -> u64 {
        port.write(
            self.bar + common::Q_SELECT,
            AccessSize::Half,
            u64::from(index),
        );
        port.write(self.bar + common::Q_ENABLE, AccessSize::Half, 1);
        port.read(self.bar + common::Q_ENABLE, AccessSize::Half)
    }

    /// Sets DRIVER_OK.
    pub fn driver_ok(&self, port: &mut impl MmioPort) {
        let s = self.status(port);
        self.set_status(port, s | status::DRIVER_OK);
    }

    /// The probe of a driver up to DRIVER_OK: `features` negotiated (all when `None`),
    /// `queues` (index, size or the device's maximum) configured and enabled.
    pub fn probe(
        &self,
        port: &mut impl MmioPort,
        features: Option<u64>,
        queues: &[(u16, Option<u16>)],
        alloc: &mut dyn FnMut(u64, u64) -> u64,
    ) -> Vec<GuestQueue> {
        let st = self.negotiate(port, features);
        assert_ne!(
            st & status::FEATURES_OK,
            0,
            "slot {}: FEATURES_OK accepted",
            self.slot
        );
        let qs = queues
            .iter()
            .map(|&(i, size)| {
                let q = self.queue_config(port, i, size, alloc);
                assert_eq!(
                    self.enable(port, i),
                    1,
                    "slot {} queue {i} enabled",
                    self.slot
                );
                q
            })
            .collect();
        self.driver_ok(port);
        qs
    }

    /// Notifies queue `index` (`iowrite16(index, notify)`), at the notify offset the
    /// transport gives every queue (4 bytes apart).
    pub fn notify(&self, port: &mut impl MmioPort, index: u16) {
        port.write(
            self.bar + NOTIFY + 4 * u64::from(index),
            AccessSize::Half,
            u64::from(index),
        );
    }

    /// Reads (and so clears) the ISR.
    pub fn isr(&self, port: &mut impl MmioPort) -> u8 {
        port.read(self.bar + ISR, AccessSize::Byte) as u8
    }
}
