//! The MMIO bus.
//!
//! A device model implements [`MmioDevice`] and is registered on the [`MmioBus`] for a guest
//! address range. A trapped load or store is routed to the device whose range holds it, with
//! the offset into that range and the access width; the device gets a [`DeviceCtx`] with the
//! vCPU, guest memory and the interrupt lines it may raise.
//!
//! An access nobody handles (no device there, a register the device does not have, a width it
//! does not allow) is **read-as-zero / write-ignored**, and logged once per address with the
//! vCPU, address, size and value. RAZ/WI rather than an injected abort because that is what
//! the GIC and PCI specifications require of reserved registers, and because Linux probes
//! registers that may not exist (an abort would kill the guest on a harmless probe).
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

mod log_once;

pub use arm_fault::AccessSize;
pub use log_once::LogOnce;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use guest_mem::{GuestMemory, GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;

/// Interrupt lines a device may drive: level-sensitive SPIs by INTID.
pub trait IrqLines {
    /// Drives line `intid` high (asserted) or low.
    fn set_level(&mut self, intid: u32, level: bool);
}

/// What a device gets with every access.
pub struct DeviceCtx<'a> {
    /// The vCPU that made the access.
    pub vcpu: VcpuId,
    /// Guest RAM, for DMA-style devices (virtqueues).
    pub mem: &'a GuestMemory<'a>,
    /// Interrupt lines.
    pub irq: &'a mut dyn IrqLines,
}

/// Why a device did not complete an access.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MmioError {
    /// No register at this offset.
    NoRegister,
    /// The register exists but not at this width.
    BadWidth,
    /// A write to a read-only register (or a read of a write-only one).
    ReadOnly,
    /// The device is busy: re-entered from one of its own accesses (a shared device behind
    /// a `RefCell`), which the single-threaded event loop never does. A unit variant, like
    /// the others, so that a `Result<u64, MmioError>` comes back in registers.
    Busy,
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmioError::NoRegister => f.write_str("no register there"),
            MmioError::BadWidth => f.write_str("width not allowed for this register"),
            MmioError::ReadOnly => f.write_str("register is read-only"),
            MmioError::Busy => f.write_str("device busy (re-entered)"),
        }
    }
}

/// An emulated device on the MMIO bus.
pub trait MmioDevice {
    /// Reads `size` bytes at `offset` into the device's range; the value is in the low bits.
    fn read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError>;

    /// Writes the low `size` bytes of `value` at `offset`.
    fn write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError>;
}

/// A device with work no guest access triggers: chains left past a notify's budget, a frame
/// or console input its backend has for the guest. The VMM runs it after an access reached
/// the bus (`vmm::Vm::poll_devices`) and when outside input arrives.
pub trait DevicePoll {
    /// Does the pending work; raises interrupts through `ctx`.
    fn poll(&mut self, ctx: &mut DeviceCtx<'_>);
}

/// Why a device could not be added to the bus.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BusError {
    /// The new range overlaps a registered one.
    Overlap {
        /// The new device.
        name: &'static str,
        /// The device already there.
        existing: &'static str,
        /// The shared range start.
        at: GuestPhysAddr,
    },
    /// A range of size zero.
    Empty(&'static str),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Overlap { name, existing, at } => {
                write!(f, "device {name} overlaps {existing} at {at}")
            }
            BusError::Empty(name) => write!(f, "device {name} has an empty range"),
        }
    }
}

struct Slot {
    name: &'static str,
    range: GuestRange,
    device: Box<dyn MmioDevice>,
}

/// Which slot handled an access (for per-device exit statistics).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeviceIndex(pub usize);

/// Devices by address range, sorted for binary search, with the last device hit tried first
/// (a guest talks to one device for a while: a driver's probe, a virtqueue's notify and ISR).
#[derive(Default)]
pub struct MmioBus {
    slots: Vec<Slot>,
    last: usize,
    unhandled: LogOnce,
}

impl MmioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `device` for `range`.
    pub fn add(
        &mut self,
        name: &'static str,
        range: GuestRange,
        device: Box<dyn MmioDevice>,
    ) -> Result<DeviceIndex, BusError> {
        if range.size == 0 {
            return Err(BusError::Empty(name));
        }
        if let Some(s) = self.slots.iter().find(|s| s.range.overlaps(&range)) {
            return Err(BusError::Overlap {
                name,
                existing: s.name,
                at: range.base.max(s.range.base),
            });
        }
        let at = self.slots.partition_point(|s| s.range.base < range.base);
        self.slots.insert(
            at,
            Slot {
                name,
                range,
                device,
            },
        );
        Ok(DeviceIndex(at))
    }

    /// Names and ranges of the registered devices, in address order (index = [`DeviceIndex`]).
    pub fn devices(&self) -> impl Iterator<Item = (&'static str, GuestRange)> + '_ {
        self.slots.iter().map(|s| (s.name, s.range))
    }

    /// The device whose range holds all of `[addr, addr + size)`: the last one hit if it
    /// does, else a binary search.
    #[inline]
    fn find(&self, addr: GuestPhysAddr, size: AccessSize) -> Option<usize> {
        if let Some(s) = self.slots.get(self.last)
            && s.range.contains_range(addr, size.bytes())
        {
            return Some(self.last);
        }
        self.search(addr, size)
    }

    #[inline(never)]
    fn search(&self, addr: GuestPhysAddr, size: AccessSize) -> Option<usize> {
        let i = self
            .slots
            .partition_point(|s| s.range.base <= addr)
            .checked_sub(1)?;
        let s = self.slots.get(i)?;
        s.range.contains_range(addr, size.bytes()).then_some(i)
    }

    /// True when a device covers `addr`.
    pub fn handles(&self, addr: GuestPhysAddr) -> bool {
        self.find(addr, AccessSize::Byte).is_some()
    }

    /// A guest load: the device's value, or 0 (logged once per address) when no device
    /// handles it.
    #[inline]
    pub fn read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        addr: GuestPhysAddr,
        size: AccessSize,
    ) -> (u64, Option<DeviceIndex>) {
        let found = self.find(addr, size);
        let Some((i, slot)) = found.and_then(|i| Some((i, self.slots.get_mut(i)?))) else {
            self.no_device(ctx.vcpu, addr, size, None);
            return (0, None);
        };
        self.last = i;
        let offset = addr.0.wrapping_sub(slot.range.base.0);
        match slot.device.read(ctx, offset, size) {
            Ok(v) => (v & size.mask(), Some(DeviceIndex(i))),
            Err(e) => {
                self.refused(ctx.vcpu, addr, size, None, i, e);
                (0, Some(DeviceIndex(i)))
            }
        }
    }

    /// A guest store; ignored (logged once per address) when no device handles it.
    #[inline]
    pub fn write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        addr: GuestPhysAddr,
        size: AccessSize,
        value: u64,
    ) -> Option<DeviceIndex> {
        let value = value & size.mask();
        let found = self.find(addr, size);
        let Some((i, slot)) = found.and_then(|i| Some((i, self.slots.get_mut(i)?))) else {
            self.no_device(ctx.vcpu, addr, size, Some(value));
            return None;
        };
        self.last = i;
        let offset = addr.0.wrapping_sub(slot.range.base.0);
        if let Err(e) = slot.device.write(ctx, offset, size, value) {
            self.refused(ctx.vcpu, addr, size, Some(value), i, e);
        }
        Some(DeviceIndex(i))
    }

    /// No device at `addr`: read-as-zero / write-ignored, logged once per address.
    #[cold]
    #[inline(never)]
    fn no_device(
        &mut self,
        vcpu: VcpuId,
        addr: GuestPhysAddr,
        size: AccessSize,
        value: Option<u64>,
    ) {
        self.unhandled.warn(vcpu, addr, size, value, "no device");
    }

    /// Device `i` refused the access: logged once per address.
    #[cold]
    #[inline(never)]
    fn refused(
        &mut self,
        vcpu: VcpuId,
        addr: GuestPhysAddr,
        size: AccessSize,
        value: Option<u64>,
        i: usize,
        e: MmioError,
    ) {
        let name = self.slots.get(i).map_or("?", |s| s.name);
        self.unhandled.warn(vcpu, addr, size, value, name);
        let dir = if value.is_some() { "write" } else { "read" };
        log::debug!("{name} {dir} at {addr}: {e}");
    }

    /// How many distinct unhandled addresses were seen (and logged).
    pub fn unhandled_count(&self) -> usize {
        self.unhandled.seen()
    }
}

#[cfg(test)]
mod tests;
