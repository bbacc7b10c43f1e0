//! Split virtqueues (virtio 1.2 §2.7), device side.
//!
//! A [`Virtqueue`] holds what the transport configured (size, the three ring addresses, enable)
//! and the device's private indices. A device gets a [`QueueAccess`] for one round of work and
//! [`QueueAccess::pop`]s [`Chain`]s from it, reads and writes their buffers through
//! [`ChainReader`] / [`ChainWriter`], and returns them with [`QueueAccess::add_used`].
//!
//! Every value in the rings is the guest's and hostile:
//!
//! * an `avail.idx` more than the queue size ahead of the device is an error;
//! * a head or `next` index outside the table, a chain (direct plus indirect) longer than the
//!   queue size (which is what a descriptor loop becomes), an indirect descriptor that is not
//!   negotiated, nested, combined with NEXT or of a length that is not a non-zero multiple of
//!   16, a readable descriptor after a writable one, and a buffer that is not entirely guest RAM
//!   (including one straddling its end or of a huge length) are errors;
//!
//! and an error leaves the queue as it was: the transport puts the device in
//! DEVICE_NEEDS_RESET. Zero-length descriptors are accepted and carry nothing. Every loop is
//! bounded: a chain visits at most `size` descriptors and a round pops at most `size` chains.
//!
//! So is the work: a chain whose buffers add up to more than [`MAX_CHAIN_LEN`] bytes is an
//! error, and a round stops popping (leaving the queue pending, for the next poll) before the
//! chains it took add up to more than [`ROUND_BYTES`]. Without these, descriptors that all
//! cover the whole of guest RAM make one notification copy `size * size` times the guest's RAM
//! (found by the `virtio_console` fuzz target: 16 GiB for 1 MiB of RAM and a 128-entry queue).
//! Guest memory is only touched through [`GuestMemory`], which refuses anything outside RAM.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{Ordering, fence};
use guest_mem::{GuestMemory, GuestPhysAddr, MemError};

/// Descriptor continues via `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Buffer is device-writable.
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Buffer holds a table of indirect descriptors.
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// `avail.flags`: the driver does not want used-buffer notifications.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// The largest queue size virtio allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

const DESC_SIZE: u64 = 16;

/// The most bytes one chain's buffers may add up to (a larger chain is a [`QueueError`]): far
/// above what Linux builds (a block request is at most `max_sectors_kb`, 1280 KiB by default;
/// a network frame 64 KiB), far below what overlapping descriptors can describe.
pub const MAX_CHAIN_LEN: u64 = 16 << 20;
/// The bytes the chains popped in one round may add up to; the chain that would go past it is
/// left for the next round (unless it is the round's first: every round makes progress).
pub const ROUND_BYTES: u64 = 16 << 20;

/// Why a queue could not be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QueueError {
    /// `avail.idx` ran more than the queue size ahead of the device.
    AvailIndexJump {
        /// The index the driver published.
        avail: u16,
        /// The device's next index.
        last: u16,
    },
    /// A head or `next` index outside the descriptor table.
    DescIndex(u16),
    /// A chain visiting more descriptors than the queue size (a loop, or a driver bug).
    ChainTooLong,
    /// An indirect descriptor although VIRTIO_F_INDIRECT_DESC was not negotiated.
    IndirectNotNegotiated,
    /// An indirect descriptor inside an indirect table.
    NestedIndirect,
    /// An indirect descriptor with NEXT set.
    IndirectWithNext,
    /// An indirect table whose length is zero or not a multiple of 16.
    IndirectLength(u32),
    /// A device-readable descriptor after a device-writable one.
    ReadableAfterWritable,
    /// A buffer or ring that is not entirely guest RAM.
    OutsideRam {
        /// Its start.
        addr: GuestPhysAddr,
        /// Its length.
        len: u64,
    },
    /// A used-ring update for a head that is not a descriptor index.
    UsedHead(u16),
    /// A guest memory access failed.
    Mem(MemError),
}

impl QueueError {
    /// A small number per kind of error, for log-once bookkeeping.
    pub fn cause(&self) -> u8 {
        match self {
            QueueError::AvailIndexJump { .. } => 0,
            QueueError::DescIndex(_) => 1,
            QueueError::ChainTooLong => 2,
            QueueError::IndirectNotNegotiated => 3,
            QueueError::NestedIndirect => 4,
            QueueError::IndirectWithNext => 5,
            QueueError::IndirectLength(_) => 6,
            QueueError::ReadableAfterWritable => 7,
            QueueError::OutsideRam { .. } => 8,
            QueueError::UsedHead(_) => 9,
            QueueError::Mem(_) => 10,
        }
    }
}

impl From<MemError> for QueueError {
    fn from(e: MemError) -> Self {
        match e {
            MemError::OutOfRange { addr, len } => QueueError::OutsideRam { addr, len },
            e => QueueError::Mem(e),
        }
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::AvailIndexJump { avail, last } => write!(
                f,
                "avail.idx {avail} is more than the queue size ahead of {last}"
            ),
            QueueError::DescIndex(i) => write!(f, "descriptor index {i} outside the table"),
            QueueError::ChainTooLong => f.write_str("descriptor chain longer than the queue"),
            QueueError::IndirectNotNegotiated => {
                f.write_str("indirect descriptor without VIRTIO_F_INDIRECT_DESC")
            }
            QueueError::NestedIndirect => f.write_str("indirect descriptor in an indirect table"),
            QueueError::IndirectWithNext => f.write_str("indirect descriptor with NEXT"),
            QueueError::IndirectLength(l) => write!(
                f,
                "indirect table of {l} bytes (not whole descriptors, or more than the queue holds)"
            ),
            QueueError::ReadableAfterWritable => {
                f.write_str("device-readable descriptor after a device-writable one")
            }
            QueueError::OutsideRam { addr, len } => {
                write!(f, "buffer {addr}+{len:#x} is not guest RAM")
            }
            QueueError::UsedHead(h) => write!(f, "used head {h} outside the table"),
            QueueError::Mem(e) => write!(f, "{e}"),
        }
    }
}

/// Why the driver's queue configuration was refused at `queue_enable`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QueueConfigError {
    /// Size zero, not a power of two, or above the device's maximum.
    Size(u16),
    /// A ring address not aligned as §2.7 requires (16, 2, 4).
    Alignment(GuestPhysAddr),
    /// A ring not entirely in guest RAM.
    OutsideRam(GuestPhysAddr),
}

impl fmt::Display for QueueConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueConfigError::Size(s) => {
                write!(f, "queue size {s} is not a power of 2 up to the maximum")
            }
            QueueConfigError::Alignment(a) => write!(f, "ring at {a} is misaligned"),
            QueueConfigError::OutsideRam(a) => write!(f, "ring at {a} is not in guest RAM"),
        }
    }
}

/// One descriptor of a chain, after validation: `[addr, addr + len)` is guest RAM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Desc {
    /// Buffer address.
    pub addr: GuestPhysAddr,
    /// Buffer length.
    pub len: u32,
    /// Device-writable.
    pub writable: bool,
}

/// A descriptor chain taken from the available ring: device-readable buffers first, then
/// device-writable ones.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Chain {
    head: u16,
    descs: Vec<Desc>,
    readable: usize,
    /// Buffers adding up to more than [`MAX_CHAIN_LEN`]: only the last writable descriptor
    /// is kept, for a device to answer in (virtio-blk's status byte).
    oversized: bool,
}

impl Chain {
    /// Whether its buffers add up to more than [`MAX_CHAIN_LEN`]. Such a chain holds only its
    /// last writable descriptor (if it has one): the request is refused, the device is not
    /// reset.
    pub fn oversized(&self) -> bool {
        self.oversized
    }

    /// The head index, to hand back with [`QueueAccess::add_used`].
    pub fn head(&self) -> u16 {
        self.head
    }

    /// All buffers, readable first.
    pub fn descs(&self) -> &[Desc] {
        &self.descs
    }

    /// The device-readable buffers.
    pub fn readable(&self) -> &[Desc] {
        self.descs.get(..self.readable).unwrap_or(&[])
    }

    /// The device-writable buffers.
    pub fn writable(&self) -> &[Desc] {
        self.descs.get(self.readable..).unwrap_or(&[])
    }

    /// Total bytes of all its buffers (at most [`MAX_CHAIN_LEN`]).
    pub fn len(&self) -> u64 {
        self.descs.iter().map(|d| u64::from(d.len)).sum()
    }

    /// True when it has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.descs.is_empty()
    }

    /// Total bytes the device may read.
    pub fn readable_len(&self) -> u64 {
        self.readable().iter().map(|d| u64::from(d.len)).sum()
    }

    /// Total bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.writable().iter().map(|d| u64::from(d.len)).sum()
    }

    /// A cursor over the readable bytes.
    pub fn reader(&self) -> ChainReader<'_> {
        ChainReader {
            descs: self.readable(),
            idx: 0,
            off: 0,
        }
    }

    /// A cursor over the writable bytes.
    pub fn writer(&self) -> ChainWriter<'_> {
        ChainWriter {
            descs: self.writable(),
            idx: 0,
            off: 0,
            written: 0,
        }
    }
}

/// Reads a chain's device-readable bytes in order.
#[derive(Debug)]
pub struct ChainReader<'c> {
    descs: &'c [Desc],
    idx: usize,
    off: u32,
}

impl ChainReader<'_> {
    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        let rest: u64 = self
            .descs
            .get(self.idx..)
            .unwrap_or(&[])
            .iter()
            .map(|d| u64::from(d.len))
            .sum();
        // off <= the current descriptor's length, which `rest` includes.
        rest.saturating_sub(u64::from(self.off))
    }

    /// Copies up to `buf.len()` bytes into `buf`; returns how many (fewer at the chain's end).
    pub fn read(&mut self, mem: &GuestMemory<'_>, buf: &mut [u8]) -> Result<usize, MemError> {
        let mut done = 0;
        while done < buf.len() {
            let Some(d) = self.descs.get(self.idx) else {
                break;
            };
            // off <= d.len always (it advances by at most what is left).
            let left = d.len.saturating_sub(self.off);
            if left == 0 {
                self.idx = self.idx.saturating_add(1);
                self.off = 0;
                continue;
            }
            // done < buf.len() (loop condition).
            let n = left.min(u32::try_from(buf.len().wrapping_sub(done)).unwrap_or(u32::MAX));
            let Some(dst) = buf.get_mut(done..done.saturating_add(n as usize)) else {
                break;
            };
            // `pop` checked [addr, addr + len) is guest RAM: no overflow; a saturated address
            // would be refused by `GuestMemory` anyway.
            let src = GuestPhysAddr(d.addr.0.saturating_add(u64::from(self.off)));
            mem.read(src, dst)?;
            // n <= buf.len() - done and n <= d.len - off.
            done = done.saturating_add(n as usize);
            self.off = self.off.saturating_add(n);
        }
        Ok(done)
    }

    /// Skips `n` bytes (fewer at the chain's end); returns how many were skipped.
    pub fn skip(&mut self, n: u64) -> u64 {
        let mut left = n;
        while left > 0 {
            let Some(d) = self.descs.get(self.idx) else {
                break;
            };
            let here = u64::from(d.len.saturating_sub(self.off));
            if here == 0 {
                self.idx = self.idx.saturating_add(1);
                self.off = 0;
                continue;
            }
            // step <= here <= d.len - off (so it fits u32) and step <= left.
            let step = here.min(left);
            self.off = self.off.saturating_add(step as u32);
            left = left.saturating_sub(step);
        }
        n.saturating_sub(left) // left <= n
    }
}

/// Writes a chain's device-writable bytes in order.
#[derive(Debug)]
pub struct ChainWriter<'c> {
    descs: &'c [Desc],
    idx: usize,
    off: u32,
    written: u64,
}

impl ChainWriter<'_> {
    /// Bytes written so far (what the used ring reports).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Room left.
    pub fn remaining(&self) -> u64 {
        let rest: u64 = self
            .descs
            .get(self.idx..)
            .unwrap_or(&[])
            .iter()
            .map(|d| u64::from(d.len))
            .sum();
        // off <= the current descriptor's length, which `rest` includes.
        rest.saturating_sub(u64::from(self.off))
    }

    /// Copies as much of `buf` as fits; returns how many bytes.
    pub fn write(&mut self, mem: &GuestMemory<'_>, buf: &[u8]) -> Result<usize, MemError> {
        let mut done = 0;
        while done < buf.len() {
            let Some(d) = self.descs.get(self.idx) else {
                break;
            };
            // off <= d.len always (it advances by at most what is left).
            let left = d.len.saturating_sub(self.off);
            if left == 0 {
                self.idx = self.idx.saturating_add(1);
                self.off = 0;
                continue;
            }
            // done < buf.len() (loop condition).
            let n = left.min(u32::try_from(buf.len().wrapping_sub(done)).unwrap_or(u32::MAX));
            let Some(src) = buf.get(done..done.saturating_add(n as usize)) else {
                break;
            };
            // As in ChainReader::read: inside a descriptor `pop` checked against guest RAM.
            let dst = GuestPhysAddr(d.addr.0.saturating_add(u64::from(self.off)));
            mem.write(dst, src)?;
            // n <= buf.len() - done and n <= d.len - off.
            done = done.saturating_add(n as usize);
            self.off = self.off.saturating_add(n);
            self.written = self.written.saturating_add(u64::from(n));
        }
        Ok(done)
    }

    /// Skips `n` writable bytes without writing them (they still count as written, as a
    /// device that filled them would report).
    pub fn skip(&mut self, n: u64) -> u64 {
        let mut left = n;
        while left > 0 {
            let Some(d) = self.descs.get(self.idx) else {
                break;
            };
            let here = u64::from(d.len.saturating_sub(self.off));
            if here == 0 {
                self.idx = self.idx.saturating_add(1);
                self.off = 0;
                continue;
            }
            // step <= here <= d.len - off (so it fits u32) and step <= left.
            let step = here.min(left);
            self.off = self.off.saturating_add(step as u32);
            left = left.saturating_sub(step);
        }
        let skipped = n.saturating_sub(left); // left <= n
        self.written = self.written.saturating_add(skipped);
        skipped
    }
}

/// One split virtqueue: the driver's configuration and the device's indices.
#[derive(Clone, Debug)]
pub struct Virtqueue {
    max_size: u16,
    size: u16,
    enabled: bool,
    desc: GuestPhysAddr,
    avail: GuestPhysAddr,
    used: GuestPhysAddr,
    indirect: bool,
    event_idx: bool,
    last_avail: u16,
    next_used: u16,
    signalled_used: u16,
    budget: u16,
    /// Bytes the chains popped this round add up to.
    round_bytes: u64,
    pending: bool,
}

impl Virtqueue {
    /// A queue the device allows up to `max_size` entries for (a power of two).
    pub fn new(max_size: u16) -> Self {
        let max_size = max_size.clamp(1, MAX_QUEUE_SIZE);
        Virtqueue {
            max_size,
            size: max_size,
            enabled: false,
            desc: GuestPhysAddr(0),
            avail: GuestPhysAddr(0),
            used: GuestPhysAddr(0),
            indirect: false,
            event_idx: false,
            last_avail: 0,
            next_used: 0,
            signalled_used: 0,
            budget: 0,
            round_bytes: 0,
            pending: false,
        }
    }

    /// Back to the reset state (size = maximum, disabled, addresses zero).
    pub fn reset(&mut self) {
        *self = Virtqueue::new(self.max_size);
    }

    /// The device's maximum size.
    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// The size the driver chose (the maximum until it writes one).
    pub fn size(&self) -> u16 {
        self.size
    }

    /// True once enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Descriptor table address.
    pub fn desc_addr(&self) -> GuestPhysAddr {
        self.desc
    }

    /// Driver area (available ring) address.
    pub fn avail_addr(&self) -> GuestPhysAddr {
        self.avail
    }

    /// Device area (used ring) address.
    pub fn used_addr(&self) -> GuestPhysAddr {
        self.used
    }

    /// Sets the size; false (ignored) once enabled.
    pub fn set_size(&mut self, size: u16) -> bool {
        if self.enabled {
            return false;
        }
        self.size = size;
        true
    }

    /// Sets the descriptor table address; false (ignored) once enabled.
    pub fn set_desc_addr(&mut self, a: GuestPhysAddr) -> bool {
        !self.enabled && {
            self.desc = a;
            true
        }
    }

    /// Sets the available ring address; false (ignored) once enabled.
    pub fn set_avail_addr(&mut self, a: GuestPhysAddr) -> bool {
        !self.enabled && {
            self.avail = a;
            true
        }
    }

    /// Sets the used ring address; false (ignored) once enabled.
    pub fn set_used_addr(&mut self, a: GuestPhysAddr) -> bool {
        !self.enabled && {
            self.used = a;
            true
        }
    }

    /// Enables the queue after checking the size and the rings; the negotiated features decide
    /// whether indirect descriptors and event indices are used. On error the queue stays
    /// disabled.
    pub fn enable(
        &mut self,
        mem: &GuestMemory<'_>,
        indirect: bool,
        event_idx: bool,
    ) -> Result<(), QueueConfigError> {
        if self.enabled {
            return Ok(());
        }
        let size = self.size;
        if size == 0 || !size.is_power_of_two() || size > self.max_size {
            return Err(QueueConfigError::Size(size));
        }
        // n <= 32768: none of these lengths comes near overflowing.
        let n = u64::from(size);
        let rings = [
            (self.desc, 16, DESC_SIZE.saturating_mul(n)),
            (self.avail, 2, n.saturating_mul(2).saturating_add(6)),
            (self.used, 4, n.saturating_mul(8).saturating_add(6)),
        ];
        for (addr, align, len) in rings {
            if !addr.is_aligned(align) {
                return Err(QueueConfigError::Alignment(addr));
            }
            if !mem.contains(addr, len) {
                return Err(QueueConfigError::OutsideRam(addr));
            }
        }
        self.indirect = indirect;
        self.event_idx = event_idx;
        self.last_avail = 0;
        self.next_used = 0;
        self.signalled_used = 0;
        self.pending = false;
        self.enabled = true;
        Ok(())
    }

    /// Starts a round of work: at most `size` chains, of at most [`ROUND_BYTES`] together
    /// (or one larger chain), may be popped until the next round.
    pub fn begin_round(&mut self) {
        self.budget = self.size;
        self.round_bytes = 0;
    }

    /// True when a round ended with chains still available (the budget ran out): the next
    /// `poll` should process the queue again.
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// The device's next available index (how many chains it has taken, mod 2^16).
    pub fn last_avail(&self) -> u16 {
        self.last_avail
    }

    /// The next used index the device will publish.
    pub fn next_used(&self) -> u16 {
        self.next_used
    }

    // Ring addresses: `enable` checked each ring lies in guest RAM, so on an enabled queue
    // these sums stay inside it; on any other a saturated address is refused by `GuestMemory`.
    fn avail_idx_addr(&self) -> GuestPhysAddr {
        GuestPhysAddr(self.avail.0.saturating_add(2))
    }

    fn used_event_addr(&self) -> GuestPhysAddr {
        let ring = u64::from(self.size).saturating_mul(2);
        GuestPhysAddr(self.avail.0.saturating_add(4).saturating_add(ring))
    }

    fn avail_event_addr(&self) -> GuestPhysAddr {
        let ring = u64::from(self.size).saturating_mul(8);
        GuestPhysAddr(self.used.0.saturating_add(4).saturating_add(ring))
    }

    /// Address of ring element `slot` (`stride` bytes each) after a ring's 4-byte header.
    fn ring_elem(ring: GuestPhysAddr, stride: u64, slot: u64) -> GuestPhysAddr {
        GuestPhysAddr(
            ring.0
                .saturating_add(4)
                .saturating_add(stride.saturating_mul(slot)),
        )
    }

    /// Whether the driver should get a used-buffer notification for what was added since the
    /// last call (§2.7.7 and, with EVENT_IDX, §2.7.10's `used_event`). Calling it marks the
    /// current used index as signalled.
    pub fn needs_notification(&mut self, mem: &GuestMemory<'_>) -> Result<bool, QueueError> {
        if !self.enabled || self.next_used == self.signalled_used {
            return Ok(false);
        }
        // The used index store must be visible before the driver's suppression field is read.
        fence(Ordering::SeqCst);
        let old = self.signalled_used;
        let new = self.next_used;
        self.signalled_used = new;
        if self.event_idx {
            let event = mem.read_u16(self.used_event_addr())?;
            // vring_need_event: notify when `event` lies in [old, new).
            Ok(new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old))
        } else {
            let flags = mem.read_u16(self.avail)?;
            Ok(flags & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
        }
    }
}

/// One queue for one round of device work.
pub struct QueueAccess<'a> {
    vq: &'a mut Virtqueue,
    mem: &'a GuestMemory<'a>,
}

impl<'a> QueueAccess<'a> {
    /// Access to `vq` (enabled) over `mem`.
    pub fn new(vq: &'a mut Virtqueue, mem: &'a GuestMemory<'a>) -> Self {
        QueueAccess { vq, mem }
    }

    /// Guest memory, for the chains' buffers.
    pub fn mem(&self) -> &'a GuestMemory<'a> {
        self.mem
    }

    /// The queue size.
    pub fn size(&self) -> u16 {
        self.vq.size
    }

    fn avail_pending(&self) -> Result<u16, QueueError> {
        let avail = self.mem.load_u16_acquire(self.vq.avail_idx_addr())?;
        let pending = avail.wrapping_sub(self.vq.last_avail);
        if pending > self.vq.size {
            return Err(QueueError::AvailIndexJump {
                avail,
                last: self.vq.last_avail,
            });
        }
        Ok(pending)
    }

    /// Ends this round early: chains still in the ring are taken at the next poll (a device
    /// whose work per chain is slow, the console, bounds the time of one exit this way).
    pub fn defer(&mut self) {
        self.vq.pending = true;
    }

    /// True when the driver has made a chain available that is not popped yet.
    pub fn has_available(&self) -> Result<bool, QueueError> {
        Ok(self.avail_pending()? > 0)
    }

    /// Takes the next available chain, `None` when there is none or this round's budget
    /// (`size` chains) is spent. With EVENT_IDX, an empty ring publishes `avail_event` so the
    /// driver notifies for the next chain, and is checked once more against the race.
    pub fn pop(&mut self) -> Result<Option<Chain>, QueueError> {
        let mut pending = self.avail_pending()?;
        if pending == 0 && self.vq.event_idx {
            self.mem
                .write_u16(self.vq.avail_event_addr(), self.vq.last_avail)?;
            fence(Ordering::SeqCst);
            pending = self.avail_pending()?;
        }
        if pending == 0 {
            self.vq.pending = false;
            return Ok(None);
        }
        if self.vq.budget == 0 {
            self.vq.pending = true;
            return Ok(None);
        }
        // 0 < pending <= size: the size is not zero.
        let slot = u64::from(self.vq.last_avail.checked_rem(self.vq.size).unwrap_or(0));
        let head = self
            .mem
            .read_u16(Virtqueue::ring_elem(self.vq.avail, 2, slot))?;
        let chain = self.walk(head)?;
        let len = chain.len();
        if self.vq.round_bytes > 0 && self.vq.round_bytes.saturating_add(len) > ROUND_BYTES {
            // Left in the ring for the next round.
            self.vq.pending = true;
            return Ok(None);
        }
        self.vq.round_bytes = self.vq.round_bytes.saturating_add(len);
        self.vq.last_avail = self.vq.last_avail.wrapping_add(1);
        self.vq.budget = self.vq.budget.saturating_sub(1); // budget != 0 (checked above)
        Ok(Some(chain))
    }

    fn walk(&self, head: u16) -> Result<Chain, QueueError> {
        let size = self.vq.size;
        let mut descs = Vec::new();
        let mut readable = 0usize;
        let mut table = self.vq.desc;
        let mut table_len = u32::from(size);
        let mut in_indirect = false;
        let mut idx = head;
        let mut seen_writable = false;
        let mut total = 0u64;
        let mut last_writable = None;
        // Each iteration visits one descriptor: at most `size` in the descriptor table, and an
        // indirect table (no longer than the queue, §2.7.5.3.1: a chain is at most Queue Size
        // descriptors) starts a count of its own, so a table of `size` entries, the one Linux
        // builds for a virtio-blk request of `seg_max` segments, is walked whole.
        let mut visits_left = u32::from(size);
        loop {
            if visits_left == 0 {
                return Err(QueueError::ChainTooLong);
            }
            visits_left = visits_left.saturating_sub(1);
            if u32::from(idx) >= table_len {
                return Err(QueueError::DescIndex(idx));
            }
            let mut raw = [0u8; 16];
            // idx < table_len, and the table was checked to lie in guest RAM.
            let at = DESC_SIZE.saturating_mul(u64::from(idx));
            self.mem
                .read(GuestPhysAddr(table.0.saturating_add(at)), &mut raw)?;
            let [
                a0,
                a1,
                a2,
                a3,
                a4,
                a5,
                a6,
                a7,
                l0,
                l1,
                l2,
                l3,
                f0,
                f1,
                n0,
                n1,
            ] = raw;
            let addr = GuestPhysAddr(u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]));
            let len = u32::from_le_bytes([l0, l1, l2, l3]);
            let flags = u16::from_le_bytes([f0, f1]);
            let next = u16::from_le_bytes([n0, n1]);
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                if !self.vq.indirect {
                    return Err(QueueError::IndirectNotNegotiated);
                }
                if in_indirect {
                    return Err(QueueError::NestedIndirect);
                }
                if flags & VIRTQ_DESC_F_NEXT != 0 {
                    return Err(QueueError::IndirectWithNext);
                }
                if len == 0 || !len.is_multiple_of(16) || len >> 4 > u32::from(size) {
                    return Err(QueueError::IndirectLength(len));
                }
                if !self.mem.contains(addr, u64::from(len)) {
                    return Err(QueueError::OutsideRam {
                        addr,
                        len: u64::from(len),
                    });
                }
                table = addr;
                table_len = len >> 4; // len / 16, at most `size` (checked above)
                visits_left = table_len;
                in_indirect = true;
                idx = 0;
                continue;
            }
            let writable = flags & VIRTQ_DESC_F_WRITE != 0;
            if writable {
                seen_writable = true;
            } else if seen_writable {
                return Err(QueueError::ReadableAfterWritable);
            }
            if !self.mem.contains(addr, u64::from(len)) {
                return Err(QueueError::OutsideRam {
                    addr,
                    len: u64::from(len),
                });
            }
            total = total.saturating_add(u64::from(len));
            if writable && len > 0 {
                last_writable = Some(Desc {
                    addr,
                    len,
                    writable,
                });
            }
            if total > MAX_CHAIN_LEN {
                // Too much to serve: walked to its end (bounded as any chain) but not kept.
                descs.clear();
                readable = 0;
            } else if len > 0 {
                descs.push(Desc {
                    addr,
                    len,
                    writable,
                });
                if !writable {
                    readable = readable.saturating_add(1); // at most `size`
                }
            }
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                let oversized = total > MAX_CHAIN_LEN;
                if oversized {
                    descs = last_writable.into_iter().collect();
                }
                return Ok(Chain {
                    head,
                    descs,
                    readable,
                    oversized,
                });
            }
            idx = next;
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written: the used element first,
    /// then the index with release ordering, so the driver never sees the index before the
    /// element.
    pub fn add_used(&mut self, head: u16, len: u32) -> Result<(), QueueError> {
        if head >= self.vq.size {
            return Err(QueueError::UsedHead(head));
        }
        // head < size (checked above): the size is not zero.
        let slot = u64::from(self.vq.next_used.checked_rem(self.vq.size).unwrap_or(0));
        let elem = Virtqueue::ring_elem(self.vq.used, 8, slot);
        let mut raw = [0u8; 8];
        let (id, l) = raw.split_at_mut(4);
        id.copy_from_slice(&u32::from(head).to_le_bytes());
        l.copy_from_slice(&len.to_le_bytes());
        self.mem.write(elem, &raw)?;
        self.vq.next_used = self.vq.next_used.wrapping_add(1);
        self.mem.store_u16_release(
            GuestPhysAddr(self.vq.used.0.saturating_add(2)),
            self.vq.next_used,
        )?;
        Ok(())
    }
}

/// All queues of one device, for one round of work.
pub struct Queues<'a> {
    vqs: &'a mut [Virtqueue],
    mem: &'a GuestMemory<'a>,
    features: u64,
}

impl<'a> Queues<'a> {
    /// The device's queues over `mem`, with the negotiated `features`.
    pub fn new(vqs: &'a mut [Virtqueue], mem: &'a GuestMemory<'a>, features: u64) -> Self {
        Queues { vqs, mem, features }
    }

    /// Queue `index`, if it exists and is enabled.
    pub fn get(&mut self, index: u16) -> Option<QueueAccess<'_>> {
        let vq = self.vqs.get_mut(usize::from(index))?;
        if !vq.enabled {
            return None;
        }
        Some(QueueAccess { vq, mem: self.mem })
    }

    /// The features the driver accepted.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Guest memory.
    pub fn mem(&self) -> &'a GuestMemory<'a> {
        self.mem
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const BASE: u64 = 0x4000_0000;

    /// A queue of `size` at the start of `ram` (desc, then avail, then used), enabled.
    fn queue(mem: &GuestMemory<'_>, size: u16) -> Virtqueue {
        let mut vq = Virtqueue::new(size);
        let n = u64::from(size);
        vq.set_desc_addr(GuestPhysAddr(BASE));
        vq.set_avail_addr(GuestPhysAddr(BASE + 16 * n));
        vq.set_used_addr(GuestPhysAddr(BASE + 0x1000));
        vq.enable(mem, true, false).unwrap();
        vq
    }

    fn desc(mem: &GuestMemory<'_>, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        mem.write(GuestPhysAddr(at), &raw).unwrap();
    }

    fn publish(mem: &GuestMemory<'_>, vq: &Virtqueue, idx: u16, head: u16) {
        let slot = u64::from(idx.wrapping_sub(1) % vq.size());
        mem.write_u16(GuestPhysAddr(vq.avail_addr().0 + 4 + 2 * slot), head)
            .unwrap();
        mem.write_u16(GuestPhysAddr(vq.avail_addr().0 + 2), idx)
            .unwrap();
    }

    #[test]
    fn a_round_pops_at_most_size_chains_and_leaves_the_rest_pending() {
        let mut ram = vec![0u8; 0x4000];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        let mut vq = queue(&mem, 4);
        desc(&mem, BASE, BASE + 0x2000, 8, 0, 0);
        vq.begin_round();
        let mut popped = 0;
        // The driver keeps adding chains as fast as the device uses them.
        for i in 1..=10u16 {
            publish(&mem, &vq, i, 0);
            let mut q = QueueAccess::new(&mut vq, &mem);
            match q.pop().unwrap() {
                Some(c) => {
                    popped += 1;
                    q.add_used(c.head(), 0).unwrap();
                }
                None => break,
            }
        }
        assert_eq!(popped, 4);
        assert!(vq.pending(), "budget spent with chains left");
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        assert!(q.pop().unwrap().is_some());
    }

    /// Descriptors 0..n each covering all of `ram` (4 MiB), chained 0 -> 1 -> ... -> n-1.
    fn whole_ram_chain(mem: &GuestMemory<'_>, n: u16) {
        for i in 0..n {
            let flags = if i + 1 < n { VIRTQ_DESC_F_NEXT } else { 0 };
            desc(mem, BASE + 16 * u64::from(i), BASE, 4 << 20, flags, i + 1);
        }
    }

    #[test]
    fn a_chain_longer_than_max_chain_len_is_refused_not_fatal() {
        let mut ram = vec![0u8; 4 << 20];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        let mut vq = queue(&mem, 8);
        // Four descriptors over all 4 MiB of RAM: 16 MiB, the most a chain may have.
        whole_ram_chain(&mem, 4);
        publish(&mem, &vq, 1, 0);
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        let c = q.pop().unwrap().unwrap();
        assert_eq!(c.len(), MAX_CHAIN_LEN);
        // Five: one more than that.
        whole_ram_chain(&mem, 5);
        publish(&mem, &vq, 2, 0);
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        // Popped (the queue goes on), marked, and holding nothing to copy: these descriptors
        // are all device-readable, so not even a status byte to answer in.
        let c = q.pop().unwrap().unwrap();
        assert!(c.oversized());
        assert_eq!((c.len(), c.descs().len()), (0, 0));
        // The same with the last descriptor writable: it alone is kept.
        desc(
            &mem,
            BASE + 16 * 4,
            BASE + 0x2000,
            64,
            VIRTQ_DESC_F_WRITE,
            0,
        );
        publish(&mem, &vq, 3, 0);
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        let c = q.pop().unwrap().unwrap();
        assert!(c.oversized());
        assert_eq!((c.readable_len(), c.writable_len()), (0, 64));
    }

    #[test]
    fn an_indirect_table_as_long_as_the_queue_is_walked_whole() {
        let mut ram = vec![0u8; 0x10000];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        let mut vq = queue(&mem, 8);
        let table = BASE + 0x4000;
        // Header, 6 data segments, status: 8 entries in a queue of 8 (virtio-blk's seg_max =
        // size - 2), after an INDIRECT descriptor in the ring's table.
        for i in 0..8u16 {
            let flags = if i < 7 { VIRTQ_DESC_F_NEXT } else { 0 }
                | if i >= 1 { VIRTQ_DESC_F_WRITE } else { 0 };
            desc(
                &mem,
                table + 16 * u64::from(i),
                BASE + 0x8000 + 512 * u64::from(i),
                512,
                flags,
                i + 1,
            );
        }
        desc(&mem, BASE, table, 8 * 16, VIRTQ_DESC_F_INDIRECT, 0);
        publish(&mem, &vq, 1, 0);
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        let c = q.pop().unwrap().unwrap();
        assert_eq!(
            (c.descs().len(), c.readable_len(), c.writable_len()),
            (8, 512, 7 * 512)
        );
        // One entry more than the queue is refused.
        desc(&mem, BASE, table, 9 * 16, VIRTQ_DESC_F_INDIRECT, 0);
        publish(&mem, &vq, 2, 0);
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        assert_eq!(q.pop(), Err(QueueError::IndirectLength(9 * 16)));
    }

    #[test]
    fn a_round_stops_at_round_bytes_and_leaves_the_rest_pending() {
        let mut ram = vec![0u8; 4 << 20];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        let mut vq = queue(&mem, 8);
        // Every ring entry names the same 16 MiB chain: what one notification used to copy
        // `size` times over.
        whole_ram_chain(&mem, 4);
        for i in 1..=8 {
            publish(&mem, &vq, i, 0);
        }
        for round in 0..8 {
            vq.begin_round();
            let mut q = QueueAccess::new(&mut vq, &mem);
            let c = q.pop().unwrap().expect("one chain per round");
            q.add_used(c.head(), 0).unwrap();
            assert_eq!(q.pop().unwrap(), None, "round {round}: budget spent");
            assert_eq!(vq.pending(), round < 7, "round {round}");
        }
        // Small chains share a round up to the budget.
        desc(&mem, BASE + 16 * 5, BASE, 4096, 0, 0);
        for i in 9..=16 {
            publish(&mem, &vq, i, 5);
        }
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        let mut n = 0;
        while let Some(c) = q.pop().unwrap() {
            q.add_used(c.head(), 0).unwrap();
            n += 1;
        }
        assert_eq!(n, 8);
    }

    #[test]
    fn reader_and_writer_cross_descriptor_boundaries() {
        let mut ram = vec![0u8; 0x4000];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        let mut vq = queue(&mem, 4);
        mem.write(GuestPhysAddr(BASE + 0x2000), b"abc").unwrap();
        mem.write(GuestPhysAddr(BASE + 0x2100), b"defg").unwrap();
        desc(&mem, BASE, BASE + 0x2000, 3, VIRTQ_DESC_F_NEXT, 1);
        desc(&mem, BASE + 16, BASE + 0x2100, 4, VIRTQ_DESC_F_NEXT, 2);
        desc(
            &mem,
            BASE + 32,
            BASE + 0x2200,
            2,
            VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
            3,
        );
        desc(&mem, BASE + 48, BASE + 0x2300, 5, VIRTQ_DESC_F_WRITE, 0);
        publish(&mem, &vq, 1, 0);
        vq.begin_round();
        let mut q = QueueAccess::new(&mut vq, &mem);
        let c = q.pop().unwrap().unwrap();
        assert_eq!((c.readable_len(), c.writable_len()), (7, 7));
        let mut r = c.reader();
        let mut buf = [0u8; 5];
        assert_eq!(r.read(&mem, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"abcde");
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.read(&mem, &mut buf).unwrap(), 2);
        let mut w = c.writer();
        assert_eq!(w.write(&mem, b"0123456789").unwrap(), 7);
        let mut out = [0u8; 5];
        mem.read(GuestPhysAddr(BASE + 0x2300), &mut out).unwrap();
        assert_eq!(&out, b"23456");
        assert_eq!(w.remaining(), 0);
    }
}
