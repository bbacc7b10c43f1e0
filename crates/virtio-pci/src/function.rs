//! One PCI function: its type-0 configuration header, capability list and memory BAR, in
//! front of a virtio [`Transport`].
//!
//! Header (offsets in configuration space):
//!
//! * 0x00 vendor 0x1af4, device 0x1040 + virtio type; 0x08 revision 1, class per device type;
//!   0x0e header type 0 (single function); 0x2c subsystem vendor 0x1af4, subsystem 0x1100.
//! * 0x04 Command: Memory Space (gates BAR decode), Bus Master, Parity, SERR and INTx Disable
//!   are writable; I/O Space is hardwired to 0 (no I/O BARs). Status: Capabilities List, and
//!   Interrupt Status while the function asserts INTx (before INTx Disable masks it).
//! * 0x0c cache line size and latency timer: scratch.
//! * 0x10..0x27 BARs: one memory BAR of [`BAR_SIZE`], 32- or 64-bit, at the index chosen when
//!   the function is added; the others read 0. Writing all-ones reads back the size mask.
//! * 0x30 expansion ROM: none (reads 0). 0x34 capability pointer 0x40.
//! * 0x3c Interrupt Line: a scratch register the VMM never uses; Interrupt Pin: INTA..INTD.
//! * 0x40.. vendor capabilities: common (0x40), notify (0x50), ISR (0x64), device (0x74, when
//!   the device has configuration) and PCI configuration access (0x84), whose `bar`, `offset`,
//!   `length` and `pci_cfg_data` are writable and reach the BAR as §4.1.4.9 describes.
//! * 0x100.. extended configuration space: no extended capabilities (reads 0).

use crate::transport::{
    BAR_SIZE, COMMON_LEN, COMMON_OFF, DEVICE_OFF, ISR_LEN, ISR_OFF, NOTIFY_MULTIPLIER, NOTIFY_OFF,
    Transport,
};
use guest_mem::{GuestMemory, GuestRange};
use mmio_bus::AccessSize;

/// Red Hat / virtio PCI vendor ID.
pub const VENDOR_ID: u16 = 0x1af4;
/// Device ID of a modern (non-transitional) virtio device of type 0.
pub const DEVICE_ID_BASE: u16 = 0x1040;
/// Subsystem device ID (QEMU's; at least 0x40 as §4.1.2.1 asks).
pub const SUBSYSTEM_ID: u16 = 0x1100;
/// Revision ID of modern devices.
pub const REVISION: u8 = 1;

/// Command register bits.
pub mod command {
    /// I/O Space (hardwired 0 here).
    pub const IO: u16 = 1 << 0;
    /// Memory Space: the BAR decodes.
    pub const MEMORY: u16 = 1 << 1;
    /// Bus Master.
    pub const BUS_MASTER: u16 = 1 << 2;
    /// Parity Error Response.
    pub const PARITY: u16 = 1 << 6;
    /// SERR# Enable.
    pub const SERR: u16 = 1 << 8;
    /// INTx Emulation Disable.
    pub const INTX_DISABLE: u16 = 1 << 10;
    /// The writable bits.
    pub const WRITABLE: u16 = MEMORY | BUS_MASTER | PARITY | SERR | INTX_DISABLE;
}

const STATUS_INTERRUPT: u16 = 1 << 3;
const STATUS_CAP_LIST: u16 = 1 << 4;
const CAP_START: u16 = 0x40;
const CAP_COMMON: usize = 0x40;
const CAP_NOTIFY: usize = 0x50;
const CAP_ISR: usize = 0x64;
const CAP_DEVICE: usize = 0x74;
const CAP_PCI_CFG: usize = 0x84;
const CAP_END: usize = 0x98;
const PCI_CAP_ID_VNDR: u8 = 0x09;
const VIRTIO_PCI_CAP_COMMON_CFG: u8 = 1;
const VIRTIO_PCI_CAP_NOTIFY_CFG: u8 = 2;
const VIRTIO_PCI_CAP_ISR_CFG: u8 = 3;
const VIRTIO_PCI_CAP_DEVICE_CFG: u8 = 4;
const VIRTIO_PCI_CAP_PCI_CFG: u8 = 5;

/// Width of the function's memory BAR.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BarKind {
    /// 32-bit memory BAR (one BAR register).
    Mem32,
    /// 64-bit memory BAR (two BAR registers).
    Mem64,
}

/// How a function is presented.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FunctionOptions {
    /// BAR width.
    pub bar_kind: BarKind,
    /// BAR register index (0..=5; at most 4 for a 64-bit BAR).
    pub bar_index: u8,
    /// Interrupt Pin: 1 = INTA .. 4 = INTD.
    pub pin: u8,
}

impl Default for FunctionOptions {
    fn default() -> Self {
        FunctionOptions {
            bar_kind: BarKind::Mem64,
            bar_index: 0,
            pin: 1,
        }
    }
}

/// A PCI function carrying one virtio device.
pub(crate) struct Function {
    pub(crate) transport: Transport,
    opts: FunctionOptions,
    command: u16,
    cache_line: u8,
    latency: u8,
    int_line: u8,
    /// BAR address as programmed (the size bits always read 0).
    bar: u64,
    /// Capability bytes for 0x40..CAP_END.
    caps: [u8; CAP_END - CAP_START as usize],
}

/// Index into `caps` of configuration-space offset `at` (at or above CAP_START; one below
/// becomes an index past the end, which every `get` refuses).
fn cap_rel(at: usize) -> usize {
    at.checked_sub(CAP_START as usize).unwrap_or(usize::MAX)
}

fn put(caps: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = caps.get_mut(at..at.saturating_add(bytes.len())) {
        dst.copy_from_slice(bytes);
    }
}

impl Function {
    pub(crate) fn new(transport: Transport, opts: FunctionOptions) -> Self {
        let mut f = Function {
            transport,
            opts,
            command: 0,
            cache_line: 0,
            latency: 0,
            int_line: 0,
            bar: 0,
            caps: [0; CAP_END - CAP_START as usize],
        };
        f.build_caps();
        f
    }

    fn build_caps(&mut self) {
        let bar = self.opts.bar_index;
        let has_device = self.transport.device_cfg_len() > 0;
        let structs: [(usize, u8, u8, u64, u64); 5] = [
            (
                CAP_COMMON,
                16,
                VIRTIO_PCI_CAP_COMMON_CFG,
                COMMON_OFF,
                COMMON_LEN,
            ),
            (
                CAP_NOTIFY,
                20,
                VIRTIO_PCI_CAP_NOTIFY_CFG,
                NOTIFY_OFF,
                self.transport.notify_len(),
            ),
            (CAP_ISR, 16, VIRTIO_PCI_CAP_ISR_CFG, ISR_OFF, ISR_LEN),
            (
                CAP_DEVICE,
                16,
                VIRTIO_PCI_CAP_DEVICE_CFG,
                DEVICE_OFF,
                self.transport.device_cfg_len(),
            ),
            (CAP_PCI_CFG, 20, VIRTIO_PCI_CAP_PCI_CFG, 0, 0),
        ];
        let present: [bool; 5] = [true, true, true, has_device, true];
        let chain: alloc::vec::Vec<_> = structs
            .iter()
            .zip(present)
            .filter(|(_, p)| *p)
            .map(|(s, _)| *s)
            .collect();
        for (i, &(at, len, cfg_type, offset, length)) in chain.iter().enumerate() {
            let next = chain.get(i.saturating_add(1)).map_or(0, |n| n.0 as u8);
            let rel = cap_rel(at);
            let bar = if cfg_type == VIRTIO_PCI_CAP_PCI_CFG {
                0
            } else {
                bar
            };
            put(
                &mut self.caps,
                rel,
                &[PCI_CAP_ID_VNDR, next, len, cfg_type, bar, 0, 0, 0],
            );
            put(
                &mut self.caps,
                rel.saturating_add(8),
                &(offset as u32).to_le_bytes(),
            );
            put(
                &mut self.caps,
                rel.saturating_add(12),
                &(length as u32).to_le_bytes(),
            );
        }
        put(
            &mut self.caps,
            cap_rel(CAP_NOTIFY + 16),
            &(NOTIFY_MULTIPLIER as u32).to_le_bytes(),
        );
    }

    pub(crate) fn command(&self) -> u16 {
        self.command
    }

    pub(crate) fn pin(&self) -> u8 {
        self.opts.pin
    }

    /// The range the BAR is programmed to (decoding or not).
    pub(crate) fn bar_range(&self) -> GuestRange {
        GuestRange::new(self.bar, BAR_SIZE)
    }

    /// True when the function drives its INTx line (ISR set, INTx not disabled).
    #[inline]
    pub(crate) fn intx(&self) -> bool {
        self.transport.isr() != 0 && self.command & command::INTX_DISABLE == 0
    }

    fn cap_u32(&self, at: usize) -> u32 {
        let rel = cap_rel(at);
        match self.caps.get(rel..rel.saturating_add(4)) {
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
            _ => 0,
        }
    }

    fn bar_reg(&self, index: u8) -> u32 {
        let b = self.opts.bar_index;
        match self.opts.bar_kind {
            BarKind::Mem32 if index == b => self.bar as u32,
            BarKind::Mem64 if index == b => (self.bar as u32) | 0b100,
            BarKind::Mem64 if Some(index) == b.checked_add(1) => (self.bar >> 32) as u32,
            _ => 0,
        }
    }

    fn write_bar_reg(&mut self, index: u8, merged: u32) {
        let b = self.opts.bar_index;
        // BAR_SIZE is a non-zero power of two.
        let low_mask = !(BAR_SIZE as u32).wrapping_sub(1) & 0xffff_fff0;
        match self.opts.bar_kind {
            _ if index == b => {
                self.bar = (self.bar & !0xffff_ffff) | u64::from(merged & low_mask);
            }
            BarKind::Mem64 if Some(index) == b.checked_add(1) => {
                self.bar = (self.bar & 0xffff_ffff) | (u64::from(merged) << 32);
            }
            _ => {}
        }
    }

    /// Reads the configuration dword at `reg` (a multiple of 4). Reading `pci_cfg_data`
    /// performs the BAR read the capability describes.
    #[inline]
    pub(crate) fn read_dword(&mut self, reg: u16) -> u32 {
        match reg {
            0x00 => {
                let id = DEVICE_ID_BASE.saturating_add(self.transport.device().device_type().id());
                u32::from(VENDOR_ID) | (u32::from(id) << 16)
            }
            0x04 => {
                let mut status = STATUS_CAP_LIST;
                if self.transport.isr() != 0 {
                    status |= STATUS_INTERRUPT;
                }
                u32::from(self.command) | (u32::from(status) << 16)
            }
            0x08 => {
                let (class, subclass, prog_if) = self.transport.device().device_type().pci_class();
                u32::from_le_bytes([REVISION, prog_if, subclass, class])
            }
            0x0c => u32::from_le_bytes([self.cache_line, self.latency, 0, 0]),
            0x10..=0x27 => self.bar_reg((reg.wrapping_sub(0x10) / 4) as u8),
            0x2c => u32::from(VENDOR_ID) | (u32::from(SUBSYSTEM_ID) << 16),
            0x34 => u32::from(CAP_START),
            0x3c => u32::from_le_bytes([self.int_line, self.opts.pin, 0, 0]),
            r if r == (CAP_PCI_CFG + 16) as u16 => self.pci_cfg_read(),
            r if (CAP_START..CAP_END as u16).contains(&r) => self.cap_u32(usize::from(r)),
            _ => 0,
        }
    }

    /// Writes `value` under the byte-lane `mask` into the dword at `reg`. Returns true when
    /// the write may change BAR decoding (Command or a BAR register).
    pub(crate) fn write_dword(
        &mut self,
        mem: &GuestMemory<'_>,
        reg: u16,
        value: u32,
        mask: u32,
    ) -> bool {
        let merge = |old: u32| (old & !mask) | (value & mask);
        match reg {
            0x04 => {
                let v = merge(u32::from(self.command)) as u16;
                self.command = v & command::WRITABLE;
                true
            }
            0x0c => {
                let v = merge(u32::from_le_bytes([self.cache_line, self.latency, 0, 0]));
                let [c, l, _, _] = v.to_le_bytes();
                self.cache_line = c;
                self.latency = l;
                false
            }
            0x10..=0x27 => {
                let index = (reg.wrapping_sub(0x10) / 4) as u8; // reg >= 0x10
                let v = merge(self.bar_reg(index));
                self.write_bar_reg(index, v);
                true
            }
            0x3c => {
                let [line, ..] = merge(u32::from(self.int_line)).to_le_bytes();
                self.int_line = line;
                false
            }
            r if r == (CAP_PCI_CFG + 4) as u16 => {
                // cap.bar is the only writable byte of this dword.
                let m = mask & 0xff;
                let old = self.cap_u32(CAP_PCI_CFG + 4);
                let v = (old & !m) | (value & m);
                put(&mut self.caps, cap_rel(CAP_PCI_CFG + 4), &v.to_le_bytes());
                false
            }
            r if r == (CAP_PCI_CFG + 8) as u16 || r == (CAP_PCI_CFG + 12) as u16 => {
                let v = merge(self.cap_u32(usize::from(r)));
                put(&mut self.caps, cap_rel(usize::from(r)), &v.to_le_bytes());
                false
            }
            r if r == (CAP_PCI_CFG + 16) as u16 => {
                let v = merge(self.cap_u32(usize::from(r)));
                put(&mut self.caps, cap_rel(usize::from(r)), &v.to_le_bytes());
                self.pci_cfg_write(mem, v);
                false
            }
            _ => false,
        }
    }

    /// The BAR access the PCI configuration access capability describes, if it is a valid one.
    fn pci_cfg_target(&self) -> Option<(u64, AccessSize)> {
        let bar = self.caps.get(cap_rel(CAP_PCI_CFG + 4)).copied()?;
        let offset = u64::from(self.cap_u32(CAP_PCI_CFG + 8));
        let length = u64::from(self.cap_u32(CAP_PCI_CFG + 12));
        let size = match length {
            1 => AccessSize::Byte,
            2 => AccessSize::Half,
            4 => AccessSize::Word,
            _ => return None,
        };
        (bar == self.opts.bar_index
            && offset.is_multiple_of(length)
            && offset.saturating_add(length) <= BAR_SIZE)
            .then_some((offset, size))
    }

    fn pci_cfg_read(&mut self) -> u32 {
        let Some((offset, size)) = self.pci_cfg_target() else {
            return self.cap_u32(CAP_PCI_CFG + 16);
        };
        let v = self.transport.bar_read(offset, size).unwrap_or(0) as u32;
        put(&mut self.caps, cap_rel(CAP_PCI_CFG + 16), &v.to_le_bytes());
        v
    }

    fn pci_cfg_write(&mut self, mem: &GuestMemory<'_>, value: u32) {
        if let Some((offset, size)) = self.pci_cfg_target() {
            let v = u64::from(value) & size.mask();
            let _ = self.transport.bar_write(mem, offset, size, v);
        }
    }
}
