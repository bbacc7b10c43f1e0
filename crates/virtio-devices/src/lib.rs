//! Virtio 1.2 device models, independent of the transport.
//!
//! A device is one type implementing [`VirtioDevice`]: its device type, the feature bits it
//! offers, its configuration space, its queues, and what it does with a queue's descriptor
//! chains. The transport (`virtio-pci`) owns the rest of the virtio protocol: feature
//! negotiation (it adds VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC and VIRTIO_F_RING_EVENT_IDX
//! to what the device offers), the status state machine, queue configuration, notifications,
//! interrupts and DEVICE_NEEDS_RESET.
//!
//! The split virtqueue implementation ([`queue`]) lives here so that devices and transports
//! share it: a device sees [`Queues`] and pops [`queue::Chain`]s from them.
//!
//! Devices:
//!
//! * [`console::VirtioConsole`]: port 0 of a virtio console (`hvc0`): what the guest writes
//!   goes to a [`console::ConsoleSink`], what the VMM pushes into a [`ConsoleInput`] goes to
//!   the guest.
//! * [`blk::VirtioBlk`]: a block device over an in-memory disk image.
//! * [`net::VirtioNet`]: a network device over a [`net::NetBackend`];
//!   [`net::ArpIcmpResponder`] is a backend that answers ARP and ICMP echo for the VMM's own
//!   address, so a guest can ping the VMM.
//!
//! Everything a guest writes into rings and buffers is treated as hostile: devices bound their
//! work, never panic, touch guest RAM only through [`GuestMemory`], and report what they cannot
//! continue from as a [`DeviceError`], which the transport turns into DEVICE_NEEDS_RESET.
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

pub mod blk;
pub mod console;
pub mod net;
pub mod queue;

pub use console::{ConsoleInput, InputQueue};
pub use queue::{Chain, QueueAccess, QueueError, Queues, Virtqueue};

use core::fmt;
use guest_mem::MemError;

/// Virtio device IDs (§5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u16)]
pub enum DeviceType {
    /// Network card.
    Net = 1,
    /// Block device.
    Block = 2,
    /// Console.
    Console = 3,
}

impl DeviceType {
    /// The virtio device ID.
    pub const fn id(self) -> u16 {
        self as u16
    }

    /// PCI class code (base class, subclass, programming interface) that QEMU gives it.
    pub const fn pci_class(self) -> (u8, u8, u8) {
        match self {
            DeviceType::Net => (0x02, 0x00, 0x00),     // network, Ethernet
            DeviceType::Block => (0x01, 0x00, 0x00),   // mass storage, SCSI
            DeviceType::Console => (0x07, 0x80, 0x00), // communication, other
        }
    }
}

/// Device-independent feature bits (§6).
pub mod features {
    /// Indirect descriptors (§2.7.5.3).
    pub const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
    /// `used_event` / `avail_event` (§2.7.10).
    pub const VIRTIO_F_RING_EVENT_IDX: u64 = 1 << 29;
    /// Virtio 1.x: the only mode these devices have.
    pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
    /// What the transport adds to every device's features.
    pub const TRANSPORT: u64 =
        VIRTIO_F_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_VERSION_1;
}

/// Why a device could not go on: the transport sets DEVICE_NEEDS_RESET and logs it once per
/// cause.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeviceError {
    /// The queue's rings, descriptors or buffers are broken.
    Queue(QueueError),
}

impl DeviceError {
    /// A small number per kind of error, for log-once bookkeeping (below 32).
    pub fn cause(&self) -> u8 {
        match self {
            DeviceError::Queue(q) => q.cause(),
        }
    }
}

impl From<QueueError> for DeviceError {
    fn from(e: QueueError) -> Self {
        DeviceError::Queue(e)
    }
}

impl From<MemError> for DeviceError {
    fn from(e: MemError) -> Self {
        DeviceError::Queue(QueueError::from(e))
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Queue(e) => write!(f, "{e}"),
        }
    }
}

/// A virtio device model.
///
/// The transport calls [`process_queue`](VirtioDevice::process_queue) when the driver
/// notifies a queue and [`poll`](VirtioDevice::poll) when the VMM has outside work for the
/// device (console input, a received frame); both only once the driver has set DRIVER_OK and
/// while the device does not need a reset. Guest memory is reached through [`Queues::mem`]. A device pops at most the queue size of chains per
/// call (the [`QueueAccess`] enforces it) and must not loop otherwise.
pub trait VirtioDevice {
    /// The device type.
    fn device_type(&self) -> DeviceType;

    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Device-specific feature bits offered (the transport adds [`features::TRANSPORT`]).
    fn features(&self) -> u64;

    /// Number of virtqueues.
    fn num_queues(&self) -> u16;

    /// The largest size queue `queue` may have (a power of two).
    fn queue_max_size(&self, queue: u16) -> u16;

    /// Length of the device configuration space in bytes.
    fn config_len(&self) -> u32;

    /// Reads `data.len()` bytes of configuration space at `offset`; bytes past the end read 0.
    fn read_config(&self, offset: u32, data: &mut [u8]);

    /// Writes configuration space. The default refuses (the fields are read-only): returns
    /// false and the transport logs it.
    fn write_config(&mut self, offset: u32, data: &[u8]) -> bool {
        let _ = (offset, data);
        false
    }

    /// The driver set DRIVER_OK having accepted `features`.
    fn activate(&mut self, features: u64) {
        let _ = features;
    }

    /// The driver notified queue `queue`.
    fn process_queue(&mut self, queue: u16, queues: &mut Queues<'_>) -> Result<(), DeviceError>;

    /// Outside work (input arrived). The default does nothing.
    fn poll(&mut self, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        let _ = queues;
        Ok(())
    }

    /// The driver reset the device: forget everything negotiated.
    fn reset(&mut self);
}

/// Remembers which causes (numbers below 64) were already logged.
#[derive(Clone, Copy, Default, Debug)]
pub struct LogCauses(u64);

impl LogCauses {
    /// True the first time `cause` is seen.
    pub fn first(&mut self, cause: u8) -> bool {
        let bit = 1u64 << (cause & 63);
        let first = self.0 & bit == 0;
        self.0 |= bit;
        first
    }
}

/// Copies configuration bytes `[offset, offset + data.len())` out of `space`, zero past its end.
pub fn read_config_bytes(space: &[u8], offset: u32, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| space.get(o))
            .copied()
            .unwrap_or(0);
    }
}

/// Reads a little-endian u32 at `off` of a buffer the device filled (0 past its end).
pub(crate) fn le32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(off..off.saturating_add(4)) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

/// Reads a little-endian u64 at `off`.
pub(crate) fn le64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(off..off.saturating_add(8)) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}
