//! A hand-rolled guest driver: every register access and ring byte is the test's, so a test
//! can be the hostile guest the device models must survive.

use crate::Irqs;
use guest_mem::{AccessObserver, GuestMemory, GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;
use mmio_bus::{AccessSize, DeviceCtx, MmioBus};
use std::cell::Cell;
use std::sync::MutexGuard;
use virtio_devices::VirtioDevice;
use virtio_pci::{FunctionOptions, PciBus, PciLayout, SharedPciBus, status};

/// Guest RAM base.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM size of a rig.
pub const RAM_SIZE: u64 = 1 << 20;

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

/// Counts guest-memory accesses (the work a request costs).
#[derive(Default)]
pub struct Counter {
    /// Accesses.
    pub accesses: Cell<u64>,
    /// Largest address + length touched.
    pub highest: Cell<u64>,
    /// Lowest address touched.
    pub lowest: Cell<u64>,
}

impl AccessObserver for Counter {
    fn observe(&self, addr: GuestPhysAddr, len: u64, _write: bool) {
        self.accesses.set(self.accesses.get() + 1);
        self.highest.set(self.highest.get().max(addr.0 + len));
        let low = self.lowest.get();
        self.lowest
            .set(if low == 0 { addr.0 } else { low.min(addr.0) });
    }
}

/// A split queue the test owns.
#[derive(Clone, Copy, Debug)]
pub struct RawQueue {
    /// Queue index.
    pub index: u16,
    /// Size.
    pub size: u16,
    /// Descriptor table.
    pub desc: u64,
    /// Available ring.
    pub avail: u64,
    /// Used ring.
    pub used: u64,
    /// The driver's next available index.
    pub avail_idx: u16,
}

/// The rig: the MMIO bus with the bridge, guest RAM with an access counter, interrupt lines.
pub struct Rig {
    /// The VMM's MMIO bus.
    pub bus: MmioBus,
    /// The bridge.
    pub pci: SharedPciBus,
    /// Guest RAM.
    pub mem: GuestMemory<'static>,
    /// Interrupt lines.
    pub irq: Irqs,
    /// Guest-memory access counter.
    pub counter: &'static Counter,
    next_free: u64,
    _serial: MutexGuard<'static, ()>,
}

/// QEMU virt's PCI layout.
pub fn layout() -> PciLayout {
    vmm_platform::QEMU_VIRT.pci
}

impl Rig {
    /// A rig with `devices` (default options) in slot order.
    pub fn new(devices: Vec<Box<dyn VirtioDevice>>) -> Rig {
        Rig::with_options(
            devices
                .into_iter()
                .map(|d| (d, FunctionOptions::default()))
                .collect(),
        )
    }

    /// A rig with `devices` and their options.
    pub fn with_options(devices: Vec<(Box<dyn VirtioDevice>, FunctionOptions)>) -> Rig {
        let serial = crate::serial();
        crate::logs::take();
        let ram: &'static mut [u8] = Box::leak(vec![0u8; RAM_SIZE as usize].into_boxed_slice());
        let counter: &'static Counter = Box::leak(Box::default());
        let mem = GuestMemory::new(GuestPhysAddr(RAM_BASE), ram).with_observer(counter);
        let l = layout();
        let mut pci = PciBus::new(l, GuestRange::new(RAM_BASE, RAM_SIZE));
        for (d, o) in devices {
            pci.add_with(d, o).expect("add");
        }
        let pci = SharedPciBus::new(pci);
        let mut bus = MmioBus::new();
        bus.add("pci-ecam", l.ecam, pci.ecam_device())
            .expect("ecam");
        bus.add("pci-mmio", l.mmio, pci.mmio_device())
            .expect("mmio");
        Rig {
            bus,
            pci,
            mem,
            irq: Irqs::default(),
            counter,
            next_free: RAM_BASE,
            _serial: serial,
        }
    }

    /// Allocates `len` bytes of guest RAM aligned to `align` (zeroed).
    pub fn alloc(&mut self, len: u64, align: u64) -> u64 {
        let a = self.next_free.div_ceil(align) * align;
        self.next_free = a + len;
        assert!(self.next_free <= RAM_BASE + RAM_SIZE, "rig RAM exhausted");
        a
    }

    /// A load by the guest.
    pub fn read(&mut self, gpa: u64, size: AccessSize) -> u64 {
        let mut ctx = DeviceCtx {
            vcpu: VcpuId(0),
            mem: &self.mem,
            irq: &mut self.irq,
        };
        self.bus.read(&mut ctx, GuestPhysAddr(gpa), size).0
    }

    /// A store by the guest.
    pub fn write(&mut self, gpa: u64, size: AccessSize, value: u64) {
        let mut ctx = DeviceCtx {
            vcpu: VcpuId(0),
            mem: &self.mem,
            irq: &mut self.irq,
        };
        self.bus.write(&mut ctx, GuestPhysAddr(gpa), size, value);
    }

    /// The VMM's poll.
    pub fn poll(&mut self) {
        let mut ctx = DeviceCtx {
            vcpu: VcpuId(0),
            mem: &self.mem,
            irq: &mut self.irq,
        };
        self.pci.poll(&mut ctx);
    }

    /// ECAM address of `slot`'s register `reg` on bus `bus`.
    pub fn ecam(bus: u64, slot: u64, func: u64, reg: u64) -> u64 {
        layout().ecam.base.0 + (bus << 20 | slot << 15 | func << 12 | reg)
    }

    /// Configuration read of bus 0, function 0.
    pub fn cfg_read(&mut self, slot: u8, reg: u64, size: AccessSize) -> u64 {
        self.read(Rig::ecam(0, u64::from(slot), 0, reg), size)
    }

    /// Configuration write of bus 0, function 0.
    pub fn cfg_write(&mut self, slot: u8, reg: u64, size: AccessSize, v: u64) {
        self.write(Rig::ecam(0, u64::from(slot), 0, reg), size, v);
    }

    /// Where [`Rig::place_bars`] puts `slot`'s BAR.
    pub fn bar(slot: u8) -> u64 {
        layout().mmio.base.0 + u64::from(slot) * virtio_pci::BAR_SIZE
    }

    /// Programs every device's 64-bit BAR 0 at [`Rig::bar`] and enables memory decoding and
    /// bus mastering.
    pub fn place_bars(&mut self) {
        let n = self.pci.with(|b| b.len()).unwrap_or(0) as u8;
        for slot in 0..n {
            let a = Rig::bar(slot);
            self.cfg_write(slot, 0x10, AccessSize::Word, a & 0xffff_ffff);
            self.cfg_write(slot, 0x14, AccessSize::Word, a >> 32);
            self.cfg_write(slot, 0x04, AccessSize::Half, 0x6);
        }
    }

    /// A common-configuration read of `slot`.
    pub fn common_read(&mut self, slot: u8, off: u64, size: AccessSize) -> u64 {
        self.read(Rig::bar(slot) + off, size)
    }

    /// A common-configuration write of `slot`.
    pub fn common_write(&mut self, slot: u8, off: u64, size: AccessSize, v: u64) {
        self.write(Rig::bar(slot) + off, size, v);
    }

    /// The device status.
    pub fn status(&mut self, slot: u8) -> u8 {
        self.common_read(slot, common::STATUS, AccessSize::Byte) as u8
    }

    /// Writes the device status.
    pub fn set_status(&mut self, slot: u8, s: u8) {
        self.common_write(slot, common::STATUS, AccessSize::Byte, u64::from(s));
    }

    /// The device's offered features.
    pub fn device_features(&mut self, slot: u8) -> u64 {
        self.common_write(slot, common::DFSELECT, AccessSize::Word, 0);
        let lo = self.common_read(slot, common::DF, AccessSize::Word);
        self.common_write(slot, common::DFSELECT, AccessSize::Word, 1);
        let hi = self.common_read(slot, common::DF, AccessSize::Word);
        lo | hi << 32
    }

    /// Writes the driver's features.
    pub fn write_features(&mut self, slot: u8, f: u64) {
        self.common_write(slot, common::GFSELECT, AccessSize::Word, 0);
        self.common_write(slot, common::GF, AccessSize::Word, f & 0xffff_ffff);
        self.common_write(slot, common::GFSELECT, AccessSize::Word, 1);
        self.common_write(slot, common::GF, AccessSize::Word, f >> 32);
    }

    /// Reset, ACKNOWLEDGE | DRIVER, features, FEATURES_OK; returns the status read back.
    pub fn negotiate(&mut self, slot: u8, features: u64) -> u8 {
        self.set_status(slot, 0);
        self.set_status(slot, status::ACKNOWLEDGE | status::DRIVER);
        self.write_features(slot, features);
        self.set_status(
            slot,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        self.status(slot)
    }

    /// Sets DRIVER_OK.
    pub fn driver_ok(&mut self, slot: u8) {
        let s = self.status(slot);
        self.set_status(slot, s | status::DRIVER_OK);
    }

    /// Allocates rings for queue `index` of `size` entries and programs them (not enabled).
    pub fn queue_config(&mut self, slot: u8, index: u16, size: u16) -> RawQueue {
        let n = u64::from(size);
        let desc = self.alloc(16 * n, 16);
        let avail = self.alloc(6 + 2 * n, 2);
        let used = self.alloc(6 + 8 * n, 4);
        self.common_write(slot, common::Q_SELECT, AccessSize::Half, u64::from(index));
        self.common_write(slot, common::Q_SIZE, AccessSize::Half, n);
        self.common_write(slot, common::Q_DESC, AccessSize::Double, desc);
        self.common_write(slot, common::Q_AVAIL, AccessSize::Double, avail);
        self.common_write(slot, common::Q_USED, AccessSize::Double, used);
        RawQueue {
            index,
            size,
            desc,
            avail,
            used,
            avail_idx: 0,
        }
    }

    /// Enables the selected queue `index`; returns queue_enable read back.
    pub fn enable(&mut self, slot: u8, index: u16) -> u64 {
        self.common_write(slot, common::Q_SELECT, AccessSize::Half, u64::from(index));
        self.common_write(slot, common::Q_ENABLE, AccessSize::Half, 1);
        self.common_read(slot, common::Q_ENABLE, AccessSize::Half)
    }

    /// Configures and enables queue `index`.
    pub fn queue(&mut self, slot: u8, index: u16, size: u16) -> RawQueue {
        let q = self.queue_config(slot, index, size);
        assert_eq!(self.enable(slot, index), 1, "queue {index} enabled");
        q
    }

    /// Negotiates `features`, sets up `queues` (index, size) and sets DRIVER_OK.
    pub fn bring_up(&mut self, slot: u8, features: u64, queues: &[(u16, u16)]) -> Vec<RawQueue> {
        let st = self.negotiate(slot, features);
        assert_ne!(st & status::FEATURES_OK, 0, "FEATURES_OK accepted");
        let qs = queues
            .iter()
            .map(|&(i, s)| self.queue(slot, i, s))
            .collect();
        self.driver_ok(slot);
        qs
    }

    /// Notifies queue `index`.
    pub fn notify(&mut self, slot: u8, index: u16) {
        self.write(
            Rig::bar(slot) + NOTIFY + 4 * u64::from(index),
            AccessSize::Half,
            u64::from(index),
        );
    }

    /// Reads (and so clears) the ISR.
    pub fn isr(&mut self, slot: u8) -> u8 {
        self.read(Rig::bar(slot) + ISR, AccessSize::Byte) as u8
    }

    /// Writes descriptor `i` of `q`'s table.
    pub fn set_desc(&self, q: &RawQueue, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.write_desc_at(q.desc + 16 * u64::from(i), addr, len, flags, next);
    }

    /// Writes a descriptor at `at` (in a table of the test's, such as an indirect one).
    pub fn write_desc_at(&self, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        self.mem.write(GuestPhysAddr(at), &raw).expect("desc");
    }

    /// Puts `head` in the next available slot and publishes the index.
    pub fn push_avail(&self, q: &mut RawQueue, head: u16) {
        let slot = u64::from(q.avail_idx % q.size);
        self.mem
            .write_u16(GuestPhysAddr(q.avail + 4 + 2 * slot), head)
            .expect("ring");
        q.avail_idx = q.avail_idx.wrapping_add(1);
        self.set_avail_idx(q, q.avail_idx);
    }

    /// Publishes `idx` as avail.idx.
    pub fn set_avail_idx(&self, q: &RawQueue, idx: u16) {
        self.mem
            .write_u16(GuestPhysAddr(q.avail + 2), idx)
            .expect("idx");
    }

    /// Sets `avail.flags`.
    pub fn set_avail_flags(&self, q: &RawQueue, flags: u16) {
        self.mem
            .write_u16(GuestPhysAddr(q.avail), flags)
            .expect("flags");
    }

    /// Sets `used_event` (EVENT_IDX).
    pub fn set_used_event(&self, q: &RawQueue, v: u16) {
        self.mem
            .write_u16(GuestPhysAddr(q.avail + 4 + 2 * u64::from(q.size)), v)
            .expect("used_event");
    }

    /// `avail_event` as the device published it (EVENT_IDX).
    pub fn avail_event(&self, q: &RawQueue) -> u16 {
        self.mem
            .read_u16(GuestPhysAddr(q.used + 4 + 8 * u64::from(q.size)))
            .expect("avail_event")
    }

    /// The device's used.idx.
    pub fn used_idx(&self, q: &RawQueue) -> u16 {
        self.mem
            .read_u16(GuestPhysAddr(q.used + 2))
            .expect("used idx")
    }

    /// Used element `i` (id, len).
    pub fn used_elem(&self, q: &RawQueue, i: u16) -> (u32, u32) {
        let at = q.used + 4 + 8 * u64::from(i % q.size);
        (
            self.mem.read_u32(GuestPhysAddr(at)).expect("id"),
            self.mem.read_u32(GuestPhysAddr(at + 4)).expect("len"),
        )
    }

    /// The level of INTx line `line` (0 = INTA).
    pub fn intx(&self, line: usize) -> bool {
        self.irq.is_high(layout().intx[line].intid())
    }
}
