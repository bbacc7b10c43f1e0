//! A hand-rolled guest driver: every register access and ring byte is the test's, so a test
//! can be the hostile guest the device models must survive.

use crate::Irqs;
use guest_mem::{AccessObserver, GuestMemory, GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;
use mmio_bus::{AccessSize, DeviceCtx, MmioBus};
use std::cell::Cell;
use std::sync::MutexGuard;
use virtio_devices::VirtioDevice;
use virtio_pci::{FunctionOptions, PciBus, PciLayout, SharedPciBus};
use vm_test_kit::driver::{self, MmioPort, VirtioPci};

pub use vm_test_kit::driver::{DEVICE_CFG, ISR, NOTIFY, common};
/// A split queue the test owns (the kit's driver-side queue).
pub use vm_test_kit::queue::GuestQueue as RawQueue;

/// Guest RAM base.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM size of a rig.
pub const RAM_SIZE: u64 = 1 << 20;

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
    vmm_platform::QEMU_VIRT
        .pci()
        .expect("qemu-virt has a PCI bridge")
        .layout
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
        let host = vmm_platform::QEMU_VIRT
            .pci()
            .expect("qemu-virt has a PCI bridge");
        vm_builder::attach_pci(&mut bus, &host, &pci).expect("the bridge's windows");
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
        driver::ecam(&layout(), bus, slot, func, reg)
    }

    /// Configuration read of bus 0, function 0.
    pub fn cfg_read(&mut self, slot: u8, reg: u64, size: AccessSize) -> u64 {
        driver::cfg_read(self, &layout(), slot, reg, size)
    }

    /// Configuration write of bus 0, function 0.
    pub fn cfg_write(&mut self, slot: u8, reg: u64, size: AccessSize, v: u64) {
        driver::cfg_write(self, &layout(), slot, reg, size, v);
    }

    /// Where [`Rig::place_bars`] puts `slot`'s BAR.
    pub fn bar(slot: u8) -> u64 {
        driver::bar(&layout(), slot)
    }

    /// The PCI core's enumeration ([`driver::enumerate`]): every device's 64-bit BAR 0 sized
    /// and placed at [`Rig::bar`], memory decoding and bus mastering enabled.
    pub fn place_bars(&mut self) {
        let n = self.pci.with(|b| b.len()).unwrap_or(0) as u8;
        driver::enumerate(self, &layout(), n);
    }

    fn dev(slot: u8) -> VirtioPci {
        VirtioPci {
            slot,
            bar: Rig::bar(slot),
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
        Rig::dev(slot).status(self)
    }

    /// Writes the device status.
    pub fn set_status(&mut self, slot: u8, s: u8) {
        Rig::dev(slot).set_status(self, s);
    }

    /// The device's offered features.
    pub fn device_features(&mut self, slot: u8) -> u64 {
        Rig::dev(slot).device_features(self)
    }

    /// Writes the driver's features.
    pub fn write_features(&mut self, slot: u8, f: u64) {
        Rig::dev(slot).write_features(self, f);
    }

    /// Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back.
    pub fn negotiate(&mut self, slot: u8, features: u64) -> u8 {
        Rig::dev(slot).negotiate(self, Some(features))
    }

    /// Sets DRIVER_OK.
    pub fn driver_ok(&mut self, slot: u8) {
        Rig::dev(slot).driver_ok(self);
    }

    /// Runs `f` with the rig as the driver's port and its RAM allocator.
    fn with_alloc<R>(
        &mut self,
        f: impl FnOnce(&mut Rig, &mut dyn FnMut(u64, u64) -> u64) -> R,
    ) -> R {
        let mut next = self.next_free;
        let r = f(self, &mut |len, align| {
            let a = next.next_multiple_of(align);
            next = a + len;
            assert!(next <= RAM_BASE + RAM_SIZE, "rig RAM exhausted");
            a
        });
        self.next_free = self.next_free.max(next);
        r
    }

    /// Allocates rings for queue `index` of `size` entries and programs them (not enabled).
    pub fn queue_config(&mut self, slot: u8, index: u16, size: u16) -> RawQueue {
        self.with_alloc(|rig, alloc| Rig::dev(slot).queue_config(rig, index, Some(size), alloc))
    }

    /// Enables the selected queue `index`; returns queue_enable read back.
    pub fn enable(&mut self, slot: u8, index: u16) -> u64 {
        Rig::dev(slot).enable(self, index)
    }

    /// Configures and enables queue `index`.
    pub fn queue(&mut self, slot: u8, index: u16, size: u16) -> RawQueue {
        let q = self.queue_config(slot, index, size);
        assert_eq!(self.enable(slot, index), 1, "queue {index} enabled");
        q
    }

    /// Negotiates `features`, sets up `queues` (index, size) and sets DRIVER_OK.
    pub fn bring_up(&mut self, slot: u8, features: u64, queues: &[(u16, u16)]) -> Vec<RawQueue> {
        let sizes: Vec<_> = queues.iter().map(|&(i, s)| (i, Some(s))).collect();
        self.with_alloc(|rig, alloc| Rig::dev(slot).probe(rig, Some(features), &sizes, alloc))
    }

    /// Notifies queue `index`.
    pub fn notify(&mut self, slot: u8, index: u16) {
        Rig::dev(slot).notify(self, index);
    }

    /// Reads (and so clears) the ISR.
    pub fn isr(&mut self, slot: u8) -> u8 {
        Rig::dev(slot).isr(self)
    }

    /// Writes descriptor `i` of `q`'s table.
    pub fn set_desc(&self, q: &RawQueue, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        q.set_desc(&self.mem, i, addr, len, flags, next);
    }

    /// Writes a descriptor at `at` (in a table of the test's, such as an indirect one).
    pub fn write_desc_at(&self, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        RawQueue::write_desc(&self.mem, at, addr, len, flags, next);
    }

    /// Puts `head` in the next available slot and publishes the index.
    pub fn push_avail(&self, q: &mut RawQueue, head: u16) {
        q.publish(&self.mem, head);
    }

    /// Publishes `idx` as avail.idx.
    pub fn set_avail_idx(&self, q: &RawQueue, idx: u16) {
        q.set_avail_idx(&self.mem, idx);
    }

    /// Sets `avail.flags`.
    pub fn set_avail_flags(&self, q: &RawQueue, flags: u16) {
        q.set_avail_flags(&self.mem, flags);
    }

    /// Sets `used_event` (EVENT_IDX).
    pub fn set_used_event(&self, q: &RawQueue, v: u16) {
        q.set_used_event(&self.mem, v);
    }

    /// `avail_event` as the device published it (EVENT_IDX).
    pub fn avail_event(&self, q: &RawQueue) -> u16 {
        q.avail_event(&self.mem)
    }

    /// The device's used.idx.
    pub fn used_idx(&self, q: &RawQueue) -> u16 {
        q.used_idx(&self.mem)
    }

    /// Used element `i` (id, len).
    pub fn used_elem(&self, q: &RawQueue, i: u16) -> (u32, u32) {
        q.used_elem(&self.mem, i)
    }

    /// The level of INTx line `line` (0 = INTA).
    pub fn intx(&self, line: usize) -> bool {
        self.irq.is_high(layout().intx[line].intid())
    }
}

/// The rig's guest: each access straight onto the bus (vCPU 0).
impl MmioPort for Rig {
    fn read(&mut self, addr: u64, size: AccessSize) -> u64 {
        Rig::read(self, addr, size)
    }

    fn write(&mut self, addr: u64, size: AccessSize, value: u64) {
        Rig::write(self, addr, size, value);
    }
}
