//! A PCI host bridge carrying virtio 1.2 devices over the modern PCI transport.
//!
//! [`PciBus`] is the host bridge of one platform ([`PciLayout`]): ECAM configuration space for
//! bus 0 (one single-function device per slot, in the order they were added; every other
//! bus, device and function reads all-ones), the 32-bit memory window the guest places the
//! devices' BARs in, and INTA..INTD as level-sensitive SPIs.
//!
//! # Wiring it into the VMM
//!
//! The bus is reached from two MMIO ranges, so it is shared ([`SharedPciBus`], an
//! `Rc<RefCell<PciBus>>`) by two thin [`mmio_bus::MmioDevice`] adapters:
//!
//! ```ignore
//! let pci = SharedPciBus::new(PciBus::new(platform.pci, platform.ram.range));
//! let input = InputQueue::new(4096);
//! pci.add(Box::new(VirtioConsole::new(LineWriter::guest("hvc0", DebugOut), input.clone())))?;
//! pci.add(Box::new(VirtioBlk::new(disk_image, "vmm-disk0")))?;
//! pci.add(Box::new(VirtioNet::new(GUEST_MAC, ArpIcmpResponder::new(VMM_MAC, VMM_IP))))?;
//! bus.add("pci-ecam", platform.pci.ecam, pci.ecam_device())?;
//! bus.add("pci-mmio", platform.pci.mmio, pci.mmio_device())?;
//! // When input arrives (or a backend has frames), and after handling exits:
//! input.push(bytes);
//! vm.with_device_ctx(|ctx| pci.poll(ctx));
//! ```
//!
//! The device tree describes the bridge as `pci-host-ecam-generic` with an `interrupt-map`
//! built from [`PciBus::interrupt_map`] (the standard swizzle: slot *s*, pin *p* (1 = INTA)
//! → `intx[(s + p - 1) % 4]`).
//!
//! # BARs
//!
//! Each function has one memory BAR of 16 KiB (32- or 64-bit, see [`FunctionOptions`]) that
//! the guest sizes (all-ones write) and places. The BAR decodes only while the Command
//! register's Memory Space bit is set **and** it lies entirely inside the platform's BAR
//! window, not over guest RAM, and not overlapping another function's decoding BAR.
//! Otherwise it decodes nothing and the reason is logged once per function and cause. An
//! access in the window that no BAR decodes reads all-ones and is dropped (a master abort).
//!
//! # Interrupts
//!
//! A function asserts INTx while its ISR is non-zero and the Command register's INTx Disable
//! bit is clear. The bridge ORs the functions sharing a line and drives each SPI through
//! `ctx.irq.set_level(intid, level)` whenever its level changes. The Interrupt Line register
//! is a scratch register and plays no part in routing.
//!
//! # Outside work
//!
//! [`SharedPciBus::poll`] runs every device that is live (DRIVER_OK, no DEVICE_NEEDS_RESET):
//! queues whose last round stopped at the per-round budget are processed again, then the
//! device's own poll (console input, received frames). The VMM calls it when it has pushed
//! input or a backend has frames, and regularly (after a batch of exits).
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

mod function;
mod transport;

pub use function::{BarKind, FunctionOptions, command};
pub use transport::{BAR_SIZE, ISR_CONFIG, ISR_QUEUE, Refusal, status};
pub use vmm_platform::PciLayout;

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use function::Function;
use guest_mem::{GuestPhysAddr, GuestRange};
use mmio_bus::{AccessSize, DeviceCtx, IrqLines, MmioDevice, MmioError};
use transport::Transport;
use virtio_devices::{LogCauses, VirtioDevice};

/// Devices (slots) on bus 0.
pub const MAX_SLOTS: usize = 32;
/// Bytes of ECAM space per function.
const ECAM_FN: u64 = 0x1000;

/// Why a device could not be added.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PciError {
    /// All 32 slots are taken.
    Full,
    /// Bad options: a BAR index beyond 5 (4 for 64-bit) or a pin outside 1..=4.
    Options,
}

/// One `interrupt-map` entry: slot and pin to SPI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IntxRoute {
    /// Device number on bus 0.
    pub slot: u8,
    /// Interrupt pin, 1 = INTA .. 4 = INTD.
    pub pin: u8,
    /// The SPI it is routed to.
    pub spi: vmm_platform::Spi,
}

#[derive(Clone, Copy)]
enum BarCause {
    OutsideWindow = 0,
    OverRam = 1,
    Overlap = 2,
}

/// The PCI host bridge.
pub struct PciBus {
    layout: PciLayout,
    ram: GuestRange,
    functions: Vec<Function>,
    /// BAR ranges that decode, with their slot.
    decode: Vec<(GuestRange, usize)>,
    lines: [bool; 4],
    bar_log: Vec<LogCauses>,
    unclaimed: LogCauses,
}

impl PciBus {
    /// A bridge at `layout` in a guest whose RAM is `ram`.
    pub fn new(layout: PciLayout, ram: GuestRange) -> Self {
        PciBus {
            layout,
            ram,
            functions: Vec::new(),
            decode: Vec::new(),
            lines: [false; 4],
            bar_log: Vec::new(),
            unclaimed: LogCauses::default(),
        }
    }

    /// Adds `device` in the next free slot with a 64-bit BAR 0 on INTA; returns the slot.
    pub fn add(&mut self, device: Box<dyn VirtioDevice>) -> Result<u8, PciError> {
        self.add_with(device, FunctionOptions::default())
    }

    /// Adds `device` with `opts`; returns the slot.
    pub fn add_with(
        &mut self,
        device: Box<dyn VirtioDevice>,
        opts: FunctionOptions,
    ) -> Result<u8, PciError> {
        let max_index = match opts.bar_kind {
            BarKind::Mem32 => 5,
            BarKind::Mem64 => 4,
        };
        if opts.bar_index > max_index || !(1..=4).contains(&opts.pin) {
            return Err(PciError::Options);
        }
        if self.functions.len() >= MAX_SLOTS {
            return Err(PciError::Full);
        }
        let slot = self.functions.len() as u8;
        self.functions
            .push(Function::new(Transport::new(device, slot), opts));
        self.bar_log.push(LogCauses::default());
        Ok(slot)
    }

    /// The platform layout.
    pub fn layout(&self) -> &PciLayout {
        &self.layout
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// True when no device was added.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The line index (into `layout.intx`) of `slot`'s `pin`.
    pub fn intx_line(slot: u8, pin: u8) -> usize {
        // pin is 1..=4 after the clamp: the sum is at least 1 and at most 258.
        usize::from(slot)
            .wrapping_add(usize::from(pin.clamp(1, 4)))
            .wrapping_sub(1)
            % 4
    }

    /// The 16 `interrupt-map` entries for slots 0..3 (the mask `<0x1800 0 0 7>` repeats them
    /// for every slot).
    pub fn interrupt_map(&self) -> [IntxRoute; 16] {
        core::array::from_fn(|i| {
            let slot = (i / 4) as u8;
            let pin = ((i % 4) as u8).wrapping_add(1); // 1..=4
            let line = PciBus::intx_line(slot, pin);
            IntxRoute {
                slot,
                pin,
                spi: self
                    .layout
                    .intx
                    .get(line)
                    .copied()
                    .unwrap_or(vmm_platform::Spi(0)),
            }
        })
    }

    /// The virtio device status of `slot` (for the VMM's diagnostics and tests).
    pub fn device_status(&self, slot: u8) -> Option<u8> {
        self.functions
            .get(usize::from(slot))
            .map(|f| f.transport.status())
    }

    /// The guest-physical range of `slot`'s BAR, if it currently decodes.
    pub fn decoding_bar(&self, slot: u8) -> Option<GuestRange> {
        self.decode
            .iter()
            .find(|(_, s)| *s == usize::from(slot))
            .map(|(r, _)| *r)
    }

    /// Last used index and enable state of `slot`'s queue `queue` (diagnostics and tests).
    pub fn queue_state(&self, slot: u8, queue: u16) -> Option<(bool, u16, u16)> {
        let f = self.functions.get(usize::from(slot))?;
        let q = f.transport.queues().get(usize::from(queue))?;
        Some((q.enabled(), q.last_avail(), q.next_used()))
    }

    fn bar_refused(&mut self, slot: usize, cause: BarCause, range: GuestRange) {
        let first = self
            .bar_log
            .get_mut(slot)
            .is_some_and(|l| l.first(cause as u8));
        if first {
            let why = match cause {
                BarCause::OutsideWindow => "outside the PCI memory window",
                BarCause::OverRam => "over guest RAM",
                BarCause::Overlap => "overlapping another device's BAR",
            };
            log::warn!(
                "pci 00:{slot:02x}.0: BAR at {}..{:#x} is {why}: it decodes nothing",
                range.base,
                range.end()
            );
        }
    }

    /// Recomputes which BARs decode.
    fn update_decode(&mut self) {
        let mut candidates: Vec<(GuestRange, usize)> = Vec::new();
        let mut refused: Vec<(usize, BarCause, GuestRange)> = Vec::new();
        for (slot, f) in self.functions.iter().enumerate() {
            if f.command() & command::MEMORY == 0 {
                continue;
            }
            let r = f.bar_range();
            if r.overlaps(&self.ram) {
                refused.push((slot, BarCause::OverRam, r));
            } else if !self.layout.mmio.contains_range(r.base, r.size) {
                refused.push((slot, BarCause::OutsideWindow, r));
            } else {
                candidates.push((r, slot));
            }
        }
        let mut decode = Vec::new();
        for &(r, slot) in &candidates {
            let clash = candidates
                .iter()
                .any(|&(o, other)| other != slot && o.overlaps(&r));
            if clash {
                refused.push((slot, BarCause::Overlap, r));
            } else {
                decode.push((r, slot));
            }
        }
        self.decode = decode;
        for (slot, cause, r) in refused {
            self.bar_refused(slot, cause, r);
        }
    }

    /// Drives every INTx line whose level changed.
    fn update_lines(&mut self, irq: &mut dyn IrqLines) {
        let mut levels = [false; 4];
        for (slot, f) in self.functions.iter().enumerate() {
            if f.intx()
                && let Some(l) = levels.get_mut(PciBus::intx_line(slot as u8, f.pin()))
            {
                *l = true;
            }
        }
        for (i, (&new, old)) in levels.iter().zip(self.lines.iter_mut()).enumerate() {
            if new != *old {
                *old = new;
                if let Some(spi) = self.layout.intx.get(i) {
                    irq.set_level(spi.intid(), new);
                }
            }
        }
    }

    /// Splits an ECAM offset into (slot, register) for bus 0 function 0 of a present device.
    #[inline]
    fn ecam_target(&self, offset: u64) -> Option<(usize, u16)> {
        let bus = offset >> 20;
        let dev = (offset >> 15) & 31;
        let func = (offset >> 12) & 7;
        let slot = usize::try_from(dev).ok()?;
        (bus == 0 && func == 0 && slot < self.functions.len())
            .then_some((slot, (offset % ECAM_FN) as u16))
    }

    /// A load from ECAM space at `offset`.
    #[inline]
    pub fn ecam_read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        if size == AccessSize::Double || !offset.is_multiple_of(size.bytes()) {
            return Err(MmioError::BadWidth);
        }
        let Some((slot, reg)) = self.ecam_target(offset) else {
            return Ok(size.mask());
        };
        let Some(f) = self.functions.get_mut(slot) else {
            return Ok(size.mask());
        };
        let intx = f.intx();
        let dword = if reg < 0x100 {
            f.read_dword(reg & !3)
        } else {
            0
        };
        let changed = f.intx() != intx;
        // (reg & 3) * 8 is at most 24.
        let v = (u64::from(dword) >> (reg & 3).wrapping_mul(8)) & size.mask();
        // Reading pci_cfg_data may have read (and cleared) the ISR.
        if changed {
            self.update_lines(ctx.irq);
        }
        Ok(v)
    }

    /// A store to ECAM space at `offset`.
    pub fn ecam_write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        if size == AccessSize::Double || !offset.is_multiple_of(size.bytes()) {
            return Err(MmioError::BadWidth);
        }
        let Some((slot, reg)) = self.ecam_target(offset) else {
            return Ok(());
        };
        if reg >= 0x100 {
            return Ok(());
        }
        let shift = (reg & 3).wrapping_mul(8); // at most 24
        let value = ((value & size.mask()) << shift) as u32;
        let mask = (size.mask() << shift) as u32;
        let decode = match self.functions.get_mut(slot) {
            Some(f) => f.write_dword(ctx.mem, reg & !3, value, mask),
            None => false,
        };
        if decode {
            self.update_decode();
        }
        self.update_lines(ctx.irq);
        Ok(())
    }

    /// The decoding BAR holding `[addr, addr + size)`: slot and offset into the BAR.
    fn bar_target(&self, addr: GuestPhysAddr, size: AccessSize) -> Option<(usize, u64)> {
        self.decode
            .iter()
            .find(|(r, _)| r.contains_range(addr, size.bytes()))
            // contains_range: addr is at or above the range's base.
            .map(|&(r, slot)| (slot, addr.0.wrapping_sub(r.base.0)))
    }

    fn unclaimed(&mut self, addr: GuestPhysAddr) {
        if self.unclaimed.first(0) {
            log::warn!("pci: access at {addr} in the BAR window that no BAR decodes: master abort");
        }
    }

    /// A load at `offset` into the BAR window.
    pub fn mmio_read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        let addr = GuestPhysAddr(self.layout.mmio.base.0.wrapping_add(offset));
        let Some((slot, off)) = self.bar_target(addr, size) else {
            self.unclaimed(addr);
            return Ok(size.mask());
        };
        let r = match self.functions.get_mut(slot) {
            Some(f) => f.transport.bar_read(off, size),
            None => Ok(size.mask()),
        };
        self.update_lines(ctx.irq);
        r
    }

    /// A store at `offset` into the BAR window.
    pub fn mmio_write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        let addr = GuestPhysAddr(self.layout.mmio.base.0.wrapping_add(offset));
        let Some((slot, off)) = self.bar_target(addr, size) else {
            self.unclaimed(addr);
            return Ok(());
        };
        let r = match self.functions.get_mut(slot) {
            Some(f) => f.transport.bar_write(ctx.mem, off, size, value),
            None => Ok(()),
        };
        self.update_lines(ctx.irq);
        r
    }

    /// Outside work for every live device (see the crate documentation).
    pub fn poll(&mut self, ctx: &mut DeviceCtx<'_>) {
        for f in &mut self.functions {
            f.transport.poll(ctx.mem);
        }
        self.update_lines(ctx.irq);
    }
}

/// The bridge shared between its two MMIO ranges and the VMM. Clones are the same bridge.
/// Single-threaded (`Rc`), like the event loop.
#[derive(Clone)]
pub struct SharedPciBus(Rc<RefCell<PciBus>>);

impl SharedPciBus {
    /// Shares `bus`.
    pub fn new(bus: PciBus) -> Self {
        SharedPciBus(Rc::new(RefCell::new(bus)))
    }

    /// Runs `f` on the bridge; `None` if it is already borrowed (from inside one of its own
    /// accesses, which the single-threaded event loop never does).
    pub fn with<R>(&self, f: impl FnOnce(&mut PciBus) -> R) -> Option<R> {
        let mut bus = self.0.try_borrow_mut().ok()?;
        Some(f(&mut bus))
    }

    /// [`PciBus::add`].
    pub fn add(&self, device: Box<dyn VirtioDevice>) -> Result<u8, PciError> {
        self.with(|b| b.add(device)).unwrap_or(Err(PciError::Full))
    }

    /// [`PciBus::add_with`].
    pub fn add_with(
        &self,
        device: Box<dyn VirtioDevice>,
        opts: FunctionOptions,
    ) -> Result<u8, PciError> {
        self.with(|b| b.add_with(device, opts))
            .unwrap_or(Err(PciError::Full))
    }

    /// The adapter for the ECAM range (`layout.ecam`).
    pub fn ecam_device(&self) -> Box<dyn MmioDevice> {
        Box::new(EcamWindow(self.clone()))
    }

    /// The adapter for the BAR window (`layout.mmio`).
    pub fn mmio_device(&self) -> Box<dyn MmioDevice> {
        Box::new(BarWindow(self.clone()))
    }

    /// [`PciBus::poll`].
    pub fn poll(&self, ctx: &mut DeviceCtx<'_>) {
        self.with(|b| b.poll(ctx));
    }
}

impl mmio_bus::DevicePoll for SharedPciBus {
    fn poll(&mut self, ctx: &mut DeviceCtx<'_>) {
        SharedPciBus::poll(self, ctx);
    }
}

/// The ECAM range of a [`SharedPciBus`].
pub struct EcamWindow(SharedPciBus);

/// The BAR window of a [`SharedPciBus`].
pub struct BarWindow(SharedPciBus);

const BUSY: MmioError = MmioError::Busy;

impl MmioDevice for EcamWindow {
    fn read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        self.0
            .with(|b| b.ecam_read(ctx, offset, size))
            .unwrap_or(Err(BUSY))
    }

    fn write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        self.0
            .with(|b| b.ecam_write(ctx, offset, size, value))
            .unwrap_or(Err(BUSY))
    }
}

impl MmioDevice for BarWindow {
    fn read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        self.0
            .with(|b| b.mmio_read(ctx, offset, size))
            .unwrap_or(Err(BUSY))
    }

    fn write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        self.0
            .with(|b| b.mmio_write(ctx, offset, size, value))
            .unwrap_or(Err(BUSY))
    }
}
